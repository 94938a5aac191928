import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Account } from '../../src/accounts/account.ts';
import { CODE_ATTEMPTS } from '../../src/accounts/one-time-tokens.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { createTestClock, startTestServer, type TestServer } from '../support/server.ts';

// One-time tokens on the real database of a running server (PGlite, or PostgreSQL with
// DATABASE_URL, where the parallel consumes below really run in parallel on a pool).
let database: TestDatabase;
let server: TestServer;
let account: Account;
const clock = createTestClock();

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startTestServer(database, {}, { clock });
  account = await server.container.accounts.create({
    username: 'grace',
    email: 'grace@example.com',
    password: 'correct horse battery staple',
  });
});

afterAll(async () => {
  await server?.close();
  await database?.drop();
});

const db = () => server.container.db.db;
const tokens = () => server.container.tokens;

describe('one-time tokens', () => {
  it('is used once, even by 10 requests at the same moment', async () => {
    const { token } = await tokens().issue(db(), {
      purpose: 'reset_password',
      accountId: account.id,
      ttlSeconds: 1800,
    });

    const results = await Promise.all(
      Array.from({ length: 10 }, () => tokens().consume(db(), token, 'reset_password')),
    );

    expect(results.filter(Boolean)).toHaveLength(1);
    expect(results.find(Boolean)).toMatchObject({ accountId: account.id, purpose: 'reset_password' });
    expect(await tokens().consume(db(), token, 'reset_password')).toBeUndefined();
  });

  it('is refused for another purpose, and stays usable for its own', async () => {
    const { token } = await tokens().issue(db(), { purpose: 'unlock', accountId: account.id, ttlSeconds: 1800 });

    expect(await tokens().consume(db(), token, 'reset_password')).toBeUndefined();
    expect(await tokens().check(db(), token, 'invite')).toBeUndefined();
    expect(await tokens().consume(db(), token, 'unlock')).toMatchObject({ accountId: account.id });
  });

  it('expires', async () => {
    const { token } = await tokens().issue(db(), { purpose: 'invite', accountId: account.id, ttlSeconds: 60 });
    expect(await tokens().check(db(), token, 'invite')).toBeDefined();

    clock.advance(61);

    expect(await tokens().check(db(), token, 'invite')).toBeUndefined();
    expect(await tokens().consume(db(), token, 'invite')).toBeUndefined();
  });

  it('replaces the unused earlier token of the same purpose', async () => {
    const first = await tokens().issue(db(), { purpose: 'verify_email', accountId: account.id, ttlSeconds: 600 });
    const second = await tokens().issue(db(), { purpose: 'verify_email', accountId: account.id, ttlSeconds: 600 });

    expect(await tokens().consume(db(), first.token, 'verify_email')).toBeUndefined();
    expect(await tokens().consume(db(), second.token, 'verify_email')).toBeDefined();
  });

  it('is stored as a keyed hash, its payload sealed', async () => {
    const { token } = await tokens().issue(db(), {
      purpose: 'email_change',
      accountId: account.id,
      ttlSeconds: 600,
      payload: { newEmail: 'grace.new@example.org' },
    });

    const rows = await db().selectFrom('one_time_tokens').selectAll().where('purpose', '=', 'email_change').execute();
    expect(rows).toHaveLength(1);
    const raw = JSON.stringify(rows);
    expect(raw).not.toContain(token);
    expect(raw).not.toContain('grace.new');
    expect(rows[0]!.token_hash).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await tokens().consume(db(), token, 'email_change')).toMatchObject({
      payload: { newEmail: 'grace.new@example.org' },
    });
  });

  describe('the 6-digit code', () => {
    it('uses the token it came with, once', async () => {
      const issued = await tokens().issue(db(), {
        purpose: 'verify_email',
        accountId: account.id,
        ttlSeconds: 86400,
        withCode: true,
      });
      expect(issued.code).toMatch(/^\d{6}$/);

      const results = await Promise.all(
        Array.from({ length: 10 }, () =>
          tokens().consumeCode(db(), { accountId: account.id, purpose: 'verify_email', code: issued.code! }),
        ),
      );

      expect(results.filter((r) => r.ok)).toHaveLength(1);
      // The link went with it.
      expect(await tokens().consume(db(), issued.token, 'verify_email')).toBeUndefined();
    });

    it(`allows ${CODE_ATTEMPTS} wrong guesses an hour, counted atomically even in parallel, then refuses the right one too`, async () => {
      // An account of its own: the parallel uses of a right code in the test before may leave
      // charges on grace's counter after the winner cleared it (each use is charged first).
      const guesser = await server.container.accounts.create({
        username: 'ada',
        email: 'ada@example.com',
        password: 'correct horse battery staple',
      });
      const issued = await tokens().issue(db(), {
        purpose: 'verify_email',
        accountId: guesser.id,
        ttlSeconds: 86400,
        withCode: true,
      });
      const wrong = String((Number(issued.code) + 1) % 1_000_000).padStart(6, '0');

      const guesses = await Promise.all(
        Array.from({ length: 12 }, () =>
          tokens().consumeCode(db(), { accountId: guesser.id, purpose: 'verify_email', code: wrong }),
        ),
      );
      const right = await tokens().consumeCode(db(), {
        accountId: guesser.id,
        purpose: 'verify_email',
        code: issued.code!,
      });

      expect(guesses.filter((g) => !g.ok && g.reason === 'invalid')).toHaveLength(CODE_ATTEMPTS);
      expect(guesses.filter((g) => !g.ok && g.reason === 'throttled')).toHaveLength(12 - CODE_ATTEMPTS);
      expect(right).toMatchObject({ ok: false, reason: 'throttled' });
      expect((right as { retryAfterSeconds: number }).retryAfterSeconds).toBeGreaterThan(0);
      // The link still works: a person who mistyped the code is not stuck.
      expect(await tokens().consume(db(), issued.token, 'verify_email')).toBeDefined();
    });
  });
});
