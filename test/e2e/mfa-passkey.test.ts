import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Browser, findForm, type Page } from '../support/browser.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { mailEnv, mailsTo, nextMail } from '../support/mailbox.ts';
import {
  backAtApp as callbackOf,
  discover,
  exchange,
  REDIRECT_URI,
  type StartedAuthorization,
  startAuthorization,
} from '../support/relying-party.ts';
import { createTestClock, freePort, startTestServer, type TestServer } from '../support/server.ts';
import { peopleOn } from '../support/setup.ts';
import { startTestSmtp, type TestSmtp } from '../support/smtp.ts';
import { createSoftwarePasskey, type SoftwarePasskey } from '../support/software-authenticator.ts';
import { enrollOnAccountPage, recoveryCodesOn, totpCode } from '../support/totp.ts';

// Passkeys as a second factor, and the enrollment pages' guard (review of issue 14, finding 1),
// over HTTP without a browser: a software authenticator (test/support/software-authenticator.ts)
// answers as @simplewebauthn/browser would, and a web app (openid-client) reads amr and acr.
// The issuer is http://localhost:PORT, as WebAuthn takes no IP address as RP ID.

const MFA = { acr_values: 'urn:postern:mfa' };
let db: TestDatabase;
let smtp: TestSmtp;
let server: TestServer;
let app: oidc.Configuration;
let origin: string;
const clock = createTestClock();

/** A server at http://localhost:PORT on `database`, with the web app; sets server, origin and app. */
async function startSite(database: TestDatabase, extra: Record<string, string> = {}): Promise<void> {
  const port = await freePort();
  origin = `http://localhost:${port}`;
  server = await startTestServer(
    database,
    { ...mailEnv(smtp), PORT: String(port), POSTERN_ISSUER: origin, ...extra },
    { clock },
  );
  const web = await server.container.clients.create({
    clientId: 'webapp',
    grantTypes: ['authorization_code'],
    redirectUris: [REDIRECT_URI],
    scope: 'openid profile email',
    firstParty: true,
  });
  app = await discover(server.issuer, 'webapp', web.secret);
}

beforeAll(async () => {
  db = await createTestDatabase();
  smtp = await startTestSmtp();
  await startSite(db);
});

afterAll(async () => {
  await server?.close();
  await smtp?.stop();
  await db?.drop();
});

/** A browser that reaches the http://localhost:PORT issuer where the server listens (127.0.0.1). */
function newLocalBrowser(): Browser {
  const browser = new Browser([REDIRECT_URI]);
  browser.transport = (url) => {
    const target = new URL(url);
    if (target.hostname === 'localhost') target.hostname = '127.0.0.1';
    return target;
  };
  return browser;
}

const newPerson = peopleOn(() => server, 'pk');
type Person = Awaited<ReturnType<typeof newPerson>>;

/** JSON options from the form's data-options endpoint, as views/assets/passkey.js fetches them. */
async function optionsFor(browser: Browser, page: Page, action: string, fields: Record<string, string> = {}) {
  const form = findForm(page.text, action);
  const response = await browser.request(new URL(`${form.action}/options`, page.url).href, {
    form: { ...form.fields, ...fields },
  });
  expect(response.status).toBe(200);
  return JSON.parse(response.text) as { challenge: string; user: { id: string } };
}

/** Adds a passkey on the account page as the script does: options (name, password), then the credential. */
async function addPasskey(person: Person): Promise<SoftwarePasskey> {
  const browser = newLocalBrowser();
  let page = await browser.get(`${server.issuer}/account`);
  if (page.url.includes('/interaction/')) page = await browser.submit(page, '/login', person);
  const fields = { passkey_name: 'Laptop', passkey_password: person.password };
  const options = await optionsFor(browser, page, '/account/passkeys', fields);
  const key = createSoftwarePasskey(new URL(origin).hostname);
  const done = await browser.submit(page, '/account/passkeys', {
    ...fields,
    credential: key.register(options, origin),
  });
  expect(done.text).toContain('Your passkey was added.');
  return key;
}

/** Up to the page after the password, asking for MFA with acr_values. */
async function passwordAsked(person: Person, params: Record<string, string> = MFA) {
  const browser = newLocalBrowser();
  const started = await startAuthorization(browser, app, params);
  const page = await browser.submit(started.page, '/login', person);
  return { ...started, page, browser };
}

async function usePasskey(browser: Browser, page: Page, key: SoftwarePasskey, flags = {}): Promise<Page> {
  const options = await optionsFor(browser, page, '/mfa/passkey');
  return browser.submit(page, '/mfa/passkey', { credential: key.assert(options, origin, flags) });
}

/** Back at the app after `started`, and its code exchanged. */
function backAtApp(started: Omit<StartedAuthorization, 'page'>, page: Page) {
  return exchange(app, callbackOf(started, page));
}

