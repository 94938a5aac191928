import type { Kysely } from 'kysely';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Database } from '../../src/db/tables.ts';
import type { Browser } from '../support/browser.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { mailEnv, nextMail } from '../support/mailbox.ts';
import {
  backAtApp,
  discover,
  exchange,
  newBrowser,
  passwordAt,
  REDIRECT_URI,
  startAuthorization,
} from '../support/relying-party.ts';
import { createTestClock, startTestServer, type TestServer } from '../support/server.ts';
import { createMfaRequiredApp, peopleOn } from '../support/setup.ts';
import { startTestSmtp, type TestSmtp } from '../support/smtp.ts';
import { enrollOnAccountPage as enrollTotp, recoveryCodesOn, secretOn, totpCode } from '../support/totp.ts';

// The review of the merged MFA work (issue 14): changing factors asks for the password and
// mails the owner; the account page's password checks are counted; the writes are atomic;
// a shown secret expires; the success is recorded only when every step was given; step-up
// answers only urn:postern:mfa, with login_required under prompt=none; a remembered device
// follows the current POSTERN_MFA_REMEMBER_DAYS.

let db: TestDatabase;
let smtp: TestSmtp;
let server: TestServer;
let app: oidc.Configuration;
let webSecret: string;
let strict: oidc.Configuration;
const clock = createTestClock();
const ENV = { POSTERN_MFA_REMEMBER_DAYS: '30', POSTERN_ACCOUNT_LOCKOUT_THRESHOLD: '6' };

beforeAll(async () => {
  db = await createTestDatabase();
  smtp = await startTestSmtp();
  server = await startTestServer(db, { ...mailEnv(smtp), ...ENV }, { clock });
  const { clients } = server.container;
  const web = await clients.create({
    clientId: 'webapp',
    grantTypes: ['authorization_code'],
    redirectUris: [REDIRECT_URI],
    scope: 'openid profile email',
    firstParty: true,
  });
  webSecret = web.secret!;
  app = await discover(server.issuer, 'webapp', webSecret);
  strict = await discover(server.issuer, 'payroll', await createMfaRequiredApp(server));
});

afterAll(async () => {
  await server?.close();
  await smtp?.stop();
  await db?.drop();
});

const newPerson = peopleOn(() => server, 'hard');
type Person = Awaited<ReturnType<typeof newPerson>>;

const rows = () => server.container.db.db as Kysely<Database>;
const codeFor = (secret: string) => totpCode(secret, clock.now());
const otherThan = (code: string) => (code === '000000' ? '111111' : '000000');
/** Audit events are written in the background: wait for those in flight, then read them. */
async function auditEvents(query: Parameters<TestServer['container']['audit']['query']>[0]) {
  await server.container.audit.flush();
  return server.container.audit.query(query);
}
const types = async (accountId: string) => (await auditEvents({ accountId })).map((e) => e.type as string);

async function enrolled(person: Person, browser: Browser = newBrowser()) {
  const result = await enrollTotp(server.issuer, browser, person, () => clock.now());
  clock.advance(30); // the next code is of a new step (RFC 6238 §5.2 refuses a replay)
  return { browser, ...result };
}

/** Signed in at the account page (password only), on the setup page with a fresh secret. */
async function setupPage(person: Person, browser = newBrowser()) {
  let page = await browser.get(`${server.issuer}/account/two-factor`);
  page = await browser.submit(page, '/login', person);
  if (!page.url.endsWith('/account/two-factor')) page = await browser.get(`${server.issuer}/account/two-factor`);
  page = await browser.submit(page, '/account/two-factor/totp');
  return { browser, page, secret: secretOn(page) };
}

