import { createRemoteJWKSet, jwtVerify } from 'jose';
import type { Kysely } from 'kysely';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Database } from '../../src/db/tables.ts';
import { startServerOnOwnDatabase } from '../support/setup.ts';
import {
  discover,
  exchange,
  newBrowser,
  POST_LOGOUT_URI,
  REDIRECT_URI,
  signIn,
  startAuthorization,
} from '../support/relying-party.ts';
import type { TestServer } from '../support/server.ts';

const USER = { username: 'alice', password: 'correct horse battery staple', email: 'Alice@Example.com' };

let server: TestServer;
let secret: string;
let config: oidc.Configuration;

beforeAll(async () => {
  server = await startServerOnOwnDatabase();
  const { accounts, clients } = server.container;
  await accounts.create({
    ...USER,
    profile: { name: 'Alice Liddell', givenName: 'Alice', familyName: 'Liddell' },
    roles: ['admin'],
  });
  const created = await clients.create({
    clientId: 'webapp',
    name: 'Web App',
    grantTypes: ['authorization_code', 'refresh_token'],
    redirectUris: [REDIRECT_URI],
    postLogoutRedirectUris: [POST_LOGOUT_URI],
    scope: 'openid profile email roles offline_access',
  });
  secret = created.secret!;
  config = await discover(server.issuer, 'webapp', secret);
});

afterAll(async () => {
  await server?.close();
});

describe('authorization code + PKCE, as a web app does it', () => {
  it('signs in, validates an RS256 ID token, calls userinfo, refreshes and logs out', async () => {
    const browser = newBrowser();
    const auth = await signIn(browser, config, USER, {
      scope: 'openid profile email roles offline_access',
      prompt: 'consent',
    });
    const tokens = await exchange(config, auth);

    // The ID token verifies against the published keys, with RS256 (OIDC Core §15.1).
    const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
    const { payload, protectedHeader } = await jwtVerify(tokens.id_token!, jwks, {
      issuer: server.issuer,
      audience: 'webapp',
    });
    expect(protectedHeader.alg).toBe('RS256');
    expect(payload.nonce).toBe(auth.nonce);
    const claims = tokens.claims()!;
    expect(claims.sub).toMatch(/^[0-9a-f-]{36}$/); // opaque, never the username
    expect(claims.preferred_username).toBe('alice');

    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
    expect(userinfo).toMatchObject({
      sub: claims.sub,
      name: 'Alice Liddell',
      given_name: 'Alice',
      family_name: 'Liddell',
      preferred_username: 'alice',
      email: USER.email,
      email_verified: false,
      roles: ['admin'],
    });

    expect(tokens.refresh_token).toBeTruthy();
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.access_token).not.toBe(tokens.access_token);
    expect((await oidc.fetchUserInfo(config, refreshed.access_token, claims.sub)).sub).toBe(claims.sub);

    // RP-initiated logout with this session's ID token: no question, a page that submits itself
    // (POST with the engine's xsrf token), then back to the app.
    const endSession = oidc.buildEndSessionUrl(config, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: POST_LOGOUT_URI,
      state: 'bye',
    });
    const confirm = await browser.get(endSession.href);
    expect(confirm.status).toBe(200);
    expect(confirm.text).toContain('Signing you out');
    const back = await browser.submit(confirm, '', { logout: 'yes' });
    expect(back.url).toBe(`${POST_LOGOUT_URI}?state=bye`);

    // The browser session is gone: a silent request now needs a login.
    const silent = await startAuthorization(browser, config, { prompt: 'none' });
    expect(silent.page.url).toContain('error=login_required');
  });

  it('releases claims by scope only', async () => {
    const tokens = await exchange(config, await signIn(newBrowser(), config, USER, { scope: 'openid' }));
    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
    expect(Object.keys(userinfo)).toEqual(['sub']);
  });

  it('skips consent the second time the same scopes are asked', async () => {
    const browser = newBrowser();
    await signIn(browser, config, USER);
    const again = await startAuthorization(browser, config);
    expect(again.page.url.startsWith(REDIRECT_URI)).toBe(true);
  });
});

