import { expect, it } from 'vitest';

import { expectOk, expectOneLineError, run, useCliDatabase } from '../support/cli.ts';
import { TEST_SECRET } from '../support/server.ts';

// `postern keys` as an operator uses it, on a real database.
const { env } = useCliDatabase();

interface KeyView {
  kid: string;
  alg: string;
  state: string;
}
const listKeys = async (e: Record<string, string>) =>
  JSON.parse((await run(['keys', 'list', '--json'], e)).stdout) as KeyView[];

it('lists, rotates, revokes and re-encrypts keys', async () => {
  const keys = await listKeys(env);
  expect(keys.map((k) => `${k.alg}:${k.state}`).sort()).toEqual([
    'ES256:current',
    'ES256:next',
    'RS256:current',
    'RS256:next',
  ]);

  // The next key was published a moment ago: a normal rotation waits for caches to learn it.
  expectOneLineError(await run(['keys', 'rotate'], env), /caches may not know it .*--force/);
  const rotated = await run(['keys', 'rotate', '--alg', 'RS256', '--force'], env);
  expectOk(rotated);
  const nextRs = keys.find((k) => k.alg === 'RS256' && k.state === 'next')!.kid;
  expect(rotated.stdout).toContain(`RS256: ${nextRs} now signs`);

  const revoked = await run(['keys', 'revoke', nextRs], env);
  expectOk(revoked);
  expect(revoked.stdout).toMatch(/no longer published, and tokens it signed no longer verify/);
  const after = await listKeys(env);
  expect(after.map((k) => k.kid)).not.toContain(nextRs);
  expect(after.filter((k) => k.alg === 'RS256' && k.state === 'current')).toHaveLength(1);
  expectOneLineError(await run(['keys', 'revoke', 'no-such-kid'], env), /no signing key "no-such-kid"/);

  const newSecret = 'a-brand-new-secret-0123456789-abcdefghijkl';
  const moved = await run(['keys', 'reencrypt', '--old-secret-env', 'OLD_SECRET'], {
    ...env,
    POSTERN_SECRET: newSecret,
    OLD_SECRET: TEST_SECRET,
  });
  expectOk(moved);
  expect(moved.stdout).toMatch(/re-encrypted \d+ key\(s\)/);
  expect((await listKeys({ ...env, POSTERN_SECRET: newSecret })).map((k) => k.kid)).toEqual(after.map((k) => k.kid));
  // The old secret no longer opens the store: one clear line, not a stack.
  expectOneLineError(
    await run(['keys', 'list'], env),
    /POSTERN_SECRET is not the secret this database was set up with/,
  );
  expectOneLineError(
    await run(['keys', 'reencrypt', '--old-secret-env', 'NOPE'], { ...env, POSTERN_SECRET: newSecret }),
    /NOPE is not set/,
    2,
  );
});