describe('changing factors on the account page', () => {
  it('setting up an authenticator app needs the current password, and the owner is mailed', async () => {
    const person = await newPerson();
    const { browser, page, secret } = await setupPage(person);
    expect(page.text).toContain('name="password"');
    const refused = await browser.submit(page, '/totp/confirm', { code: codeFor(secret), password: 'not mine' });
    expect(refused.status).toBe(400);
    expect(await server.container.mfa.status(person.id)).toMatchObject({ totp: false });
    const done = await browser.submit(refused, '/totp/confirm', { code: codeFor(secret), password: person.password });
    expect(recoveryCodesOn(done)).toHaveLength(10);
    await nextMail(smtp, person.email, 'An authenticator app was set up');
  });

  it('new recovery codes need a valid code besides the password; making them and turning TOTP off are mailed', async () => {
    const person = await newPerson();
    const { browser, secret } = await enrolled(person);
    let page = await browser.get(`${server.issuer}/account/two-factor`);
    const noCode = await browser.submit(page, '/two-factor/recovery-codes', {
      codes_password: person.password,
      codes_code: otherThan(codeFor(secret)),
    });
    expect(noCode.status).toBe(400);
    expect(noCode.text).toContain('the code is not correct');
    const fresh = await browser.submit(page, '/two-factor/recovery-codes', {
      codes_password: person.password,
      codes_code: codeFor(secret),
    });
    expect(recoveryCodesOn(fresh)).toHaveLength(10);
    await nextMail(smtp, person.email, 'New recovery codes were made');
    clock.advance(30);
    page = await browser.get(`${server.issuer}/account/two-factor`);
    await browser.submit(page, '/two-factor/disable', {
      disable_password: person.password,
      disable_code: codeFor(secret),
    });
    await nextMail(smtp, person.email, 'Two-step verification was turned off');
  });

  it('wrong passwords on the account page count in the account lockout: past the threshold even the right one is refused', async () => {
    const person = await newPerson();
    const { browser, secret } = await enrolled(person);
    const page = await browser.get(`${server.issuer}/account/two-factor`);
    for (let i = 0; i < 6; i += 1) {
      const wrong = await browser.submit(page, '/two-factor/recovery-codes', {
        codes_password: `guess ${i}`,
        codes_code: '000000',
      });
      expect(wrong.text).toContain('the password is not correct');
    }
    const right = await browser.submit(page, '/two-factor/recovery-codes', {
      codes_password: person.password,
      codes_code: codeFor(secret),
    });
    expect(right.status).toBe(400);
    expect(right.text).toContain('too many wrong passwords');
    const locks = await auditEvents({ type: 'lockout.started', accountId: person.id });
    expect(locks).toMatchObject([{ details: { scope: 'account' } }]);
  });

  it('the change-password form counts wrong current passwords in the same lockout', async () => {
    const person = await newPerson();
    const { browser } = await setupPage(person);
    const page = await browser.get(`${server.issuer}/account`);
    const form = { current_password: 'wrong', new_password: 'a brand new passphrase' };
    for (let i = 0; i < 6; i += 1) await browser.submit(page, '/account/password', form);
    const right = await browser.submit(page, '/account/password', { ...form, current_password: person.password });
    expect(right.status).toBe(400);
    expect(right.text).toContain('too many wrong passwords');
  });

  it('new sets of recovery codes asked at once leave ten valid codes, not twenty or more', async () => {
    const person = await newPerson();
    const { browser, secret } = await enrolled(person);
    const page = await browser.get(`${server.issuer}/account/two-factor`);
    // A TOTP code is accepted once, so the submits carry different recovery codes.
    const codes = (await server.container.mfa.regenerateRecoveryCodes(
      person.id,
      { password: person.password, code: codeFor(secret) },
      {},
    )) as string[];
    await Promise.all(
      codes
        .slice(0, 8)
        .map((code) =>
          browser.submit(page, '/two-factor/recovery-codes', { codes_password: person.password, codes_code: code }),
        ),
    );
    expect((await server.container.mfa.status(person.id)).recoveryCodesLeft).toBe(10);
  });

  it('a secret shown and not confirmed within 15 minutes can no longer be confirmed, and the sweeper drops it', async () => {
    const person = await newPerson();
    const { browser, page, secret } = await setupPage(person);
    clock.advance(16 * 60);
    const late = await browser.submit(page, '/totp/confirm', { code: codeFor(secret), password: person.password });
    expect(late.status).toBe(400);
    expect(await server.container.mfa.status(person.id)).toMatchObject({ totp: false });
    // The page now shows another secret: the old one is not offered again.
    expect(secretOn(late)).not.toBe(secret);
    clock.advance(16 * 60);
    expect(await server.container.mfa.sweep(clock.now())).toBeGreaterThanOrEqual(1);
    const left = await rows()
      .selectFrom('totp_factors')
      .select('account_id')
      .where('account_id', '=', person.id)
      .execute();
    expect(left).toEqual([]);
  });

  it('confirming compares-and-sets the very secret the code was checked against', async () => {
    const person = await newPerson();
    const { mfa } = server.container;
    await mfa.startTotp(person.id);
    const sealedFirst = await rows()
      .selectFrom('totp_factors')
      .select('secret_sealed')
      .where('account_id', '=', person.id)
      .executeTakeFirstOrThrow();
    // Another page starts a new secret between the check and the write: the first one's code must not confirm it.
    await mfa.startTotp(person.id);
    const { acceptTotpStep } = await import('../../src/accounts/mfa.repository.ts');
    const accepted = await acceptTotpStep(rows(), person.id, Math.floor(clock.now().getTime() / 30_000), clock.now(), {
      secretSealed: sealedFirst.secret_sealed,
      confirming: true,
      createdAfter: new Date(clock.now().getTime() - 60_000),
    });
    expect(accepted).toBe(false);
  });
});

