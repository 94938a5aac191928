import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { CHROMIUM, launchChromium, scriptProblems } from '../support/chromium.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { createNotesClient, REDIRECT_URI } from '../support/relying-party.ts';
import { createTestClock, startTestServer, type TestServer } from '../support/server.ts';
import { totpCode } from '../support/totp.ts';

// Two-step verification in a real browser (Debian's Chromium), with no script on any page and
// the strict CSP: the QR code is an inline SVG, the key is readable text, the second-factor page
// comes after the password. The screenshots are for people to look at (issue 14).
const SCREENSHOTS = process.env.POSTERN_SCREENSHOT_DIR ?? '/tmp/shots-mfa';
const PERSON = { username: 'ada', email: 'ada@example.com', password: 'ada counts the engine' };
const clock = createTestClock();

let db: TestDatabase;
let server: TestServer;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) return;
  db = await createTestDatabase();
  server = await startTestServer(db, { POSTERN_MFA_REMEMBER_DAYS: '30' }, { clock });
  await server.container.accounts.create({ ...PERSON, profile: { name: 'Ada Lovelace' } });
  await createNotesClient(server);
  browser = await launchChromium();
  mkdirSync(SCREENSHOTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await db?.drop();
});

it.skipIf(!existsSync(CHROMIUM))(
  'a person sets up an authenticator app on the account page, then signs in to an app with a code',
  async () => {
    const page = await browser.newPage({ viewport: { width: 900, height: 1000 } });
    const problems = scriptProblems(page);

    await page.goto(`${server.issuer}/account/two-factor`);
    await page.getByLabel('Username or email').fill(PERSON.username);
    await page.getByLabel('Password').fill(PERSON.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.url()).toContain('/account');
    await page.goto(`${server.issuer}/account/two-factor`);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'two-factor-off.png'), fullPage: true });
    await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
    await expect.poll(() => page.locator('.qr svg').count()).toBe(1);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'two-factor-enroll.png'), fullPage: true });
    const secret = ((await page.locator('#totp-secret').textContent()) ?? '').replace(/\s/g, '');
    await page.getByLabel('Your password').fill(PERSON.password);
    await page.getByLabel('Code from your authenticator app').fill(totpCode(secret, clock.now()));
    await page.getByRole('button', { name: 'Turn on two-step verification' }).click();
    await expect.poll(() => page.locator('#recovery-codes li').count()).toBe(10);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'two-factor-recovery-codes.png'), fullPage: true });
    clock.advance(30);

    const app = await browser.newPage({ viewport: { width: 900, height: 800 } });
    await app.goto(
      `${server.issuer}/auth?client_id=notes&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT_URI)}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`,
    );
    await app.getByLabel('Username or email').fill(PERSON.username);
    await app.getByLabel('Password').fill(PERSON.password);
    await app.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => app.getByRole('heading', { level: 1 }).textContent()).toBe('Two-step verification');
    await app.getByLabel('Code from your authenticator app').fill('000000');
    await app.getByRole('button', { name: 'Verify' }).click();
    await expect.poll(() => app.getByRole('alert').textContent()).toContain('That code is not right');
    await app.screenshot({ path: path.join(SCREENSHOTS, 'second-factor-error.png'), fullPage: true });
    await app.getByLabel('Code from your authenticator app').fill(totpCode(secret, clock.now()));
    const back = app.waitForRequest((r) => r.url().startsWith(REDIRECT_URI));
    await app.getByRole('button', { name: 'Verify' }).click();
    expect(new URL((await back).url()).searchParams.get('code')).toBeTruthy();
    await page.goto(`${server.issuer}/account/two-factor`);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'two-factor-on.png'), fullPage: true });
    // No CSP violation, no script error on any page (the pages have no script).
    expect(problems).toEqual([]);
  },
);
