import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

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

// Multi-factor sign-in (issue 14) over HTTP, without JavaScript: TOTP set up on the account page,
// codes computed here with otpauth at the server's clock, a web app (openid-client) reading the
// ID token's amr and acr, and a real SMTP server receiving the mails.

const API = 'https://api.example.com';
let db: TestDatabase;
let smtp: TestSmtp;
let server: TestServer;
let app: oidc.Configuration;
let strict: oidc.Configuration;
const clock = createTestClock();

beforeAll(async () => {
  db = await createTestDatabase();
  smtp = await startTestSmtp();
  server = await startTestServer(
    db,
    { ...mailEnv(smtp), POSTERN_MFA_REQUIRED_ROLES: 'manager', POSTERN_MFA_REMEMBER_DAYS: '30' },
    { clock },
  );
  const { clients, resources } = server.container;
  await resources.create({ identifier: API, scopes: ['orders:read'], claims: ['amr', 'acr'] });
  const web = await clients.create({
    clientId: 'webapp',
    grantTypes: ['authorization_code', 'refresh_token'],
    redirectUris: [REDIRECT_URI],
    scope: 'openid profile email orders:read',
    resources: [API],
    firstParty: true,
  });
  app = await discover(server.issuer, 'webapp', web.secret);
  strict = await discover(server.issuer, 'payroll', await createMfaRequiredApp(server));
});

afterAll(async () => {
  await server?.close();
  await smtp?.stop();
  await db?.drop();
});

const newPerson = peopleOn(() => server, 'mfa');
type Person = Awaited<ReturnType<typeof newPerson>>;

const codeFor = (secret: string) => totpCode(secret, clock.now());

/** A step later, so that no code repeats between sign-ins (RFC 6238 §5.2 refuses a replay). */
function nextStep() {
  clock.advance(30);
}

async function enrollOnAccountPage(person: Person, browser: Browser = newBrowser()) {
  const enrolled = await enrollTotp(server.issuer, browser, person, () => clock.now());
  nextStep();
  return { browser, ...enrolled };
}

