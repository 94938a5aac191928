import { randomBytes } from 'node:crypto';

import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Browser, Page } from '../support/browser.ts';
import { linkIn, mailEnv, mailsTo, nextMail } from '../support/mailbox.ts';
import { discover, exchange, newBrowser, REDIRECT_URI, signIn, startAuthorization } from '../support/relying-party.ts';
import { createTestClock, type TestServer } from '../support/server.ts';
import { startServerOnOwnDatabase } from '../support/setup.ts';
import { startTestSmtp, type TestSmtp } from '../support/smtp.ts';

// Password reset over HTTP against the real app, with a real SMTP server in the test process
// and openid-client as the relying party. Each browser plays its own address (X-Forwarded-For,
// trusted here), so the per-address request limit only bites where a test wants it to.

const PASSWORD = 'the old passphrase';
const NEW_PASSWORD = 'a brand new passphrase';
const clock = createTestClock();
let smtp: TestSmtp;
let server: TestServer;
let app: oidc.Configuration;
let nextIp = 1;

beforeAll(async () => {
  smtp = await startTestSmtp();
  server = await startServerOnOwnDatabase({ ...mailEnv(smtp), POSTERN_TRUST_PROXY: 'true' }, { clock });
  const { secret } = await server.container.clients.create({
    clientId: 'app',
    grantTypes: ['authorization_code', 'refresh_token'],
    redirectUris: [REDIRECT_URI],
    scope: 'openid profile email offline_access',
    firstParty: true,
  });
  app = await discover(server.issuer, 'app', secret);
});

afterAll(async () => {
  await server?.close();
  await smtp?.stop();
});

function browserAt(ip = `10.9.0.${nextIp++}`): Browser {
  const browser = newBrowser();
  browser.headers['x-forwarded-for'] = ip;
  return browser;
}

const newUser = (name: string) =>
  server.container.accounts.create({ username: name, email: `${name}@example.com`, password: PASSWORD });

/** "Forgot your password?" from the login page, then the request for `login`. */
async function askForLink(browser: Browser, login: string): Promise<Page> {
  const { page } = await startAuthorization(browser, app);
  const link = /href="([^"]*\/forgot-password)"/.exec(page.text)?.[1];
  expect(link, `the login page links to the reset page: ${page.url}\n${page.text}`).toBeDefined();
  const form = await browser.get(new URL(link!, page.url).href);
  expect(form.status).toBe(200);
  return browser.submit(form, '/forgot-password', { login });
}

async function choosePassword(browser: Browser, link: string, password: string, confirm = password): Promise<Page> {
  const form = await browser.get(link);
  expect(form.status, form.text).toBe(200);
  return browser.submit(form, '/reset-password', { password, confirm });
}

async function canSignIn(username: string, password: string): Promise<boolean> {
  return signIn(browserAt(), app, { username, password }).then(
    () => true,
    () => false,
  );
}

async function events(type: string, accountId: string) {
  await server.container.audit.flush();
  return server.container.audit.query({ type, accountId });
}

/** The page without what differs by browser: the CSRF token and the request id. */
const normalised = (page: Page) =>
  page.text.replace(/name="csrf" value="[^"]*"/g, 'name="csrf" value=""').replace(/Request <code>[^<]*/g, '');