describe('the sign-in record', () => {
  it('after the password only login.password_ok is recorded; login.succeeded and last_login_at wait for the code', async () => {
    const person = await newPerson();
    const { secret } = await enrolled(person);
    const before = await rows()
      .selectFrom('accounts')
      .select('last_login_at')
      .where('id', '=', person.id)
      .executeTakeFirstOrThrow();
    const started = await passwordAt(app, person);
    expect(started.page.text).toContain('/mfa"');
    const midway = (await types(person.id)).filter((t) => t.startsWith('login.'));
    expect(midway.filter((t) => t === 'login.succeeded')).toHaveLength(1); // the account page's, from enrolling
    expect(midway).toContain('login.password_ok');
    const during = await rows()
      .selectFrom('accounts')
      .select('last_login_at')
      .where('id', '=', person.id)
      .executeTakeFirstOrThrow();
    expect(during.last_login_at).toEqual(before.last_login_at);
    backAtApp(started, await started.browser.submit(started.page, '/mfa', { code: codeFor(secret) }));
    const succeeded = await auditEvents({ type: 'login.succeeded', accountId: person.id });
    expect(succeeded).toHaveLength(2);
    expect(succeeded.some((e) => e.details.second_factor === 'otp')).toBe(true);
  });

  it('a sign-in that asks no second factor writes login.succeeded only, no login.password_ok', async () => {
    const person = await newPerson();
    const started = await passwordAt(app, person);
    expect(started.page.text).not.toContain('/mfa"');
    const logins = (await types(person.id)).filter((t) => t.startsWith('login.'));
    expect(logins).toEqual(['login.succeeded']);
  });

  it('the trusted-device cookie is given only once the second factor is', async () => {
    const person = await newPerson();
    const { secret } = await enrolled(person);
    const started = await passwordAt(app, person);
    expect(started.browser.cookies.has('postern_device')).toBe(false);
    backAtApp(started, await started.browser.submit(started.page, '/mfa', { code: codeFor(secret) }));
    expect(started.browser.cookies.has('postern_device')).toBe(true);
  });
});