describe('TOTP', () => {
  it('set up on the account page, then asked after the password at an app: the ID token says amr pwd+otp and acr urn:postern:mfa', async () => {
    const person = await newPerson();
    const { secret } = await enrollOnAccountPage(person);
    const started = await passwordAt(app, person);
    expect(started.page.text).toContain('Two-step verification');
    expect(started.page.text).not.toContain('name="password"');
    const back = await started.browser.submit(started.page, '/mfa', { code: codeFor(secret) });
    const tokens = await exchange(app, backAtApp(started, back));
    const claims = tokens.claims()!;
    expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp', 'mfa']));
    expect(claims.acr).toBe('urn:postern:mfa');
  });

  it('a code already accepted is refused when given again (replay), even in its own 30 s window', async () => {
    const person = await newPerson();
    const { secret } = await enrollOnAccountPage(person);
    const code = codeFor(secret);
    const first = await passwordAt(app, person);
    backAtApp(first, await first.browser.submit(first.page, '/mfa', { code }));
    const second = await passwordAt(app, person);
    const refused = await second.browser.submit(second.page, '/mfa', { code });
    expect(refused.status).toBe(401);
    expect(refused.text).toContain('That code is not right');
  });

  it('wrong codes lock the second step after the lockout threshold: then even the right code is refused', async () => {
    const person = await newPerson();
    const { secret } = await enrollOnAccountPage(person);
    const started = await passwordAt(app, person);
    let page = started.page;
    const wrong = codeFor(secret) === '000000' ? '111111' : '000000';
    for (let i = 0; i < 5; i += 1) {
      page = await started.browser.submit(page, '/mfa', { code: wrong });
      expect(page.status).toBe(401);
    }
    page = await started.browser.submit(page, '/mfa', { code: codeFor(secret) });
    expect(page.status).toBe(429);
    expect(page.text).toContain('Too many wrong codes');
    await server.container.audit.flush(); // audit events are written in the background
    const events = await server.container.audit.query({ type: 'lockout.started', accountId: person.id });
    expect(events).toMatchObject([{ details: { scope: 'mfa_code' } }]);
  });

  it('a recovery code signs in once, its use is mailed to the owner, and a second use is refused', async () => {
    const person = await newPerson();
    const { codes } = await enrollOnAccountPage(person);
    const first = await passwordAt(app, person);
    const tokens = await exchange(
      app,
      backAtApp(first, await first.browser.submit(first.page, '/mfa', { code: codes[3]! })),
    );
    expect(tokens.claims()!.amr).toEqual(expect.arrayContaining(['pwd', 'otp']));
    const mail = await nextMail(smtp, person.email, 'A recovery code was used');
    expect(mail.source).toContain('9 recovery codes left');
    const second = await passwordAt(app, person);
    const refused = await second.browser.submit(second.page, '/mfa', { code: codes[3]! });
    expect(refused.status).toBe(401);
    await server.container.audit.flush(); // audit events are written in the background
    expect(await server.container.audit.query({ type: 'mfa.recovery_code_used', accountId: person.id })).toHaveLength(
      1,
    );
  });

  it('"don\'t ask again on this device" skips the code on the next sign-in in this browser only', async () => {
    const person = await newPerson();
    const { secret } = await enrollOnAccountPage(person);
    const browser = newBrowser();
    const first = await passwordAt(app, person, browser);
    backAtApp(first, await browser.submit(first.page, '/mfa', { code: codeFor(secret), remember_device: 'yes' }));
    // A new session in the same browser: the engine's cookies go, the device cookies stay.
    for (const name of [...browser.cookies.keys()]) if (!name.startsWith('postern_')) browser.cookies.delete(name);
    const again = await passwordAt(app, person, browser);
    const tokens = await exchange(app, backAtApp(again, again.page));
    expect(tokens.claims()!.amr).toEqual(['pwd']);
    expect(tokens.claims()!.acr).toBe('urn:postern:pwd');
    const elsewhere = await passwordAt(app, person);
    expect(elsewhere.page.text).toContain('/mfa"');
  });
});

describe('step-up and policy', () => {
  it('a password-only session at a --require-mfa client gets the second-factor page, not a new login, and the new ID token says so', async () => {
    const person = await newPerson();
    const browser = newBrowser();
    // Signed in with a password only (no factor yet), then TOTP set up in the same browser.
    const first = await passwordAt(app, person, browser);
    expect(decodeJwt((await exchange(app, backAtApp(first, first.page))).id_token!).acr).toBe('urn:postern:pwd');
    const { secret } = await enrollOnAccountPage(person, browser);
    const started = await startAuthorization(browser, strict);
    expect(decodeURIComponent(started.page.url)).toContain('/interaction/');
    expect(started.page.text).not.toContain('name="password"');
    const back = await browser.submit(started.page, '/mfa', { code: codeFor(secret) });
    const claims = (await exchange(strict, backAtApp(started, back))).claims()!;
    expect(claims.acr).toBe('urn:postern:mfa');
    expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp']));
  });

  it('acr_values=urn:postern:mfa steps a password-only session up at an ordinary client; acr_values_supported lists it', async () => {
    expect(app.serverMetadata().acr_values_supported).toEqual(['urn:postern:pwd', 'urn:postern:mfa']);
    const person = await newPerson();
    const browser = newBrowser();
    const first = await passwordAt(app, person, browser);
    backAtApp(first, first.page);
    const { secret } = await enrollOnAccountPage(person, browser);
    const started = await startAuthorization(browser, app, { acr_values: 'urn:postern:mfa' });
    expect(started.page.text).toContain('/mfa"');
    const back = await browser.submit(started.page, '/mfa', { code: codeFor(secret) });
    expect((await exchange(app, backAtApp(started, back))).claims()!.acr).toBe('urn:postern:mfa');
  });

  it('a person in an MFA-required role without a factor is led through enrollment and finishes signing in', async () => {
    const person = await newPerson(['manager']);
    const started = await passwordAt(app, person);
    expect(started.page.text).toContain('Set up two-step verification');
    const secret = secretOn(started.page);
    let page = await started.browser.submit(started.page, '/mfa/enroll', { code: codeFor(secret) });
    expect(recoveryCodesOn(page)).toHaveLength(10);
    page = await started.browser.submit(page, '/mfa/continue');
    const claims = (await exchange(app, backAtApp(started, page))).claims()!;
    expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp']));
    await server.container.audit.flush(); // audit events are written in the background
    expect(await server.container.audit.query({ type: 'mfa.totp_enrolled', accountId: person.id })).toHaveLength(1);
  });

  it('a JWT access token for an API created with --claims amr,acr carries how the user signed in', async () => {
    const person = await newPerson();
    const { secret } = await enrollOnAccountPage(person);
    nextStep();
    const started = await passwordAt(app, person, newBrowser(), { scope: 'openid orders:read', resource: API });
    const back = await started.browser.submit(started.page, '/mfa', { code: codeFor(secret) });
    const tokens = await exchange(app, backAtApp(started, back));
    const { payload } = await jwtVerify(
      tokens.access_token,
      createRemoteJWKSet(new URL(app.serverMetadata().jwks_uri!)),
      { issuer: server.issuer, audience: API },
    );
    expect(payload.amr).toEqual(expect.arrayContaining(['pwd', 'otp']));
    expect(payload.acr).toBe('urn:postern:mfa');
  });
});