describe('password reset by email', () => {
  it('the link sets a new password; old refresh tokens and the old password are refused, the new one works', async () => {
    const user = await newUser('rosa');
    const tokens = await exchange(
      app,
      await signIn(
        browserAt(),
        app,
        { username: 'rosa', password: PASSWORD },
        { scope: 'openid offline_access', prompt: 'consent' },
      ),
    );
    expect(tokens.refresh_token).toBeDefined();

    const browser = browserAt();
    const sent = await askForLink(browser, 'rosa@example.com');
    expect(sent.status).toBe(200);
    expect(sent.text).toContain('Check your inbox');
    const mail = await nextMail(smtp, 'rosa@example.com', 'Reset your Postern password');
    expect(mail.source).toContain('expires in 30 minutes');

    const done = await choosePassword(browser, linkIn(mail, '/reset-password'), NEW_PASSWORD);
    expect(done.status, done.text).toBe(200);
    expect(done.text).toContain('Your password is set');

    const { refreshTokenGrant } = await import('openid-client');
    await expect(refreshTokenGrant(app, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await canSignIn('rosa', PASSWORD)).toBe(false);
    expect(await canSignIn('rosa', NEW_PASSWORD)).toBe(true);

    const changed = await nextMail(smtp, 'rosa@example.com', 'Your Postern password was changed');
    expect(changed.source).toContain('/forgot-password');
    expect(await events('account.password_reset', user.id)).toHaveLength(1);
    expect(await events('account.password_changed', user.id)).toHaveLength(1);
    expect(await events('account.logged_out', user.id)).not.toHaveLength(0);
    expect((await server.container.accounts.findById(user.id))!.emailVerified).toBe(true);
  });

  it('a used, an expired and a forged link each show the readable page with a way to ask again', async () => {
    await newUser('ugo');
    const browser = browserAt();
    await askForLink(browser, 'ugo');
    const link = linkIn(await nextMail(smtp, 'ugo@example.com', 'Reset your'), '/reset-password');
    const form = await browser.get(link);
    expect(
      (await browser.submit(form, '/reset-password', { password: NEW_PASSWORD, confirm: NEW_PASSWORD })).status,
    ).toBe(200);

    const expectReadable = (page: Page) => {
      expect(page.status).toBe(410);
      expect(page.text).toContain('This link cannot be used');
      expect(page.text).toMatch(/href="[^"]*\/forgot-password"/);
    };
    expectReadable(await browser.get(link)); // used
    expectReadable(
      await browser.submit(form, '/reset-password', {
        password: 'yet another passphrase',
        confirm: 'yet another passphrase',
      }),
    );
    const forged = `${server.issuer}/reset-password?token=${randomBytes(32).toString('base64url')}`;
    expectReadable(await browser.get(forged));
    expectReadable(await browser.get(`${server.issuer}/reset-password?token=%3Cscript%3E`));
    expectReadable(await browser.get(`${server.issuer}/reset-password`));

    await browser.submit(await browser.get(`${server.issuer}/forgot-password`), '/forgot-password', { login: 'ugo' });
    const second = linkIn(await nextMail(smtp, 'ugo@example.com', 'Reset your', 2), '/reset-password');
    expect((await browser.get(second)).status).toBe(200);
    clock.advance(31 * 60);
    try {
      expectReadable(await browser.get(second)); // expired
    } finally {
      clock.advance(-31 * 60);
    }
  });

  it('the password policy applies, and a refused password leaves the link usable', async () => {
    await newUser('pia');
    const browser = browserAt();
    await askForLink(browser, 'pia');
    const link = linkIn(await nextMail(smtp, 'pia@example.com', 'Reset your'), '/reset-password');
    const short = await choosePassword(browser, link, 'short');
    expect(short.status).toBe(400);
    expect(short.text).toMatch(/<a href="#password">[^<]*at least 8 characters/);
    const common = await choosePassword(browser, link, 'password123');
    expect(common.status).toBe(400);
    expect(common.text).toContain('commonly used');
    const mismatch = await choosePassword(browser, link, NEW_PASSWORD, `${NEW_PASSWORD}!`);
    expect(mismatch.status).toBe(400);
    expect(mismatch.text).toContain('<a href="#confirm">');
    expect(await canSignIn('pia', PASSWORD)).toBe(true);
    expect((await choosePassword(browser, link, NEW_PASSWORD)).status).toBe(200);
    expect(await canSignIn('pia', NEW_PASSWORD)).toBe(true);
  });

  it("refuses a form posted without this browser's CSRF token, and sends nothing", async () => {
    await newUser('cara');
    const browser = browserAt();
    const form = await browser.get(`${server.issuer}/forgot-password`);
    const stranger = browserAt();
    const refused = await stranger.submit(form, '/forgot-password', { login: 'cara' });
    expect(refused.status).toBe(403);
    expect(refused.text).toContain('This form has expired');
    await new Promise((r) => setTimeout(r, 1000));
    expect(mailsTo(smtp, 'cara@example.com')).toHaveLength(0);
  });
});

describe('a request reveals nothing', () => {
  it('an unknown email gets the identical page, and no mail goes out', async () => {
    await newUser('kim');
    const before = smtp.received.length;
    const known = await askForLink(browserAt(), 'kim@example.com');
    const unknown = await askForLink(browserAt(), 'nobody-at-all@example.com');
    expect(unknown.status).toBe(known.status);
    expect(normalised(unknown)).toBe(normalised(known));
    expect(unknown.headers.get('content-type')).toBe(known.headers.get('content-type'));
    await nextMail(smtp, 'kim@example.com', 'Reset your');
    // Give a mail for the unknown address the time the known one took, twice over.
    await new Promise((r) => setTimeout(r, 1500));
    expect(smtp.received.slice(before).map((m) => m.to)).toEqual([['kim@example.com']]);
  });

  it('an unknown email takes the same time as a known one', async () => {
    // Timing on a shared machine is noisy: the kinds take turns (each goes first in every
    // other round), and a sample whose medians differ by more than 25 % is taken again (up to
    // 4 times), as in lockout.test.ts: a real difference shows in every sample.
    const samples: number[] = [];
    for (let sample = 0; sample < 4; sample++) {
      const ratio = await timeRequests(sample);
      samples.push(ratio);
      if (ratio >= 1 / 1.25 && ratio <= 1.25) break;
    }
    const last = samples.at(-1)!;
    expect(last, JSON.stringify(samples)).toBeGreaterThanOrEqual(1 / 1.25);
    expect(last, JSON.stringify(samples)).toBeLessThanOrEqual(1.25);
  });
});

/** The middle value; for an even count, the mean of the two middle ones. */
function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((x, y) => x - y);
  const mid = sorted.length / 2;
  return sorted.length % 2 ? sorted[Math.floor(mid)]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** 15 requests each for known and unknown accounts, interleaved; the ratio of their medians. */
async function timeRequests(sample: number): Promise<number> {
  const ROUNDS = 15;
  const known = await Promise.all(Array.from({ length: ROUNDS + 1 }, (_, i) => newUser(`timing-${sample}-${i}`)));
  const browser = browserAt();
  const form = await browser.get(`${server.issuer}/forgot-password`);
  const times = { known: [] as number[], unknown: [] as number[] };
  for (let round = 0; round <= ROUNDS; round++) {
    const order = round % 2 ? (['unknown', 'known'] as const) : (['known', 'unknown'] as const);
    for (const kind of order) {
      // A fresh address each time, and a fresh account for each known request: no limit bites.
      browser.headers['x-forwarded-for'] = `10.77.${sample * 40 + round}.${kind === 'known' ? 1 : 2}`;
      const login = kind === 'known' ? known[round]!.email : `timing-nobody-${sample}-${round}@example.com`;
      const started = performance.now();
      const answer = await browser.submit(form, '/forgot-password', { login });
      const ms = performance.now() - started;
      expect(answer.status).toBe(200);
      if (round > 0) times[kind].push(ms); // round 0 warms up
    }
  }
  return median(times.known) / median(times.unknown);
}
