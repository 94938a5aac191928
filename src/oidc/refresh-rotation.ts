import { setTimeout as sleep } from 'node:timers/promises';

import type Koa from 'koa';
import { sql, type Kysely } from 'kysely';
import Provider, { errors } from 'oidc-provider';

import { compileOnce, type CompiledStatement } from '../db/compile-once.ts';
import type { Database } from '../db/tables.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import { isDatabaseUnavailable } from '../shared/database-unavailable.ts';
import type { PayloadRow } from './payload-statements.ts';
import type { RecordProtection } from './record-protection.ts';
import { TemporarilyUnavailable } from './unavailable.ts';

// RFC 9700 §4.14.2, refresh-token rotation without a second branch (README "Refresh tokens and
// sessions"). The first use of a token claims it with a compare-and-set on consumed_at. The
// engine's consume and the saves of the new tokens are held for the end of the request: then ONE
// statement claims the old token, seals its answer (access, refresh and ID token) onto it for the
// grace window, and inserts the new tokens only if the claim won. So nothing is issued that is not
// stored with its successor, and a refresh costs one write round trip instead of four. A repeat inside the window (a retry after a timeout, a second tab, a
// concurrent loser of the claim) gets that very answer again, a bounded number of times, and
// never a new token: one live refresh token per grant, always. After the window a repeat is
// reuse, and the engine revokes the grant.

export interface RefreshGrace {
  readonly seconds: number;
  readonly maxRepeats: number;
}

interface Slot {
  /** The token this request means to claim; claimed for real at the end (commit). */
  claiming?: string;
  /** The new records, stored by the same statement that claims. */
  writes: PayloadRow[];
  /** What counts a new issue, run once the claim is won (a lost claim is answered as a repeat). */
  issued?: () => void;
  repeated?: string;
}

export interface RefreshRotation {
  /** Adapter: whether a token consumed at `consumedAt` is still a repeat (not reuse) for this request. */
  withinGrace(consumedAt: Date): boolean;
  /**
   * Adapter (consume): holds the claim on the token stored under `key` for the end of this
   * request; false when the request is not a refresh at the token endpoint (claim at once).
   */
  deferClaim(key: string): boolean;
  /** Adapter (upsert): holds a new record of a refresh whose claim is held; false otherwise. */
  deferWrite(row: PayloadRow): boolean;
  /** Events: runs `count` now, or, for a refresh whose claim is held, once it is won. */
  whenIssued(ctx: object, count: () => void): void;
  /** Adapter: this request presented the token under `key` after another claimed it. */
  repeated(key: string): void;
  /** provider.use: seals the winner's answer, and answers a repeat with it. */
  readonly middleware: Koa.Middleware;
  /** The sweeper: successors are kept for the window only. */
  dropExpiredSuccessors(): Promise<number>;
}

/** How long a repeat waits for the answer of the request that won the claim. */
const WAIT_MS = [20, 40, 80, 160, 320, 640, 1000, 1000];

/**
 * The request the adapter is called for: the engine's documented `Provider.ctx` (an
 * AsyncLocalStorage of its own; docs "General access to ctx"), set inside its route handlers.
 */
const currentContext = () => Provider.ctx;

