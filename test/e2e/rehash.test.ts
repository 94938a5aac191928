import type { Kysely } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';

import type { Database } from '../../src/db/tables.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { discover, newBrowser, signIn } from '../support/relying-party.ts';
import { freePort, startTestServer, type TestServer } from '../support/server.ts';
import { createPublicApp } from '../support/setup.ts';

// Raising the argon2id parameters takes effect for each account at its next sign-in.
const USER = { username: 'dana', email: 'dana@example.com', password: 'dana picks a long passphrase' };
let db: TestDatabase;
let server: TestServer | undefined;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await server?.close();
  await db?.drop();
});

const storedHash = async (s: TestServer) =>
  await (s.container.db.db as Kysely<Database>)
    .selectFrom('accounts')
    .select(['password_hash', 'updated_at'])
    .where('username', '=', USER.username)
    .executeTakeFirstOrThrow();

it('re-hashes a password with the current parameters when its owner signs in, and only then', async () => {
  const port = String(await freePort());
  server = await startTestServer(db, { PORT: port, POSTERN_ARGON2_MEMORY_KIB: '8192', POSTERN_ARGON2_ITERATIONS: '1' });
  await server.container.accounts.create(USER);
  await createPublicApp(server);
  const before = await storedHash(server);
  expect(before.password_hash).toMatch(/^\$argon2id\$v=19\$m=8192,p=1,t=1\$/);
  await server.close();

  server = await startTestServer(db, { PORT: port }); // the defaults: m=19456, t=2, p=1
  expect((await storedHash(server)).password_hash).toBe(before.password_hash);
  const config = await discover(server.issuer, 'app');
  await signIn(newBrowser(), config, USER);
  const after = await storedHash(server);
  expect(after.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
  expect(after.updated_at).toEqual(before.updated_at); // a sign-in is not a profile change
  await signIn(newBrowser(), config, USER); // and the new hash verifies
});
