import { expect, it } from 'vitest';

import { expectOk, expectOneLineError, run, useCliDatabase } from '../support/cli.ts';
import { startTestServer } from '../support/server.ts';

// A client secret chosen by the operator reaches Postern without passing through the process
// list or shell history (--secret-stdin), and one that starts with "-" works as --secret=VALUE
// (issue 10, point 9). The token endpoint then proves what was stored is exactly what was given.
const cli = useCliDatabase();
const { env } = cli;

const FROM_STDIN = 'piped-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const DASHED = '-dashed-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const create = (id: string, ...secret: string[]) => [
  'client',
  'create',
  '--id',
  id,
  '--grant-types',
  'client_credentials',
  ...secret,
];

it('refuses --secret-stdin with --secret, with --public, or with nothing on standard input', async () => {
  const [both, isPublic, empty] = await Promise.all([
    run(create('x', '--secret-stdin', `--secret=${FROM_STDIN}`), env, FROM_STDIN),
    run(
      ['client', 'create', '--id', 'x', '--public', '--secret-stdin', '--grant-types', 'authorization_code'],
      env,
      FROM_STDIN,
    ),
    run(create('x', '--secret-stdin'), env, '\n'),
  ]);
  expectOneLineError(both, /use --secret or --secret-stdin, not both/, 2);
  expectOneLineError(isPublic, /use --secret-stdin or --public, not both/, 2);
  expectOneLineError(empty, /--secret-stdin: standard input was empty/, 2);
});

it('takes the secret from standard input silently, and from --secret=VALUE with a warning; both work at the token endpoint', async () => {
  const piped = await run(create('piped', '--secret-stdin'), env, `${FROM_STDIN}\n`);
  expectOk(piped);
  expect(piped.stdout).toMatch(/^created confidential client "piped"/);
  expect(piped.stdout).not.toContain(FROM_STDIN);

  const dashed = await run(create('dashed', `--secret=${DASHED}`), env);
  expect(dashed.code).toBe(0);
  expect(dashed.stderr).toBe(
    'postern: warning: --secret leaves the secret in the process list and shell history; use --secret-stdin\n',
  );
  expect(dashed.stdout).not.toContain(DASHED);

  const server = await startTestServer(cli.database());
  try {
    const token = (id: string, secret: string) =>
      fetch(`${server.issuer}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${id}:${encodeURIComponent(secret)}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: 'grant_type=client_credentials',
      }).then((r) => r.status);
    // The secret is stored as given, without the newline that ended standard input.
    expect(await token('piped', FROM_STDIN)).toBe(200);
    expect(await token('piped', DASHED)).toBe(401);
    expect(await token('dashed', DASHED)).toBe(200);
  } finally {
    await server.close();
  }
});