export function createRefreshRotation(deps: {
  db: Kysely<Database>;
  clock: Clock;
  protect: RecordProtection;
  grace: RefreshGrace;
  logger: Logger;
}): RefreshRotation {
  const { db, clock, protect, grace, logger } = deps;
  const slots = new WeakMap<object, Slot>();
  const binding = (key: string) => `RefreshToken:${key}:successor`;
  const graceStart = () => new Date(clock.now().getTime() - grace.seconds * 1000);

  const slot = (): Slot | undefined => {
    const ctx = currentContext();
    return ctx && ctx.oidc?.params?.grant_type === 'refresh_token' ? slots.get(ctx) : undefined;
  };

  /** The commit statement for each number of new records (the engine saves one or two per refresh). */
  const commits = new Map<number, CompiledStatement<CommitValues, { won: number }>>();

  async function commit(key: string, writes: readonly PayloadRow[], body: unknown): Promise<boolean> {
    let statement = commits.get(writes.length);
    if (!statement) {
      statement = compileCommit(db, writes.length);
      commits.set(writes.length, statement);
    }
    const sealed = protect.seal(binding(key), JSON.stringify(body));
    const { rows } = await statement({ key, sealed, now: clock.now(), writes });
    return rows[0]?.won === 1;
  }

  /** One atomic statement: counts the repeat and hands out the sealed answer, or nothing. */
  async function takeRepeat(key: string): Promise<'sealed' | 'refused' | 'wait' | string> {
    const taken = await db
      .updateTable('oidc_payloads')
      .set((eb) => ({ grace_uses: eb('grace_uses', '+', 1) }))
      .where('kind', '=', 'RefreshToken')
      .where('id', '=', key)
      .where('id_hashed', '=', true)
      .where('consumed_at', '>', graceStart())
      .where('successor_sealed', 'is not', null)
      .where('grace_uses', '<', grace.maxRepeats)
      .returning('successor_sealed')
      .executeTakeFirst();
    if (taken?.successor_sealed) return protect.unseal(binding(key), taken.successor_sealed) ?? 'refused';
    const row = await db
      .selectFrom('oidc_payloads')
      .select(['successor_sealed', 'consumed_at', 'grace_uses'])
      .where('kind', '=', 'RefreshToken')
      .where('id', '=', key)
      .executeTakeFirst();
    const open = row?.consumed_at && row.consumed_at > graceStart() && row.grace_uses < grace.maxRepeats;
    return open && !row.successor_sealed ? 'wait' : 'refused';
  }

  /**
   * The engine's answer is sent only if the claim, its sealed copy and the new tokens were
   * stored together. A lost claim makes this request a repeat; a lost database a 503, after
   * which the client's retry with the same (still unclaimed) token is answered.
   */
  async function commitOrRepeat(ctx: Koa.Context, state: Slot, key: string): Promise<void> {
    let won: boolean;
    try {
      won = await commit(key, state.writes, ctx.body);
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      answerUnavailable(ctx, error);
      return;
    }
    if (won) {
      state.issued?.();
      return;
    }
    const refused = new errors.InvalidGrant('refresh token already rotated');
    ctx.status = refused.statusCode;
    ctx.body = { error: refused.error, error_description: refused.error_description };
    await replay(ctx, key);
  }

  /** The engine's middleware is done, so its error handler is not ours: answer as it would (oidc/unavailable.ts). */
  function answerUnavailable(ctx: Koa.Context, error: unknown): void {
    const unavailable = new TemporarilyUnavailable(error);
    ctx.status = unavailable.statusCode;
    ctx.body = { error: unavailable.error, error_description: unavailable.error_description };
    ctx.set('cache-control', 'no-store');
  }

  async function replay(ctx: Koa.Context, key: string): Promise<void> {
    try {
      await replayOrRefuse(ctx, key);
    } catch (error) {
      // A 503 makes the client retry the same token, which is then answered; invalid_grant
      // would make it drop a token the window still honours.
      if (!isDatabaseUnavailable(error)) throw error;
      answerUnavailable(ctx, error);
    }
  }

  async function replayOrRefuse(ctx: Koa.Context, key: string): Promise<void> {
    for (const ms of [0, ...WAIT_MS]) {
      if (ms) await sleep(ms);
      const answer = await takeRepeat(key);
      if (answer === 'wait') continue;
      if (answer === 'refused') return; // the engine's invalid_grant stands
      ctx.status = 200;
      ctx.body = JSON.parse(answer) as unknown;
      ctx.set('cache-control', 'no-store');
      logger.debug(
        { requestId: ctx.get('x-request-id') },
        'refresh token repeated inside its grace window: answered with its successor',
      );
      return;
    }
  }

  const middleware: Koa.Middleware = async (ctx, next) => {
    if (ctx.method !== 'POST') return next();
    const state: Slot = { writes: [] };
    slots.set(ctx, state);
    try {
      await next();
      // A refresh the engine refused after its consume stores nothing: the old token stays live.
      if (state.claiming && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
        await commitOrRepeat(ctx, state, state.claiming);
      } else if (state.repeated && ctx.status === 400) {
        await replay(ctx, state.repeated);
      }
    } finally {
      slots.delete(ctx);
    }
  };

  return {
    withinGrace: (consumedAt) => slot() !== undefined && consumedAt > graceStart(),
    deferClaim(key) {
      const s = slot();
      if (!s || s.claiming) return false;
      // Nothing to wait for elsewhere: the claim and its sealed answer are stored together, so a
      // request that finds the token claimed finds the answer too.
      s.claiming = key;
      return true;
    },
    whenIssued(ctx, count) {
      const s = slots.get(ctx);
      if (s?.claiming) s.issued = count;
      else count();
    },
    deferWrite(row) {
      const s = slot();
      if (!s?.claiming) return false;
      s.writes.push(row);
      return true;
    },
    repeated(key) {
      const s = slot();
      if (s) s.repeated = key;
    },
    middleware,
    async dropExpiredSuccessors() {
      const result = await sql`update oidc_payloads set successor_sealed = null
        where successor_sealed is not null and consumed_at <= ${graceStart()}`.execute(db);
      return Number(result.numAffectedRows ?? 0n);
    },
  };
}

/** The columns of a new record, in the order the commit statement lists them. */
const WRITTEN = ['kind', 'id', 'payload', 'grant_id', 'uid', 'user_code', 'expires_at'] as const;

type CommitValues = { key: string; sealed: string; now: Date; writes: readonly PayloadRow[] };

/**
 * ONE statement: the compare-and-set claim of the old token with its sealed answer, and the
 * new records, inserted only if the claim won (RFC 9700 §4.14.2: one live token per grant).
 */
function compileCommit(db: Kysely<Database>, count: number): CompiledStatement<CommitValues, { won: number }> {
  const statement = compileOnce<Record<string, unknown>, { won: number }>(db, (p) => {
    const claim = sql`update oidc_payloads set consumed_at = ${p('now')}, successor_sealed = ${p('sealed')}
      where kind = 'RefreshToken' and id = ${p('key')} and id_hashed = true and consumed_at is null
      returning 1`;
    if (count === 0)
      return sql<{ won: number }>`with claim as (${claim}) select count(*)::int as won from claim`.compile(db);
    const values = sql.join(
      Array.from({ length: count }, (_, i) => {
        const w = (column: (typeof WRITTEN)[number]) => p(`${column}${i}`);
        return sql`(${w('kind')}, ${w('id')}, ${w('payload')}::jsonb, ${w('grant_id')}, ${w('uid')}, ${w('user_code')}, ${w('expires_at')}::timestamptz, true)`;
      }),
    );
    return sql<{ won: number }>`with claim as (${claim}),
      stored as (
        insert into oidc_payloads (kind, id, payload, grant_id, uid, user_code, expires_at, id_hashed)
        select * from (values ${values}) as v where exists (select 1 from claim)
        returning 1)
      select count(*)::int as won, (select count(*)::int from stored) as stored from claim`.compile(db);
  });
  return ({ writes, ...claim }) => {
    const values: Record<string, unknown> = { ...claim };
    writes.forEach((w, i) => {
      for (const column of WRITTEN) values[`${column}${i}`] = w[column];
    });
    return statement(values);
  };
}
