import { existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { CHROMIUM, launchChromium, scriptProblems } from '../support/chromium.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

// A person in a real browser (Debian's Chromium, never a downloaded one): the landing page,
// the demo app, the login page, the signed-in page, and sign-out. CI installs Chromium.
const SCREENSHOTS = process.env.POSTERN_SCREENSHOT_DIR ?? path.join(os.tmpdir(), 'postern-screenshots');

let db: TestDatabase;
let server: TestServer;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) return;
  db = await createTestDatabase();
  server = await startTestServer(db, { POSTERN_DEMO: 'true' });
  browser = await launchChromium();
  mkdirSync(SCREENSHOTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await db?.drop();
});

it.skipIf(!existsSync(CHROMIUM))('a person signs in to the demo app through the login page and signs out', async () => {
  const seed = server.container.demoSeed!;
  expect(seed.username).toBe('demo');
  const page = await browser.newPage();
  const problems = scriptProblems(page);

  await page.goto(`${server.issuer}/`);
  await page.getByRole('link', { name: 'Sign in to the demo app' }).click();
  await page.getByRole('link', { name: 'Sign in with Postern' }).click();

  await expect.poll(() => page.url()).toContain('/interaction/');
  await page.getByLabel('Username or email').fill(seed.username);
  await page.getByLabel('Password').fill('wrong password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect.poll(() => page.getByRole('alert').textContent()).toBe('The username or password is incorrect.');

  await page.getByLabel('Password').fill(seed.password);
  await page.screenshot({ path: path.join(SCREENSHOTS, 'login.png'), fullPage: true });
  await page.getByRole('button', { name: 'Sign in' }).click();

  await page.screenshot({ path: path.join(SCREENSHOTS, 'after-submit.png'), fullPage: true }).catch(() => {});
  await expect.poll(() => page.url(), { timeout: 10_000 }).toContain('/demo/callback');
  await expect.poll(() => page.locator('h2').first().textContent()).toBe('ID token claims');
  const claims = JSON.parse((await page.locator('pre.json').first().textContent())!);
  expect(claims).toMatchObject({
    iss: server.issuer,
    aud: 'postern-demo',
    preferred_username: 'demo',
    email: 'demo@example.com',
  });
  await page.screenshot({ path: path.join(SCREENSHOTS, 'signed-in.png'), fullPage: true });

  // The demo signs out with its ID token as id_token_hint: this session's, so no question.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect.poll(() => page.url(), { timeout: 10_000 }).toBe(`${server.issuer}/demo`);
  await page.screenshot({ path: path.join(SCREENSHOTS, 'signed-out.png'), fullPage: true });

  // Strict CSP and no inline script: the browser reported nothing blocked or broken (the one
  // expected failure is the 401 answering the wrong password above).
  expect(problems.filter((p) => !p.includes('status of 401'))).toEqual([]);
});
