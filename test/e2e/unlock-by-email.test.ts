import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { unescapeHtml, type Browser, type Page } from '../support/browser.ts';
import { linkIn, mailEnv, mailsTo, nextMail } from '../support/mailbox.ts';
import { discover, newBrowser, REDIRECT_URI, startAuthorization } from '../support/relying-party.ts';
import { createTestClock, type TestServer } from '../support/server.ts';
import { createPublicApp, startServerOnOwnDatabase } from '../support/setup.ts';
import { startTestSmtp, waitUntil, type TestSmtp } from '../support/smtp.ts';

// Unlock by email and the limits on reset and unlock requests, through the real pages, with
// the default lockout policy (5 per account and address, 20 per account) and request limits
// (5 an hour per account, 20 per address). Browsers play clients at their own addresses
// (X-Forwarded-For with POSTERN_TRUST_PROXY=true); our clock moves instead of sleeping.

const PASSWORD = 'the right passphrase';
const GENERIC = 'The username or password is incorrect.';
const clock = createTestClock();
let smtp: TestSmtp;
let server: TestServer;
let app: oidc.Configuration;
let nextIp = 1;

beforeAll(async () => {
  smtp = await startTestSmtp();
  server = await startServerOnOwnDatabase({ ...mailEnv(smtp), POSTERN_TRUST_PROXY: 'true' }, { clock });
  await createPublicApp(server);
  app = await discover(server.issuer, 'app');
});

afterAll(async () => {
  await server?.close();
  await smtp?.stop();
});

const newUser = (name: string) =>
  server.container.accounts.create({ username: name, email: `${name}@example.com`, password: PASSWORD });

/** A fresh browser at its own address, on the login page of a new sign-in. */
async function client(ip = `10.5.0.${nextIp++}`): Promise<{ browser: Browser; page: Page }> {
  const browser = newBrowser();
  browser.headers['x-forwarded-for'] = ip;
  const { page } = await startAuthorization(browser, app);
  expect(page.url).toContain('/interaction/');
  return { browser, page };
}

async function attempt(c: { browser: Browser; page: Page }, username: string, password: string): Promise<Page> {
  const answer = await c.browser.submit(c.page, '/login', { username, password });
  if (answer.status === 401) c.page = answer;
  return answer;
}

const signedIn = (page: Page) => page.url.startsWith(REDIRECT_URI);

async function request(browser: Browser, login: string): Promise<Page> {
  const form = await browser.get(`${server.issuer}/forgot-password`);
  return browser.submit(form, '/forgot-password', { login });
}

/** Waits until the outbox has nothing pending, so that "no mail" means none was written. */
async function outboxSettled(): Promise<void> {
  await waitUntil(async () => (await server.container.mail.pending()) === 0, 15_000, 'the outbox to drain');
}

