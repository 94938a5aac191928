import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { sql } from 'kysely';
import * as oidc from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { CHROMIUM, LOCALHOST_IS_IPV4, launchChromium, screenshots } from '../support/chromium.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { createNotesClient, discover, startTabSignIn } from '../support/relying-party.ts';
import { freePort, startTestServer, type TestServer } from '../support/server.ts';
import { startTestSmtp, waitUntil, type TestSmtp } from '../support/smtp.ts';
import { tabWithAuthenticator } from '../support/virtual-authenticator.ts';

// Passkeys in a real browser (Debian's Chromium) with a CDP virtual authenticator, which keeps
// discoverable credentials and verifies the user as a platform authenticator would. The
// issuer is http://localhost:PORT: WebAuthn takes a domain as RP ID, never an IP address, and
// localhost is a secure context. Screenshots go to /tmp/shots-passkey for people to look at.
const SHOTS = process.env.POSTERN_PASSKEY_SCREENSHOT_DIR ?? '/tmp/shots-passkey';
const PERSON = { username: 'ada', email: 'ada@example.com', password: 'ada lovelace computes' };

let db: TestDatabase;
let smtp: TestSmtp;
let server: TestServer;
let browser: Browser;
let app: oidc.Configuration;
let accountId: string;
/** The app's callback: a real listener, as Playwright routes no request reached by a redirect. */
let appServer: http.Server;
let REDIRECT_URI: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) return;
  appServer = http.createServer((_req, res) => res.end('back at the app'));
  await new Promise<void>((resolve) => appServer.listen(0, '127.0.0.1', resolve));
  REDIRECT_URI = `http://127.0.0.1:${(appServer.address() as AddressInfo).port}/callback`;
  db = await createTestDatabase();
  smtp = await startTestSmtp();
  const port = await freePort();
  server = await startTestServer(db, {
    PORT: String(port),
    POSTERN_ISSUER: `http://localhost:${port}`,
    POSTERN_SMTP_URL: smtp.url,
    POSTERN_MAIL_FROM: 'Postern <no-reply@example.com>',
  });
  accountId = (await server.container.accounts.create({ ...PERSON, profile: { name: 'Ada Lovelace' } })).id;
  const { secret } = await createNotesClient(server, REDIRECT_URI);
  app = await discover(server.issuer, 'notes', secret);
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

