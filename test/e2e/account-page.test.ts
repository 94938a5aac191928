import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type Browser, findForm, type Page } from '../support/browser.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import {
  discover,
  exchange,
  newBrowser,
  POST_LOGOUT_URI,
  REDIRECT_URI,
  signIn,
  startAuthorization,
} from '../support/relying-party.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { peopleOn } from '../support/setup.ts';
import { startTestSmtp, waitUntil, type TestSmtp } from '../support/smtp.ts';

// The account page (issue 13 §4) over HTTP, as people use it without JavaScript: a
// cookie-keeping browser, a web app (openid-client) holding refresh tokens, and a real SMTP
// server in this process receiving the mails.

const SCOPE = 'openid profile email offline_access';
let db: TestDatabase;
let smtp: TestSmtp;
let server: TestServer;
let app: oidc.Configuration;

beforeAll(async () => {
  db = await createTestDatabase();
  smtp = await startTestSmtp();
  server = await startTestServer(db, {
    POSTERN_SMTP_URL: smtp.url,
    POSTERN_MAIL_FROM: 'Postern <no-reply@example.com>',
    POSTERN_ACCOUNT_DELETION: 'on',
  });
  const { secret } = await server.container.clients.create({
    clientId: 'webapp',
    name: 'Web App',
    grantTypes: ['authorization_code', 'refresh_token'],
    redirectUris: [REDIRECT_URI],
    postLogoutRedirectUris: [POST_LOGOUT_URI],
    scope: SCOPE,
    firstParty: true,
  });
  app = await discover(server.issuer, 'webapp', secret);
});

afterAll(async () => {
  await server?.close();
  await smtp?.stop();
  await db?.drop();
});

const newPerson = peopleOn(() => server, 'person');

type Person = Awaited<ReturnType<typeof newPerson>>;

/** Signs in at the web app in `browser` (a new one by default): its tokens, offline_access included. */
async function signInAtApp(person: Person, browser: Browser = newBrowser()) {
  const tokens = await exchange(app, await signIn(browser, app, person, { scope: SCOPE }));
  return { browser, tokens };
}

/** The account page in this browser, signing in on the way when it asks. */
async function accountPage(browser: Browser, person?: Person): Promise<Page> {
  let page = await browser.get(`${server.issuer}/account`);
  if (page.url.includes('/interaction/') && person) page = await browser.submit(page, '/login', person);
  return page;
}

const userinfo = (tokens: oidc.TokenEndpointResponse, sub: string) => oidc.fetchUserInfo(app, tokens.access_token, sub);

/** Whether a silent authorization (prompt=none) in this browser still finds a session. */
async function silentlySignedIn(browser: Browser): Promise<string | null> {
  const { page } = await startAuthorization(browser, app, { prompt: 'none' });
  const callback = new URL(page.url);
  expect(callback.href.startsWith(REDIRECT_URI)).toBe(true);
  return callback.searchParams.get('error');
}

const mailsTo = (address: string) => smtp.received.filter((m) => m.to.includes(address));

