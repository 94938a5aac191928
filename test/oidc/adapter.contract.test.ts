import type { Adapter, AdapterPayload } from 'oidc-provider';
import { createMemoryAdapter } from 'oidc-provider/lib/adapters/memory_adapter.js';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

import { connectDatabase, type DatabaseHandle } from '../../src/db/connect.ts';
import { migrateToLatest } from '../../src/db/migrator.ts';
import { createAdapterClass } from '../../src/oidc/adapter.ts';
import { hashLegacyRecords } from '../../src/oidc/legacy-records.ts';
import { createRecordProtection } from '../../src/oidc/record-protection.ts';
import { sweepExpired } from '../../src/oidc/sweeper.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { createTestDatabase } from '../support/database.ts';

// CONVENTIONS §7: one contract, two implementations. node-oidc-provider's own memory adapter is
// the reference; ours must answer every question the same way. Only Date is faked: PGlite and pg
// keep their real timers, and both adapters read the time through Date (ours via systemClock).

type AdapterFactory = (model: string) => Adapter;

const testProtection = createRecordProtection({ hmacKey: Buffer.alloc(32, 1), sealKey: Buffer.alloc(32, 2) });

interface Subject {
  readonly name: string;
  /** Seconds a record outlives its expiresIn (the memory adapter's clockTolerance). */
  readonly toleranceSeconds: number;
  /** Whether consume() survives a later upsert of a payload without `consumed` (see that test). */
  readonly consumptionSurvivesUpsert: boolean;
  open(): Promise<void>;
  /** A factory over an empty store. */
  fresh(): Promise<AdapterFactory>;
  close(): Promise<void>;
}

/** A migrated database of its own, opened as the app opens one; close() also drops it. */
async function openMigratedDatabase(purpose: string): Promise<{ handle: DatabaseHandle; close(): Promise<void> }> {
  const testDb = await createTestDatabase();
  try {
    const handle = await connectDatabase({
      databaseUrl: testDb.env.DATABASE_URL,
      dataDir: testDb.env.POSTERN_DATA_DIR ?? '',
      logger: createLogger({ level: 'silent' }),
      purpose,
    });
    await migrateToLatest(handle.db);
    return {
      handle,
      close: async () => {
        await handle.close();
        await testDb.drop();
      },
    };
  } catch (error) {
    await testDb.drop();
    throw error;
  }
}

/** The same, for the tests of one describe block: `opened` runs once it is open. */
function useMigratedDatabase(purpose: string, opened: (handle: DatabaseHandle) => void): void {
  let database: Awaited<ReturnType<typeof openMigratedDatabase>> | undefined;
  beforeAll(async () => {
    database = await openMigratedDatabase(purpose);
    opened(database.handle);
  });
  afterAll(() => database?.close());
}

/** Our adapter over this database, with no clients and the test record protection. */
function posternAdapters(db: DatabaseHandle['db']): AdapterFactory {
  const PosternAdapter = createAdapterClass({
    db,
    clock: systemClock,
    findClient: async () => undefined,
    protect: testProtection,
  });
  return (model) => new PosternAdapter(model);
}

const MEMORY_CLOCK_TOLERANCE = 0;

function memorySubject(): Subject {
  return {
    name: 'oidc-provider memory adapter',
    toleranceSeconds: MEMORY_CLOCK_TOLERANCE,
    consumptionSurvivesUpsert: false,
    async open() {},
    // createMemoryAdapter gives each factory its own store, instead of the module-wide one.
    fresh: async () => createMemoryAdapter(MEMORY_CLOCK_TOLERANCE),
    async close() {},
  };
}

function databaseSubject(): Subject {
  let database: Awaited<ReturnType<typeof openMigratedDatabase>> | undefined;
  return {
    name: `postern adapter (${process.env.DATABASE_URL ? 'PostgreSQL' : 'PGlite'})`,
    toleranceSeconds: 0,
    consumptionSurvivesUpsert: true,
    async open() {
      database = await openMigratedDatabase('adapter contract test');
    },
    async fresh() {
      const db = database!.handle.db;
      await db.deleteFrom('oidc_payloads').execute();
      return posternAdapters(db);
    },
    async close() {
      await database?.close();
    },
  };
}

// A fixed instant with a sub-second part, so epoch-second rounding is visible.
const T0 = Date.UTC(2030, 0, 15, 10, 0, 0, 750);
const T0_SECONDS = Math.floor(T0 / 1000);

