import * as oidc from 'openid-client';
import type { Page as Tab } from 'playwright-core';
import { expect } from 'vitest';

import { Browser, type Page } from './browser.ts';
import type { TestServer } from './server.ts';

export const REDIRECT_URI = 'http://127.0.0.1:9/callback';
export const POST_LOGOUT_URI = 'http://127.0.0.1:9/signed-out';

/** A web app as openid-client sees Postern: discovery, then the standard calls. */
export async function discover(issuer: string, clientId: string, secret?: string): Promise<oidc.Configuration> {
  const auth = secret ? oidc.ClientSecretBasic(secret) : oidc.None();
  return oidc.discovery(new URL(issuer), clientId, secret, auth, { execute: [oidc.allowInsecureRequests] });
}

/** "Team Notes", a first-party web app using the code flow; returns its client secret too. */
export function createNotesClient(server: TestServer, redirectUri = REDIRECT_URI) {
  return server.container.clients.create({
    clientId: 'notes',
    name: 'Team Notes',
    grantTypes: ['authorization_code'],
    redirectUris: [redirectUri],
    scope: 'openid profile',
    firstParty: true,
  });
}

export interface Authorization {
  readonly callbackUrl: URL;
  readonly verifier: string;
  readonly state: string;
  readonly nonce: string;
}

export interface StartedAuthorization {
  readonly page: Page;
  readonly verifier: string;
  readonly state: string;
  readonly nonce: string;
}

export async function startAuthorization(
  browser: Browser,
  config: oidc.Configuration,
  params: Record<string, string> = {},
): Promise<StartedAuthorization> {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid profile email',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...params,
  });
  return { page: await browser.get(url.href), verifier, state, nonce };
}

/** Signs in through the real login (and consent) pages and returns where the browser was sent back to. */
export async function signIn(
  browser: Browser,
  config: oidc.Configuration,
  credentials: { username: string; password: string },
  params: Record<string, string> = {},
): Promise<Authorization> {
  const started = await startAuthorization(browser, config, params);
  let page = started.page;
  if (page.url.includes('/interaction/') && page.text.includes('name="password"')) {
    page = await browser.submit(page, '/login', credentials);
  }
  if (page.url.includes('/interaction/') && page.text.includes('/confirm')) {
    page = await browser.submit(page, '/confirm');
  }
  return backAtApp(started, page);
}

/** The page the browser was sent to, as the app's callback of `started`; throws when it is not back at the app. */
export function backAtApp(started: Omit<StartedAuthorization, 'page'>, page: Page): Authorization {
  if (!page.url.startsWith(REDIRECT_URI))
    throw new Error(`sign-in did not come back to the app: ${page.status} ${page.url}\n${page.text.slice(0, 1500)}`);
  return { callbackUrl: new URL(page.url), verifier: started.verifier, state: started.state, nonce: started.nonce };
}

/** Up to the page after the password, at `config` (a second step, consent, or back at the app). */
export async function passwordAt(
  config: oidc.Configuration,
  person: { username: string; password: string },
  browser = newBrowser(),
  params: Record<string, string> = {},
) {
  const started = await startAuthorization(browser, config, params);
  const page = await browser.submit(started.page, '/login', person);
  return { ...started, page, browser };
}

export function exchange(config: oidc.Configuration, auth: Authorization, verifier = auth.verifier) {
  return oidc.authorizationCodeGrant(config, auth.callbackUrl, {
    pkceCodeVerifier: verifier,
    expectedState: auth.state,
    expectedNonce: auth.nonce,
    idTokenExpected: true,
  });
}

export interface TabSignIn {
  readonly config: oidc.Configuration;
  /** The page the request stopped at. */
  readonly loginUrl: string;
  readonly verifier: string;
  readonly nonce: string;
  readonly state: string;
}

/** Opens an app's authorization request (code flow, PKCE) in a real browser tab; it stops at one of our pages. */
export async function startTabSignIn(tab: Tab, config: oidc.Configuration, redirectUri: string): Promise<TabSignIn> {
  const verifier = oidc.randomPKCECodeVerifier();
  const nonce = oidc.randomNonce();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid profile',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
    state,
  });
  await tab.goto(url.href);
  await expect.poll(() => tab.url()).toContain('/interaction/');
  return { config, loginUrl: tab.url(), verifier, nonce, state };
}

export function newBrowser(): Browser {
  return new Browser([REDIRECT_URI, POST_LOGOUT_URI]);
}
