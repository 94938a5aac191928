import { describe, expect, it } from 'vitest';

import { createPasswordHasher } from '../../src/accounts/password-hasher.ts';

const DEFAULTS = { memoryKiB: 19456, iterations: 2, parallelism: 1 };
const PASSWORD = 'glacier lantern orbit pickle 42';

/** The argon2 PHC string as { algorithm, version, params }; the library orders params as it likes. */
function parse(hash: string): { algorithm: string; version: string; params: Record<string, string> } {
  const [, algorithm, version, params] = hash.split('$');
  return {
    algorithm: algorithm ?? '',
    version: version ?? '',
    params: Object.fromEntries((params ?? '').split(',').map((kv) => kv.split('=') as [string, string])),
  };
}

describe('password hasher', () => {
  const hasher = createPasswordHasher(DEFAULTS);

  it('makes argon2id hashes with m=19456, t=2, p=1 by default', async () => {
    const hash = await hasher.hash(PASSWORD);

    expect(parse(hash)).toEqual({ algorithm: 'argon2id', version: 'v=19', params: { m: '19456', t: '2', p: '1' } });
    expect(hash).not.toContain(PASSWORD);
  });

  it('salts every hash', async () => {
    expect(await hasher.hash(PASSWORD)).not.toBe(await hasher.hash(PASSWORD));
  });

  it('verifies the right password and not a wrong one', async () => {
    const hash = await hasher.hash(PASSWORD);

    expect(await hasher.verify(hash, PASSWORD)).toEqual({ ok: true, needsRehash: false });
    expect(await hasher.verify(hash, `${PASSWORD} `)).toEqual({ ok: false, needsRehash: false });
    expect(await hasher.verify(hash, '')).toEqual({ ok: false, needsRehash: false });
  });

  it('asks for a rehash when the hash was made with other parameters', async () => {
    const weaker = createPasswordHasher({ memoryKiB: 8192, iterations: 1, parallelism: 1 });
    const old = await weaker.hash(PASSWORD);

    expect(parse(old).params).toEqual({ m: '8192', t: '1', p: '1' });
    expect(await hasher.verify(old, PASSWORD)).toEqual({ ok: true, needsRehash: true });
    expect(await weaker.verify(old, PASSWORD)).toEqual({ ok: true, needsRehash: false });
  });

  it('does not ask for a rehash on a wrong password', async () => {
    const old = await createPasswordHasher({ memoryKiB: 8192, iterations: 1, parallelism: 1 }).hash(PASSWORD);

    expect(await hasher.verify(old, 'not the password')).toEqual({ ok: false, needsRehash: false });
  });

  it('fails closed on a stored value that is not an argon2 hash', async () => {
    expect(await hasher.verify('not-a-hash', PASSWORD)).toEqual({ ok: false, needsRehash: false });
    expect(await hasher.verify(PASSWORD, PASSWORD)).toEqual({ ok: false, needsRehash: false });
  });

  it('spends a verification on an unknown account without throwing', async () => {
    await expect(hasher.verifyDummy(PASSWORD)).resolves.toBeUndefined();
  });
});
