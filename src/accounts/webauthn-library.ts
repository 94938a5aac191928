// @simplewebauthn/server takes about a quarter of a second to load (its CBOR, COSE and
// attestation code), which every `postern` command and every start would pay for a feature
// most of them never touch: it is loaded the first time a ceremony needs it, and once.
let loading: Promise<typeof import('@simplewebauthn/server')> | undefined;

export function webauthnLibrary(): Promise<typeof import('@simplewebauthn/server')> {
  loading ??= import('@simplewebauthn/server');
  return loading;
}
