import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { decodeJwt } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { baseEnv, run } from '../support/cli.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { discover, exchange, newBrowser, REDIRECT_URI, signIn } from '../support/relying-party.ts';
import { startTestServer } from '../support/server.ts';

// Back-channel logout from the command line (issue 10, point 10): the process exits when the
// command is done, so nothing retries in the background. The command waits for each logout
// token, retrying, and says which were delivered and which were not.

const PASSWORD = 'a passphrase long enough for olga';
let db: TestDatabase;
let env: Record<string, string>;
const receivers: Record<string, { server: http.Server; tokens: string[] }> = {};

/** A relying party's back-channel endpoint: `flaky` refuses every first try (503), `dead` every try (500). */
async function receiver(kind: 'flaky' | 'dead'): Promise<string> {
  const tokens: string[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString();
    });
    req.on('end', () => {
      tokens.push(new URLSearchParams(body).get('logout_token') ?? '');
      const accept = kind === 'flaky' && tokens.length % 2 === 0;
      res.writeHead(accept ? 200 : kind === 'flaky' ? 503 : 500).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receivers[kind] = { server, tokens };
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/backchannel-logout`;
}

beforeAll(async () => {
  db = await createTestDatabase();
  // The receivers listen on loopback, which outbound requests may not reach by default.
  const server = await startTestServer(db, { POSTERN_OUTBOUND_PRIVATE_NETWORK: 'true' });
  env = baseEnv(db, { POSTERN_OUTBOUND_PRIVATE_NETWORK: 'true', POSTERN_ISSUER: server.issuer });
  try {
    const { accounts, clients } = server.container;
    const apps: Record<string, string> = {};
    for (const kind of ['flaky', 'dead'] as const) {
      const { secret } = await clients.create({
        clientId: `${kind}-app`,
        grantTypes: ['authorization_code'],
        redirectUris: [REDIRECT_URI],
        scope: 'openid',
        firstParty: true,
        backchannelLogoutUri: await receiver(kind),
      });
      apps[kind] = secret!;
    }
    // Two people, each signed in to both apps in one browser session.
    for (const username of ['olga', 'petra']) {
      await accounts.create({ username, email: `${username}@example.com`, password: PASSWORD });
      const browser = newBrowser();
      for (const kind of ['flaky', 'dead']) {
        const config = await discover(server.issuer, `${kind}-app`, apps[kind]);
        await exchange(config, await signIn(browser, config, { username, password: PASSWORD }, { scope: 'openid' }));
      }
    }
  } finally {
    await server.close(); // the embedded database admits one process at a time
  }
});

afterAll(async () => {
  for (const r of Object.values(receivers)) r.server.close();
  await db?.drop();
});

const warningFor = (clientId: string) =>
  new RegExp(
    `^postern: warning: back-channel logout to "${clientId}" failed after 4 attempt\\(s\\): expected 200 OK .* got: 500`,
  );

it('user logout waits for delivery: retried until accepted, and a failure reported on stderr (--json lists every delivery)', async () => {
  const outcome = await run(['user', 'logout', 'olga', '--json'], env);
  expect(outcome.code).toBe(0); // the logout itself is done
  const result = JSON.parse(outcome.stdout) as {
    sessions: number;
    deliveries: { clientId: string; status: string; attempts: number }[];
  };
  expect(result.sessions).toBe(1);
  expect(result.deliveries).toEqual(
    expect.arrayContaining([
      { clientId: 'flaky-app', status: 'delivered', attempts: 2 },
      expect.objectContaining({ clientId: 'dead-app', status: 'failed', attempts: 4 }),
    ]),
  );
  expect(result.deliveries).toHaveLength(2);
  const lines = outcome.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(warningFor('dead-app'));

  // What the relying parties saw: the same kind of logout token on every attempt, for olga's session.
  expect(receivers.flaky!.tokens).toHaveLength(2);
  expect(receivers.dead!.tokens).toHaveLength(4);
  const claims = decodeJwt(receivers.flaky!.tokens[1]!);
  expect(claims).toMatchObject({
    aud: 'flaky-app',
    events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
  });
  expect(claims.sid).toBeTruthy();
});

it('user set-password reports the same way in text', async () => {
  const outcome = await run(
    ['user', 'set-password', 'petra', '--password-stdin'],
    env,
    'petra picked another passphrase\n',
  );
  expect(outcome.code).toBe(0);
  expect(outcome.stdout.trim()).toBe(
    'password changed for user "petra": 1 session(s) ended, 2 grant(s) revoked, ' +
      'back-channel logout delivered to flaky-app (after 2 attempts), back-channel logout NOT delivered to dead-app',
  );
  expect(outcome.stderr.trimEnd().split('\n')).toEqual([expect.stringMatching(warningFor('dead-app'))]);
  expect(receivers.flaky!.tokens).toHaveLength(4);
  expect(receivers.dead!.tokens).toHaveLength(8);
});
