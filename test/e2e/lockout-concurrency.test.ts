import type { Kysely } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';

import type { Database } from '../../src/db/tables.ts';
import { findForm } from '../support/browser.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { discover, newBrowser, startAuthorization } from '../support/relying-party.ts';
import { freePort, startTestServer, type TestServer } from '../support/server.ts';
import { createPublicApp } from '../support/setup.ts';

// Parallel password checks must not slip past a counter (a known bug class): 50 wrong
// passwords fired at once, half at each of two instances behind one issuer, on one database.

let db: TestDatabase;
let a: TestServer;
let b: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  const portA = await freePort();
  // The per-IP limit is raised so that the final check meets the account lock, not the IP throttle.
  const shared = {
    POSTERN_TRUST_PROXY: 'true',
    POSTERN_ISSUER: `http://127.0.0.1:${portA}`,
    POSTERN_IP_FAILURE_LIMIT: '100',
  };
  a = await startTestServer(db, { ...shared, PORT: String(portA) });
  // Over PostgreSQL each instance has its own pool; the embedded engine is one process's, so share it.
  b = await startTestServer(db, shared, db.engine === 'pglite' ? { shareDatabaseOf: a } : {});
  await createPublicApp(a);
  await a.container.accounts.create({
    username: 'victim',
    email: 'victim@example.com',
    password: 'the real passphrase',
  });
});

afterAll(async () => {
  await b?.close();
  await a?.close();
  await db?.drop();
});

it('50 simultaneous wrong passwords over two instances: exactly 5 checked, one lock, exact counters', async () => {
  const config = await discover(a.issuer, 'app');
  const ip = '10.123.0.1';
  const pages = await Promise.all(
    Array.from({ length: 50 }, async () => {
      const browser = newBrowser();
      browser.headers['x-forwarded-for'] = ip;
      return { browser, page: (await startAuthorization(browser, config)).page };
    }),
  );
  const answers = await Promise.all(
    pages.map(({ browser, page }, i) => {
      const form = findForm(page.text, '/login');
      const origin = i % 2 === 0 ? a.url : b.url; // the load balancer alternates
      return browser.request(new URL(form.action, origin).href, {
        form: { ...form.fields, username: 'victim', password: `wrong ${i}` },
      });
    }),
  );

  expect(answers.map((r) => r.status)).toEqual(Array(50).fill(401));
  for (const answer of answers) expect(answer.text).toContain('The username or password is incorrect.');

  await a.container.audit.flush();
  await b.container.audit.flush();
  const account = (await a.container.accounts.findByLogin('victim'))!;
  const failed = await a.container.audit.query({ accountId: account.id, type: 'login.failed', limit: 100 });
  const reasons = failed.map((e) => e.details.reason);
  expect(reasons.filter((r) => r === 'wrong_password')).toHaveLength(5); // password verifications
  expect(reasons.filter((r) => r === 'locked')).toHaveLength(45);
  expect(await a.container.audit.query({ accountId: account.id, type: 'lockout.started' })).toHaveLength(1);

  const rows = await (a.container.db.db as Kysely<Database>).selectFrom('login_throttles').selectAll().execute();
  const byScope = Object.fromEntries(rows.map((r) => [r.scope, r]));
  expect(byScope.account_ip).toMatchObject({ failures: 0, lockouts: 1 });
  expect(byScope.account_ip!.locked_until).toBeInstanceOf(Date);
  expect(byScope.account).toMatchObject({ failures: 5, lockouts: 0, locked_until: null });
  expect(byScope.ip).toMatchObject({ failures: 50 });

  // The lock is in force on both instances, even for the right password.
  for (const server of [a, b]) {
    const browser = newBrowser();
    browser.headers['x-forwarded-for'] = ip;
    const { page } = await startAuthorization(browser, config);
    const form = findForm(page.text, '/login');
    const answer = await browser.request(new URL(form.action, server.url).href, {
      form: { ...form.fields, username: 'victim', password: 'the real passphrase' },
    });
    expect(answer.status).toBe(401);
  }
});
