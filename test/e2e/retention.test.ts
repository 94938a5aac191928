import { sql } from 'kysely';
import { afterEach, expect, it } from 'vitest';

import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { discover, exchange, newBrowser, REDIRECT_URI, signIn } from '../support/relying-party.ts';
import { createTestClock, startTestServer, type TestServer } from '../support/server.ts';

// Retention: the audit log keeps POSTERN_AUDIT_RETENTION_DAYS, and where a grant was signed in
// from (grant_activity) lives as long as its grant. Our clock moves a month on; the sweeper,
// running every second, must take the old rows and leave the recent ones.

const DAY = 86400;
const OLD = { username: 'olga', email: 'olga@example.com', password: 'olga has a long passphrase' };
const NEW = { username: 'nina', email: 'nina@example.com', password: 'nina has a long passphrase' };

const servers: TestServer[] = [];
const databases: TestDatabase[] = [];
afterEach(async () => {
  for (const s of servers.splice(0).reverse()) await s.close();
  for (const d of databases.splice(0)) await d.drop();
});

it('sweeps audit events past their retention and the activity of expired grants, and keeps the recent ones', async () => {
  const clock = createTestClock();
  const db = await createTestDatabase();
  databases.push(db);
  const server = await startTestServer(
    db,
    {
      POSTERN_SWEEP_INTERVAL_SECONDS: '1',
      POSTERN_AUDIT_RETENTION_DAYS: '30',
      POSTERN_GRANT_TTL_SECONDS: String(2 * DAY),
    },
    { clock },
  );
  servers.push(server);
  const { accounts, clients, audit } = server.container;
  const store = server.container.db.db;
  const oldId = (await accounts.create(OLD)).id;
  const newId = (await accounts.create(NEW)).id;
  await clients.create({
    clientId: 'app',
    public: true,
    grantTypes: ['authorization_code'],
    redirectUris: [REDIRECT_URI],
    firstParty: true,
  });
  const config = await discover(server.issuer, 'app');
  await exchange(config, await signIn(newBrowser(), config, OLD));
  await audit.flush();
  const activity = async () =>
    (await store.selectFrom('grant_activity').select('account_id').execute()).map((r) => r.account_id).sort();
  const auditCount = async (where: 'old' | 'recent') => {
    const cutoff = new Date(clock.now().getTime() - 30 * DAY * 1000);
    const op = where === 'old' ? sql`<` : sql`>=`;
    const { rows } = await sql<{ n: string }>`select count(*) as n from audit_events where at ${op} ${cutoff}`.execute(
      store,
    );
    return Number(rows[0]!.n);
  };
  expect(await activity()).toEqual([oldId]);
  const first = await auditCount('recent');
  expect(first).toBeGreaterThan(0);

  clock.advance(31 * DAY); // the first grant has expired, its audit events are past retention
  await exchange(config, await signIn(newBrowser(), config, NEW));
  await audit.flush();

  await expect
    .poll(async () => [await activity(), await auditCount('old')], { timeout: 10_000, interval: 250 })
    .toEqual([[newId], 0]);
  expect(await auditCount('recent')).toBeGreaterThan(0); // the second sign-in's events stay
  const events = await audit.query({ accountId: newId, limit: 100 });
  expect(events.map((e) => e.type)).toContain('login.succeeded');
  expect(await activity()).toEqual([newId]);
});
