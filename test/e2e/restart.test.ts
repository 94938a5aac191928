import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { discover, exchange, newBrowser, REDIRECT_URI, signIn } from '../support/relying-party.ts';
import { baseEnv, run } from '../support/cli.ts';
import { freePort, startTestServer, TEST_SECRET, type TestServer } from '../support/server.ts';

const USER = { username: 'carol', email: 'carol@example.com', password: 'a long and unusual passphrase' };
let db: TestDatabase;
let server: TestServer | undefined;

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await server?.close();
  await db?.drop();
});

it('a new instance on the same database keeps the keys, the clients and the refresh tokens', async () => {
  const port = String(await freePort());
  server = await startTestServer(db, { PORT: port });
  await server.container.accounts.create(USER);
  const { secret } = await server.container.clients.create({
    clientId: 'survivor',
    grantTypes: ['authorization_code', 'refresh_token'],
    redirectUris: [REDIRECT_URI],
  });
  let config = await discover(server.issuer, 'survivor', secret);
  const browser = newBrowser();
  const tokens = await exchange(
    config,
    await signIn(browser, config, USER, { scope: 'openid offline_access', prompt: 'consent' }),
  );
  const jwksBefore = await (await fetch(`${server.issuer}/jwks`)).json();
  await server.close();

  server = await startTestServer(db, { PORT: port });
  config = await discover(server.issuer, 'survivor', secret);
  const jwksAfter = await (await fetch(`${server.issuer}/jwks`)).json();
  expect(jwksAfter).toEqual(jwksBefore);

  // The ID token signed by the first instance verifies against the second one's JWKS.
  const jwks = createRemoteJWKSet(new URL(`${server.issuer}/jwks`));
  await expect(
    jwtVerify(tokens.id_token!, jwks, { issuer: server.issuer, audience: 'survivor' }),
  ).resolves.toBeTruthy();

  const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
  const userinfo = await oidc.fetchUserInfo(config, refreshed.access_token, tokens.claims()!.sub);
  expect(userinfo.sub).toBe(tokens.claims()!.sub);
  await server.close();

  // A new POSTERN_SECRET, moved to with `postern keys reencrypt`: keys, client secrets and tokens all survive.
  const newSecret = 'the-next-secret-0123456789-0123456789-xyz';
  const moved = await run(
    ['keys', 'reencrypt', '--old-secret-env', 'OLD'],
    baseEnv(db, { POSTERN_SECRET: newSecret, OLD: TEST_SECRET }),
  );
  expect(moved.code).toBe(0);
  server = await startTestServer(db, { PORT: port, POSTERN_SECRET: newSecret });
  config = await discover(server.issuer, 'survivor', secret);
  expect(await (await fetch(`${server.issuer}/jwks`)).json()).toEqual(jwksBefore);
  const again = await oidc.refreshTokenGrant(config, refreshed.refresh_token ?? tokens.refresh_token!);
  expect((await oidc.fetchUserInfo(config, again.access_token, tokens.claims()!.sub)).sub).toBe(tokens.claims()!.sub);
  // The browser's session (stored under the keyed hash of its cookie) survives both: a silent
  // sign-in (prompt=none) comes back with a code, and the code works.
  const silent = await signIn(browser, config, USER, { scope: 'openid', prompt: 'none' });
  expect(silent.callbackUrl.searchParams.get('error')).toBeNull();
  expect((await exchange(config, silent)).claims()!.sub).toBe(tokens.claims()!.sub);
});
