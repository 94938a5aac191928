import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

// Secrets at rest: AES-256-GCM under the key-encryption key derived from POSTERN_SECRET.
// Format: "v1." + base64url(iv[12] | tag[16] | ciphertext). `binding` (a key id, a name) is
// authenticated as additional data, so a sealed value cannot be moved to another row.
const VERSION = 'v1.';
const IV_BYTES = 12;
// NIST SP 800-38D §5.2.1.2: a shorter tag is easier to forge (2^-t per try). GCM decryption
// checks only as many tag bytes as it is given, so the length is enforced here, not assumed.
const TAG_BYTES = 16;

export function seal(key: Buffer, binding: string, plaintext: Buffer): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(binding, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return VERSION + Buffer.concat([iv, cipher.getAuthTag(), ciphertext]).toString('base64url');
}

/** Throws when the key is wrong, the value was altered, or it belongs to another binding. */
export function unseal(key: Buffer, binding: string, sealed: string): Buffer {
  if (!sealed.startsWith(VERSION)) throw new Error(`${binding}: unknown encryption format`);
  const raw = Buffer.from(sealed.slice(VERSION.length), 'base64url');
  if (raw.length < IV_BYTES + TAG_BYTES)
    throw new Error(`${binding}: sealed value too short to hold an IV and a full tag`);
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.from(binding, 'utf8'));
  decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
  return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
}