async function signInWithPasswordToAccountPage(page: Page): Promise<void> {
  await page.goto(`${server.issuer}/account`);
  await expect.poll(() => page.url()).toContain('/interaction/');
  await page.getByLabel('Username or email').fill(PERSON.username);
  await page.getByLabel('Password').fill(PERSON.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await expect.poll(() => page.url()).toBe(`${server.issuer}/account`);
}

async function addPasskey(page: Page, name: string): Promise<void> {
  await page.getByLabel('Name of the new passkey').fill(name);
  await page.locator('#passkey_password').fill(PERSON.password);
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  await expect.poll(() => page.getByRole('status').textContent()).toContain('Your passkey was added.');
}

/** Opens the app's authorization request in the tab; it stops on the login page. */
const startAppSignIn = (page: Page) => startTabSignIn(page, app, REDIRECT_URI);

/** The amr of the account's authorization codes for a client, as the engine stored them. */
async function codeAmr(clientId: string): Promise<unknown[]> {
  const { rows } = await sql<{ amr: unknown }>`
    select payload->'amr' as amr from oidc_payloads
    where kind = 'AuthorizationCode' and payload->>'accountId' = ${accountId} and payload->>'clientId' = ${clientId}`.execute(
    server.container.db.db,
  );
  return rows.map((r) => r.amr);
}

/** Why passkeys were refused, newest first (audit events are written in the background). */
async function refusals(): Promise<{ reason: unknown; detail: unknown }[]> {
  await server.container.audit.flush();
  const events = await server.container.audit.query({ type: 'passkey.refused', limit: 100 });
  return events.map((e) => ({ reason: e.details.reason, detail: e.details.detail }));
}

const count = (list: { reason: unknown }[], reason: string) => list.filter((r) => r.reason === reason).length;

/** A tab whose authenticator holds a passkey of PERSON's, signed out again. */
async function tabWithPasskey(name: string) {
  const tab = await tabWithAuthenticator(browser);
  await signInWithPasswordToAccountPage(tab.page);
  await addPasskey(tab.page, name);
  await tab.context.clearCookies();
  return tab;
}

interface PasskeyBrowser {
  startAuthentication(options: { optionsJSON: unknown }): Promise<unknown>;
}

it.skipIf(!existsSync(CHROMIUM))(
  'a person adds a passkey on the account page, signs in to an app with it alone, removes it, and it no longer signs in',
  async () => {
    const { context, page, problems, held } = await tabWithAuthenticator(browser);
    await signInWithPasswordToAccountPage(page);
    await expect.poll(() => page.getByRole('heading', { name: 'Passkeys' }).isVisible()).toBe(true);
    await shot(page, 'account-no-passkey');
    // A mistyped password is refused before the authenticator is asked: it holds no passkey we
    // do not know (which the sign-in below could otherwise be offered).
    await page.getByLabel('Name of the new passkey').fill('Test laptop');
    await page.locator('#passkey_password').fill('not my password');
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await expect.poll(() => page.locator('#error-summary').textContent()).toContain('the password is not correct');
    await shot(page, 'account-passkey-wrong-password');
    expect(await held()).toEqual([]);

    await addPasskey(page, 'Test laptop');
    expect(await held()).toHaveLength(1);
    await expect.poll(() => page.locator('#passkeys-heading ~ ul').textContent()).toContain('Test laptop');
    await page.locator('#passkeys-heading').scrollIntoViewIfNeeded();
    await shot(page, 'account-passkey-added');
    await waitUntil(() => smtp.received.some((m) => m.source.includes('A passkey was added')), 15_000, 'the mail');

    // Signed out, the app's sign-in: the passkey button, and nothing typed.
    await context.clearCookies();
    const started = await startAppSignIn(page);
    const button = page.getByRole('button', { name: 'Sign in with a passkey' });
    await expect.poll(() => button.isVisible()).toBe(true);
    await shot(page, 'login-with-passkey-button');
    await button.click();
    await expect.poll(() => page.url()).toContain(REDIRECT_URI);
    const tokens = await oidc.authorizationCodeGrant(app, new URL(page.url()), {
      pkceCodeVerifier: started.verifier,
      expectedNonce: started.nonce,
      expectedState: started.state,
      idTokenExpected: true,
    });
    expect(tokens.claims()?.sub).toBe(accountId);
    // RFC 8176: a device-bound key (hwk) and the authenticator verified the person (user). The
    // interaction ended with these amr values, which the code (and so the ID token) carries.
    expect(await codeAmr('notes')).toEqual([['hwk', 'user', 'mfa']]);

    // The passkey session reaches the account page; the passkey shows when it was last used.
    await page.goto(`${server.issuer}/account`);
    await expect.poll(() => page.url()).toBe(`${server.issuer}/account`);
    await expect.poll(() => page.locator('#passkeys-heading ~ ul').textContent()).not.toContain('Never');
    await page.getByRole('button', { name: 'Remove (Test laptop)' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain('That passkey was removed.');
    await shot(page, 'account-passkey-removed');
    await waitUntil(() => smtp.received.some((m) => m.source.includes('A passkey was removed')), 15_000, 'the mail');

    // The authenticator still holds the credential, and offers it: the server no longer knows it.
    await context.clearCookies();
    await startAppSignIn(page);
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await expect
      .poll(() => page.getByRole('alert').first().textContent())
      .toContain('That passkey could not sign you in.');
    expect(page.url()).toContain('/interaction/');
    await shot(page, 'login-removed-passkey-refused');
    expect((await refusals())[0]?.reason).toBe('unknown_passkey');
    expect(problems).toEqual([]);
    await context.close();
  },
);

it.skipIf(!existsSync(CHROMIUM))(
  'a challenge serves once: the same assertion posted again in its interaction is refused',
  async () => {
    const { context, page } = await tabWithPasskey('Replay key');
    await startAppSignIn(page);
    // The browser's own post of the assertion is caught, and posted from here instead, twice.
    const caught = new Promise<{ url: string; body: string }>((resolve) => {
      void page.route('**/interaction/*/passkey', async (route) => {
        resolve({ url: route.request().url(), body: route.request().postData() ?? '' });
        await route.abort();
      });
    });
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    const { url, body } = await caught;
    const cookie = (await context.cookies(url)).map((c) => `${c.name}=${c.value}`).join('; ');
    const post = () =>
      fetch(url, {
        method: 'POST',
        body,
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        redirect: 'manual',
      });
    const before = count(await refusals(), 'unknown_challenge');
    const first = await post();
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toContain('/auth/');
    const second = await post();
    expect(second.status).toBe(401);
    expect(await second.text()).toContain('That passkey could not sign you in.');
    // Refused for its challenge, which the first post used up (before any counter is looked at).
    expect(count(await refusals(), 'unknown_challenge')).toBe(before + 1);
    await context.close();
  },
);

it.skipIf(!existsSync(CHROMIUM))(
  'an assertion the browser made for another origin (a phishing page) is refused in the real interaction',
  async () => {
    const { context, page } = await tabWithPasskey('Phished key');
    const { loginUrl } = await startAppSignIn(page);
    // The phisher relays the real login page's challenge ...
    const button = page.locator('form[data-passkey="sign-in"]');
    const optionsUrl = (await button.getAttribute('data-options'))!;
    const csrf = await button.locator('input[name="csrf"]').inputValue();
    const optionsJSON: unknown = await page.evaluate(
      async ([url, token]) => {
        const response = await fetch(url, { method: 'POST', body: new URLSearchParams({ csrf: token }) });
        return response.json();
      },
      [optionsUrl, csrf] as const,
    );
    // ... to a page of its own: same host (so the RP ID fits), another port, another origin ...
    const phishing = `http://localhost:${await freePort()}/`;
    const bundle = await (await fetch(`${server.issuer}/assets/simplewebauthn-browser.js`)).text();
    await page.route(`${phishing}**`, (route) =>
      route.request().url().endsWith('/webauthn.js')
        ? route.fulfill({ contentType: 'text/javascript', body: bundle })
        : route.fulfill({
            contentType: 'text/html',
            body: '<!doctype html><title>Sign in</title><script src="/webauthn.js"></script>',
          }),
    );
    await page.goto(phishing);
    const assertion = await page.evaluate(async (options) => {
      const webauthn = (globalThis as unknown as { SimpleWebAuthnBrowser: PasskeyBrowser }).SimpleWebAuthnBrowser;
      return JSON.stringify(await webauthn.startAuthentication({ optionsJSON: options }));
    }, optionsJSON);
    expect(
      JSON.parse(Buffer.from(JSON.parse(assertion).response.clientDataJSON, 'base64url').toString()),
    ).toMatchObject({ origin: phishing.slice(0, -1), type: 'webauthn.get' });
    // ... and posts what the browser signed there into the real interaction.
    await page.goto(loginUrl);
    await button.locator('input[name="credential"]').evaluate((input, value) => {
      (input as unknown as { value: string }).value = value;
    }, assertion);
    await button.evaluate((form) => (form as unknown as { submit(): void }).submit());
    await expect
      .poll(() => page.getByRole('alert').first().textContent())
      .toContain('That passkey could not sign you in.');
    await shot(page, 'login-other-origin-refused');
    const [latest] = await refusals();
    expect(latest?.reason).toBe('verification_failed');
    expect(String(latest?.detail)).toContain(phishing.slice(0, -1));
    await context.close();
  },
);
