import { randomBytes } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { seal, unseal } from '../../src/keys/sealed-box.ts';

const key = randomBytes(32);

/** Keeps the IV and the first `tagBytes` of the tag: a value Node's GCM accepts unless told the tag length. */
function withShortTag(sealed: string, tagBytes: number): string {
  const raw = Buffer.from(sealed.slice('v1.'.length), 'base64url');
  return `v1.${raw.subarray(0, 12 + tagBytes).toString('base64url')}`;
}

describe('sealed values', () => {
  it('round-trip, even when empty', () => {
    expect(unseal(key, 'name', seal(key, 'name', Buffer.from('hello'))).toString()).toBe('hello');
    expect(unseal(key, 'name', seal(key, 'name', Buffer.alloc(0))).length).toBe(0);
  });

  // NIST SP 800-38D §5.2.1.2: a t-bit tag bounds forgery at 2^-t per try; a 4-byte tag could be
  // forged in about 2^32 tries, so only the full 128-bit tag that seal() writes is accepted.
  it.each([4, 8, 12, 15])('refuse a value whose tag is cut to %i bytes, although the prefix is genuine', (tagBytes) => {
    const sealed = seal(key, 'name', Buffer.alloc(0));

    expect(() => unseal(key, 'name', withShortTag(sealed, tagBytes))).toThrow(/authentication tag|too short/);
  });

  it('refuse a value too short to hold an IV and a tag', () => {
    expect(() => unseal(key, 'name', 'v1.')).toThrow(/too short/);
    expect(() => unseal(key, 'name', `v1.${randomBytes(20).toString('base64url')}`)).toThrow(/too short/);
  });
});
