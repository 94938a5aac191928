import * as oidc from 'openid-client';
import { expect, it } from 'vitest';

import { discover, exchange, newBrowser, signIn } from '../support/relying-party.ts';
import { freePort } from '../support/server.ts';
import { createPublicApp, serversPerTest } from '../support/setup.ts';

// An issuer with a path (https://id.example.com/idp, as Keycloak's /realms/x): the whole app
// lives under it, and every URL it publishes or links to carries it. OIDC Discovery §4: the
// configuration is at the issuer + /.well-known/openid-configuration.

const USER = { username: 'kim', email: 'kim@example.com', password: 'kim has a long passphrase' };

const perTest = serversPerTest();

async function startUnderPath(path: string) {
  const port = await freePort();
  const { server } = await perTest.start({
    PORT: String(port),
    POSTERN_ISSUER: `http://127.0.0.1:${port}${path}`,
    POSTERN_DEMO: 'true',
  });
  await server.container.accounts.create(USER);
  await createPublicApp(server);
  return { server, origin: `http://127.0.0.1:${port}` };
}

it("serves discovery, sign-in, tokens and userinfo under the issuer's path", async () => {
  const { server } = await startUnderPath('/realms/acme');
  const config = await discover(server.issuer, 'app');
  const metadata = config.serverMetadata();
  expect(metadata.issuer).toBe(server.issuer);
  const endpoints = Object.entries(metadata).filter(([name]) => name.endsWith('_endpoint') || name === 'jwks_uri');
  expect(endpoints.length).toBeGreaterThan(3);
  for (const [name, url] of endpoints) expect(url, name).toMatch(new RegExp(`^${server.issuer}/`));

  const browser = newBrowser();
  const tokens = await exchange(config, await signIn(browser, config, USER));
  expect(tokens.claims()!.iss).toBe(server.issuer);
  const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
  expect(userinfo.preferred_username).toBe('kim');
  // Cookies stay under the path: a neighbour on the same host never receives them.
  for (const [name, cookie] of browser.cookies) expect(cookie.path, name).toMatch(/^\/realms\/acme(\/|$)/);
});

it('links its pages and assets under the path, keeps probes at the root, and answers nothing else outside it', async () => {
  const { server, origin } = await startUnderPath('/idp');
  const landing = await (await fetch(`${server.issuer}/`)).text();
  expect(landing).toContain('href="/idp/assets/style.css"');
  expect(landing).toContain('href="/idp/.well-known/openid-configuration"');
  expect(landing).toContain('href="/idp/demo"');
  expect((await fetch(`${server.issuer}/assets/style.css`)).headers.get('content-type')).toMatch(/text\/css/);
  // Popups keep their opener on the flow's paths under the issuer's path too (security-headers.ts).
  expect((await fetch(`${server.issuer}/auth`, { redirect: 'manual' })).headers.get('cross-origin-opener-policy')).toBe(
    'unsafe-none',
  );
  expect((await fetch(`${server.issuer}/`)).headers.get('cross-origin-opener-policy')).toBe('same-origin');
  expect((await fetch(`${server.issuer}`)).status).toBe(200);
  expect(await (await fetch(`${server.issuer}/demo`)).text()).toContain('href="/idp/demo/login"');
  const jwks = await fetch(`${server.issuer}/jwks`);
  expect(jwks.status).toBe(200);

  // The demo app signs in through the same process: its own calls carry the path too.
  const seed = server.container.demoSeed!;
  const browser = newBrowser();
  const login = await browser.get(`${server.issuer}/demo/login`);
  expect(login.url).toMatch(new RegExp(`^${server.issuer}/interaction/`));
  const done = await browser.submit(login, '/login', { username: seed.username, password: seed.password });
  expect(done.url).toMatch(new RegExp(`^${server.issuer}/demo/callback`));
  expect(done.text).toContain('The ID token was verified');

  expect((await fetch(`${origin}/healthz`)).status).toBe(200);
  expect((await fetch(`${origin}/readyz`)).status).toBe(200);
  for (const path of ['/.well-known/openid-configuration', '/jwks', '/auth', '/assets/style.css', '/', '/idpx/jwks']) {
    expect((await fetch(`${origin}${path}`)).status, path).toBe(404);
  }
});
