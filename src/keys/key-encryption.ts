import { seal, unseal } from './sealed-box.ts';

// Private signing JWKs at rest, sealed under the key-encryption key and bound to their kid.
export function encryptPrivateJwk(key: Buffer, kid: string, jwk: object): string {
  return seal(key, kid, Buffer.from(JSON.stringify(jwk), 'utf8'));
}

export function decryptPrivateJwk(key: Buffer, kid: string, sealed: string): Record<string, unknown> {
  return JSON.parse(unseal(key, kid, sealed).toString('utf8')) as Record<string, unknown>;
}
