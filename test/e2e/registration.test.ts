import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { baseEnv, expectOk, run } from '../support/cli.ts';
import type { Browser, Page } from '../support/browser.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { discover, exchange, newBrowser, REDIRECT_URI, signIn, startAuthorization } from '../support/relying-party.ts';
import { createPublicApp } from '../support/setup.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { startTestSmtp, waitUntil, type ReceivedMail, type TestSmtp } from '../support/smtp.ts';

// Self-service registration over HTTP against the real app, with a real SMTP server in the test
// process: the mail that arrives is the only way to the link and the code, as for a person.

const PASSWORD = 'a long registration passphrase';
let db: TestDatabase;
let smtp: TestSmtp;
let server: TestServer;
let config: oidc.Configuration;
let nextIp = 1;

beforeAll(async () => {
  db = await createTestDatabase();
  smtp = await startTestSmtp();
  // Admin-made accounts, by the real command, before the server holds the database.
  const cli = baseEnv(db);
  for (const [name, extra] of [
    ['admin-verified', ['--email-verified']],
    ['admin-plain', []],
  ] as const)
    expectOk(
      await run(
        ['user', 'create', '--username', name, '--email', `${name}@example.com`, '--password', PASSWORD, ...extra],
        cli,
      ),
    );
  server = await startTestServer(db, {
    POSTERN_REGISTRATION: 'open',
    POSTERN_SMTP_URL: smtp.url,
    POSTERN_MAIL_FROM: 'no-reply@postern.test',
    POSTERN_TRUST_PROXY: 'true',
  });
  await createPublicApp(server);
  config = await discover(server.issuer, 'app');
}, 60_000);

afterAll(async () => {
  await server?.close();
  await smtp?.stop();
  await db?.drop();
});

/** A browser at an address of its own (so the per-IP limit of 3 an hour stays out of the way). */
function visitor(ip = `10.1.0.${nextIp++}`): Browser {
  const browser = newBrowser();
  browser.headers['x-forwarded-for'] = ip;
  return browser;
}

async function mailTo(address: string, subject: RegExp, count = 1): Promise<ReceivedMail> {
  const matching = () => smtp.received.filter((m) => m.to.includes(address) && subject.test(m.subject));
  await waitUntil(() => matching().length >= count, 20_000, `mail "${subject}" to ${address}`);
  return matching()[count - 1]!;
}

const linkIn = (mail: ReceivedMail) => /https?:\/\/\S+\/verify-email\?token=[A-Za-z0-9_-]+/.exec(mail.source)![0];
const codeIn = (mail: ReceivedMail) => /code on the confirmation page: (\d{6})/.exec(mail.source)![1]!;

/** From the app's sign-in to the submitted registration form. */
async function register(
  browser: Browser,
  fields: { email: string; username?: string; name?: string; password?: string },
  params: Record<string, string> = {},
) {
  const started = await startAuthorization(browser, config, params);
  let page = started.page;
  if (!page.text.includes('/register" novalidate'))
    page = await browser.get(new URL(registerHref(page), page.url).href);
  const answer = await browser.submit(page, '/register', {
    username: '',
    name: '',
    password: PASSWORD,
    ...fields,
  });
  return { started, answer };
}

function registerHref(page: Page): string {
  const href = /href="([^"]*\/register)"/.exec(page.text)?.[1];
  if (!href) throw new Error(`no "Create an account" link on:\n${page.text.slice(0, 1500)}`);
  return href;
}

async function events(type: string, accountId?: string) {
  await server.container.audit.flush();
  return server.container.audit.query({ type, ...(accountId ? { accountId } : {}), limit: 100 });
}

async function claimsAfter(auth: Awaited<ReturnType<typeof signIn>>) {
  const tokens = await exchange(config, auth);
  const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
  return { id: tokens.claims()!, userinfo };
}