describe('step-up', () => {
  it('prompt=none at a --require-mfa client with a password-only session answers login_required', async () => {
    const person = await newPerson();
    const browser = newBrowser();
    const first = await passwordAt(app, person, browser);
    backAtApp(first, first.page);
    const silent = await startAuthorization(browser, strict, { prompt: 'none' });
    const back = new URL(silent.page.url);
    expect(back.href.startsWith(REDIRECT_URI)).toBe(true);
    expect(back.searchParams.get('error')).toBe('login_required');
  });

  it('max_age asks for the password and then the second factor again; the new ID token says so', async () => {
    const person = await newPerson();
    const browser = newBrowser();
    const { secret } = await enrolled(person);
    const first = await passwordAt(app, person, browser);
    backAtApp(first, await browser.submit(first.page, '/mfa', { code: codeFor(secret) }));
    clock.advance(30);
    // The engine reads the real clock for auth_time: the session is over a second old after this.
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const again = await startAuthorization(browser, app, { max_age: '1' });
    expect(again.page.text).toContain('name="password"');
    const second = await browser.submit(again.page, '/login', person);
    expect(second.text).toContain('/mfa"');
    const back = await browser.submit(second, '/mfa', { code: codeFor(secret) });
    const claims = (await exchange(app, backAtApp(again, back))).claims()!;
    expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp']));
    expect(claims.acr).toBe('urn:postern:mfa');
  });

  it('a remembered device still gets the code at a --require-mfa client and with acr_values=urn:postern:mfa', async () => {
    const person = await newPerson();
    const browser = newBrowser();
    const { secret } = await enrolled(person);
    const first = await passwordAt(app, person, browser);
    backAtApp(first, await browser.submit(first.page, '/mfa', { code: codeFor(secret), remember_device: 'yes' }));
    const forget = () => {
      for (const name of [...browser.cookies.keys()]) if (!name.startsWith('postern_')) browser.cookies.delete(name);
    };
    forget();
    const plain = await passwordAt(app, person, browser);
    backAtApp(plain, plain.page); // remembered: no code at an ordinary client
    forget();
    expect((await passwordAt(strict, person, browser)).page.text).toContain('/mfa"');
    forget();
    expect((await passwordAt(app, person, browser, { acr_values: 'urn:postern:mfa' })).page.text).toContain('/mfa"');
  });

  it('setting up during a step-up asks for the password again, then signs in with acr urn:postern:mfa', async () => {
    const person = await newPerson();
    const browser = newBrowser();
    const first = await passwordAt(app, person, browser);
    backAtApp(first, first.page);
    const started = await startAuthorization(browser, strict);
    expect(started.page.text).toContain('Set up two-step verification');
    expect(started.page.text).toContain('name="password"');
    const secret = secretOn(started.page);
    const refused = await browser.submit(started.page, '/mfa/enroll', { code: codeFor(secret), password: 'nope' });
    expect(refused.status).toBe(400);
    expect(await server.container.mfa.status(person.id)).toMatchObject({ totp: false });
    let page = await browser.submit(refused, '/mfa/enroll', { code: codeFor(secret), password: person.password });
    expect(recoveryCodesOn(page)).toHaveLength(10);
    page = await browser.submit(page, '/mfa/continue');
    const claims = (await exchange(strict, backAtApp(started, page))).claims()!;
    expect(claims.acr).toBe('urn:postern:mfa');
    expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp']));
  });
});

describe('the pending second step', () => {
  it('the cookie of one interaction does not carry the password into another', async () => {
    const person = await newPerson();
    const { secret } = await enrolled(person);
    const browser = newBrowser();
    await passwordAt(app, person, browser);
    // Played by hand: the first interaction's pending cookie, sent to every path.
    for (const name of ['postern_mfa', 'postern_mfa.sig']) browser.cookies.get(name)!.path = '/';
    const other = await startAuthorization(browser, app);
    const uid = /\/interaction\/([^/"?]+)/.exec(other.page.url)![1]!;
    const csrf = /name="csrf" value="([^"]+)"/.exec(other.page.text)![1]!;
    const page = await browser.request(`${server.issuer}/interaction/${uid}/mfa`, {
      form: { csrf, code: codeFor(secret) },
    });
    expect(page.url.startsWith(REDIRECT_URI)).toBe(false);
    expect(page.text).toContain('name="password"');
  });

  it('/mfa/continue without setting anything up signs nobody in', async () => {
    const person = await newPerson();
    await enrolled(person);
    const started = await passwordAt(app, person);
    const uid = /\/interaction\/([^/"?]+)/.exec(started.page.url)![1]!;
    const csrf = /name="csrf" value="([^"]+)"/.exec(started.page.text)![1]!;
    const page = await started.browser.request(`${server.issuer}/interaction/${uid}/mfa/continue`, { form: { csrf } });
    expect(page.url.startsWith(REDIRECT_URI)).toBe(false);
    expect(page.text).toContain('name="password"');
  });
});

describe('remembered devices', () => {
  it('lowering POSTERN_MFA_REMEMBER_DAYS ends passes given under the longer setting', async () => {
    const person = await newPerson();
    const browser = newBrowser();
    const { secret } = await enrolled(person);
    const first = await passwordAt(app, person, browser);
    backAtApp(first, await browser.submit(first.page, '/mfa', { code: codeFor(secret), remember_device: 'yes' }));
    clock.advance(2 * 86400);
    const shorter = await startTestServer(
      db,
      { ...mailEnv(smtp), ...ENV, POSTERN_MFA_REMEMBER_DAYS: '1' },
      db.engine === 'pglite' ? { shareDatabaseOf: server, clock } : { clock },
    );
    try {
      const config = await discover(shorter.issuer, 'webapp', webSecret);
      for (const name of [...browser.cookies.keys()]) if (!name.startsWith('postern_')) browser.cookies.delete(name);
      const started = await startAuthorization(browser, config);
      const page = await browser.submit(started.page, '/login', person);
      expect(page.text).toContain('/mfa"');
    } finally {
      await shorter.close();
    }
  });
});
