import { afterAll, beforeAll, expect, it } from 'vitest';

import { findForm } from '../support/browser.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { discover, newBrowser, REDIRECT_URI, startAuthorization } from '../support/relying-party.ts';
import { createTestClock, freePort, startTestServer, type TestServer } from '../support/server.ts';
import { createPublicApp } from '../support/setup.ts';
import { enrollOnAccountPage, totpCode } from '../support/totp.ts';

// RFC 6238 §5.2 across instances (issue 14 §1): one code, given at the same moment to two
// instances behind one issuer on one database, is accepted once. The replay check is a
// compare-and-set in SQL, not a read in each process.

let db: TestDatabase;
let a: TestServer;
let b: TestServer;
const clock = createTestClock();
const PERSON = { username: 'twin', email: 'twin@example.com', password: 'twin has one phone' };

beforeAll(async () => {
  db = await createTestDatabase();
  const portA = await freePort();
  // A threshold above the number of tries, so every refusal is the replay's, not the lock's.
  const shared = { POSTERN_ISSUER: `http://127.0.0.1:${portA}`, POSTERN_LOCKOUT_THRESHOLD: '50' };
  a = await startTestServer(db, { ...shared, PORT: String(portA) }, { clock });
  b = await startTestServer(db, shared, db.engine === 'pglite' ? { shareDatabaseOf: a, clock } : { clock });
  await createPublicApp(a);
  await a.container.accounts.create(PERSON);
});

afterAll(async () => {
  await b?.close();
  await a?.close();
  await db?.drop();
});

it('one code sent at once to two instances from ten sign-ins is accepted exactly once', async () => {
  const { secret } = await enrollOnAccountPage(a.issuer, newBrowser(), PERSON, () => clock.now());
  // The enrollment used the current step's code: the next step's is fresh.
  clock.advance(30);
  const config = await discover(a.issuer, 'app');
  const pending = await Promise.all(
    Array.from({ length: 10 }, async () => {
      const browser = newBrowser();
      const { page } = await startAuthorization(browser, config);
      return { browser, page: await browser.submit(page, '/login', PERSON) };
    }),
  );
  const code = totpCode(secret, clock.now());
  const answers = await Promise.all(
    pending.map(({ browser, page }, i) => {
      const form = findForm(page.text, '/mfa');
      const origin = i % 2 === 0 ? a.url : b.url; // the load balancer alternates
      return browser.request(new URL(form.action, origin).href, { form: { ...form.fields, code } });
    }),
  );
  expect(answers.filter((p) => p.url.startsWith(REDIRECT_URI))).toHaveLength(1);
  expect(answers.filter((p) => p.status === 401)).toHaveLength(9);
});
