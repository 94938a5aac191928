import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';

// A WebAuthn authenticator in software, for tests that need answers no browser would give (an
// old counter, no user verification, another origin) or run without a browser. It makes what
// an authenticator makes (WebAuthn §6.1 authenticator data, §6.5 attestation "none", §6.3.3
// assertions signed with ES256) and answers in @simplewebauthn/browser's JSON shapes.

const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');
const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest();

/** CBOR (RFC 8949) heads for the few types used here. */
function head(major: number, length: number): Buffer {
  if (length < 24) return Buffer.from([(major << 5) | length]);
  if (length < 256) return Buffer.from([(major << 5) | 24, length]);
  return Buffer.from([(major << 5) | 25, length >> 8, length & 0xff]);
}
const text = (s: string) => Buffer.concat([head(3, Buffer.byteLength(s)), Buffer.from(s)]);
const bytes = (b: Uint8Array) => Buffer.concat([head(2, b.length), b]);

/** The EC2 P-256 public key as a COSE_Key (RFC 9053 §7.1): kty 2, alg -7 (ES256), crv 1, x, y. */
function coseKey(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' });
  const x = Buffer.from(jwk.x!, 'base64url');
  const y = Buffer.from(jwk.y!, 'base64url');
  return Buffer.concat([
    Buffer.from([0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21]),
    bytes(x),
    Buffer.from([0x22]),
    bytes(y),
  ]);
}

export interface Flags {
  /** UV: the authenticator verified the person. */
  readonly userVerified?: boolean;
  /** BE and BS: a synced (multi-device) passkey. */
  readonly synced?: boolean;
}

function flagByte(flags: Flags, attested: boolean): number {
  let f = 0x01; // UP
  if (flags.userVerified ?? true) f |= 0x04;
  if (flags.synced) f |= 0x08 | 0x10;
  if (attested) f |= 0x40;
  return f;
}

function counterBytes(counter: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(counter);
  return b;
}

export interface SoftwarePasskey {
  readonly id: string;
  /** A registration response for these creation options, as startRegistration returns it. */
  register(options: { challenge: string; user: { id: string } }, origin: string, flags?: Flags): string;
  /** An assertion for these request options, as startAuthentication returns it. */
  assert(options: { challenge: string }, origin: string, input?: Flags & { counter?: number }): string;
}

export function createSoftwarePasskey(rpId: string): SoftwarePasskey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const credentialId = randomBytes(16);
  const id = b64url(credentialId);
  let userHandle = '';
  const clientData = (type: string, challenge: string, origin: string) =>
    Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }));
  return {
    id,
    register(options, origin, flags = {}) {
      userHandle = options.user.id;
      const authData = Buffer.concat([
        sha256(rpId),
        Buffer.from([flagByte(flags, true)]),
        counterBytes(0),
        Buffer.alloc(16), // AAGUID: none
        Buffer.from([credentialId.length >> 8, credentialId.length & 0xff]),
        credentialId,
        coseKey(publicKey),
      ]);
      const attestationObject = Buffer.concat([
        Buffer.from([0xa3]),
        text('fmt'),
        text('none'),
        text('attStmt'),
        Buffer.from([0xa0]),
        text('authData'),
        bytes(authData),
      ]);
      return JSON.stringify({
        id,
        rawId: id,
        type: 'public-key',
        response: {
          clientDataJSON: b64url(clientData('webauthn.create', options.challenge, origin)),
          attestationObject: b64url(attestationObject),
          transports: ['internal'],
        },
        clientExtensionResults: {},
        authenticatorAttachment: 'platform',
      });
    },
    assert(options, origin, input = {}) {
      const authData = Buffer.concat([
        sha256(rpId),
        Buffer.from([flagByte(input, false)]),
        counterBytes(input.counter ?? 0),
      ]);
      const data = clientData('webauthn.get', options.challenge, origin);
      const signature = sign('sha256', Buffer.concat([authData, sha256(data)]), privateKey);
      return JSON.stringify({
        id,
        rawId: id,
        type: 'public-key',
        response: {
          clientDataJSON: b64url(data),
          authenticatorData: b64url(authData),
          signature: b64url(signature),
          userHandle,
        },
        clientExtensionResults: {},
        authenticatorAttachment: 'platform',
      });
    },
  };
}
