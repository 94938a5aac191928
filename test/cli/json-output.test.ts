import { expect, it } from 'vitest';

import { expectOk, run, useCliDatabase } from '../support/cli.ts';
import { TEST_SECRET } from '../support/server.ts';

// `--json` on every command that prints a result (all but `serve`), on a real database: scripts
// can read what a change did, not only what a listing shows.
const database = useCliDatabase();

async function json(args: readonly string[], e = database.env, input?: string): Promise<unknown> {
  const outcome = await run([...args, '--json'], e, input);
  expectOk(outcome);
  return JSON.parse(outcome.stdout);
}

it('prints what unlock, disable, enable and set-password did, as JSON', { timeout: 240_000 }, async () => {
  await json([...'user create --username alice --email alice@example.com --password'.split(' '), 'a long passphrase']);
  expect(await json(['user', 'unlock', 'alice'])).toEqual({
    account: expect.objectContaining({ username: 'alice' }),
    cleared: 0,
  });
  expect(await json(['user', 'disable', 'alice'])).toMatchObject({
    account: { username: 'alice', disabled: true },
    revoked: { sessions: 0, grants: 0, deliveries: [] },
  });
  expect(await json(['user', 'enable', 'alice'])).toMatchObject({ account: { disabled: false } });
  const changed = await json(
    ['user', 'set-password', 'alice', '--password-stdin'],
    database.env,
    'another long passphrase\n',
  );
  expect(changed).toMatchObject({ account: { username: 'alice' }, revoked: { sessions: 0, grants: 0 } });
  expect(JSON.stringify(changed)).not.toMatch(/passphrase|argon|hash/i);
});

it('prints what delete, revoke and reencrypt did, as JSON', { timeout: 240_000 }, async () => {
  await json(['client', 'create', '--id', 'svc', '--grant-types', 'client_credentials']);
  await json(['resource', 'create', '--id', 'https://api.example.com', '--scope', 'read']);
  expect(await json(['client', 'delete', 'svc'])).toEqual({ deleted: 'svc' });
  expect(await json(['resource', 'delete', 'https://api.example.com'])).toEqual({ deleted: 'https://api.example.com' });

  const keys = (await json(['keys', 'list'])) as { kid: string; state: string }[];
  const next = keys.find((k) => k.state === 'next')!;
  const revoked = await json(['keys', 'revoke', next.kid]);
  expect(revoked).toEqual({ revoked: expect.objectContaining({ kid: next.kid, state: 'next' }), activated: null });
  expect(JSON.stringify(revoked)).not.toMatch(/private/i);

  const moved = { ...database.env, POSTERN_SECRET: 'a-new-secret-of-at-least-thirty-two-characters', OLD: TEST_SECRET };
  expect(await json(['keys', 'reencrypt', '--old-secret-env', 'OLD'], moved)).toEqual({
    reencrypted: expect.any(Number),
    already: 0,
  });
});