describe('a passkey as the second factor', () => {
  it('after the password, the second-factor page offers "Use a passkey"; the ID token says amr pwd+hwk+user+mfa and acr urn:postern:mfa', async () => {
    const person = await newPerson();
    const key = await addPasskey(person);
    const started = await passwordAsked(person);
    expect(started.page.text).toContain('data-passkey="second-factor"');
    expect(started.page.text).not.toContain('Code from your authenticator app');
    const back = await usePasskey(started.browser, started.page, key);
    const claims = (await backAtApp(started, back)).claims()!;
    expect(claims.acr).toBe('urn:postern:mfa');
    expect(claims.amr).toEqual(['pwd', 'hwk', 'user', 'mfa']);
  });

  it("another account's passkey is refused on the second step, and the sign-in stays there", async () => {
    const [person, other] = [await newPerson(), await newPerson()];
    await addPasskey(person);
    const othersKey = await addPasskey(other);
    const started = await passwordAsked(person);
    const refused = await usePasskey(started.browser, started.page, othersKey);
    expect(refused.status).toBe(401);
    expect(refused.text).toContain('That passkey did not work here.');
    expect(refused.url).toContain('/interaction/');
  });
});

describe('setting up TOTP during sign-in is only for whoever has no factor (finding 1)', () => {
  it('a passkey-only account: with its password, posting codes to /mfa/enroll and /mfa/continue neither shows a secret nor signs in', async () => {
    const person = await newPerson();
    await addPasskey(person);
    const { page, browser } = await passwordAsked(person);
    const uidPath = new URL(findForm(page.text, '/mfa/passkey').action, page.url).pathname.replace(
      /\/mfa\/passkey$/,
      '',
    );
    const csrf = findForm(page.text, '/mfa/passkey').fields.csrf!;
    const enroll = await browser.request(`${origin}${uidPath}/mfa/enroll`, { form: { csrf, code: '123456' } });
    expect(enroll.text).not.toContain('totp-secret');
    expect(enroll.text).toContain('data-passkey="second-factor"');
    const goOn = await browser.request(`${origin}${uidPath}/mfa/continue`, { form: { csrf } });
    expect(goOn.url).toContain('/interaction/');
    expect(goOn.url).not.toContain(REDIRECT_URI);
    // No secret was started for the account: its factors are still the passkey alone.
    expect(await server.container.mfa.methods(person.id)).toEqual(['passkey']);
    expect(await server.container.mfa.pendingTotp(person.id)).toBeUndefined();
  });

  it('a password-only session of a passkey-only account, asked to step up, cannot set up TOTP instead of using the passkey', async () => {
    const person = await newPerson();
    await addPasskey(person);
    const first = await passwordAsked(person, {});
    expect((await backAtApp(first, first.page)).claims()!.acr).toBe('urn:postern:pwd');
    const { page } = await startAuthorization(first.browser, app, MFA);
    expect(page.text).toContain('data-passkey="second-factor"');
    const uidPath = new URL(findForm(page.text, '/mfa/passkey').action, page.url).pathname.replace(
      /\/mfa\/passkey$/,
      '',
    );
    const csrf = findForm(page.text, '/mfa/passkey').fields.csrf!;
    const enroll = await first.browser.request(`${origin}${uidPath}/mfa/enroll`, { form: { csrf, code: '123456' } });
    expect(enroll.text).not.toContain('totp-secret');
    expect(await server.container.mfa.pendingTotp(person.id)).toBeUndefined();
  });

  it('a sign-in that was asked for a code cannot set up a new app, even after the factors were reset meanwhile', async () => {
    const person = await newPerson();
    await enrollOnAccountPage(server.issuer, newLocalBrowser(), person, () => clock.now());
    const { page, browser } = await passwordAsked(person, {});
    expect(page.text).toContain('Code from your authenticator app');
    await server.container.mfa.reset(person.id, { by: 'test' });
    const uidPath = new URL(findForm(page.text, '/mfa').action, page.url).pathname.replace(/\/mfa$/, '');
    const csrf = findForm(page.text, '/mfa').fields.csrf!;
    const enroll = await browser.request(`${origin}${uidPath}/mfa/enroll`, { form: { csrf, code: '000000' } });
    expect(enroll.text).not.toContain('totp-secret');
    expect(await server.container.mfa.pendingTotp(person.id)).toBeUndefined();
  });

  it('whoever must use MFA and has no factor still sets up TOTP and finishes signing in', async () => {
    const person = await newPerson();
    const started = await passwordAsked(person);
    expect(started.page.text).toContain('Set up two-step verification');
    const secret = /id="totp-secret">([^<]+)</.exec(started.page.text)![1]!.replace(/\s/g, '');
    let page = await started.browser.submit(started.page, '/mfa/enroll', { code: totpCode(secret, clock.now()) });
    expect(recoveryCodesOn(page)).toHaveLength(10);
    page = await started.browser.submit(page, '/mfa/continue');
    expect((await backAtApp(started, page)).claims()!.acr).toBe('urn:postern:mfa');
  });
});

