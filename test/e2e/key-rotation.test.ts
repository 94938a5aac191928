import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { sql, type Kysely } from 'kysely';
import type * as oidc from 'openid-client';
import { describe, expect, it } from 'vitest';

import { connectDatabase, type DatabaseHandle } from '../../src/db/connect.ts';
import { migrateToLatest } from '../../src/db/migrator.ts';
import type { Database } from '../../src/db/tables.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { createTestDatabase } from '../support/database.ts';
import { discover, exchange, newBrowser, signIn } from '../support/relying-party.ts';
import { createTestClock, startTestServer, type TestServer } from '../support/server.ts';
import { createPublicApp, DAILY_KEY_ROTATION_ENV, serversPerTest } from '../support/setup.ts';

// Rotation as resource servers and web apps live it: they cache JWKS and verify tokens with it.
// Our clock moves the key lifecycle forward (a day per rotation here); the JWKS a test fetches
// is what any verifier would get at that moment.

const DAY = 86400;
const RETIRE = 86400 + 60; // longest token lifetime (a resource server's JWTs may live a day) + clock tolerance
const USER = { username: 'kim', email: 'kim@example.com', password: 'kim has a long passphrase' };
const KEY_ENV = DAILY_KEY_ROTATION_ENV;

const perTest = serversPerTest();
const { servers, databases } = perTest;

async function setUp(env: Record<string, string> = {}, clock = createTestClock()) {
  const { db, server } = await perTest.start({ ...KEY_ENV, ...env }, { clock });
  await server.container.accounts.create(USER);
  await createPublicApp(server);
  return { db, server, clock, config: await discover(server.issuer, 'app') };
}

async function idToken(config: oidc.Configuration): Promise<string> {
  return (await exchange(config, await signIn(newBrowser(), config, USER))).id_token!;
}

async function jwks(server: TestServer): Promise<JSONWebKeySet> {
  return (await fetch(`${server.issuer}/jwks`)).json() as Promise<JSONWebKeySet>;
}

const kids = (set: JSONWebKeySet) => set.keys.map((k) => k.kid);
const kidOf = (token: string) => decodeProtectedHeader(token).kid!;

/** As a resource server does it: fetch JWKS, re-fetch on an unknown kid. The token's own iat is "now". */
async function verifies(server: TestServer, token: string): Promise<boolean> {
  const set = createRemoteJWKSet(new URL(`${server.issuer}/jwks`), { cooldownDuration: 0 });
  const iat = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).iat as number;
  return jwtVerify(token, set, { issuer: server.issuer, currentDate: new Date(iat * 1000) }).then(
    () => true,
    () => false,
  );
}

