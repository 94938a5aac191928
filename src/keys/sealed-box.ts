import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

// Secrets at rest: AES-256-GCM under the key-encryption key derived from POSTERN_SECRET.
// Format: "v1." + base64url(iv[12] | tag[16] | ciphertext). `binding` (a key id, a name) is
// authenticated as additional data, so a sealed value cannot be moved to another row.
const VERSION = 'v1.';

export function seal(key: Buffer, binding: string, plaintext: Buffer): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(binding, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return VERSION + Buffer.concat([iv, cipher.getAuthTag(), ciphertext]).toString('base64url');
}

/** Throws when the key is wrong, the value was altered, or it belongs to another binding. */
export function unseal(key: Buffer, binding: string, sealed: string): Buffer {
  if (!sealed.startsWith(VERSION)) throw new Error(`${binding}: unknown encryption format`);
  const raw = Buffer.from(sealed.slice(VERSION.length), 'base64url');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
  decipher.setAAD(Buffer.from(binding, 'utf8'));
  decipher.setAuthTag(raw.subarray(12, 28));
  return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]);
}
