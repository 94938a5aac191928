import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { CHROMIUM, launchChromium } from '../support/chromium.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { html, startSpaOrigin, type Asset, type SpaOrigin } from '../support/spa-origin.ts';

// A single-page app on another site talks to Postern from Debian's Chromium (never a
// downloaded browser): a sign-in popup that must keep its opener, logout with an id_token_hint,
// and oidc-client-ts, a widely used SPA library, run with its defaults.
const USER = { username: 'sam', password: 'correct horse battery staple', email: 'sam@example.com' };
// Navigations on a busy two-core machine: generous, never asserted as timings.
const STEP = { timeout: 20_000 };
// The library's own browser build (a global `oidc`), as an SPA would serve it.
const OIDC_CLIENT_TS = readFileSync(
  path.join(
    path.dirname(createRequire(import.meta.url).resolve('oidc-client-ts/package.json')),
    'dist/browser/oidc-client-ts.min.js',
  ),
);

/** What the test reads in the SPA's pages (the tests compile without the DOM library). */
interface OidcUser {
  access_token: string;
  refresh_token?: string;
  scope?: string;
  profile: Record<string, unknown>;
}
interface SpaWindow {
  open(url: string, target: string, features: string): unknown;
  hadOpener: boolean;
  received: string[];
  userManager: {
    signinPopup(): Promise<OidcUser>;
    signinSilent(): Promise<OidcUser | null>;
    signoutRedirect(args: { state: string }): Promise<void>;
  };
}

let db: TestDatabase;
let server: TestServer;
let spa: SpaOrigin;
let chrome: Browser;

/** The SPA's pages: a plain page for the popup and logout checks, and an app built on oidc-client-ts. */
function spaAssets(path: string): Asset | undefined {
  const settings = {
    authority: server.issuer,
    client_id: 'spa',
    redirect_uri: `${spa.origin}/app/callback`,
    popup_redirect_uri: `${spa.origin}/app/popup-callback`,
    post_logout_redirect_uri: `${spa.origin}/app/signed-out`,
    scope: 'openid profile email offline_access',
  };
  const library = '<script src="/oidc-client-ts.js"></script><script src="/app/settings.js"></script>';
  switch (path) {
    case '/oidc-client-ts.js':
      return { type: 'text/javascript', body: OIDC_CLIENT_TS };
    case '/app/settings.js':
      return { type: 'text/javascript', body: `window.SETTINGS = ${JSON.stringify(settings)};` };
    case '/app':
      return html(`${library}<script>window.userManager = new oidc.UserManager(SETTINGS);</script>`);
    case '/app/popup-callback':
      return html(`${library}<script>new oidc.UserManager(SETTINGS).signinPopupCallback();</script>`);
    case '/app/signed-out':
      return html(`${library}<script>new oidc.UserManager(SETTINGS).signoutRedirectCallback()
        .then((r) => { document.title = 'signed out: ' + r.userState; }, (e) => { document.title = 'error: ' + e.message; });</script>`);
    case '/plain':
      return html(`<title>plain</title><script>window.received = [];
        addEventListener('message', (e) => { if (e.origin === location.origin) received.push(e.data); });</script>`);
    case '/plain/callback':
      // What a library's popup callback does: hand the result to the page that opened the popup.
      return html(`<script>window.hadOpener = window.opener !== null;
        if (window.opener) window.opener.postMessage(location.href, location.origin);</script>`);
    case '/plain/signed-out':
      return html('<title>signed out</title>');
    default:
      return undefined;
  }
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) return;
  db = await createTestDatabase();
  server = await startTestServer(db);
  spa = await startSpaOrigin(spaAssets);
  await server.container.accounts.create(USER);
  await server.container.clients.create({
    clientId: 'spa',
    name: 'Single-page app',
    public: true,
    firstParty: true,
    grantTypes: ['authorization_code', 'refresh_token'],
    redirectUris: [`${spa.origin}/plain/callback`, `${spa.origin}/app/callback`, `${spa.origin}/app/popup-callback`],
    postLogoutRedirectUris: [`${spa.origin}/plain/signed-out`, `${spa.origin}/app/signed-out`],
    scope: 'openid profile email offline_access',
  });
  chrome = await launchChromium();
});

afterAll(async () => {
  await chrome?.close();
  await spa?.close();
  await server?.close();
  await db?.drop();
});

