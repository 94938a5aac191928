import * as oidc from 'openid-client';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';

import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { discover, exchange, newBrowser, REDIRECT_URI, signIn } from '../support/relying-party.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

// Idle and absolute refresh-token lifetimes. The clock is faked for the whole process (Date
// only: timers and I/O run for real), so the protocol engine and Postern see the same time.

const PASSWORD = 'tim keeps a long passphrase';
let db: TestDatabase;
let server: TestServer;
let app: oidc.Configuration;
const advance = (seconds: number) => vi.setSystemTime(Date.now() + seconds * 1000);

beforeAll(async () => {
  vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
  db = await createTestDatabase();
  server = await startTestServer(db);
  await server.container.accounts.create({ username: 'tim', email: 'tim@example.com', password: PASSWORD });
  const { secret } = await server.container.clients.create({
    clientId: 'short',
    grantTypes: ['authorization_code', 'refresh_token'],
    redirectUris: [REDIRECT_URI],
    scope: 'openid offline_access',
    refreshIdleSeconds: 120,
    refreshAbsoluteSeconds: 300,
    firstParty: true,
  });
  app = await discover(server.issuer, 'short', secret);
});

afterAll(async () => {
  await server?.close();
  await db?.drop();
  vi.useRealTimers();
});

const signedIn = async () =>
  (
    await exchange(
      app,
      await signIn(
        newBrowser(),
        app,
        { username: 'tim', password: PASSWORD },
        { scope: 'openid offline_access', prompt: 'consent' },
      ),
    )
  ).refresh_token!;
const works = (token: string) =>
  oidc.refreshTokenGrant(app, token).then(
    () => true,
    () => false,
  );

it('a refresh token unused for longer than the idle lifetime is refused', async () => {
  const token = await signedIn();
  advance(121);
  await expect(oidc.refreshTokenGrant(app, token)).rejects.toMatchObject({ error: 'invalid_grant' });
});

it('each use renews the idle window, but nothing outlives the absolute lifetime from sign-in', async () => {
  let token = await signedIn();
  for (const step of [100, 100, 90]) {
    advance(step);
    const next = await oidc.refreshTokenGrant(app, token);
    token = next.refresh_token!;
    expect(next.access_token).toBeTruthy();
  }
  advance(11); // 301 s after the sign-in, though used 11 s ago
  expect(await works(token)).toBe(false);
});