describe('the account page', () => {
  it('sends a signed-out visitor to sign in, then back to the account page', async () => {
    const person = await newPerson();
    const browser = newBrowser();
    const first = await browser.get(`${server.issuer}/account`);
    expect(first.url).toContain('/interaction/');
    expect(first.text).toContain('name="password"');
    const page = await browser.submit(first, '/login', person);
    expect(page.url).toBe(`${server.issuer}/account`);
    expect(page.status).toBe(200);
    expect(page.text).toContain(`Signed in as ${person.username}`);
  });

  it('is published in discovery as account_management_uri', async () => {
    expect(app.serverMetadata().account_management_uri).toBe(`${server.issuer}/account`);
  });

  it('is linked from the login page for someone already signed in', async () => {
    const person = await newPerson();
    const { browser } = await signInAtApp(person);
    const { page } = await startAuthorization(browser, app, { prompt: 'login' });
    expect(page.text).toContain(`href="/account">Manage your account</a>`);
    const { page: signedOut } = await startAuthorization(newBrowser(), app);
    expect(signedOut.text).not.toContain('Manage your account');
  });

  it('saves a profile edit, which the app then reads from userinfo', async () => {
    const person = await newPerson();
    const { browser, tokens } = await signInAtApp(person);
    const page = await accountPage(browser);
    const saved = await browser.submit(page, '/account/profile', {
      name: 'Ada Lovelace',
      given_name: 'Ada',
      family_name: 'Lovelace',
      username: `${person.username}-ada`,
    });
    expect(saved.url).toBe(`${server.issuer}/account?done=profile`);
    expect(saved.text).toContain('Your profile was saved.');
    expect(await userinfo(tokens, person.id)).toMatchObject({
      sub: person.id,
      name: 'Ada Lovelace',
      given_name: 'Ada',
      family_name: 'Lovelace',
      preferred_username: `${person.username}-ada`,
    });
  });

  it('refuses a username that another account holds, with the error linked to the field', async () => {
    const person = await newPerson();
    const other = await newPerson();
    const { browser } = await signInAtApp(person);
    const refused = await browser.submit(await accountPage(browser), '/account/profile', {
      name: '',
      given_name: '',
      family_name: '',
      username: other.username,
    });
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('<a href="#username">this username is taken</a>');
    expect(refused.text).toContain('aria-describedby="username-error"');
    expect((await server.container.accounts.findById(person.id))?.username).toBe(person.username);
  });

  it('changes the email address only once the link mailed to the new address is used', async () => {
    const person = await newPerson();
    const { browser, tokens } = await signInAtApp(person);
    const newEmail = `new-${person.email}`;

    const wrong = await browser.submit(await accountPage(browser), '/account/email', {
      new_email: newEmail,
      email_password: 'not my password',
    });
    expect(wrong.status).toBe(400);
    expect(wrong.text).toContain('the password is not correct');

    const asked = await browser.submit(await accountPage(browser), '/account/email', {
      new_email: newEmail,
      email_password: person.password,
    });
    expect(asked.url).toBe(`${server.issuer}/account?done=email`);
    await waitUntil(() => mailsTo(newEmail).length === 1 && mailsTo(person.email).length === 1, 15_000, 'both mails');
    // The wrong password sent nothing: one mail each.
    const [confirmMail] = mailsTo(newEmail);
    const [notice] = mailsTo(person.email);
    expect(notice!.subject).toContain('is being changed');
    expect(notice!.source).toContain(newEmail);
    expect(notice!.source).not.toContain('/account/email/confirm');
    const link = new RegExp(`${server.issuer}/account/email/confirm\\?token=[\\w-]+`).exec(confirmMail!.source)?.[0];
    expect(link).toBeDefined();

    // Before the link is used (even opened), nothing has changed.
    const other = newBrowser();
    const confirmPage = await other.get(link!);
    expect(confirmPage.status).toBe(200);
    expect(confirmPage.text).toContain(newEmail);
    expect(await userinfo(tokens, person.id)).toMatchObject({ email: person.email, email_verified: false });

    const done = await other.submit(confirmPage, '/account/email/confirm');
    expect(done.status).toBe(200);
    expect(done.text).toContain('Your email address was changed');
    expect(await userinfo(tokens, person.id)).toMatchObject({ email: newEmail, email_verified: true });

    const again = await other.get(link!);
    expect(again.status).toBe(410);
  });

  it('refuses a password change with the wrong current password, and changes nothing', async () => {
    const person = await newPerson();
    const { browser } = await signInAtApp(person);
    const refused = await browser.submit(await accountPage(browser), '/account/password', {
      current_password: 'not my password',
      new_password: 'a brand new passphrase',
    });
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('<a href="#current_password">the password is not correct</a>');
    await signIn(newBrowser(), app, person);
  });

  it('ends the sessions of other browsers on a password change, and keeps this one', async () => {
    const person = await newPerson();
    const here = await signInAtApp(person);
    const there = await signInAtApp(person);
    const changed = await here.browser.submit(await accountPage(here.browser), '/account/password', {
      current_password: person.password,
      new_password: 'a brand new passphrase',
    });
    expect(changed.url).toBe(`${server.issuer}/account?done=password`);
    expect(await silentlySignedIn(there.browser)).toBe('login_required');
    await expect(oidc.refreshTokenGrant(app, there.tokens.refresh_token!)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
    expect(await silentlySignedIn(here.browser)).toBeNull();
    await oidc.refreshTokenGrant(app, here.tokens.refresh_token!);
    await expect(signIn(newBrowser(), app, person)).rejects.toThrow(/did not come back/);
    await signIn(newBrowser(), app, { ...person, password: 'a brand new passphrase' });
  });

  it('mails the owner that the password was changed, with a link to reset it', async () => {
    const person = await newPerson();
    const { browser } = await signInAtApp(person);
    const changed = await browser.submit(await accountPage(browser), '/account/password', {
      current_password: person.password,
      new_password: 'a brand new passphrase',
    });
    expect(changed.url).toBe(`${server.issuer}/account?done=password`);
    await waitUntil(() => mailsTo(person.email).length === 1, 15_000, 'the password-changed mail');
    const [notice] = mailsTo(person.email);
    expect(notice!.subject).toContain('password was changed');
    expect(notice!.source).toContain(`${server.issuer}/forgot-password`);
    expect(notice!.source).not.toContain('a brand new passphrase');
  });

  it('lists the sessions with device, address and times, and "sign out everywhere else" ends the others only', async () => {
    const person = await newPerson();
    const here = await signInAtApp(person);
    const there = newBrowser();
    there.headers = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0' };
    const other = await signInAtApp(person, there);
    const page = await accountPage(here.browser);
    expect(page.text).toContain('Firefox on Linux');
    expect(page.text).toContain('This browser');
    expect(page.text).toContain('127.0.0.1');
    expect(page.text.match(/action="\/account\/sessions\/sign-out"/g)).toHaveLength(2);

    const done = await here.browser.submit(page, '/account/sessions/sign-out-others');
    expect(done.url).toBe(`${server.issuer}/account?done=others`);
    expect(await silentlySignedIn(other.browser)).toBe('login_required');
    await expect(oidc.refreshTokenGrant(app, other.tokens.refresh_token!)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
    expect(await silentlySignedIn(here.browser)).toBeNull();
    await oidc.refreshTokenGrant(app, here.tokens.refresh_token!);
    expect(done.text).not.toContain('Firefox on Linux');
  });

  it('signs one session out with its own button', async () => {
    const person = await newPerson();
    const here = await signInAtApp(person);
    const there = newBrowser();
    there.headers = { 'user-agent': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0 Safari/537.36' };
    await signInAtApp(person, there);
    const page = await accountPage(here.browser);
    const row = page.text.split('<li class="row">').find((r) => r.includes('Chrome on Windows'))!;
    const done = await here.browser.submit({ ...page, text: row }, '/account/sessions/sign-out');
    expect(done.url).toBe(`${server.issuer}/account?done=session`);
    expect(await silentlySignedIn(there)).toBe('login_required');
    expect(await silentlySignedIn(here.browser)).toBeNull();
  });

  it('revokes a connected app, whose refresh token then fails', async () => {
    const person = await newPerson();
    const { browser, tokens } = await signInAtApp(person);
    const fresh = await oidc.refreshTokenGrant(app, tokens.refresh_token!);
    const page = await accountPage(browser);
    expect(page.text).toContain('Web App');
    const row = page.text.split('<li class="row">').find((r) => r.includes('value="webapp"'))!;
    const done = await browser.submit({ ...page, text: row }, '/account/apps/revoke');
    expect(done.url).toBe(`${server.issuer}/account?done=app`);
    expect(done.text).not.toContain('value="webapp"');
    await expect(oidc.refreshTokenGrant(app, fresh.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it("refuses a form posted without the token bound to this browser's session", async () => {
    const person = await newPerson();
    const mine = await signInAtApp(person);
    const theirs = await signInAtApp(await newPerson());
    const form = findForm((await accountPage(mine.browser)).text, '/account/profile');
    const profile = { name: 'Mallory', given_name: '', family_name: '', username: person.username };
    const missing = await mine.browser.request(`${server.issuer}/account/profile`, { form: profile });
    expect(missing.status).toBe(403);
    // A valid token of another person's session is no better.
    const foreign = findForm((await accountPage(theirs.browser)).text, '/account/profile').fields.csrf!;
    const crossed = await mine.browser.request(`${server.issuer}/account/profile`, {
      form: { ...profile, csrf: foreign },
    });
    expect(crossed.status).toBe(403);
    expect((await server.container.accounts.findById(person.id))?.profile.name).toBeUndefined();
    const accepted = await mine.browser.request(`${server.issuer}/account/profile`, {
      form: { ...profile, csrf: form.fields.csrf! },
    });
    expect(accepted.url).toBe(`${server.issuer}/account?done=profile`);
  });

  it('deletes the account with its password, and keeps its audit trail pseudonymised', async () => {
    const person = await newPerson();
    const { browser, tokens } = await signInAtApp(person);
    const page = await accountPage(browser);
    const wrong = await browser.submit(page, '/account/delete', { delete_password: 'not my password' });
    expect(wrong.status).toBe(400);
    expect(await server.container.accounts.findById(person.id)).toBeDefined();

    const deleted = await browser.submit(page, '/account/delete', { delete_password: person.password });
    expect(deleted.status).toBe(200);
    expect(deleted.text).toContain('Your account was deleted');
    expect(await server.container.accounts.findById(person.id)).toBeUndefined();
    await expect(oidc.refreshTokenGrant(app, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await server.container.audit.flush();
    const trail = await server.container.audit.query({ accountId: person.id });
    expect(trail.map((e) => e.type)).toEqual(expect.arrayContaining(['account.created', 'account.deleted']));
    const text = JSON.stringify(trail);
    expect(text).not.toContain(person.username);
    expect(text).not.toContain(person.email);
    expect(trail.find((e) => e.type === 'account.created')?.details).toEqual({ username: '[deleted]' });
  });

  it('writes an audit event for every change', async () => {
    const person = await newPerson();
    const { browser } = await signInAtApp(person);
    await signInAtApp(person);
    let page = await accountPage(browser);
    page = await browser.submit(page, '/account/profile', {
      name: 'N',
      given_name: '',
      family_name: '',
      username: person.username,
    });
    page = await browser.submit(page, '/account/sessions/sign-out-others');
    await browser.submit(page, '/account/apps/revoke');
    await server.container.audit.flush();
    const types = (await server.container.audit.query({ accountId: person.id })).map((e) => e.type);
    expect(types).toEqual(
      expect.arrayContaining(['account.profile_updated', 'account.session_ended', 'account.app_revoked']),
    );
  });
});

describe('the account page without deletion', () => {
  it('offers no deletion, and its address answers 404', async () => {
    const other = await createTestDatabase();
    const plain = await startTestServer(other);
    try {
      const person = { username: 'plain', email: 'plain@example.com', password: 'a plain passphrase' };
      await plain.container.accounts.create(person);
      const browser = newBrowser();
      let page = await browser.get(`${plain.issuer}/account`);
      page = await browser.submit(page, '/login', person);
      expect(page.url).toBe(`${plain.issuer}/account`);
      expect(page.text).not.toContain('/account/delete');
      const csrf = findForm(page.text, '/account/profile').fields.csrf!;
      const refused = await browser.request(`${plain.issuer}/account/delete`, {
        form: { csrf, delete_password: person.password },
      });
      expect(refused.status).toBe(404);
      expect(await plain.container.accounts.findByLogin('plain')).toBeDefined();
    } finally {
      await plain.close();
      await other.drop();
    }
  });
});
