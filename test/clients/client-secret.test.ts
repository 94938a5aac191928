import { randomBytes } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import {
  generateClientSecret,
  hashClientSecret,
  MIN_CLIENT_SECRET_LENGTH,
  verifyClientSecret,
} from '../../src/clients/client-secret.ts';

const key = randomBytes(32);

describe('generateClientSecret', () => {
  it('gives a new base64url secret of 256 bits each time', () => {
    const a = generateClientSecret();
    const b = generateClientSecret();

    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a.length).toBeGreaterThanOrEqual(MIN_CLIENT_SECRET_LENGTH);
    expect(Buffer.from(a, 'base64url')).toHaveLength(32);
    expect(a).not.toBe(b);
  });
});

describe('hashClientSecret', () => {
  it('stores neither the secret nor any part of it that matters', () => {
    const secret = generateClientSecret();
    const stored = hashClientSecret(key, secret);

    expect(stored).not.toBe(secret);
    expect(stored).not.toContain(secret);
    expect(stored).not.toContain(secret.slice(0, 16));
    expect(stored).not.toContain(Buffer.from(secret).toString('hex'));
  });

  it('is deterministic under one key', () => {
    const secret = generateClientSecret();

    expect(hashClientSecret(key, secret)).toBe(hashClientSecret(key, secret));
  });

  it('differs under different keys (a stolen table is useless without POSTERN_SECRET)', () => {
    const secret = generateClientSecret();

    expect(hashClientSecret(key, secret)).not.toBe(hashClientSecret(randomBytes(32), secret));
  });

  it('differs for different secrets', () => {
    expect(hashClientSecret(key, 'a'.repeat(43))).not.toBe(hashClientSecret(key, `${'a'.repeat(42)}b`));
  });
});

describe('verifyClientSecret', () => {
  const secret = generateClientSecret();
  const stored = hashClientSecret(key, secret);

  it('accepts the right secret', () => {
    expect(verifyClientSecret(key, stored, secret)).toBe(true);
  });

  it('rejects a wrong secret, one changed character, and the empty string', () => {
    const last = secret.at(-1) === 'A' ? 'B' : 'A';

    expect(verifyClientSecret(key, stored, generateClientSecret())).toBe(false);
    expect(verifyClientSecret(key, stored, secret.slice(0, -1) + last)).toBe(false);
    expect(verifyClientSecret(key, stored, `${secret} `)).toBe(false);
    expect(verifyClientSecret(key, stored, '')).toBe(false);
  });

  it('rejects the right secret under another key', () => {
    expect(verifyClientSecret(randomBytes(32), stored, secret)).toBe(false);
  });

  it('rejects the stored hash itself presented as the secret', () => {
    expect(verifyClientSecret(key, stored, stored)).toBe(false);
  });

  it('never matches a stored value that is not one of its hashes', () => {
    // A plaintext secret left in the column, a truncated hash, an empty column: no match, no throw.
    expect(verifyClientSecret(key, secret, secret)).toBe(false);
    expect(verifyClientSecret(key, stored.slice(0, -4), secret)).toBe(false);
    expect(verifyClientSecret(key, '', '')).toBe(false);
  });

  it('does not throw on a presented value that is not a string', () => {
    expect(verifyClientSecret(key, stored, undefined as unknown as string)).toBe(false);
  });
});
