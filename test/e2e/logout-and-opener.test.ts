import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Browser } from '../support/browser.ts';
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

// RP-Initiated Logout 1.0 §2: confirm unless the id_token_hint is this session's; and the
// Cross-Origin-Opener-Policy of the pages a sign-in popup walks through. These tests are a
// browser without JavaScript; test/browser/spa.test.ts runs the same in Chromium.
const ALICE = { username: 'alice', password: 'correct horse battery staple', email: 'alice@example.com' };
const BOB = { username: 'bob', password: 'another horse battery staple', email: 'bob@example.com' };

let server: TestServer;
let webapp: oidc.Configuration;
let other: oidc.Configuration;
let sidApp: oidc.Configuration;

beforeAll(async () => {
  server = await startServerOnOwnDatabase();
  const { accounts, clients } = server.container;
  await accounts.create(ALICE);
  await accounts.create(BOB);
  const client = (clientId: string) =>
    clients.create({
      clientId,
      name: clientId,
      firstParty: true,
      grantTypes: ['authorization_code'],
      redirectUris: [REDIRECT_URI],
      postLogoutRedirectUris: [POST_LOGOUT_URI],
      scope: 'openid profile',
    });
  webapp = await discover(server.issuer, 'webapp', (await client('webapp')).secret);
  other = await discover(server.issuer, 'other', (await client('other')).secret);
  // Back-channel logout makes the engine put the session's sid in ID tokens (never called here).
  const withSid = await clients.create({
    clientId: 'with-sid',
    name: 'with-sid',
    firstParty: true,
    grantTypes: ['authorization_code'],
    backchannelLogoutUri: 'http://127.0.0.1:9/backchannel',
    redirectUris: [REDIRECT_URI],
    postLogoutRedirectUris: [POST_LOGOUT_URI],
    scope: 'openid profile',
  });
  sidApp = await discover(server.issuer, 'with-sid', withSid.secret);
});

afterAll(async () => {
  await server?.close();
});

async function signedIn(
  config: oidc.Configuration,
  user: typeof ALICE,
  browser = newBrowser(),
): Promise<{ browser: Browser; idToken: string }> {
  const tokens = await exchange(config, await signIn(browser, config, user, { scope: 'openid profile' }));
  return { browser, idToken: tokens.id_token! };
}

const endSession = (config: oidc.Configuration, params: Record<string, string>) =>
  oidc.buildEndSessionUrl(config, { post_logout_redirect_uri: POST_LOGOUT_URI, state: 'bye', ...params }).href;

const isConfirmation = (text: string) =>
  text.includes('Sign out?') && text.includes('No, stay signed in') && !text.includes('sign-out.js');

