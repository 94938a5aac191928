import type { Server } from 'node:http';

import express from 'express';
import { auth, requiresAuth } from 'express-openid-connect';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { Browser } from '../support/browser.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { freePort, startTestServer, type TestServer } from '../support/server.ts';

// A server-rendered Express app signs in with Auth0's express-openid-connect, as its README
// sets it up, plus the one setting Postern documents: response_type=code with the client
// secret (the library's default is id_token with form_post; Postern offers code unless a
// client opts in). idpLogout is the app's choice to sign out at Postern too.
const USER = { username: 'erin', password: 'correct horse battery staple', email: 'erin@example.com' };

let db: TestDatabase;
let server: TestServer;
let app: Server;
let appOrigin: string;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db);
  const port = await freePort();
  appOrigin = `http://127.0.0.1:${port}`;
  await server.container.accounts.create({ ...USER, profile: { name: 'Erin Example' } });
  const { secret } = await server.container.clients.create({
    clientId: 'shop',
    name: 'Shop',
    grantTypes: ['authorization_code', 'refresh_token'],
    redirectUris: [`${appOrigin}/callback`],
    postLogoutRedirectUris: [appOrigin, `${appOrigin}/`],
    scope: 'openid profile email',
  });

  const web = express();
  web.use(
    auth({
      issuerBaseURL: server.issuer,
      baseURL: appOrigin,
      clientID: 'shop',
      clientSecret: secret!,
      secret: 'a cookie secret for the test app, long enough',
      authRequired: false,
      idpLogout: true,
      authorizationParams: { response_type: 'code' },
    }),
  );
  web.get('/', (req, res) => {
    res.type('text').send(req.oidc.isAuthenticated() ? 'signed in' : 'signed out');
  });
  web.get('/profile', requiresAuth(), async (req, res) => {
    res.json({ user: req.oidc.user, claims: req.oidc.idTokenClaims, userinfo: await req.oidc.fetchUserInfo() });
  });
  app = await new Promise<Server>((resolve) => {
    const s = web.listen(port, '127.0.0.1', () => resolve(s));
  });
});

afterAll(async () => {
  app?.closeAllConnections();
  await new Promise((resolve) => app?.close(resolve));
  await server?.close();
  await db?.drop();
});

it('express-openid-connect signs in with code + PKCE, reads claims and userinfo, and signs out at Postern', async () => {
  const browser = new Browser([`${server.issuer}/auth?`]);
  // requiresAuth sends the visitor to /login, which redirects to Postern with a PKCE challenge.
  const authorize = new URL((await browser.get(`${appOrigin}/profile`)).url);
  expect(Object.fromEntries(authorize.searchParams)).toMatchObject({
    client_id: 'shop',
    response_type: 'code',
    scope: 'openid profile email',
    code_challenge_method: 'S256',
    redirect_uri: `${appOrigin}/callback`,
  });
  expect(authorize.searchParams.get('nonce')).toBeTruthy();
  browser.stopAt.length = 0;
  const login = await browser.get(authorize.href);
  expect(login.url).toContain(`${server.issuer}/interaction/`);
  let page = await browser.submit(login, '/login', USER);
  // A third-party app: the person allows it once.
  expect(page.text).toContain('Allow access?');
  page = await browser.submit(page, '/confirm');

  // Back at the app, which redeemed the code with its secret and verifier, and shows the person.
  expect(page.url).toBe(`${appOrigin}/profile`);
  const body = JSON.parse(page.text) as Record<'user' | 'claims' | 'userinfo', Record<string, unknown>>;
  expect(body.user).toMatchObject({ preferred_username: 'erin', email: USER.email, name: 'Erin Example' });
  expect(body.claims).toMatchObject({ iss: server.issuer, aud: 'shop', nonce: authorize.searchParams.get('nonce') });
  expect(body.userinfo).toMatchObject({ sub: body.user.sub, email: USER.email });
  expect((await browser.get(`${appOrigin}/`)).text).toBe('signed in');

  // /logout ends the app session and sends the ID token to Postern as id_token_hint: no question,
  // a page that submits itself (a script-less browser presses its one button), then back home.
  const end = await browser.get(`${appOrigin}/logout`);
  expect(end.url).toContain(`${server.issuer}/session/end?`);
  expect(new URL(end.url).searchParams.get('id_token_hint')).toBeTruthy();
  expect(end.text).not.toContain('Sign out?');
  const home = await browser.submit(end, '', { logout: 'yes' });
  expect(home.url).toBe(`${appOrigin}/`);
  expect(home.text).toBe('signed out');

  // The Postern session ended too: the next visit asks for a password again.
  expect((await browser.get(`${appOrigin}/profile`)).text).toContain('autocomplete="current-password"');
});