describe('unlock by email', () => {
  it("an account locked for everyone by strangers is unlocked by its owner in a fresh browser, and the strangers' lock stays", async () => {
    const user = await newUser('olga');
    // Strangers at four addresses, five failures each: each address locks for the account,
    // and the 20th failure locks the account for everyone.
    const strangers: { browser: Browser; page: Page }[] = [];
    for (let s = 0; s < 4; s++) {
      const stranger = await client(`10.66.0.${s + 1}`);
      for (let i = 0; i < 5; i++) expect((await attempt(stranger, 'olga', `guess ${s}-${i}`)).status).toBe(401);
      strangers.push(stranger);
    }
    const owner = await client();
    const refused = await attempt(owner, 'olga', PASSWORD);
    expect(signedIn(refused)).toBe(false);
    // The lock message stays the generic one; the way out is offered after any failure.
    expect(refused.text).toContain(GENERIC);
    const offer = /href="([^"]*\/forgot-password)">([^<]*)</.exec(refused.text);
    expect(unescapeHtml(offer?.[2] ?? '')).toContain(
      "Can't sign in? Email me a link to unlock my account or reset my password",
    );

    const asked = await owner.browser.submit(
      await owner.browser.get(new URL(offer![1]!, refused.url).href),
      '/forgot-password',
      { login: 'olga' },
    );
    expect(asked.text).toContain('Check your inbox');
    const mail = await nextMail(smtp, 'olga@example.com', 'Unlock your Postern account');

    // The owner opens the link in a fresh browser, at yet another address.
    const fresh = newBrowser();
    fresh.headers['x-forwarded-for'] = '10.5.9.9';
    const unlockPage = await fresh.get(linkIn(mail, '/unlock'));
    expect(unlockPage.status).toBe(200);
    expect(unlockPage.text).toContain('Unlock your account');
    const unlocked = await fresh.submit(unlockPage, '/unlock');
    expect(unlocked.status).toBe(200);
    expect(unlocked.text).toContain('Your account is unlocked');
    // The link unlocked this browser, not the account: anyone else is still held, right password or not.
    expect(signedIn(await attempt(await client(), 'olga', PASSWORD))).toBe(false);

    const { page } = await startAuthorization(fresh, app);
    expect(signedIn(await fresh.submit(page, '/login', { username: 'olga', password: PASSWORD }))).toBe(true);
    // The owner's success ends the account-wide lock (sign-in.service.ts recordSuccess), but
    // each stranger's address stays locked for the account.
    for (const stranger of strangers) expect(signedIn(await attempt(stranger, 'olga', PASSWORD))).toBe(false);
    // The link worked once.
    expect((await fresh.get(linkIn(mail, '/unlock'))).status).toBe(410);
    await server.container.audit.flush();
    expect(await server.container.audit.query({ type: 'account.unlocked', accountId: user.id })).toMatchObject([
      { details: { via: 'email', scope: 'device' } },
    ]);
  });

  it('the unlocked page offers a new password without a second mail, and the reset ends the lock for everyone', async () => {
    await newUser('pavel');
    for (let s = 0; s < 5; s++) {
      const stranger = await client(`10.67.0.${s + 1}`);
      for (let i = 0; i < 4; i++) await attempt(stranger, 'pavel', `guess ${s}-${i}`);
    }
    const fresh = newBrowser();
    fresh.headers['x-forwarded-for'] = '10.5.8.8';
    await request(fresh, 'pavel@example.com');
    const unlockPage = await fresh.get(linkIn(await nextMail(smtp, 'pavel@example.com', 'Unlock'), '/unlock'));
    const unlocked = await fresh.submit(unlockPage, '/unlock');
    const reset = /href="([^"]*\/reset-password\?token=[^"]*)"/.exec(unlocked.text)?.[1];
    expect(reset).toBeDefined();
    const form = await fresh.get(new URL(reset!.replace(/&amp;/g, '&'), unlocked.url).href);
    const NEW = 'pavel chose a new passphrase';
    expect((await fresh.submit(form, '/reset-password', { password: NEW, confirm: NEW })).status).toBe(200);
    // Strangers' failures were against the old password: the account-wide lock is gone.
    expect(signedIn(await attempt(await client(), 'pavel', NEW))).toBe(true);
  });

  it('an account that is not locked gets a reset link, not an unlock link', async () => {
    await newUser('quinn');
    await request((await client()).browser, 'quinn');
    const mail = await nextMail(smtp, 'quinn@example.com', 'Reset your Postern password');
    expect(mail.source).not.toContain('/unlock?token=');
  });
});

describe('limits on reset and unlock requests', () => {
  it('the 6th request for one account in an hour sends no mail and shows the same page', async () => {
    await newUser('rhea');
    const pages: string[] = [];
    for (let i = 1; i <= 6; i++) {
      const page = await request((await client()).browser, 'rhea');
      expect(page.status).toBe(200);
      pages.push(page.text);
    }
    expect(new Set(pages).size).toBe(1);
    await nextMail(smtp, 'rhea@example.com', 'Reset your', 5);
    await outboxSettled();
    expect(mailsTo(smtp, 'rhea@example.com')).toHaveLength(5);

    clock.advance(3601);
    await request((await client()).browser, 'rhea');
    await nextMail(smtp, 'rhea@example.com', 'Reset your', 6);
  });

  it('the 21st request from one address in an hour sends no mail', async () => {
    const names = Array.from({ length: 21 }, (_, i) => `sam${i}`);
    for (const name of names) await newUser(name);
    const browser = newBrowser();
    browser.headers['x-forwarded-for'] = '10.88.0.1';
    for (const name of names) expect((await request(browser, name)).status).toBe(200);
    await nextMail(smtp, 'sam19@example.com', 'Reset your');
    await outboxSettled();
    expect(names.filter((n) => mailsTo(smtp, `${n}@example.com`).length > 0)).toEqual(names.slice(0, 20));
    await server.container.audit.flush();
    const limited = await server.container.audit.query({ type: 'recovery.requested', limit: 1 });
    expect(limited[0]!.details).toMatchObject({ sent: 'nothing', reason: 'ip_limit' });
  });
});