describe('RP-initiated logout', () => {
  it("with this session's id_token_hint asks nothing: the page submits itself, and lands on post_logout_redirect_uri with state", async () => {
    const { browser, idToken } = await signedIn(webapp, ALICE);
    const page = await browser.get(endSession(webapp, { id_token_hint: idToken }));
    expect(page.status).toBe(200);
    expect(page.text).not.toContain('Sign out?');
    expect(page.text).not.toContain('No, stay signed in');
    // The script comes from our origin (CSP script-src 'self', no inline script) and presses the
    // one button, which also works without JavaScript.
    expect(page.text).toContain('<script src="/assets/sign-out.js" defer></script>');
    expect(page.text).toMatch(/<button[^>]*name="logout" value="yes"[^>]*data-auto-submit/);
    const script = await fetch(`${server.issuer}/assets/sign-out.js`);
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await script.text()).toContain("querySelector('button[data-auto-submit]')?.click()");

    const back = await browser.submit(page, '', { logout: 'yes' });
    expect(back.url).toBe(`${POST_LOGOUT_URI}?state=bye`);
    expect((await startAuthorization(browser, webapp, { prompt: 'none', scope: 'openid profile' })).page.url).toContain(
      'error=login_required',
    );
  });

  it('without a hint asks', async () => {
    const { browser } = await signedIn(webapp, ALICE);
    const page = await browser.get(endSession(webapp, { client_id: 'webapp' }));
    expect(page.status).toBe(200);
    expect(isConfirmation(page.text)).toBe(true);
  });

  it('with the hint of another person asks', async () => {
    const { idToken: alicesToken } = await signedIn(webapp, ALICE);
    const { browser } = await signedIn(webapp, BOB);
    const page = await browser.get(endSession(webapp, { id_token_hint: alicesToken }));
    expect(isConfirmation(page.text)).toBe(true);
  });

  it('with the hint of an app this session never signed in to asks', async () => {
    const { idToken: webappToken } = await signedIn(webapp, ALICE);
    const { browser } = await signedIn(other, ALICE);
    const page = await browser.get(endSession(webapp, { id_token_hint: webappToken }));
    expect(isConfirmation(page.text)).toBe(true);
  });

  it('with the hint of the same person and app from another browser session asks, when the hint carries a sid', async () => {
    const first = await signedIn(sidApp, ALICE);
    expect(decodeJwt(first.idToken).sid).toBeTruthy();
    const { browser } = await signedIn(sidApp, ALICE);
    const page = await browser.get(endSession(sidApp, { id_token_hint: first.idToken }));
    expect(isConfirmation(page.text)).toBe(true);
    // Its own session's hint still needs no question.
    const own = await browser.get(
      endSession(sidApp, { id_token_hint: (await signedIn(sidApp, ALICE, browser)).idToken }),
    );
    expect(own.text).toContain('sign-out.js');
  });

  it('answering "No, stay signed in" on the confirmation keeps the Postern session', async () => {
    const { browser } = await signedIn(webapp, ALICE);
    const page = await browser.get(endSession(webapp, { client_id: 'webapp' }));
    const back = await browser.submit(page, '');
    expect(back.url).toBe(`${POST_LOGOUT_URI}?state=bye`);
    // Signed out of webapp only: another app still signs in silently.
    expect((await startAuthorization(browser, other, { prompt: 'none', scope: 'openid profile' })).page.url).toContain(
      'code=',
    );
  });
});

describe('Cross-Origin-Opener-Policy', () => {
  const coop = async (url: string, init: RequestInit = {}) => {
    const response = await fetch(url, { redirect: 'manual', headers: { accept: 'text/html' }, ...init });
    await response.arrayBuffer();
    return response.headers.get('cross-origin-opener-policy');
  };

  it('is unsafe-none on every response of the sign-in and sign-out flow, redirects included, so a popup keeps its opener', async () => {
    const browser = newBrowser();
    const started = await startAuthorization(browser, webapp, { scope: 'openid' });
    expect(started.page.url).toContain('/interaction/');
    expect(started.page.headers.get('cross-origin-opener-policy')).toBe('unsafe-none');
    const authorize = oidc.buildAuthorizationUrl(webapp, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid',
      code_challenge: 'x'.repeat(43),
      code_challenge_method: 'S256',
    });
    expect(await coop(authorize.href)).toBe('unsafe-none'); // the 303 to the login page
    expect(await coop(`${server.issuer}/auth/some-uid`)).toBe('unsafe-none'); // where a login resumes, then redirects to the app
    expect(await coop(endSession(webapp, { client_id: 'webapp' }))).toBe('unsafe-none');
    expect(await coop(`${server.issuer}/session/end/success`)).toBe('unsafe-none');
  });

  it('stays same-origin everywhere else', async () => {
    for (const path of [
      '/',
      '/.well-known/openid-configuration',
      '/jwks',
      '/healthz',
      '/assets/style.css',
      '/authorize',
      '/interactions',
      '/nothing-here',
    ]) {
      expect([path, await coop(`${server.issuer}${path}`)]).toEqual([path, 'same-origin']);
    }
  });
});