describe('passwordless, step-up and reset', () => {
  it('a passwordless sign-in with user verification is MFA: acr_values urn:postern:mfa is met without a second page', async () => {
    const person = await newPerson();
    const key = await addPasskey(person);
    const browser = newLocalBrowser();
    const started = await startAuthorization(browser, app, MFA);
    const options = await optionsFor(browser, started.page, '/passkey');
    const back = await browser.submit(started.page, '/passkey', { credential: key.assert(options, origin) });
    const claims = (await backAtApp(started, back)).claims()!;
    expect(claims.amr).toEqual(['hwk', 'user', 'mfa']);
    expect(claims.acr).toBe('urn:postern:mfa');
  });

  it('a password-only session asked for MFA steps up with a passkey, not a new login', async () => {
    const person = await newPerson();
    const key = await addPasskey(person);
    const first = await passwordAsked(person, {});
    expect((await backAtApp(first, first.page)).claims()!.acr).toBe('urn:postern:pwd');
    const started = await startAuthorization(first.browser, app, MFA);
    expect(started.page.text).not.toContain('name="password"');
    const back = await usePasskey(first.browser, started.page, key);
    const claims = (await backAtApp(started, back)).claims()!;
    expect(claims.acr).toBe('urn:postern:mfa');
    expect(claims.amr).toEqual(['pwd', 'hwk', 'user', 'mfa']);
  });

  it('an MFA reset removes the passkeys too, in one mail: the passkey no longer signs in', async () => {
    const person = await newPerson();
    const key = await addPasskey(person);
    const { removed } = await server.container.mfa.reset(person.id, { by: 'test' });
    expect(removed).toBe(1);
    await nextMail(smtp, person.email, 'Two-step verification was reset');
    expect(mailsTo(smtp, person.email).filter((m) => m.source.includes('reset'))).toHaveLength(1);
    const browser = newLocalBrowser();
    const started = await startAuthorization(browser, app);
    const options = await optionsFor(browser, started.page, '/passkey');
    const refused = await browser.submit(started.page, '/passkey', { credential: key.assert(options, origin) });
    expect(refused.status).toBe(401);
    expect(refused.text).toContain('That passkey could not sign you in.');
    expect(await server.container.mfa.methods(person.id)).toEqual([]);
  });
});

describe('with POSTERN_PASSKEY_USER_VERIFICATION=preferred, a passkey that did not verify the person', () => {
  let lenientDb: TestDatabase;
  let saved: { server: TestServer; origin: string; app: oidc.Configuration };

  beforeAll(async () => {
    saved = { server, origin, app };
    lenientDb = await createTestDatabase();
    await startSite(lenientDb, { POSTERN_PASSKEY_USER_VERIFICATION: 'preferred' });
  });

  afterAll(async () => {
    await server?.close();
    await lenientDb?.drop();
    ({ server, origin, app } = saved);
  });

  it('signs in alone as one factor (amr hwk, acr urn:postern:pwd)', async () => {
    const person = await newPerson();
    const key = await addPasskey(person);
    const browser = newLocalBrowser();
    const started = await startAuthorization(browser, app);
    const options = await optionsFor(browser, started.page, '/passkey');
    const back = await browser.submit(started.page, '/passkey', {
      credential: key.assert(options, origin, { userVerified: false }),
    });
    const claims = (await backAtApp(started, back)).claims()!;
    expect(claims.amr).toEqual(['hwk']);
    expect(claims.acr).toBe('urn:postern:pwd');
  });

  it('does not meet acr_values urn:postern:mfa: the second-factor page follows, where only a verifying passkey completes it', async () => {
    const person = await newPerson();
    const key = await addPasskey(person);
    const browser = newLocalBrowser();
    const started = await startAuthorization(browser, app, MFA);
    const options = await optionsFor(browser, started.page, '/passkey');
    const page = await browser.submit(started.page, '/passkey', {
      credential: key.assert(options, origin, { userVerified: false }),
    });
    expect(page.url).toContain('/interaction/');
    expect(page.text).toContain('data-passkey="second-factor"');
    const again = await usePasskey(browser, page, key, { userVerified: false, counter: 0 });
    expect(again.status).toBe(401);
    const back = await usePasskey(browser, again, key, { userVerified: true });
    const claims = (await backAtApp(started, back)).claims()!;
    expect(claims.amr).toEqual(['hwk', 'user', 'mfa']);
    expect(claims.acr).toBe('urn:postern:mfa');
  });
});