describe('refusals', () => {
  async function loginPage() {
    const browser = newBrowser();
    const { page } = await startAuthorization(browser, config);
    expect(page.status).toBe(200);
    expect(page.text).toContain('autocomplete="current-password"');
    return { browser, page };
  }

  /** The page minus what legitimately differs per attempt (interaction id, CSRF token, echoed username). */
  const normalise = (html: string, username: string) =>
    html
      .replace(/\/interaction\/[A-Za-z0-9_-]+/g, '/interaction/UID')
      .replace(/name="csrf" value="[^"]*"/g, 'name="csrf" value="CSRF"')
      .replaceAll(`value="${username}"`, 'value="USERNAME"');

  it('a wrong password and an unknown user get the same answer', async () => {
    const wrong = await loginPage();
    const wrongAnswer = await wrong.browser.submit(wrong.page, '/login', {
      username: 'alice',
      password: 'not the password',
    });
    const unknown = await loginPage();
    const unknownAnswer = await unknown.browser.submit(unknown.page, '/login', {
      username: 'mallory',
      password: 'not the password',
    });

    expect(wrongAnswer.status).toBe(401);
    expect(wrongAnswer.url).toContain('/interaction/');
    expect(wrongAnswer.text).toContain('The username or password is incorrect.');
    expect(unknownAnswer.status).toBe(wrongAnswer.status);
    expect(normalise(unknownAnswer.text, 'mallory')).toBe(normalise(wrongAnswer.text, 'alice'));
  });

  it('a disabled account gets the same answer too, even with the right password', async () => {
    const { accounts } = server.container;
    await accounts.create({ username: 'bob', email: 'bob@example.com', password: 'another good passphrase' });
    await accounts.setDisabled('bob', true);
    const { browser, page } = await loginPage();
    const answer = await browser.submit(page, '/login', { username: 'bob', password: 'another good passphrase' });
    expect(answer.status).toBe(401);
    expect(answer.text).toContain('The username or password is incorrect.');
  });

  it('a login form posted without its CSRF token is refused', async () => {
    const { browser, page } = await loginPage();
    const answer = await browser.submit(page, '/login', { ...USER, csrf: 'forged' });
    expect(answer.status).toBe(403);
    expect(answer.url).toContain('/interaction/');
  });

  it('a sign-in page under another interaction id, or a form that is not a form, gets a readable error page', async () => {
    const { browser, page } = await loginPage();
    const other = await browser.get(page.url.replace(/\/interaction\/[^/?]+/, '/interaction/not-this-one'));
    expect(other.status).toBe(400);
    expect(other.text).toContain('This sign-in page has expired');
    expect(other.text).toContain('<code>session_not_found</code>');
    const json = await browser.request(new URL(`${new URL(page.url).pathname}/login`, page.url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
    });
    expect(json.status).toBe(415);
    expect(json.text).toContain('expected a form submission');
  });

  it('login pages carry strict security headers', async () => {
    const { page } = await loginPage();
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
  });

  it('an unregistered redirect_uri gets an error page and no redirect', async () => {
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: 'http://127.0.0.1:9/evil',
      scope: 'openid',
      code_challenge: 'x'.repeat(43),
      code_challenge_method: 'S256',
    });
    const response = await fetch(url, { redirect: 'manual', headers: { accept: 'text/html' } });
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
    const html = await response.text();
    expect(html).toContain('This sign-in link is not valid');
    expect(html).not.toContain('/evil');
  });

  it('abort is a POST and returns access_denied to the app', async () => {
    const { browser, page } = await loginPage();
    expect(page.text).toMatch(/<form method="post" action="\/interaction\/[^"]+\/abort">/);
    const back = await browser.submit(page, '/abort');
    expect(new URL(back.url).searchParams.get('error')).toBe('access_denied');
  });

  it('a PKCE verifier that does not match gets invalid_grant', async () => {
    const auth = await signIn(newBrowser(), config, USER);
    await expect(exchange(config, auth, oidc.randomPKCECodeVerifier())).rejects.toMatchObject({
      error: 'invalid_grant',
    });
  });

  it('a replayed code gets invalid_grant and revokes the tokens of the first exchange', async () => {
    const auth = await signIn(newBrowser(), config, USER);
    const first = await exchange(config, auth);
    const sub = first.claims()!.sub;
    expect((await oidc.fetchUserInfo(config, first.access_token, sub)).sub).toBe(sub);
    await expect(exchange(config, auth)).rejects.toMatchObject({ error: 'invalid_grant' });
    // RFC 6749 §4.1.2: the tokens issued from that code are revoked.
    await expect(oidc.fetchUserInfo(config, first.access_token, sub)).rejects.toMatchObject({ status: 401 });
  });

  it('the database holds only a keyed hash of the client secret', async () => {
    const raw = await (server.container.db.db as Kysely<Database>)
      .selectFrom('clients')
      .selectAll()
      .where('client_id', '=', 'webapp')
      .executeTakeFirstOrThrow();
    expect(raw.secret_hash).toMatch(/^hmac-sha256:v1:[A-Za-z0-9_-]{43}$/);
    expect(JSON.stringify(raw)).not.toContain(secret);
    expect(secret.length).toBeGreaterThanOrEqual(43); // 256 random bits
  });

  it('a wrong client secret is refused with invalid_client', async () => {
    const wrong = await discover(server.issuer, 'webapp', 'x'.repeat(43));
    const auth = await signIn(newBrowser(), config, USER);
    // RFC 6749 §5.2: 401 with a WWW-Authenticate challenge for Basic authentication.
    await expect(exchange(wrong, auth)).rejects.toMatchObject({
      status: 401,
      cause: [{ scheme: 'basic', parameters: { error: 'invalid_client' } }],
    });
  });

  it('every protocol response advertises only S256, and code plus the per-client id_token opt-in', () => {
    const metadata = config.serverMetadata();
    expect(metadata.code_challenge_methods_supported).toEqual(['S256']);
    // id_token only for clients registered with it, by form_post (test/e2e/server-side-apps.test.ts).
    expect(metadata.response_types_supported).toEqual(['code', 'id_token']);
  });
});

