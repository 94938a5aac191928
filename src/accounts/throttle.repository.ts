import { sql, type Kysely } from 'kysely';

import type { Database, ThrottleScope } from '../db/tables.ts';

// Sign-in counters. Every change is ONE statement, so any number of instances and concurrent
// requests see one consistent count (a read-modify-write would let parallel guesses slip
// past the threshold).

export interface ThrottleKey {
  readonly scope: ThrottleScope;
  readonly key: string;
  readonly accountId: string | null;
}

export interface ThrottleState {
  readonly failures: number;
  readonly windowStartedAt: Date;
  readonly lockedUntil: Date | null;
  readonly lockouts: number;
}

/**
 * Charges one attempt before the password is checked. Returns false, charging nothing, when
 * the key is locked or has used up `limit` attempts in the current window.
 */
export async function chargeAttempt(
  db: Kysely<Database>,
  k: ThrottleKey,
  now: Date,
  windowSeconds: number,
  limit: number,
): Promise<boolean> {
  const windowStart = new Date(now.getTime() - windowSeconds * 1000);
  const result = await sql<{ failures: number }>`
    insert into login_throttles as t (scope, key, account_id, failures, window_started_at, updated_at)
    values (${k.scope}, ${k.key}, ${k.accountId}, 1, ${now}, ${now})
    on conflict (scope, key) do update set
      failures = case when t.window_started_at <= ${windowStart} then 1 else t.failures + 1 end,
      window_started_at = case when t.window_started_at <= ${windowStart} then ${now} else t.window_started_at end,
      updated_at = ${now}
    where t.locked_until is null and (t.window_started_at <= ${windowStart} or t.failures < ${limit})
    returning failures`.execute(db);
  return result.rows.length === 1;
}

/** Per-scope limits of one statement that charges several keys at once. */
export interface ScopeLimits {
  readonly account: number;
  /** Every other subject scope (account_ip, device). */
  readonly other: number;
}

/**
 * `chargeAttempt` for several keys in ONE statement (each row is still charged atomically, under
 * its own row lock): returns the keys that were charged; a key missing from the answer is locked
 * or used up, and nothing was charged to it. Keys are taken in the order given, so concurrent
 * charges lock rows in one order.
 */
export async function chargeAttempts(
  db: Kysely<Database>,
  keys: readonly ThrottleKey[],
  now: Date,
  windowSeconds: number,
  limits: ScopeLimits,
): Promise<ThrottleKey[]> {
  if (keys.length === 0) return [];
  const windowStart = new Date(now.getTime() - windowSeconds * 1000);
  const rows = sql.join(
    keys.map((k) => sql`(${k.scope}, ${k.key}, ${k.accountId}::uuid, 1, ${now}::timestamptz, ${now}::timestamptz)`),
  );
  const result = await sql<{ scope: string; key: string }>`
    insert into login_throttles as t (scope, key, account_id, failures, window_started_at, updated_at)
    values ${rows}
    on conflict (scope, key) do update set
      failures = case when t.window_started_at <= ${windowStart} then 1 else t.failures + 1 end,
      window_started_at = case when t.window_started_at <= ${windowStart} then ${now} else t.window_started_at end,
      updated_at = ${now}
    where t.locked_until is null and (t.window_started_at <= ${windowStart}
      or t.failures < case when t.scope = 'account' then ${limits.account}::int else ${limits.other}::int end)
    returning scope, key`.execute(db);
  const charged = new Set(result.rows.map((r) => `${r.scope}\u0000${r.key}`));
  return keys.filter((k) => charged.has(`${k.scope}\u0000${k.key}`));
}

/**
 * A success, in ONE statement: the subject's keys are deleted (counters and back-off start over)
 * and the attempt charged to the address is given back.
 */
export async function settleSuccess(
  db: Kysely<Database>,
  cleared: readonly ThrottleKey[],
  refunded: ThrottleKey,
  now: Date,
): Promise<void> {
  const pairs = sql.join(cleared.map((k) => sql`(${k.scope}, ${k.key})`));
  await sql`
    with cleared as (delete from login_throttles where (scope, key) in (${pairs}) returning 1)
    update login_throttles set failures = greatest(failures - 1, 0), updated_at = ${now}
    where scope = ${refunded.scope} and key = ${refunded.key}`.execute(db);
}