describe('registration', () => {
  it('a person registers, follows the emailed link, and signs in at the app by email with email_verified true', async () => {
    const email = 'link.person@example.com';
    const { answer } = await register(visitor(), { email, name: 'Link Person' });
    expect(answer.status).toBe(200);
    expect(answer.text).toContain('Check your inbox');

    const mail = await mailTo(email, /Confirm your email address/);
    const link = linkIn(mail);
    expect(link.startsWith(`${server.issuer}/verify-email?token=`)).toBe(true);
    const elsewhere = visitor();
    const confirm = await elsewhere.get(link);
    expect(confirm.status).toBe(200);
    const done = await elsewhere.submit(confirm, '/verify-email');
    expect(done.status).toBe(200);
    expect(done.text).toContain('Email address confirmed');
    // Single use: the same link again is refused with a readable page.
    expect((await elsewhere.get(link)).status).toBe(410);

    // No username was chosen: the person signs in with the email address.
    const auth = await signIn(visitor(), config, { username: email, password: PASSWORD });
    const { id, userinfo } = await claimsAfter(auth);
    expect(id).toMatchObject({ email, email_verified: true, name: 'Link Person' });
    expect(userinfo).toMatchObject({ email, email_verified: true, preferred_username: 'link.person' });
    // Each step is in the audit log.
    expect(await events('account.registered', id.sub)).toHaveLength(1);
    expect((await events('email.verification_sent', id.sub))[0]?.details).toEqual({ reason: 'registration' });
    expect((await events('email.verified', id.sub))[0]?.details).toEqual({ method: 'link' });
  });

  it('prompt=create lands on the registration page, and the 6-digit code in the same browser continues to the app', async () => {
    const email = 'code.person@example.com';
    const browser = visitor();
    const { started, answer } = await register(browser, { email, username: 'coder' }, { prompt: 'create' });
    expect(started.page.status).toBe(200);
    expect(started.page.url).toContain('/interaction/');
    expect(started.page.text).toContain('<h1>Create an account</h1>');
    expect(answer.text).toContain('Check your inbox');

    const code = codeIn(await mailTo(email, /Confirm your email address/));
    const codePage = await browser.get(new URL(/href="([^"]*\/verify-code)"/.exec(answer.text)![1]!, answer.url).href);
    const wrong = await browser.submit(codePage, '/verify-code', { code: code === '000000' ? '111111' : '000000' });
    expect(wrong.status).toBe(400);
    expect(wrong.text).toContain('That code is not right');
    const back = await browser.submit(wrong, '/verify-code', { code });
    expect(back.url.startsWith(REDIRECT_URI)).toBe(true);

    const auth = {
      callbackUrl: new URL(back.url),
      verifier: started.verifier,
      state: started.state,
      nonce: started.nonce,
    };
    const { id, userinfo } = await claimsAfter(auth);
    expect(id).toMatchObject({ email, email_verified: true, preferred_username: 'coder' });
    expect(userinfo).toMatchObject({ email_verified: true });
  });

  it('prompt=create keeps offline_access: the app that asked for it gets a refresh token after registration', async () => {
    await server.container.clients.create({
      clientId: 'offline-app',
      public: true,
      grantTypes: ['authorization_code', 'refresh_token'],
      redirectUris: [REDIRECT_URI],
      firstParty: true,
    });
    const offline = await discover(server.issuer, 'offline-app');
    const browser = visitor();
    const started = await startAuthorization(browser, offline, {
      prompt: 'create',
      scope: 'openid email offline_access',
    });
    const email = 'offline.person@example.com';
    const answer = await browser.submit(started.page, '/register', {
      email,
      username: '',
      name: '',
      password: PASSWORD,
    });
    expect(answer.text).toContain('Check your inbox');
    const code = codeIn(await mailTo(email, /Confirm your email address/));
    const codePage = await browser.get(new URL(/href="([^"]*\/verify-code)"/.exec(answer.text)![1]!, answer.url).href);
    const back = await browser.submit(codePage, '/verify-code', { code });
    const tokens = await exchange(offline, { callbackUrl: new URL(back.url), ...started });
    expect(tokens.scope?.split(' ')).toContain('offline_access');
    expect(tokens.refresh_token).toBeTruthy();
  });

  it('registering an address that has an account shows the identical page, mails its owner, and changes nothing', async () => {
    const owner = await server.container.accounts.create({
      username: 'owner',
      email: 'owner@example.com',
      password: 'the owner own passphrase',
      emailVerified: false,
      profile: { name: 'The Owner' },
    });
    const before = await server.container.db.db
      .selectFrom('accounts')
      .selectAll()
      .where('id', '=', owner.id)
      .executeTakeFirstOrThrow();
    const count = async () =>
      Number(
        (
          await server.container.db.db
            .selectFrom('accounts')
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    const accounts = await count();

    const existing = await register(visitor(), { email: 'Owner@Example.com', name: 'Intruder' });
    const fresh = await register(visitor(), { email: 'newcomer@example.com', name: 'Intruder' });
    const normalise = (page: Page, email: string) =>
      page.text
        .replaceAll(email, 'EMAIL')
        .replace(/\/interaction\/[^/"]+/g, '/interaction/UID')
        .replace(/name="csrf" value="[^"]*"/g, 'name="csrf" value="CSRF"');
    expect(existing.answer.status).toBe(fresh.answer.status);
    expect(normalise(existing.answer, 'Owner@Example.com')).toBe(normalise(fresh.answer, 'newcomer@example.com'));
    expect(existing.answer.headers.getSetCookie().length).toBe(fresh.answer.headers.getSetCookie().length);

    const notice = await mailTo('owner@example.com', /Someone tried to register/);
    expect(notice.source).toContain('Your account has not been changed');
    await mailTo('newcomer@example.com', /Confirm your email address/);
    expect(
      smtp.received.filter(
        (m) => m.to.includes('Owner@Example.com') || (m.to.includes('owner@example.com') && /Confirm/.test(m.subject)),
      ),
    ).toEqual([]);

    const after = await server.container.db.db
      .selectFrom('accounts')
      .selectAll()
      .where('id', '=', owner.id)
      .executeTakeFirstOrThrow();
    expect(after).toEqual(before);
    expect(await events('registration.existing_email', owner.id)).toHaveLength(1);
    expect(await count()).toBe(accounts + 1); // the newcomer only
    // The owner's password still works (and the intruder's does not).
    const refused = await signIn(visitor(), config, { username: 'owner@example.com', password: PASSWORD }).catch(
      (e: Error) => e,
    );
    expect(refused).toBeInstanceOf(Error);
  });

  it('an unverified account is refused at sign-in with a page that sends a new link, silently limited', async () => {
    const email = 'late.person@example.com';
    await register(visitor(), { email });
    await mailTo(email, /Confirm your email address/);

    const browser = visitor();
    const { page } = await startAuthorization(browser, config);
    const refused = await browser.submit(page, '/login', { username: email, password: PASSWORD });
    expect(refused.status).toBe(403);
    expect(refused.text).toContain('Confirm your email address');
    expect(refused.text).toContain('/resend');
    expect(await events('login.unverified')).not.toHaveLength(0);

    let current = refused;
    for (let i = 0; i < 4; i++) {
      current = await browser.submit(current, '/resend');
      expect(current.status).toBe(403);
      expect(current.text).toContain('A new message is on its way');
    }
    // 3 resends an hour: the 4th answered alike and sent nothing.
    await mailTo(email, /Confirm your email address/, 4);
    await new Promise((r) => setTimeout(r, 1500));
    const mails = smtp.received.filter((m) => m.to.includes(email));
    expect(mails).toHaveLength(4);

    // Only the newest link works (each new one ends the earlier ones); with it the account is verified.
    const pages = await Promise.all(
      mails.map(async (m) => ({ link: linkIn(m), page: await visitor().get(linkIn(m)) })),
    );
    const usable = pages.filter((p) => p.page.status === 200);
    expect(usable).toHaveLength(1);
    expect(pages.filter((p) => p.page.status === 410)).toHaveLength(3);
    const confirm = await browser.get(usable[0]!.link);
    expect((await browser.submit(confirm, '/verify-email')).text).toContain('Email address confirmed');
    const signedIn = await browser.submit(refused, '/continue');
    expect(signedIn.url.startsWith(REDIRECT_URI)).toBe(true);
  });

  it('postern user create --email-verified may sign in; without it the account must verify first', async () => {
    await signIn(visitor(), config, { username: 'admin-verified', password: PASSWORD });
    const browser = visitor();
    const { page } = await startAuthorization(browser, config);
    const refused = await browser.submit(page, '/login', { username: 'admin-plain', password: PASSWORD });
    expect(refused.status).toBe(403);
    expect(refused.text).toContain('Confirm your email address');
    await browser.submit(refused, '/resend');
    const code = codeIn(await mailTo('admin-plain@example.com', /Confirm your email address/));
    const codePage = await browser.get(
      new URL(/href="([^"]*\/verify-code)"/.exec(refused.text)![1]!, refused.url).href,
    );
    const back = await browser.submit(codePage, '/verify-code', { code });
    expect(back.url.startsWith(REDIRECT_URI)).toBe(true);
  });

  it('a fourth registration from one address in an hour is answered 429 with Retry-After', async () => {
    const ip = '10.9.9.9';
    for (let i = 0; i < 3; i++) {
      const { answer } = await register(visitor(ip), { email: `limited-${i}@example.com` });
      expect(answer.status).toBe(200);
    }
    const { answer } = await register(visitor(ip), { email: 'limited-3@example.com' });
    expect(answer.status).toBe(429);
    const retryAfter = Number(answer.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(3000);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    const rows = await server.container.db.db
      .selectFrom('accounts')
      .select('email')
      .where('email', 'like', 'limited-%')
      .execute();
    expect(rows).toHaveLength(3);
    expect((await events('registration.throttled'))[0]?.details).toEqual({ scope: 'register_ip' });
  });

  it('a fourth registration naming one address in an hour is answered 429, whatever the client address', async () => {
    for (let i = 0; i < 3; i++) {
      const { answer } = await register(visitor(), { email: 'popular@example.com' });
      expect(answer.status).toBe(200);
    }
    const { answer } = await register(visitor(), { email: 'Popular@Example.com' });
    expect(answer.status).toBe(429);
    expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(3000);
  });

  it('the login page links to registration, and discovery lists create in prompt_values_supported', async () => {
    const { page } = await startAuthorization(visitor(), config);
    expect(page.text).toContain('Create an account');
    const metadata = (await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json()) as Record<
      string,
      unknown
    >;
    expect(metadata.prompt_values_supported).toEqual(expect.arrayContaining(['create', 'login', 'none', 'consent']));
  });
});

describe('registration off (the default)', () => {
  let closed: TestServer;
  beforeAll(async () => {
    closed = await startTestServer(
      db,
      { POSTERN_SMTP_URL: smtp.url, POSTERN_MAIL_FROM: 'no-reply@postern.test' },
      { shareDatabaseOf: server },
    );
  });
  afterAll(async () => {
    await closed?.close();
  });

  it('shows no sign-up link, serves no registration form, and refuses prompt=create', async () => {
    const offConfig = await discover(closed.issuer, 'app');
    const browser = newBrowser();
    const { page } = await startAuthorization(browser, offConfig);
    expect(page.text).not.toContain('Create an account');
    expect((await browser.get(page.url.replace(/\/?$/, '/register'))).status).toBe(404);
    const metadata = (await (await fetch(`${closed.issuer}/.well-known/openid-configuration`)).json()) as Record<
      string,
      unknown
    >;
    expect(metadata.prompt_values_supported).not.toContain('create');
    const created = await startAuthorization(newBrowser(), offConfig, { prompt: 'create' });
    expect(created.page.url.startsWith(REDIRECT_URI)).toBe(true);
    expect(new URL(created.page.url).searchParams.get('error')).toBe('invalid_request');
  });
});

describe('registration without SMTP (the embedded demo)', () => {
  // A database of its own: an instance with SMTP on a shared outbox could deliver the message instead.
  let demoDb: TestDatabase;
  let demo: TestServer;
  beforeAll(async () => {
    demoDb = await createTestDatabase();
    demo = await startTestServer(demoDb, { POSTERN_REGISTRATION: 'open', POSTERN_TRUST_PROXY: 'true' });
    await createPublicApp(demo);
  }, 60_000);
  afterAll(async () => {
    await demo?.close();
    await demoDb?.drop();
  });

  it('logs the verification mail with its link, which verifies the address', async () => {
    const demoConfig = await discover(demo.issuer, 'app');
    const browser = visitor();
    const { page } = await startAuthorization(browser, demoConfig);
    const form = await browser.get(new URL(registerHref(page), page.url).href);
    const answer = await browser.submit(form, '/register', { email: 'demo.person@example.com', password: PASSWORD });
    expect(answer.text).toContain('Check your inbox');
    const logged = () =>
      demo.logs.find((line) => line.includes('demo.person@example.com') && line.includes('/verify-email?token='));
    await waitUntil(() => logged() !== undefined, 20_000, 'the logged mail');
    const link = /https?:\/\/[^\s"\\]+\/verify-email\?token=[A-Za-z0-9_-]+/.exec(logged()!)![0];
    const done = await browser.submit(await browser.get(link), '/verify-email');
    expect(done.text).toContain('Email address confirmed');
  });
});