describe('client kinds', () => {
  it('a public client (no secret) signs in with PKCE', async () => {
    await server.container.clients.create({
      clientId: 'spa',
      public: true,
      grantTypes: ['authorization_code'],
      redirectUris: [REDIRECT_URI],
    });
    const spa = await discover(server.issuer, 'spa');
    const tokens = await exchange(spa, await signIn(newBrowser(), spa, USER));
    expect(tokens.claims()!.aud).toBe('spa');
  });

  it('a client registered for client_secret_post authenticates in the body', async () => {
    const { secret: postSecret } = await server.container.clients.create({
      clientId: 'poster',
      authMethod: 'client_secret_post',
      grantTypes: ['authorization_code'],
      redirectUris: [REDIRECT_URI],
    });
    const poster = await oidc.discovery(
      new URL(server.issuer),
      'poster',
      postSecret,
      oidc.ClientSecretPost(postSecret),
      { execute: [oidc.allowInsecureRequests] },
    );
    const tokens = await exchange(poster, await signIn(newBrowser(), poster, USER));
    expect(tokens.access_token).toBeTruthy();
  });

  it('PKCE is required, for confidential clients too', async () => {
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT_URI, scope: 'openid', state: 's' });
    const page = await newBrowser().get(url.href);
    const back = new URL(page.url);
    expect(back.origin + back.pathname).toBe(REDIRECT_URI);
    expect(back.searchParams.get('error')).toBe('invalid_request');
    expect(back.searchParams.get('error_description')).toMatch(/PKCE/);
  });
});