describe('one instance', () => {
  it('publishes a key before it signs, keeps a retired key until its tokens expire, then drops it', async () => {
    const { server, clock, config } = await setUp();
    const before = await jwks(server);
    const oldToken = await idToken(config);
    const oldKid = kidOf(oldToken);
    const rows = await server.container.keys.list();
    const nextRs = rows.find((k) => k.alg === 'RS256' && k.state === 'next')!;
    expect(kids(before)).toContain(nextRs.kid); // published from the start

    clock.advance(DAY + 1);
    expect(await server.container.keyRing.refresh()).toBe(true);
    const newToken = await idToken(config);
    expect(kidOf(newToken)).toBe(nextRs.kid); // the key that was already published now signs
    expect(kidOf(newToken)).not.toBe(oldKid);
    expect(await verifies(server, oldToken)).toBe(true);
    expect(await verifies(server, newToken)).toBe(true);

    clock.advance(RETIRE - 5);
    await server.container.keyRing.refresh();
    expect(kids(await jwks(server))).toContain(oldKid); // a token it signed may still be valid
    clock.advance(10);
    await server.container.keyRing.refresh();
    expect(kids(await jwks(server))).not.toContain(oldKid);
    expect(await verifies(server, oldToken)).toBe(false);
    expect(await verifies(server, newToken)).toBe(true);
    await server.container.audit.flush(); // audit events are written in the background
    const types = (await server.container.audit.query({ limit: 100 })).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['key.created', 'key.rotated', 'key.deleted']));
  });

  it('does not promote a next key that caches may not know yet', async () => {
    const { server, clock } = await setUp({ POSTERN_KEY_ROTATION_SECONDS: '60' });
    clock.advance(61);
    // Due, but the next key was made at start: 300 s cache + 1 s poll have not passed.
    expect(await server.container.keyRing.refresh()).toBe(false);
    await expect(server.container.keys.rotate({})).rejects.toThrow(/use --force/);
    clock.advance(241);
    expect(await server.container.keyRing.refresh()).toBe(true);
  });

  it('revoke takes a key out of JWKS at once and a new one signs', async () => {
    const { server, config } = await setUp();
    const token = await idToken(config);
    const { revoked, activated } = await server.container.keys.revoke(kidOf(token));
    expect(revoked.state).toBe('current');
    await server.container.keyRing.refresh();
    expect(kids(await jwks(server))).not.toContain(kidOf(token));
    expect(await verifies(server, token)).toBe(false);
    expect(kidOf(await idToken(config))).toBe(activated);
  });

  it('serves JWKS with cache headers, a strong ETag, 304s, and public members only', async () => {
    const { server } = await setUp();
    const response = await fetch(`${server.issuer}/jwks`);
    expect(response.headers.get('cache-control')).toBe('public, max-age=300');
    const etag = response.headers.get('etag')!;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    const set = (await response.json()) as JSONWebKeySet;
    expect(set.keys).toHaveLength(4); // RS256 and ES256, each current and next
    expect(new Set(kids(set)).size).toBe(4);
    for (const key of set.keys) {
      expect(Object.keys(key).filter((m) => ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'].includes(m))).toEqual([]);
      expect(key).toMatchObject({ use: 'sig' });
    }
    const again = await fetch(`${server.issuer}/jwks`, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    const discovery = (await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json()) as {
      jwks_uri: string;
    };
    expect(discovery.jwks_uri).toBe(`${server.issuer}/jwks`);
    createLocalJWKSet(set); // a valid JWK Set
  });

  it('an interrupted rotation changes nothing', async () => {
    const { server, clock } = await setUp();
    const db = server.container.db.db as Kysely<Database>;
    const state = async () => (await server.container.keys.list()).map((k) => `${k.alg}:${k.state}:${k.kid}`).sort();
    const before = await state();
    // The rotation dies after it retired the current key and promoted the next one, at the insert of the new next key.
    await sql`create function postern_fail() returns trigger language plpgsql as $$ begin raise exception 'disk on fire'; end $$`.execute(
      db,
    );
    await sql`create trigger postern_fail before insert on signing_keys for each row execute function postern_fail()`.execute(
      db,
    );
    clock.advance(DAY + 1);
    await expect(server.container.keyRing.refresh()).rejects.toThrow(/disk on fire/);
    expect(await state()).toEqual(before);
    await sql`drop trigger postern_fail on signing_keys`.execute(db);
    expect(await server.container.keyRing.refresh()).toBe(true);
    const after = await server.container.keys.list();
    for (const alg of ['RS256', 'ES256']) {
      expect(after.filter((k) => k.alg === alg && k.state === 'current')).toHaveLength(1);
      expect(after.filter((k) => k.alg === alg && k.state === 'next')).toHaveLength(1);
    }
  });

  it('never stores or logs a private key in clear', async () => {
    const { server, config } = await setUp({ POSTERN_SIGNING_ALGS: 'PS256,EdDSA' });
    await idToken(config);
    const raw = await (server.container.db.db as Kysely<Database>).selectFrom('signing_keys').selectAll().execute();
    expect(new Set(raw.map((r) => r.alg))).toEqual(new Set(['RS256', 'ES256', 'PS256', 'EdDSA']));
    const privateParts = server.container.keyRing
      .keySet()
      .providerKeys.flatMap((k) => [k.d, k.p, k.q].filter(Boolean) as string[]);
    expect(privateParts.length).toBeGreaterThanOrEqual(raw.length);
    const stored = JSON.stringify(raw);
    const logs = server.logs.join('\n');
    for (const part of privateParts) {
      expect(stored).not.toContain(part);
      expect(logs).not.toContain(part);
    }
    for (const row of raw) expect(row.private_jwk_encrypted).toMatch(/^v1\.[A-Za-z0-9_-]+$/);
  });
});

describe('several instances', () => {
  it('one rotates, the other follows within the poll interval without a restart', async () => {
    const clock = createTestClock();
    const { db, server: a } = await setUp({}, clock);
    const b = await startTestServer(db, KEY_ENV, db.engine === 'pglite' ? { clock, shareDatabaseOf: a } : { clock });
    servers.push(b);
    const configB = await discover(b.issuer, 'app');
    const before = kidOf(await idToken(configB));

    clock.advance(DAY + 1);
    await a.container.keyRing.refresh(); // a rotates; b only has its timer
    const next = (await a.container.keys.list()).find((k) => k.alg === 'RS256' && k.state === 'current')!.kid;
    expect(next).not.toBe(before);
    await expect.poll(async () => kidOf(await idToken(configB)), { timeout: 5000, interval: 250 }).toBe(next);
    expect(kids(await jwks(b))).toEqual(kids(await jwks(a)));
  });

  it('two instances starting at once on an empty database make exactly one key set', async () => {
    const db = await createTestDatabase();
    databases.push(db);
    const env = { ...KEY_ENV, POSTERN_MIGRATE_ON_START: 'true' };
    // The embedded engine is one process's: both instances share one handle, opened (and closed) here.
    let shared: DatabaseHandle | undefined;
    if (db.engine === 'pglite') {
      shared = await connectDatabase({
        databaseUrl: undefined,
        dataDir: db.env.POSTERN_DATA_DIR!,
        logger: createLogger({ level: 'silent' }),
        purpose: 'test',
      });
      const handle = shared;
      servers.push({ close: () => handle.close() } as TestServer);
      await migrateToLatest(shared.db);
    }
    const [a, b] = await Promise.all(
      [1, 2].map(async () => startTestServer(db, env, shared ? { database: shared } : {})),
    );
    servers.push(a!, b!);
    const rows = await a!.container.keys.list();
    expect(rows).toHaveLength(4);
    for (const alg of ['RS256', 'ES256']) {
      expect(rows.filter((k) => k.alg === alg && k.state === 'current')).toHaveLength(1);
      expect(rows.filter((k) => k.alg === alg && k.state === 'next')).toHaveLength(1);
    }
    expect(kids(await jwks(a!))).toEqual(kids(await jwks(b!)));
  });
});
