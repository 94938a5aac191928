import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Browser } from '../support/browser.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { REDIRECT_URI } from '../support/relying-party.ts';
import { freePort, startTestServer, type TestServer } from '../support/server.ts';

// Issue 10 §11, OIDC Core §3.1.2.1: the authorization endpoint MUST accept POST. The engine
// allows it only with a SameSite=None session cookie, so it is an opt-in for https issuers
// (POSTERN_AUTHORIZATION_POST). Off, POST /auth is a clear 405, not a 404.

const USER = { username: 'alice', password: 'correct horse battery staple', email: 'alice@example.com' };
let db: TestDatabase;
let plain: TestServer;
let secure: TestServer;
/** Where the https issuer's TLS proxy would send requests: straight to the listener. */
let listener: string;

async function addClientAndUser(server: TestServer) {
  await server.container.clients.create({
    clientId: 'spa',
    public: true,
    grantTypes: ['authorization_code'],
    redirectUris: [REDIRECT_URI],
    scope: 'openid',
    firstParty: true,
  });
}

beforeAll(async () => {
  db = await createTestDatabase();
  plain = await startTestServer(db);
  await plain.container.accounts.create(USER);
  await addClientAndUser(plain);
  const port = await freePort();
  listener = `http://127.0.0.1:${port}`;
  secure = await startTestServer(
    db,
    {
      PORT: String(port),
      POSTERN_ISSUER: `https://127.0.0.1:${port}`,
      POSTERN_TRUST_PROXY: 'true',
      POSTERN_AUTHORIZATION_POST: 'true',
    },
    db.engine === 'pglite' ? { shareDatabaseOf: plain } : {},
  );
});

afterAll(async () => {
  await secure?.close();
  await plain?.close();
  await db?.drop();
});

async function authorizationParams() {
  const verifier = oidc.randomPKCECodeVerifier();
  const params = {
    client_id: 'spa',
    response_type: 'code',
    scope: 'openid',
    redirect_uri: REDIRECT_URI,
    state: oidc.randomState(),
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  };
  return { params, verifier };
}

describe('authorization requests by POST', () => {
  it('are refused with 405 and Allow when the setting is off (the default)', async () => {
    const { params } = await authorizationParams();
    const response = await fetch(`${plain.issuer}/auth`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(params),
      redirect: 'manual',
    });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, HEAD');
    expect(await response.text()).toContain('/auth accepts GET requests only');
  });

  it('work through sign-in when POSTERN_AUTHORIZATION_POST is on, with a SameSite=None session cookie', async () => {
    const browser = new Browser([REDIRECT_URI]);
    // We play the TLS-terminating proxy: https URLs go to the listener, marked as https.
    browser.transport = (url) =>
      url.href.startsWith(secure.issuer) ? new URL(url.href.replace(secure.issuer, listener)) : url;
    browser.headers = { 'x-forwarded-proto': 'https' };
    const { params, verifier } = await authorizationParams();
    const login = await browser.request(`${secure.issuer}/auth`, { method: 'POST', form: params });
    expect(login.status).toBe(200);
    expect(login.url).toContain('/interaction/');
    const back = await browser.submit(login, '/login', USER);
    expect(back.url.startsWith(REDIRECT_URI)).toBe(true);
    const callback = new URL(back.url);
    expect(callback.searchParams.get('state')).toBe(params.state);
    expect(browser.cookies.has('_session')).toBe(true);

    const tokens = await fetch(`${listener}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-proto': 'https' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        client_id: 'spa',
        code: callback.searchParams.get('code')!,
        redirect_uri: REDIRECT_URI,
        code_verifier: verifier,
      }),
    });
    expect(tokens.status).toBe(200);
    expect(await tokens.json()).toHaveProperty('id_token');
  });

  it('the session cookie is SameSite=None; Secure only when the setting is on', async () => {
    const sessionCookie = async (issuer: string, base: string) => {
      const browser = new Browser([REDIRECT_URI]);
      browser.transport = (url) => new URL(url.href.replace(issuer, base));
      browser.headers = { 'x-forwarded-proto': new URL(issuer).protocol.slice(0, -1) };
      const { params } = await authorizationParams();
      const login = await browser.request(`${issuer}/auth?${new URLSearchParams(params)}`);
      const form = /action="([^"]*\/login)"/.exec(login.text)![1]!;
      const csrf = /name="csrf" value="([^"]*)"/.exec(login.text)![1]!;
      const headers: Record<string, string> = {
        'content-type': 'application/x-www-form-urlencoded',
        'x-forwarded-proto': browser.headers['x-forwarded-proto']!,
        cookie: [...browser.cookies].map(([n, c]) => `${n}=${c.value}`).join('; '),
      };
      const posted = await fetch(`${base}${form}`, {
        method: 'POST',
        headers,
        body: new URLSearchParams({ csrf, ...USER }),
        redirect: 'manual',
      });
      const resumed = await fetch(new URL(posted.headers.get('location')!, base).href.replace(issuer, base), {
        headers,
        redirect: 'manual',
      });
      return resumed.headers.getSetCookie().find((c) => c.startsWith('_session='));
    };
    const on = await sessionCookie(secure.issuer, listener);
    expect(on).toMatch(/samesite=none/i);
    expect(on).toMatch(/;\s*secure/i);
    const off = await sessionCookie(plain.issuer, plain.issuer);
    expect(off).toMatch(/samesite=lax/i);
  });
});
