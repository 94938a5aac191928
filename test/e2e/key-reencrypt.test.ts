import { expect, it } from 'vitest';

import { deriveKeyEncryptionKey } from '../../src/config/secrets.ts';
import { openKey } from '../../src/keys/key.service.ts';
import { reencryptStore } from '../../src/keys/reencrypt.ts';
import { createTestDatabase } from '../support/database.ts';
import { discover, exchange, newBrowser, signIn } from '../support/relying-party.ts';
import { createTestClock, startTestServer, TEST_SECRET, type TestServer } from '../support/server.ts';
import { createPublicApp, DAILY_KEY_ROTATION_ENV, serversPerTest } from '../support/setup.ts';

// `postern keys reencrypt` while an instance still runs with the old secret (a rolling
// restart): that instance must not seal new keys under the old secret when its rotation comes
// due, or no instance could start on the new one.

const DAY = 86400;
const NEW_SECRET = 'the-new-secret-after-reencrypt-0123456789abcdef';
const USER = { username: 'kim', email: 'kim@example.com', password: 'kim has a long passphrase' };
const KEY_ENV = DAILY_KEY_ROTATION_ENV;

const { servers, databases } = serversPerTest();

const errorLines = (server: TestServer) =>
  server.logs.map((line) => JSON.parse(line) as { level: number; msg: string }).filter((entry) => entry.level >= 50);

async function signsIn(server: TestServer): Promise<boolean> {
  const config = await discover(server.issuer, 'app');
  const tokens = await exchange(config, await signIn(newBrowser(), config, USER));
  return typeof tokens.id_token === 'string';
}

it('an instance still on the old secret writes no key after a re-encryption, and the new secret starts the cluster', async () => {
  const clock = createTestClock();
  const db = await createTestDatabase();
  databases.push(db);
  const a = await startTestServer(db, KEY_ENV, { clock });
  servers.push(a);
  await a.container.accounts.create(USER);
  await createPublicApp(a);
  const store = a.container.db.db;
  const before = (await a.container.keys.list()).map((k) => `${k.alg}:${k.state}:${k.kid}`).sort();

  // The operator moves the store to a new secret (what the CLI command runs) while A still runs.
  await reencryptStore(store, deriveKeyEncryptionKey(TEST_SECRET), deriveKeyEncryptionKey(NEW_SECRET));

  clock.advance(DAY + 1); // A's rotation is due
  expect(await a.container.keyRing.refresh()).toBe(false);
  expect(await a.container.keyRing.refresh()).toBe(false);
  expect((await a.container.keys.list()).map((k) => `${k.alg}:${k.state}:${k.kid}`).sort()).toEqual(before);
  await expect(a.container.keys.rotate({ force: true })).rejects.toThrow(/postern keys reencrypt/);
  expect((await a.container.keys.list()).map((k) => `${k.alg}:${k.state}:${k.kid}`).sort()).toEqual(before);
  const errors = errorLines(a);
  expect(errors).toHaveLength(1); // one clear line, not one per poll
  expect(errors[0]!.msg).toMatch(/POSTERN_SECRET.*re-encrypted.*no signing key/);
  expect(await signsIn(a)).toBe(true); // A keeps serving with the keys it has

  const b = await startTestServer(
    db,
    { ...KEY_ENV, POSTERN_SECRET: NEW_SECRET },
    db.engine === 'pglite' ? { clock, shareDatabaseOf: a } : { clock },
  );
  servers.push(b);
  expect(await b.container.keyRing.refresh()).toBe(true); // B takes over the rotation A refused
  const newKek = deriveKeyEncryptionKey(NEW_SECRET);
  const rows = await b.container.keys.list();
  expect(rows.filter((k) => k.state === 'current')).toHaveLength(2);
  for (const row of rows) expect(() => openKey(newKek, row)).not.toThrow();
  expect(await signsIn(b)).toBe(true);
  expect(errorLines(b)).toEqual([]);
});