describe.skipIf(!existsSync(CHROMIUM))('an SPA on another site, in Chromium', () => {
  // Each test in a fresh profile: no Postern session leaks from one to the next.
  let context: BrowserContext;
  beforeEach(async () => {
    context = await chrome.newContext();
  });
  afterEach(async () => {
    await context?.close();
  });

  /** Fills the login page in `page` (a popup or a tab) and presses Sign in. */
  async function signInOn(page: Page): Promise<void> {
    await expect.poll(() => page.url(), STEP).toContain('/interaction/');
    await page.getByLabel('Username or email').fill(USER.username);
    await page.getByLabel('Password').fill(USER.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  function pkce() {
    const verifier = randomBytes(32).toString('base64url');
    return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
  }

  it('a sign-in popup keeps window.opener through Postern and back, and logout with a matching hint needs no click', async () => {
    const page = await context.newPage();
    await page.goto(`${spa.origin}/plain`);
    const { verifier, challenge } = pkce();
    const authorize = new URL(`${server.issuer}/auth`);
    authorize.search = new URLSearchParams({
      client_id: 'spa',
      response_type: 'code',
      scope: 'openid profile',
      redirect_uri: `${spa.origin}/plain/callback`,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state: 'popup-state',
      nonce: 'popup-nonce',
    }).toString();

    const popupOpened = page.waitForEvent('popup', STEP);
    await page.evaluate((url) => {
      (globalThis as unknown as SpaWindow).open(url, 'signin', 'popup,width=480,height=640');
    }, authorize.href);
    const popup = await popupOpened;
    await signInOn(popup);
    await expect.poll(() => popup.url(), STEP).toContain(`${spa.origin}/plain/callback?code=`);

    // The callback page still sees the SPA that opened it, and could hand it the code.
    expect(await popup.evaluate(() => (globalThis as unknown as SpaWindow).hadOpener)).toBe(true);
    const received = () => page.evaluate(() => (globalThis as unknown as SpaWindow).received);
    await expect.poll(received, STEP).toHaveLength(1);
    const callback = new URL((await received())[0]!);
    expect(callback.searchParams.get('state')).toBe('popup-state');

    // The SPA redeems the code (from Node here: only the ID token matters for what follows).
    const token = await fetch(`${server.issuer}/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        client_id: 'spa',
        code: callback.searchParams.get('code')!,
        redirect_uri: `${spa.origin}/plain/callback`,
        code_verifier: verifier,
      }),
    });
    expect(token.status).toBe(200);
    const { id_token: idToken } = (await token.json()) as { id_token: string };

    // RP-Initiated Logout with this session's ID token: straight back to the app, with its state.
    const endSession = new URL(`${server.issuer}/session/end`);
    endSession.search = new URLSearchParams({
      id_token_hint: idToken,
      post_logout_redirect_uri: `${spa.origin}/plain/signed-out`,
      state: 'bye',
    }).toString();
    await page.goto(endSession.href);
    await expect.poll(() => page.url(), STEP).toBe(`${spa.origin}/plain/signed-out?state=bye`);

    // And the Postern session really ended: a silent sign-in now needs a login.
    authorize.searchParams.set('prompt', 'none');
    await page.goto(authorize.href);
    await expect.poll(() => page.url(), STEP).toContain('error=login_required');
  });

  it('oidc-client-ts signs in by popup with PKCE over CORS, renews by refresh token, and signs out without a click', async () => {
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(`${spa.origin}/app`);

    // signinPopup: discovery and the token request are cross-origin fetches (CORS). The popup
    // hands its result back through window.opener; this library also falls back on a
    // BroadcastChannel, so the plain popup above is what proves the opener survives.
    const popupOpened = page.waitForEvent('popup', STEP);
    const signedIn = page.evaluate(async () => {
      const user = await (globalThis as unknown as SpaWindow).userManager.signinPopup();
      return {
        profile: user.profile,
        accessToken: user.access_token,
        refreshToken: user.refresh_token,
        scope: user.scope,
      };
    });
    await signInOn(await popupOpened);
    const user = await signedIn;
    expect(user.profile).toMatchObject({
      iss: server.issuer,
      aud: 'spa',
      preferred_username: USER.username,
      email: USER.email,
    });
    expect(user.refreshToken).toBeTruthy();

    // signinSilent with a refresh token: a cross-origin POST to /token, no iframe.
    const renewed = await page.evaluate(async () => {
      const user = await (globalThis as unknown as SpaWindow).userManager.signinSilent();
      return { accessToken: user?.access_token, refreshToken: user?.refresh_token, sub: user?.profile.sub };
    });
    expect(renewed.accessToken).toBeTruthy();
    expect(renewed.accessToken).not.toBe(user.accessToken);
    expect(renewed.refreshToken).not.toBe(user.refreshToken); // rotated (RFC 9700 §4.14.2)
    expect(renewed.sub).toBe(user.profile.sub);

    // signoutRedirect sends the ID token as id_token_hint: Postern signs out without asking,
    // and the app's callback checks the state it gets back.
    await page.evaluate(() => {
      void (globalThis as unknown as SpaWindow).userManager.signoutRedirect({ state: 'where-i-was' });
    });
    await expect.poll(() => page.url(), STEP).toContain(`${spa.origin}/app/signed-out?state=`);
    await expect.poll(() => page.title(), STEP).toBe('signed out: where-i-was');
    expect(problems).toEqual([]);
  });
});