/** Ends the locks whose time is up, in one statement; returns the keys whose lock it ended, to exactly one caller, which reports them. */
export async function releaseExpiredLocks(
  db: Kysely<Database>,
  keys: readonly ThrottleKey[],
  now: Date,
): Promise<ThrottleKey[]> {
  if (keys.length === 0) return [];
  const pairs = sql.join(keys.map((k) => sql`(${k.scope}, ${k.key})`));
  const result = await sql<{ scope: string; key: string }>`
    update login_throttles set locked_until = null, updated_at = ${now}
    where (scope, key) in (${pairs}) and locked_until <= ${now}
    returning scope, key`.execute(db);
  const released = new Set(result.rows.map((r) => `${r.scope}\u0000${r.key}`));
  return keys.filter((k) => released.has(`${k.scope}\u0000${k.key}`));
}

/** Gives back a charged attempt that turned out not to be a failure. */
export async function refundAttempt(db: Kysely<Database>, k: ThrottleKey, now: Date): Promise<void> {
  await db
    .updateTable('login_throttles')
    .set({ failures: sql<number>`greatest(failures - 1, 0)`, updated_at: now })
    .where('scope', '=', k.scope)
    .where('key', '=', k.key)
    .execute();
}

// The back-off exponent stops here: 2^64 times any base lock outlasts every maximum, and
// float8 stays far from overflow (power(2, 1015) times a 900 s base overflowed into a 500).
const MAX_BACKOFF_EXPONENT = 64;

/**
 * After a failed attempt: locks the key when its failures reached the threshold. Only one of
 * several concurrent callers gets the row back; the lock lasts base·2^(lockouts so far), capped.
 */
export async function lockIfExhausted(
  db: Kysely<Database>,
  k: ThrottleKey,
  now: Date,
  threshold: number,
  baseSeconds: number,
  maxSeconds: number,
): Promise<Date | undefined> {
  const result = await sql<{ locked_until: Date }>`
    update login_throttles set
      locked_until = ${now}::timestamptz + make_interval(secs => least(${baseSeconds}::float8 * power(2, least(lockouts, ${MAX_BACKOFF_EXPONENT}::int)), ${maxSeconds}::float8)),
      lockouts = lockouts + 1,
      failures = 0,
      updated_at = ${now}
    where scope = ${k.scope} and key = ${k.key} and failures >= ${threshold} and locked_until is null
    returning locked_until`.execute(db);
  return result.rows[0]?.locked_until;
}

export async function readThrottle(db: Kysely<Database>, k: ThrottleKey): Promise<ThrottleState | undefined> {
  const row = await db
    .selectFrom('login_throttles')
    .selectAll()
    .where('scope', '=', k.scope)
    .where('key', '=', k.key)
    .executeTakeFirst();
  return (
    row && {
      failures: row.failures,
      windowStartedAt: row.window_started_at,
      lockedUntil: row.locked_until,
      lockouts: row.lockouts,
    }
  );
}

/** Clears the counters (and the back-off) of the keys it names. */
export async function clearThrottles(db: Kysely<Database>, keys: readonly ThrottleKey[]): Promise<void> {
  for (const k of keys) {
    await db.deleteFrom('login_throttles').where('scope', '=', k.scope).where('key', '=', k.key).execute();
  }
}

/** `postern user unlock`: every lock and counter of one account, on every scope. */
export async function clearAccountThrottles(db: Kysely<Database>, accountId: string): Promise<number> {
  const result = await db
    .deleteFrom('login_throttles')
    .where('account_id', '=', accountId)
    .where('scope', '!=', 'ip')
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Old counters are useless after their window and lock: the sweeper deletes them. */
export async function deleteStaleThrottles(db: Kysely<Database>, before: Date): Promise<number> {
  const result = await db
    .deleteFrom('login_throttles')
    .where('updated_at', '<', before)
    .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<', before)]))
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
