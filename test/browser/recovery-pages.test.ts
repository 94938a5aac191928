import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import * as oidc from 'openid-client';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { scriptProblems } from '../support/chromium.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { linkIn, mailEnv, nextMail } from '../support/mailbox.ts';
import { discover, newBrowser, REDIRECT_URI, startAuthorization } from '../support/relying-party.ts';
import { createPublicApp } from '../support/setup.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { startTestSmtp, type TestSmtp } from '../support/smtp.ts';

// A person in a real browser (Debian's Chromium) through "Forgot your password?", the
// set-password page, a dead link, and the unlock page, with a screenshot of each (printed:
// look at them). The pages work with the strict CSP: any console error fails the test.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOTS = process.env.POSTERN_SCREENSHOT_DIR ?? path.join(os.tmpdir(), 'postern-screenshots');
const PASSWORD = 'nina has a passphrase';

let db: TestDatabase;
let smtp: TestSmtp;
let server: TestServer;
let browser: Browser;
let app: oidc.Configuration;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) return;
  db = await createTestDatabase();
  smtp = await startTestSmtp();
  server = await startTestServer(db, { ...mailEnv(smtp), POSTERN_TRUST_PROXY: 'true' });
  await createPublicApp(server);
  app = await discover(server.issuer, 'app');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'],
  });
  mkdirSync(SCREENSHOTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await smtp?.stop();
  await db?.drop();
});

async function shoot(page: Page, name: string): Promise<void> {
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot: ${file}`);
}

async function newPage(): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage();
  // A refused form answers 4xx on purpose: the browser logs the status, which is no problem.
  const problems = scriptProblems(page, /status of 4\d\d/);
  return { page, problems };
}

function authorizationUrl(): string {
  return oidc.buildAuthorizationUrl(app, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid',
    code_challenge: 'a'.repeat(43),
    code_challenge_method: 'S256',
  }).href;
}

it.skipIf(!existsSync(CHROMIUM))('a person resets a forgotten password from the login page', async () => {
  await server.container.accounts.create({ username: 'nina', email: 'nina@example.com', password: PASSWORD });
  const { page, problems } = await newPage();
  await page.goto(authorizationUrl());
  await page.getByLabel('Username or email').fill('nina');
  await page.getByLabel('Password').fill('not it');
  await page.getByRole('button', { name: 'Sign in' }).click();
  const offer = page.getByRole('link', { name: /Can't sign in\? Email me a link/ });
  await expect.poll(() => offer.count()).toBe(1);
  await shoot(page, 'login-after-failure');
  await offer.click();

  await expect.poll(() => page.locator('h1').textContent()).toBe('Forgot your password?');
  await shoot(page, 'forgot-password');
  await page.getByRole('button', { name: 'Email me a link' }).click();
  await expect.poll(() => page.getByRole('alert').textContent()).toContain('Enter your username or email address.');
  await shoot(page, 'forgot-password-error');
  await page.getByLabel('Username or email address').fill('nina');
  await page.getByRole('button', { name: 'Email me a link' }).click();
  await expect.poll(() => page.locator('h1').textContent()).toBe('Check your inbox');
  await shoot(page, 'check-your-inbox');

  const mail = await nextMail(smtp, 'nina@example.com', 'Reset your');
  await page.goto(linkIn(mail, '/reset-password'));
  await expect.poll(() => page.locator('h1').textContent()).toBe('Choose a new password');
  await page.getByLabel('New password', { exact: true }).fill('short');
  await page.getByLabel('Repeat the new password').fill('short');
  await page.getByRole('button', { name: 'Set my new password' }).click();
  await expect.poll(() => page.getByRole('alert').textContent()).toContain('at least 8 characters');
  await shoot(page, 'set-new-password-error');
  await page.getByLabel('New password', { exact: true }).fill('nina has a new passphrase');
  await page.getByLabel('Repeat the new password').fill('nina has a new passphrase');
  await shoot(page, 'set-new-password');
  await page.getByRole('button', { name: 'Set my new password' }).click();
  await expect.poll(() => page.locator('h1').textContent()).toBe('Your password is set');
  await shoot(page, 'password-set');

  await page.goto(`${server.issuer}/reset-password?token=${randomBytes(32).toString('base64url')}`);
  await expect.poll(() => page.locator('h1').textContent()).toBe('This link cannot be used');
  await shoot(page, 'link-expired');
  expect(problems).toEqual([]);
});

it.skipIf(!existsSync(CHROMIUM))('a person unlocks their account from the emailed link', async () => {
  await server.container.accounts.create({ username: 'otto', email: 'otto@example.com', password: PASSWORD });
  // Strangers at four addresses lock the account for everyone (20 failures).
  for (let s = 0; s < 4; s++) {
    const stranger = newBrowser();
    stranger.headers['x-forwarded-for'] = `10.44.0.${s + 1}`;
    let { page } = await startAuthorization(stranger, app);
    for (let i = 0; i < 5; i++) page = await stranger.submit(page, '/login', { username: 'otto', password: `x${i}` });
  }
  const { page, problems } = await newPage();
  await page.goto(`${server.issuer}/forgot-password`);
  await page.getByLabel('Username or email address').fill('otto@example.com');
  await page.getByRole('button', { name: 'Email me a link' }).click();
  const mail = await nextMail(smtp, 'otto@example.com', 'Unlock your');

  await page.goto(linkIn(mail, '/unlock'));
  await expect.poll(() => page.locator('h1').textContent()).toBe('Unlock your account');
  await shoot(page, 'unlock');
  await page.getByRole('button', { name: 'Unlock my account in this browser' }).click();
  await expect.poll(() => page.locator('h1').textContent()).toBe('Your account is unlocked');
  await shoot(page, 'unlocked');

  await page.goto(authorizationUrl());
  await page.getByLabel('Username or email').fill('otto');
  await page.getByLabel('Password').fill(PASSWORD);
  // The app's callback does not exist here: seeing the browser sent there is the sign-in.
  const callback = page.waitForRequest((r) => r.url().startsWith(REDIRECT_URI), { timeout: 10_000 });
  await page.getByRole('button', { name: 'Sign in' }).click();
  expect(new URL((await callback).url()).searchParams.get('code')).toBeTruthy();
  expect(problems.filter((p) => !p.includes('ERR_CONNECTION_REFUSED'))).toEqual([]);
});
