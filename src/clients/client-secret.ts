import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

// Client secrets are generated with 256 bits of entropy, so a keyed fast hash (HMAC-SHA-256
// under a key derived from POSTERN_SECRET) is as strong as a slow one and keeps /token fast.
const PREFIX = 'hmac-sha256:v1:';
export const MIN_CLIENT_SECRET_LENGTH = 32;

export function generateClientSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function hashClientSecret(key: Buffer, secret: string): string {
  return PREFIX + createHmac('sha256', key).update(secret, 'utf8').digest('base64url');
}

/** Constant-time: both sides are fixed-length digests before they are compared. */
export function verifyClientSecret(key: Buffer, stored: string, presented: string): boolean {
  if (!stored.startsWith(PREFIX) || typeof presented !== 'string') return false;
  const expected = Buffer.from(stored.slice(PREFIX.length), 'base64url');
  const actual = createHmac('sha256', key).update(presented, 'utf8').digest();
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
