import { afterAll, beforeAll, expect, it } from 'vitest';

import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import {
  backAtApp,
  discover,
  exchange,
  newBrowser,
  REDIRECT_URI,
  startAuthorization,
} from '../support/relying-party.ts';
import { createTestClock, startTestServer, type TestServer } from '../support/server.ts';
import { recoveryCodesOn, secretOn, totpCode } from '../support/totp.ts';

// POSTERN_MFA=required (issue 14 §3): everyone gives a second factor; whoever has none yet is
// walked through setting one up right after the password and then finishes signing in, so the
// policy locks nobody out.

let db: TestDatabase;
let server: TestServer;
const clock = createTestClock();

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db, { POSTERN_MFA: 'required' }, { clock });
});

afterAll(async () => {
  await server?.close();
  await db?.drop();
});

it('someone without a factor is led through setup after the password, finishes signing in, and is asked for a code next time', async () => {
  const { clients, accounts } = server.container;
  const web = await clients.create({
    clientId: 'webapp',
    grantTypes: ['authorization_code'],
    redirectUris: [REDIRECT_URI],
    scope: 'openid profile email',
    firstParty: true,
  });
  const app = await discover(server.issuer, 'webapp', web.secret);
  const person = { username: 'everyone', email: 'everyone@example.com', password: 'all of us use two steps' };
  await accounts.create(person);

  const browser = newBrowser();
  const started = await startAuthorization(browser, app);
  let page = await browser.submit(started.page, '/login', person);
  expect(page.text).toContain('Set up two-step verification');
  // The password was just given in this interaction: it is not asked again.
  expect(page.text).not.toContain('name="password"');
  const secret = secretOn(page);
  page = await browser.submit(page, '/mfa/enroll', { code: totpCode(secret, clock.now()) });
  expect(recoveryCodesOn(page)).toHaveLength(10);
  page = await browser.submit(page, '/mfa/continue');
  const claims = (await exchange(app, backAtApp(started, page))).claims()!;
  expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp', 'mfa']));
  expect(claims.acr).toBe('urn:postern:mfa');

  clock.advance(30);
  const other = newBrowser();
  const next = await startAuthorization(other, app);
  const asked = await other.submit(next.page, '/login', person);
  expect(asked.text).toContain('/mfa"');
  expect(asked.text).not.toContain('Set up two-step verification');
});
