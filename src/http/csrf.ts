import { createHmac, timingSafeEqual } from 'node:crypto';

// Interaction forms carry a token bound to the interaction (whose id only this browser holds,
// in a signed cookie), so a page elsewhere cannot submit them. Stateless: HMAC under a key
// derived from POSTERN_SECRET, valid on every instance.
export function csrfToken(key: Buffer, binding: string): string {
  return createHmac('sha256', key).update(`csrf:${binding}`).digest('base64url');
}

export function checkCsrf(key: Buffer, binding: string, presented: string | undefined): boolean {
  if (typeof presented !== 'string') return false;
  const expected = Buffer.from(csrfToken(key, binding));
  const actual = Buffer.from(presented);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
