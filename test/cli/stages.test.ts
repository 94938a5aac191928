import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { runCli } from '../../src/cli.ts';
import { loadConfig } from '../../src/config/config.ts';
import { connectDatabase, type DatabaseHandle } from '../../src/db/connect.ts';
import { latestKnownMigration, migrateToLatest, schemaMatchesCode } from '../../src/db/migrator.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { baseEnv } from '../support/cli.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

// A command builds only the stages it uses (README "The composition root, in stages"). Run in
// this process, through the same entry point as the binary, on a real database.
let database: TestDatabase;
let env: Record<string, string>;
beforeAll(async () => {
  database = await createTestDatabase();
  env = baseEnv(database);
});
afterAll(async () => {
  await database?.drop();
});

async function postern(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (t: string) => out.push(t), err: (t: string) => err.push(t), readStdin: async () => '' };
  const code = await runCli(argv, { env, io });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** Opens the test database for a look, and closes it (the embedded one admits one process at a time). */
async function withDatabase<T>(fn: (db: DatabaseHandle) => Promise<T>): Promise<T> {
  const config = loadConfig(env);
  const logger = createLogger({ level: 'silent', destination: { write() {} } });
  const db = await connectDatabase({ ...config, logger, purpose: 'test' });
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

const signingKeys = () =>
  withDatabase(async ({ db }) => (await db.selectFrom('signing_keys').select('kid').execute()).length);

it('reads and plain writes build no engine: no signing key is made until a keys command', async () => {
  const created = await postern(
    'user',
    'create',
    '--username',
    'dora',
    '--email',
    'dora@example.com',
    '--password',
    'a long and unusual passphrase',
  );
  expect(created.code, created.err).toBe(0);
  for (const argv of [
    ['user', 'list'],
    ['client', 'list'],
    ['resource', 'list'],
    ['audit'],
    ['user', 'sessions', 'dora'],
    // No session to tell about: the logout needs no back-channel token, hence no engine.
    ['user', 'logout', 'dora'],
    ['user', 'disable', 'dora'],
  ]) {
    expect(await postern(...argv), argv.join(' ')).toMatchObject({ code: 0, err: '' });
  }
  expect(await signingKeys()).toBe(0);

  // Checking a new client's metadata needs the engine, which completes the key store.
  const client = await postern('client', 'create', '--id', 'svc', '--grant-types', 'client_credentials', '--json');
  expect(client).toMatchObject({ code: 0, err: '' });
  expect(await signingKeys()).toBe(4); // RS256 and ES256, each current and next
  const keys = await postern('keys', 'list', '--json');
  expect(JSON.parse(keys.out)).toHaveLength(4);
});

it('finds a migrated schema current in one query, and a new, behind or newer one not', async () => {
  const fresh = await createTestDatabase();
  try {
    const config = loadConfig(baseEnv(fresh));
    const logger = createLogger({ level: 'silent', destination: { write() {} } });
    const handle = await connectDatabase({ ...config, logger, purpose: 'test' });
    try {
      expect(await schemaMatchesCode(handle.db)).toBe(false);
    } finally {
      await handle.close();
    }
  } finally {
    await fresh.drop();
  }
  await withDatabase(async ({ db }) => {
    await migrateToLatest(db);
    expect(await schemaMatchesCode(db)).toBe(true);
    const newest = await latestKnownMigration();
    const { rows } = await sql<{
      timestamp: string;
    }>`delete from postern_migrations where name = ${newest} returning timestamp`.execute(db);
    // A pending migration: left to the migrator, which applies it or explains it.
    expect(await schemaMatchesCode(db)).toBe(false);
    await sql`insert into postern_migrations (name, timestamp) values (${newest}, ${rows[0]!.timestamp})`.execute(db);
    expect(await schemaMatchesCode(db)).toBe(true);
    // A migration this code does not know (a newer version migrated first): not "current" either.
    await sql`insert into postern_migrations (name, timestamp) values ('209901010000_from_a_newer_version', ${new Date().toISOString()})`.execute(
      db,
    );
    expect(await schemaMatchesCode(db)).toBe(false);
  });
});
