import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import * as oidc from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { CHROMIUM, LOCALHOST_IS_IPV4, launchChromium, screenshots } from '../support/chromium.ts';
import { baseEnv, expectOk, run } from '../support/cli.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { mailEnv, nextMail } from '../support/mailbox.ts';
import { createNotesClient, discover, startTabSignIn, type TabSignIn } from '../support/relying-party.ts';
import { freePort, startTestServer, type TestServer } from '../support/server.ts';
import { startTestSmtp, type TestSmtp } from '../support/smtp.ts';
import { type AuthenticatorTab, tabWithAuthenticator } from '../support/virtual-authenticator.ts';

// Passkeys with two-step verification in a real browser (Debian's Chromium) with a CDP virtual
// authenticator (review of issue 14, "pk2fa"): a passkey after the password at an app that
// requires MFA, passwordless sign-in counted as MFA, step-up of a password-only session with a
// passkey, and `postern user mfa reset` removing the passkey. The issuer is
// http://localhost:PORT (WebAuthn takes no IP address as RP ID). Screenshots go to
// /tmp/shots-pk2fa for people to look at.
const SHOTS = process.env.POSTERN_PK2FA_SCREENSHOT_DIR ?? '/tmp/shots-pk2fa';
const PERSON = { username: 'grace', email: 'grace@example.com', password: 'grace finds the moth' };

let db: TestDatabase;
let smtp: TestSmtp;
let server: TestServer | undefined;
let env: Record<string, string>;
let browser: Browser;
let notes: oidc.Configuration;
let payroll: oidc.Configuration;
/** The apps' callback: a real listener, as Playwright routes no request reached by a redirect. */
let appServer: http.Server;
let REDIRECT_URI: string;

const running = () => server!;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) return;
  appServer = http.createServer((_req, res) => res.end('back at the app'));
  await new Promise<void>((resolve) => appServer.listen(0, '127.0.0.1', resolve));
  REDIRECT_URI = `http://127.0.0.1:${(appServer.address() as AddressInfo).port}/callback`;
  db = await createTestDatabase();
  smtp = await startTestSmtp();
  const port = await freePort();
  env = { ...mailEnv(smtp), PORT: String(port), POSTERN_ISSUER: `http://localhost:${port}` };
  server = await startTestServer(db, env);
  await server.container.accounts.create({ ...PERSON, profile: { name: 'Grace Hopper' } });
  const notesApp = await createNotesClient(server, REDIRECT_URI);
  const payrollApp = await server.container.clients.create({
    grantTypes: ['authorization_code'],
    redirectUris: [REDIRECT_URI],
    scope: 'openid profile',
    clientId: 'payroll',
    name: 'Payroll',
    firstParty: true,
    requireMfa: true,
  });
  notes = await discover(server.issuer, 'notes', notesApp.secret);
  payroll = await discover(server.issuer, 'payroll', payrollApp.secret);
  browser = await launchChromium([LOCALHOST_IS_IPV4]);
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await smtp?.stop();
  await db?.drop();
  appServer?.close();
});

const shot = screenshots(SHOTS);

/** One tab with a virtual platform authenticator that verifies the user (CDP WebAuthn domain). */
let tab: AuthenticatorTab | undefined;

async function theTab(): Promise<AuthenticatorTab> {
  tab ??= await tabWithAuthenticator(browser);
  return tab;
}

async function typePassword(page: Page): Promise<void> {
  await page.getByLabel('Username or email').fill(PERSON.username);
  await page.getByLabel('Password').fill(PERSON.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

/** Opens an app's authorization request in the tab; it stops at one of our pages. */
const startAppSignIn = (page: Page, config: oidc.Configuration) => startTabSignIn(page, config, REDIRECT_URI);

/** The ID token's claims once the tab is back at the app. */
async function idTokenClaims(page: Page, started: TabSignIn) {
  await expect.poll(() => page.url()).toContain(REDIRECT_URI);
  const tokens = await oidc.authorizationCodeGrant(started.config, new URL(page.url()), {
    pkceCodeVerifier: started.verifier,
    expectedNonce: started.nonce,
    expectedState: started.state,
    idTokenExpected: true,
  });
  return tokens.claims()!;
}

const passkeyButton = (page: Page) => page.getByRole('button', { name: 'Use a passkey' });

/** The passkey as second factor after a password: the app gets amr pwd+hwk+mfa and acr urn:postern:mfa. */
async function expectPasskeyMakesMfa(page: Page, started: TabSignIn): Promise<void> {
  await passkeyButton(page).click();
  const claims = await idTokenClaims(page, started);
  expect(claims.acr).toBe('urn:postern:mfa');
  expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'hwk', 'mfa']));
}

