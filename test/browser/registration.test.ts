import { existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import * as oidc from 'openid-client';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { discover, REDIRECT_URI } from '../support/relying-party.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { startTestSmtp, waitUntil, type TestSmtp } from '../support/smtp.ts';

// The registration pages in a real browser (Debian's Chromium), without any script of ours:
// the form with its error summary, "check your inbox", the code entry, the page that refuses
// an unverified sign-in, and the emailed link's page. Each is saved as a screenshot to look at.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOTS = process.env.POSTERN_SCREENSHOT_DIR ?? path.join(os.tmpdir(), 'postern-screenshots');
const PASSWORD = 'a long registration passphrase';

let db: TestDatabase;
let smtp: TestSmtp;
let server: TestServer;
let browser: Browser;
let config: oidc.Configuration;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) return;
  db = await createTestDatabase();
  smtp = await startTestSmtp();
  server = await startTestServer(db, {
    POSTERN_REGISTRATION: 'open',
    POSTERN_SMTP_URL: smtp.url,
    POSTERN_MAIL_FROM: 'no-reply@postern.test',
  });
  await server.container.clients.create({
    clientId: 'app',
    name: 'Example App',
    public: true,
    grantTypes: ['authorization_code'],
    redirectUris: [REDIRECT_URI],
    firstParty: true,
  });
  config = await discover(server.issuer, 'app');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'],
  });
  mkdirSync(SCREENSHOTS, { recursive: true });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await smtp?.stop();
  await db?.drop();
});

async function authorizationUrl(params: Record<string, string> = {}): Promise<string> {
  const verifier = oidc.randomPKCECodeVerifier();
  return oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid email profile',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state: oidc.randomState(),
    ...params,
  }).href;
}

async function freshPage(): Promise<Page> {
  return (await browser.newContext()).newPage();
}

/** The app's callback URL the browser is sent to (Chromium refuses to load port 9, which is fine). */
async function backAtTheApp(page: Page): Promise<string> {
  return (await page.waitForRequest((request) => request.url().startsWith(REDIRECT_URI))).url();
}

const shot = async (page: Page, name: string) => {
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot: ${file}`);
};

async function codeFor(email: string, count = 1): Promise<string> {
  const mails = () => smtp.received.filter((m) => m.to.includes(email));
  await waitUntil(() => mails().length >= count, 20_000, `mail to ${email}`);
  return /code on the confirmation page: (\d{6})/.exec(mails()[count - 1]!.source)![1]!;
}

it.skipIf(!existsSync(CHROMIUM))(
  'a person creates an account from the login page and confirms it with the code, with no script',
  async () => {
    const page = await freshPage();
    await page.goto(await authorizationUrl());
    await shot(page, 'login-with-sign-up');
    await page.getByRole('link', { name: 'Create an account' }).click();
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Create an account');

    // Every problem at once, in a summary that takes the focus and links to each field.
    await page.getByLabel('Email address').fill('not an address');
    await page.getByLabel('Password', { exact: true }).fill('short');
    await page.getByRole('button', { name: 'Create account' }).click();
    await expect.poll(() => page.getByRole('alert').isVisible()).toBe(true);
    expect(await page.evaluate('document.activeElement?.className')).toBe('error-summary');
    expect(await page.getByLabel('Email address').getAttribute('aria-invalid')).toBe('true');
    await shot(page, 'register-errors');
    await page.getByRole('link', { name: /Enter an email address/ }).click();
    expect(await page.evaluate('document.activeElement?.id')).toBe('email');

    await page.getByLabel('Email address').fill('chromium.person@example.com');
    await page.getByLabel('Full name (optional)').fill('Chromium Person');
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await shot(page, 'register');
    await page.getByRole('button', { name: 'Create account' }).click();
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Check your inbox');
    await shot(page, 'check-inbox');

    await page.getByRole('link', { name: 'Enter the code' }).click();
    await page.getByLabel('Code').fill('000000');
    await page.getByRole('button', { name: 'Confirm' }).click();
    await expect.poll(() => page.getByRole('alert').isVisible()).toBe(true);
    await page.getByLabel('Code').fill(await codeFor('chromium.person@example.com'));
    await page.getByLabel('Code').focus();
    await shot(page, 'code-entry');
    const [back] = await Promise.all([backAtTheApp(page), page.getByRole('button', { name: 'Confirm' }).click()]);
    expect(new URL(back).searchParams.get('code')).toBeTruthy();
  },
  60_000,
);

it.skipIf(!existsSync(CHROMIUM))(
  'an unverified sign-in shows the page that offers a new link, and the link opens its confirmation page',
  async () => {
    await server.container.accounts.create({
      username: 'unverified',
      email: 'unverified@example.com',
      password: PASSWORD,
    });
    const page = await freshPage();
    await page.goto(await authorizationUrl());
    await page.getByLabel('Username or email').fill('unverified@example.com');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Confirm your email address');
    await page.getByRole('button', { name: 'Email me a new link and code' }).click();
    await expect.poll(() => page.getByRole('status').isVisible()).toBe(true);
    await shot(page, 'unverified');

    await waitUntil(() => smtp.received.some((m) => m.to.includes('unverified@example.com')), 20_000, 'the mail');
    const mail = smtp.received.find((m) => m.to.includes('unverified@example.com'))!;
    const link = /https?:\/\/\S+\/verify-email\?token=[A-Za-z0-9_-]+/.exec(mail.source)![0];
    const other = await freshPage();
    await other.goto(link);
    await shot(other, 'verify-email-link');
    await other.getByRole('button', { name: 'Confirm my email address' }).click();
    await expect.poll(() => other.getByRole('heading', { level: 1 }).textContent()).toBe('Email address confirmed');
    await shot(other, 'verify-email-done');

    const [back] = await Promise.all([
      backAtTheApp(page),
      page.getByRole('button', { name: 'I opened the link: continue' }).click(),
    ]);
    expect(new URL(back).searchParams.get('code')).toBeTruthy();
  },
  60_000,
);
