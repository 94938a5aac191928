import { generateKeyPairSync, randomBytes, type JsonWebKey } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { decryptPrivateJwk, encryptPrivateJwk } from '../../src/keys/key-encryption.ts';

const key = randomBytes(32);

function privateJwk(type: 'ec' | 'rsa'): JsonWebKey {
  const pair =
    type === 'ec'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...pair.privateKey.export({ format: 'jwk' }), kid: 'kid-1', alg: type === 'ec' ? 'ES256' : 'RS256' };
}

/** The sealed bytes after the version prefix: iv[12] | tag[16] | ciphertext. */
function rawOf(sealed: string): Buffer {
  return Buffer.from(sealed.slice('v1.'.length), 'base64url');
}

function flipByte(sealed: string, index: number): string {
  const raw = rawOf(sealed);
  raw[index] = raw[index]! ^ 0x01;
  return `v1.${raw.toString('base64url')}`;
}

describe.each(['ec', 'rsa'] as const)('private JWK encryption (%s)', (type) => {
  const jwk = privateJwk(type);
  const sealed = encryptPrivateJwk(key, 'kid-1', jwk);

  it('round-trips', () => {
    expect(decryptPrivateJwk(key, 'kid-1', sealed)).toEqual(jwk);
  });

  it('does not reveal the private members', () => {
    const privateMembers = type === 'ec' ? ['d'] : ['d', 'p', 'q', 'dp', 'dq', 'qi'];
    const raw = rawOf(sealed);
    for (const member of privateMembers) {
      const value = jwk[member as keyof JsonWebKey] as string;
      expect(value, member).toBeTypeOf('string');
      expect(sealed).not.toContain(value);
      expect(raw.includes(Buffer.from(value))).toBe(false);
    }
    expect(raw.includes(Buffer.from('"d":'))).toBe(false);
    expect(sealed).not.toContain(Buffer.from(JSON.stringify(jwk)).toString('base64url').slice(0, 20));
  });

  it('uses a fresh IV each time', () => {
    const again = encryptPrivateJwk(key, 'kid-1', jwk);

    expect(again).not.toBe(sealed);
    expect(rawOf(again).subarray(0, 12).equals(rawOf(sealed).subarray(0, 12))).toBe(false);
    expect(decryptPrivateJwk(key, 'kid-1', again)).toEqual(jwk);
  });

  it.each([
    ['the IV', 0],
    ['the tag', 12],
    ['the ciphertext', 28],
    ['the last byte', -1],
  ])('fails when %s is tampered with', (_, index) => {
    const at = index < 0 ? rawOf(sealed).length + index : index;

    expect(() => decryptPrivateJwk(key, 'kid-1', flipByte(sealed, at))).toThrow();
  });

  it('fails when the ciphertext is truncated', () => {
    expect(() => decryptPrivateJwk(key, 'kid-1', sealed.slice(0, -8))).toThrow();
  });

  it('fails under another kid (a ciphertext cannot move to another row)', () => {
    expect(() => decryptPrivateJwk(key, 'kid-2', sealed)).toThrow();
  });

  it('fails under another key', () => {
    expect(() => decryptPrivateJwk(randomBytes(32), 'kid-1', sealed)).toThrow();
  });

  it('refuses an unknown format', () => {
    expect(() => decryptPrivateJwk(key, 'kid-1', `v2.${sealed.slice(3)}`)).toThrow(/unknown encryption format/);
    expect(() => decryptPrivateJwk(key, 'kid-1', JSON.stringify(jwk))).toThrow(/unknown encryption format/);
  });
});