it.skipIf(!existsSync(CHROMIUM))(
  'after adding a passkey, an app that requires MFA asks for it after the password: amr pwd and hwk, acr urn:postern:mfa',
  async () => {
    const { page, context } = await theTab();
    await page.goto(`${running().issuer}/account`);
    await typePassword(page);
    await expect.poll(() => page.url()).toBe(`${running().issuer}/account`);
    await page.getByLabel('Name of the new passkey').fill('Work laptop');
    await page.locator('#passkey_password').fill(PERSON.password);
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain('Your passkey was added.');
    await context.clearCookies();

    // An ordinary app: the password alone, as before (the passkey is not a second factor to it).
    const plain = await startAppSignIn(page, notes);
    await typePassword(page);
    expect((await idTokenClaims(page, plain)).acr).toBe('urn:postern:pwd');
    await context.clearCookies();

    const started = await startAppSignIn(page, payroll);
    await typePassword(page);
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Two-step verification');
    await expect.poll(() => passkeyButton(page).isVisible()).toBe(true);
    await shot(page, 'second-factor-passkey');
    await expectPasskeyMakesMfa(page, started);
    await context.clearCookies();
  },
);

it.skipIf(!existsSync(CHROMIUM))(
  'a passwordless sign-in with the passkey is MFA: the app that requires it gets amr hwk+user+mfa and acr urn:postern:mfa',
  async () => {
    const { page, context } = await theTab();
    const started = await startAppSignIn(page, payroll);
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    const claims = await idTokenClaims(page, started);
    expect(claims.amr).toEqual(['hwk', 'user', 'mfa']);
    expect(claims.acr).toBe('urn:postern:mfa');
    await context.clearCookies();
  },
);

it.skipIf(!existsSync(CHROMIUM))(
  'a session signed in with a password only steps up with the passkey at an app that requires MFA, without a new login',
  async () => {
    const { page, context } = await theTab();
    const first = await startAppSignIn(page, notes);
    await typePassword(page);
    expect((await idTokenClaims(page, first)).acr).toBe('urn:postern:pwd');
    const started = await startAppSignIn(page, payroll);
    await expect.poll(() => passkeyButton(page).isVisible()).toBe(true);
    expect(await page.getByLabel('Password').count()).toBe(0);
    await shot(page, 'step-up-passkey');
    await expectPasskeyMakesMfa(page, started);
    await context.clearCookies();
  },
);

it.skipIf(!existsSync(CHROMIUM))(
  'after `postern user mfa reset` the passkey no longer signs in, and the owner got one mail',
  async () => {
    const { page, problems } = await theTab();
    await running().close();
    server = undefined;
    const reset = await run(['user', 'mfa', 'reset', PERSON.username, '--json'], baseEnv(db, env));
    expectOk(reset);
    expect(JSON.parse(reset.stdout)).toMatchObject({ removed: 1 });
    server = await startTestServer(db, env);
    await nextMail(smtp, PERSON.email, 'Two-step verification was reset');

    await startAppSignIn(page, notes);
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await expect
      .poll(() => page.getByRole('alert').first().textContent())
      .toContain('That passkey could not sign you in.');
    await shot(page, 'after-reset-passkey-refused');
    // Now the password alone signs in at the ordinary app, and the account page lists no passkey.
    await typePassword(page);
    await expect.poll(() => page.url()).toContain(REDIRECT_URI);
    await page.goto(`${running().issuer}/account`);
    await expect.poll(() => page.locator('#passkeys-heading').isVisible()).toBe(true);
    await shot(page, 'after-reset-account');
    expect(await page.getByRole('button', { name: /^Remove/ }).count()).toBe(0);
    expect(problems).toEqual([]);
  },
);