/** A payload shaped like the engine's; each call returns a new object (the memory adapter keeps references). */
function payload(kind: string, jti: string, extra: Partial<AdapterPayload> = {}): AdapterPayload {
  return { kind, jti, iat: T0_SECONDS, exp: T0_SECONDS + 3600, clientId: 'client-1', ...extra };
}

describe.each([memorySubject(), databaseSubject()])('adapter contract: $name', (subject) => {
  let adapterFor: AdapterFactory;

  beforeAll(() => subject.open());
  afterAll(() => subject.close());

  beforeEach(async () => {
    adapterFor = await subject.fresh();
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(T0);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  describe('upsert and find', () => {
    it('returns what was stored', async () => {
      const adapter = adapterFor('AccessToken');
      await adapter.upsert(
        'at-1',
        payload('AccessToken', 'at-1', { grantId: 'g-1', scope: 'openid email', accountId: 'acc-1' }),
        3600,
      );

      expect(await adapter.find('at-1')).toEqual(
        payload('AccessToken', 'at-1', { grantId: 'g-1', scope: 'openid email', accountId: 'acc-1' }),
      );
    });

    it('keeps nested structures and types intact', async () => {
      const adapter = adapterFor('Session');
      const stored = payload('Session', 'sess-1', {
        uid: 'uid-1',
        accountId: 'acc-1',
        loginTs: T0_SECONDS,
        authorizations: { 'client-1': { sid: 'sid-1', grantId: 'g-1', persistsLogout: true } },
        transient: false,
      });
      await adapter.upsert('sess-1', structuredClone(stored), 3600);

      expect(await adapter.find('sess-1')).toStrictEqual(stored);
    });

    it('returns undefined for an id never stored', async () => {
      const adapter = adapterFor('AccessToken');
      await adapter.upsert('at-1', payload('AccessToken', 'at-1'), 3600);

      expect(await adapter.find('at-2')).toBeUndefined();
    });

    it('keeps models apart: the same id under another model is not found', async () => {
      await adapterFor('AccessToken').upsert('same-id', payload('AccessToken', 'same-id'), 3600);

      expect(await adapterFor('RefreshToken').find('same-id')).toBeUndefined();
      expect(await adapterFor('AccessToken').find('same-id')).toEqual(payload('AccessToken', 'same-id'));
    });

    it('overwrites on a second upsert of the same id', async () => {
      const adapter = adapterFor('Grant');
      await adapter.upsert('g-1', payload('Grant', 'g-1', { accountId: 'acc-1', openid: { scope: 'openid' } }), 3600);
      await adapter.upsert(
        'g-1',
        payload('Grant', 'g-1', { accountId: 'acc-1', openid: { scope: 'openid email' } }),
        7200,
      );

      expect(await adapter.find('g-1')).toStrictEqual(
        payload('Grant', 'g-1', { accountId: 'acc-1', openid: { scope: 'openid email' } }),
      );
    });

    it('takes the expiry of the latest upsert', async () => {
      const adapter = adapterFor('Grant');
      await adapter.upsert('g-1', payload('Grant', 'g-1'), 10);
      await adapter.upsert('g-1', payload('Grant', 'g-1'), 100);

      vi.setSystemTime(T0 + 50_000);
      expect(await adapter.find('g-1')).toEqual(payload('Grant', 'g-1'));
    });
  });

  describe('consume', () => {
    it('marks the record consumed with epoch seconds and keeps the rest', async () => {
      const adapter = adapterFor('AuthorizationCode');
      const stored = payload('AuthorizationCode', 'code-1', {
        grantId: 'g-1',
        redirectUri: 'https://rp.example/cb',
        codeChallenge: 'abc',
      });
      await adapter.upsert('code-1', structuredClone(stored), 60);

      vi.setSystemTime(T0 + 5_000);
      await adapter.consume('code-1');

      const found = await adapter.find('code-1');
      expect(found).toStrictEqual({ ...stored, consumed: T0_SECONDS + 5 });
      expect(Number.isInteger(found?.consumed)).toBe(true);
    });

    it('does not consume other records', async () => {
      const adapter = adapterFor('RefreshToken');
      await adapter.upsert('rt-1', payload('RefreshToken', 'rt-1'), 3600);
      await adapter.upsert('rt-2', payload('RefreshToken', 'rt-2'), 3600);
      await adapter.consume('rt-1');

      expect(await adapter.find('rt-2')).toStrictEqual(payload('RefreshToken', 'rt-2'));
    });

    it('keeps a consumed record until it expires (replay detection needs it)', async () => {
      const adapter = adapterFor('AuthorizationCode');
      await adapter.upsert('code-1', payload('AuthorizationCode', 'code-1'), 60);
      await adapter.consume('code-1');

      vi.setSystemTime(T0 + 59_000);
      expect(await adapter.find('code-1')).toMatchObject({ jti: 'code-1', consumed: T0_SECONDS });
    });

    it('keeps `consumed` when the engine saves a consumed record again (it is in the payload)', async () => {
      const adapter = adapterFor('RefreshToken');
      await adapter.upsert('rt-1', payload('RefreshToken', 'rt-1'), 3600);
      await adapter.consume('rt-1');
      const loaded = await adapter.find('rt-1');
      await adapter.upsert('rt-1', { ...loaded!, scope: 'openid' }, 3600);

      expect(await adapter.find('rt-1')).toStrictEqual({
        ...payload('RefreshToken', 'rt-1'),
        scope: 'openid',
        consumed: T0_SECONDS,
      });
    });

    it('replaces the payload on an upsert after consume (consumption: see below)', async () => {
      const adapter = adapterFor('DeviceCode');
      await adapter.upsert('dc-1', payload('DeviceCode', 'dc-1', { userCode: 'ABCD-EFGH' }), 600);
      await adapter.consume('dc-1');
      await adapter.upsert('dc-1', payload('DeviceCode', 'dc-1', { userCode: 'ABCD-EFGH' }), 600);

      const found = await adapter.find('dc-1');
      // Allowed difference: the memory adapter keeps `consumed` inside the payload object, so a
      // whole-payload upsert replaces it. Ours keeps consumption in its own column, which an
      // upsert never clears: once consumed, always consumed (the stricter side for replay
      // detection; the engine itself always re-saves a consumed record with `consumed` set).
      const expected = payload('DeviceCode', 'dc-1', { userCode: 'ABCD-EFGH' });
      expect(found).toStrictEqual(subject.consumptionSurvivesUpsert ? { ...expected, consumed: T0_SECONDS } : expected);
    });
  });

  describe('text PostgreSQL cannot store', () => {
    // Issue 10, point 1: such a value can name no record; it is "not found", never an error.
    it.each([
      ['a NUL', 'a\u0000b'],
      ['a lone surrogate', 'a\uD800b'],
      ['a lone low surrogate', '\uDC00'],
    ])('finds nothing for an id with %s', async (_what, value) => {
      expect(await adapterFor('AccessToken').find(value)).toBeUndefined();
      expect(await adapterFor('Session').findByUid(value)).toBeUndefined();
      expect(await adapterFor('DeviceCode').findByUserCode(value)).toBeUndefined();
      expect(await adapterFor('Client').find(value)).toBeUndefined();
    });
  });

  describe('findByUid and findByUserCode', () => {
    it('finds a Session by its uid', async () => {
      const adapter = adapterFor('Session');
      await adapter.upsert('sess-1', payload('Session', 'sess-1', { uid: 'uid-1', accountId: 'acc-1' }), 3600);
      await adapter.upsert('sess-2', payload('Session', 'sess-2', { uid: 'uid-2', accountId: 'acc-2' }), 3600);

      expect(await adapter.findByUid('uid-1')).toStrictEqual(
        payload('Session', 'sess-1', { uid: 'uid-1', accountId: 'acc-1' }),
      );
      expect(await adapter.findByUid('uid-2')).toStrictEqual(
        payload('Session', 'sess-2', { uid: 'uid-2', accountId: 'acc-2' }),
      );
      expect(await adapter.findByUid('uid-3')).toBeUndefined();
    });

    it('follows a Session whose uid changed on upsert', async () => {
      const adapter = adapterFor('Session');
      await adapter.upsert('sess-1', payload('Session', 'sess-1', { uid: 'uid-old' }), 3600);
      await adapter.upsert('sess-1', payload('Session', 'sess-1', { uid: 'uid-new' }), 3600);

      expect(await adapter.findByUid('uid-new')).toStrictEqual(payload('Session', 'sess-1', { uid: 'uid-new' }));
      expect(await adapter.findByUid('uid-old')).toBeUndefined();
    });

    it('finds a DeviceCode by its user code', async () => {
      const adapter = adapterFor('DeviceCode');
      const stored = payload('DeviceCode', 'dc-1', {
        userCode: 'WDJB-MJHT',
        grantId: 'g-1',
        deviceInfo: { ip: '192.0.2.1' },
      });
      await adapter.upsert('dc-1', structuredClone(stored), 600);

      expect(await adapter.findByUserCode('WDJB-MJHT')).toStrictEqual(stored);
      expect(await adapter.findByUserCode('XXXX-XXXX')).toBeUndefined();
    });

    it('returns a consumed DeviceCode by user code with `consumed` set', async () => {
      const adapter = adapterFor('DeviceCode');
      await adapter.upsert('dc-1', payload('DeviceCode', 'dc-1', { userCode: 'WDJB-MJHT' }), 600);
      await adapter.consume('dc-1');

      expect(await adapter.findByUserCode('WDJB-MJHT')).toStrictEqual(
        payload('DeviceCode', 'dc-1', { userCode: 'WDJB-MJHT', consumed: T0_SECONDS }),
      );
    });
  });

  describe('destroy', () => {
    it('removes the record and only that record', async () => {
      const adapter = adapterFor('AccessToken');
      await adapter.upsert('at-1', payload('AccessToken', 'at-1'), 3600);
      await adapter.upsert('at-2', payload('AccessToken', 'at-2'), 3600);
      await adapter.destroy('at-1');

      expect(await adapter.find('at-1')).toBeUndefined();
      expect(await adapter.find('at-2')).toStrictEqual(payload('AccessToken', 'at-2'));
    });

    it('removes a Session from findByUid as well', async () => {
      const adapter = adapterFor('Session');
      await adapter.upsert('sess-1', payload('Session', 'sess-1', { uid: 'uid-1' }), 3600);
      await adapter.destroy('sess-1');

      expect(await adapter.findByUid('uid-1')).toBeUndefined();
    });

    it('removes a DeviceCode from findByUserCode as well', async () => {
      const adapter = adapterFor('DeviceCode');
      await adapter.upsert('dc-1', payload('DeviceCode', 'dc-1', { userCode: 'WDJB-MJHT' }), 600);
      await adapter.destroy('dc-1');

      expect(await adapter.findByUserCode('WDJB-MJHT')).toBeUndefined();
    });

    it('is harmless for an unknown id', async () => {
      const adapter = adapterFor('AccessToken');
      await adapter.upsert('at-1', payload('AccessToken', 'at-1'), 3600);
      await adapter.destroy('at-unknown');

      expect(await adapter.find('at-1')).toStrictEqual(payload('AccessToken', 'at-1'));
    });
  });

  // The engine revokes a grant through whichever model it holds (a replayed code, a revoked
  // refresh token, a logout): every token bound to the grant must go, and nothing else.
  describe.each(['AccessToken', 'RefreshToken', 'AuthorizationCode', 'Grant', 'Session'])(
    'revokeByGrantId asked through %s',
    (askingModel) => {
      beforeEach(async () => {
        const bound = { grantId: 'g-1', accountId: 'acc-1' };
        await adapterFor('AccessToken').upsert('at-1', payload('AccessToken', 'at-1', bound), 3600);
        await adapterFor('RefreshToken').upsert('rt-1', payload('RefreshToken', 'rt-1', bound), 86_400);
        await adapterFor('AuthorizationCode').upsert('code-1', payload('AuthorizationCode', 'code-1', bound), 60);
        await adapterFor('DeviceCode').upsert(
          'dc-1',
          payload('DeviceCode', 'dc-1', { ...bound, userCode: 'WDJB-MJHT' }),
          600,
        );

        const other = { grantId: 'g-2', accountId: 'acc-1' };
        await adapterFor('AccessToken').upsert('at-2', payload('AccessToken', 'at-2', other), 3600);
        await adapterFor('RefreshToken').upsert('rt-2', payload('RefreshToken', 'rt-2', other), 86_400);
        await adapterFor('AuthorizationCode').upsert('code-2', payload('AuthorizationCode', 'code-2', other), 60);

        // The Grant record and the Session carry the grant id too, so that only the model decides.
        await adapterFor('Grant').upsert('g-1', payload('Grant', 'g-1', bound), 86_400);
        await adapterFor('Session').upsert('sess-1', payload('Session', 'sess-1', { ...bound, uid: 'uid-1' }), 86_400);

        await adapterFor(askingModel).revokeByGrantId('g-1');
      });

      it('removes the access token, refresh token, authorization code and device code of the grant', async () => {
        expect(await adapterFor('AccessToken').find('at-1')).toBeUndefined();
        expect(await adapterFor('RefreshToken').find('rt-1')).toBeUndefined();
        expect(await adapterFor('AuthorizationCode').find('code-1')).toBeUndefined();
        expect(await adapterFor('DeviceCode').find('dc-1')).toBeUndefined();
        expect(await adapterFor('DeviceCode').findByUserCode('WDJB-MJHT')).toBeUndefined();
      });

      it('leaves the tokens of another grant', async () => {
        expect(await adapterFor('AccessToken').find('at-2')).toStrictEqual(
          payload('AccessToken', 'at-2', { grantId: 'g-2', accountId: 'acc-1' }),
        );
        expect(await adapterFor('RefreshToken').find('rt-2')).toStrictEqual(
          payload('RefreshToken', 'rt-2', { grantId: 'g-2', accountId: 'acc-1' }),
        );
        expect(await adapterFor('AuthorizationCode').find('code-2')).toStrictEqual(
          payload('AuthorizationCode', 'code-2', { grantId: 'g-2', accountId: 'acc-1' }),
        );
      });

      it('leaves the Grant record and the Session', async () => {
        expect(await adapterFor('Grant').find('g-1')).toStrictEqual(
          payload('Grant', 'g-1', { grantId: 'g-1', accountId: 'acc-1' }),
        );
        const session = payload('Session', 'sess-1', { grantId: 'g-1', accountId: 'acc-1', uid: 'uid-1' });
        expect(await adapterFor('Session').find('sess-1')).toStrictEqual(session);
        expect(await adapterFor('Session').findByUid('uid-1')).toStrictEqual(session);
      });
    },
  );

  describe('expiry', () => {
    it('stops returning a record once expiresIn seconds have passed', async () => {
      const adapter = adapterFor('AccessToken');
      await adapter.upsert('at-1', payload('AccessToken', 'at-1'), 60);
      const expiresAt = T0 + (60 + subject.toleranceSeconds) * 1000;

      vi.setSystemTime(expiresAt - 1);
      expect(await adapter.find('at-1')).toStrictEqual(payload('AccessToken', 'at-1'));
      // Both adapters treat the instant of expiry itself as expired.
      vi.setSystemTime(expiresAt);
      expect(await adapter.find('at-1')).toBeUndefined();
    });

    it('expires each record on its own schedule', async () => {
      const adapter = adapterFor('RefreshToken');
      await adapter.upsert('short', payload('RefreshToken', 'short'), 60);
      await adapter.upsert('long', payload('RefreshToken', 'long'), 3600);

      vi.setSystemTime(T0 + (600 + subject.toleranceSeconds) * 1000);
      expect(await adapter.find('short')).toBeUndefined();
      expect(await adapter.find('long')).toStrictEqual(payload('RefreshToken', 'long'));
    });

    it('stops returning an expired Session by uid and an expired DeviceCode by user code', async () => {
      await adapterFor('Session').upsert('sess-1', payload('Session', 'sess-1', { uid: 'uid-1' }), 60);
      await adapterFor('DeviceCode').upsert('dc-1', payload('DeviceCode', 'dc-1', { userCode: 'WDJB-MJHT' }), 60);

      vi.setSystemTime(T0 + 30_000);
      expect(await adapterFor('Session').findByUid('uid-1')).toBeDefined();
      expect(await adapterFor('DeviceCode').findByUserCode('WDJB-MJHT')).toBeDefined();

      vi.setSystemTime(T0 + (60 + subject.toleranceSeconds) * 1000);
      expect(await adapterFor('Session').findByUid('uid-1')).toBeUndefined();
      expect(await adapterFor('DeviceCode').findByUserCode('WDJB-MJHT')).toBeUndefined();
    });

    it('stops returning a consumed record once it expires', async () => {
      const adapter = adapterFor('AuthorizationCode');
      await adapter.upsert('code-1', payload('AuthorizationCode', 'code-1'), 60);
      await adapter.consume('code-1');

      vi.setSystemTime(T0 + (60 + subject.toleranceSeconds) * 1000);
      expect(await adapter.find('code-1')).toBeUndefined();
    });
  });
});

describe('postern adapter: what is stored', () => {
  let handle: DatabaseHandle;
  let adapterFor: AdapterFactory;

  useMigratedDatabase('adapter storage test', (opened) => {
    handle = opened;
    adapterFor = posternAdapters(opened.db);
  });
  beforeEach(async () => {
    await handle.db.deleteFrom('oidc_payloads').execute();
  });

  const everything = async () => JSON.stringify(await handle.db.selectFrom('oidc_payloads').selectAll().execute());

  // A session's uid stays in its payload: the engine reads it, and it opens nothing (README "Security model").
  it('keeps no record id, user code or remembered session cookie in clear, and gives each back', async () => {
    const session = { uid: 'uid-secret-1', accountId: 'acc-1' };
    await adapterFor('Session').upsert('sess-secret-1', payload('Session', 'sess-secret-1', session), 3600);
    await adapterFor('DeviceCode').upsert(
      'dc-secret-1',
      payload('DeviceCode', 'dc-secret-1', { userCode: 'USER-SECRET' }),
      600,
    );
    const interaction = payload('Interaction', 'int-secret-1', {
      returnTo: 'https://id.example/auth/int-secret-1',
      session: { accountId: 'acc-1', uid: 'uid-secret-1', cookie: 'sess-secret-1' },
    });
    await adapterFor('Interaction').upsert('int-secret-1', structuredClone(interaction), 3600);

    const dump = await everything();
    for (const secret of ['sess-secret-1', 'dc-secret-1', 'USER-SECRET', 'int-secret-1'])
      expect(dump).not.toContain(secret);
    expect(await adapterFor('Session').findByUid('uid-secret-1')).toStrictEqual(
      payload('Session', 'sess-secret-1', session),
    );
    expect(await adapterFor('DeviceCode').findByUserCode('USER-SECRET')).toStrictEqual(
      payload('DeviceCode', 'dc-secret-1', { userCode: 'USER-SECRET' }),
    );
    expect(await adapterFor('Interaction').find('int-secret-1')).toStrictEqual(interaction);
  });

  it('finds nothing when asked for the stored hash itself (a dump is no key)', async () => {
    await adapterFor('AccessToken').upsert('at-1', payload('AccessToken', 'at-1'), 3600);
    const [row] = await handle.db.selectFrom('oidc_payloads').select('id').execute();
    expect(await adapterFor('AccessToken').find(row!.id)).toBeUndefined();
  });

  it('still finds a row written before ids were hashed, and converts it on the way', async () => {
    // As the previous version stored it: the clear id as key, jti in the payload, clear grant id.
    await handle.db
      .insertInto('oidc_payloads')
      .values({
        kind: 'RefreshToken',
        id: 'rt-legacy',
        grant_id: 'g-legacy',
        payload: JSON.stringify(payload('RefreshToken', 'rt-legacy', { grantId: 'g-legacy' })),
        expires_at: new Date(T0 + 3_600_000),
      })
      .execute();

    expect(await adapterFor('RefreshToken').find('rt-legacy')).toStrictEqual(
      payload('RefreshToken', 'rt-legacy', { grantId: 'g-legacy' }),
    );
    expect(await everything()).not.toContain('rt-legacy');
    expect(await adapterFor('RefreshToken').find('rt-legacy')).toStrictEqual(
      payload('RefreshToken', 'rt-legacy', { grantId: 'g-legacy' }),
    );
    await adapterFor('Grant').revokeByGrantId('g-legacy');
    expect(await adapterFor('RefreshToken').find('rt-legacy')).toBeUndefined();
  });

  it('converts every legacy row at once when asked (a server start, a sweep)', async () => {
    await handle.db
      .insertInto('oidc_payloads')
      .values([
        {
          kind: 'Session',
          id: 'sess-legacy',
          uid: 'uid-legacy',
          payload: JSON.stringify(payload('Session', 'sess-legacy', { uid: 'uid-legacy' })),
          expires_at: new Date(T0 + 3_600_000),
        },
        {
          kind: 'AccessToken',
          id: 'at-legacy',
          payload: JSON.stringify(payload('AccessToken', 'at-legacy')),
          expires_at: new Date(T0 + 3_600_000),
        },
      ])
      .execute();

    expect(await hashLegacyRecords(handle.db, testProtection)).toBe(2);
    expect(await everything()).not.toMatch(/sess-legacy|at-legacy/);
    expect(await adapterFor('Session').findByUid('uid-legacy')).toStrictEqual(
      payload('Session', 'sess-legacy', { uid: 'uid-legacy' }),
    );
    expect(await adapterFor('AccessToken').find('at-legacy')).toStrictEqual(payload('AccessToken', 'at-legacy'));
  });
});

describe('sweepExpired', () => {
  let handle: DatabaseHandle;
  let adapterFor: AdapterFactory;

  useMigratedDatabase('sweeper test', (opened) => {
    handle = opened;
  });

  beforeEach(async () => {
    await handle.db.deleteFrom('oidc_payloads').execute();
    adapterFor = posternAdapters(handle.db);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(T0);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  async function storedRows(): Promise<string[]> {
    const rows = await handle.db
      .selectFrom('oidc_payloads')
      .select(['kind', 'id'])
      .orderBy('kind')
      .orderBy('id')
      .execute();
    return rows.map((r) => `${r.kind}:${r.id}`);
  }
  /** How a row shows in storedRows: under the keyed hash of its id. */
  const stored = (kind: string, id: string) => `${kind}:${testProtection.hashId(id)}`;

  it('deletes expired rows of every kind and leaves live ones', async () => {
    await adapterFor('AccessToken').upsert('at-old', payload('AccessToken', 'at-old'), 60);
    await adapterFor('AuthorizationCode').upsert('code-old', payload('AuthorizationCode', 'code-old'), 60);
    await adapterFor('Session').upsert('sess-old', payload('Session', 'sess-old', { uid: 'uid-old' }), 120);
    await adapterFor('AccessToken').upsert('at-live', payload('AccessToken', 'at-live'), 3600);
    await adapterFor('Session').upsert('sess-live', payload('Session', 'sess-live', { uid: 'uid-live' }), 86_400);
    await adapterFor('AuthorizationCode').consume('code-old');

    vi.setSystemTime(T0 + 600_000);
    const deleted = await sweepExpired(handle.db, systemClock);

    expect(deleted).toBe(3);
    expect(await storedRows()).toEqual([stored('AccessToken', 'at-live'), stored('Session', 'sess-live')].sort());
  });

  it('deletes nothing while every row is live', async () => {
    await adapterFor('AccessToken').upsert('at-1', payload('AccessToken', 'at-1'), 60);
    await adapterFor('Grant').upsert('g-1', payload('Grant', 'g-1'), 3600);

    vi.setSystemTime(T0 + 59_999);
    expect(await sweepExpired(handle.db, systemClock)).toBe(0);
    expect(await storedRows()).toEqual([stored('AccessToken', 'at-1'), stored('Grant', 'g-1')].sort());
  });

  it('agrees with find on the instant of expiry', async () => {
    await adapterFor('AccessToken').upsert('at-1', payload('AccessToken', 'at-1'), 60);

    vi.setSystemTime(T0 + 60_000);
    expect(await adapterFor('AccessToken').find('at-1')).toBeUndefined();
    expect(await sweepExpired(handle.db, systemClock)).toBe(1);
    expect(await storedRows()).toEqual([]);
  });

  it('works through more rows than one batch, and stops after maxBatches', async () => {
    const past = new Date(T0 - 1000).toISOString();
    // 2,500 expired rows and one live one, written directly: the sweeper looks only at expires_at.
    await handle.db
      .insertInto('oidc_payloads')
      .values(
        Array.from({ length: 2500 }, (_, i) => ({
          kind: 'AccessToken',
          id: `bulk-${i}`,
          payload: '{}',
          expires_at: past,
        })),
      )
      .execute();
    await adapterFor('AccessToken').upsert('at-live', payload('AccessToken', 'at-live'), 3600);

    expect(await sweepExpired(handle.db, systemClock, 2)).toBe(2000);
    expect(await storedRows()).toHaveLength(501);
    expect(await sweepExpired(handle.db, systemClock)).toBe(500);
    expect(await storedRows()).toEqual([stored('AccessToken', 'at-live')]);
  });
});
