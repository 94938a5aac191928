import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

// Private JWKs at rest: AES-256-GCM under a key derived from POSTERN_SECRET (HKDF, see
// config/secrets.ts). Format: "v1." + base64url(iv[12] | tag[16] | ciphertext). The kid is bound
// as additional data, so a ciphertext cannot be moved to another row.
const VERSION = 'v1.';

export function encryptPrivateJwk(key: Buffer, kid: string, jwk: object): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(kid, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(jwk), 'utf8'), cipher.final()]);
  return VERSION + Buffer.concat([iv, cipher.getAuthTag(), ciphertext]).toString('base64url');
}

export function decryptPrivateJwk(key: Buffer, kid: string, sealed: string): Record<string, unknown> {
  if (!sealed.startsWith(VERSION)) throw new Error(`key ${kid}: unknown encryption format`);
  const raw = Buffer.from(sealed.slice(VERSION.length), 'base64url');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
  decipher.setAAD(Buffer.from(kid, 'utf8'));
  decipher.setAuthTag(raw.subarray(12, 28));
  const plaintext = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]);
  return JSON.parse(plaintext.toString('utf8')) as Record<string, unknown>;
}