describe('the account page', () => {
  it('turns TOTP off only with the password and a valid code; then signing in asks for the password only', async () => {
    const person = await newPerson();
    const { browser, secret } = await enrollOnAccountPage(person);
    let page = await browser.get(`${server.issuer}/account/two-factor`);
    const wrongPassword = await browser.submit(page, '/two-factor/disable', {
      disable_password: 'not the password',
      disable_code: codeFor(secret),
    });
    expect(wrongPassword.status).toBe(400);
    expect(wrongPassword.text).toContain('the password is not correct');
    const wrongCode = await browser.submit(page, '/two-factor/disable', {
      disable_password: person.password,
      disable_code: codeFor(secret) === '123456' ? '654321' : '123456',
    });
    expect(wrongCode.status).toBe(400);
    expect(wrongCode.text).toContain('the code is not correct');
    page = await browser.submit(page, '/two-factor/disable', {
      disable_password: person.password,
      disable_code: codeFor(secret),
    });
    expect(page.text).toContain('Two-step verification is off.');
    const started = await passwordAt(app, person);
    expect((await exchange(app, backAtApp(started, started.page))).claims()!.amr).toEqual(['pwd']);
    await server.container.audit.flush(); // audit events are written in the background
    expect(await server.container.audit.query({ type: 'mfa.totp_disabled', accountId: person.id })).toHaveLength(1);
  });

  it('new recovery codes (with the password and a code) replace the old ones', async () => {
    const person = await newPerson();
    const { browser, secret, codes: old } = await enrollOnAccountPage(person);
    const page = await browser.get(`${server.issuer}/account/two-factor`);
    expect(page.text).toContain('10 unused recovery codes left.');
    const fresh = recoveryCodesOn(
      await browser.submit(page, '/two-factor/recovery-codes', {
        codes_password: person.password,
        codes_code: codeFor(secret),
      }),
    );
    expect(fresh).toHaveLength(10);
    expect(fresh).not.toContain(old[0]);
    const refused = await passwordAt(app, person);
    expect((await refused.browser.submit(refused.page, '/mfa', { code: old[0]! })).status).toBe(401);
    const accepted = await passwordAt(app, person);
    backAtApp(accepted, await accepted.browser.submit(accepted.page, '/mfa', { code: fresh[0]! }));
  });
});
