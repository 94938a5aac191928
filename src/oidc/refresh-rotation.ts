import { setTimeout as sleep } from 'node:timers/promises';

import type Koa from 'koa';
import { sql, type Kysely } from 'kysely';
import Provider from 'oidc-provider';

import type { Database } from '../db/tables.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import { isDatabaseUnavailable } from '../shared/database-unavailable.ts';
import type { RecordProtection } from './record-protection.ts';
import { TemporarilyUnavailable } from './unavailable.ts';

// RFC 9700 §4.14.2, refresh-token rotation without a second branch (README "Refresh tokens and
// sessions"). The first use of a token claims it with a compare-and-set on consumed_at (the
// adapter's consume). Its answer (access, refresh and ID token) is sealed onto the consumed row
// for the grace window. A repeat inside the window (a retry after a timeout, a second tab, a
// concurrent loser of the claim) gets that very answer again, a bounded number of times, and
// never a new token: one live refresh token per grant, always. After the window a repeat is
// reuse, and the engine revokes the grant.

export interface RefreshGrace {
  readonly seconds: number;
  readonly maxRepeats: number;
}

interface Slot {
  claimed?: string;
  repeated?: string;
}

export interface RefreshRotation {
  /** Adapter: whether a token consumed at `consumedAt` is still a repeat (not reuse) for this request. */
  withinGrace(consumedAt: Date): boolean;
  /** Adapter: this request won the claim on the token stored under `key`. */
  claimed(key: string): void;
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
  /** Claims won in this process whose answer is not sealed yet: repeats here wait on them. */
  const pending = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  const release = (key: string) => {
    pending.get(key)?.resolve();
    pending.delete(key);
  };
  const binding = (key: string) => `RefreshToken:${key}:successor`;
  const graceStart = () => new Date(clock.now().getTime() - grace.seconds * 1000);

  const slot = (): Slot | undefined => {
    const ctx = currentContext();
    return ctx && ctx.oidc?.params?.grant_type === 'refresh_token' ? slots.get(ctx) : undefined;
  };

  async function sealSuccessor(key: string, body: unknown): Promise<void> {
    await db
      .updateTable('oidc_payloads')
      .set({ successor_sealed: protect.seal(binding(key), JSON.stringify(body)) })
      .where('kind', '=', 'RefreshToken')
      .where('id', '=', key)
      .where('id_hashed', '=', true)
      .execute();
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
   * The tokens are issued once the old one is claimed: the client gets them even when the copy
   * for repeats cannot be kept (the database just went away). Only a repeat of this use is lost.
   */
  async function keepSuccessor(ctx: Koa.Context, key: string): Promise<void> {
    try {
      await sealSuccessor(key, ctx.body);
    } catch (error) {
      logger.warn(
        { err: (error as Error).message, requestId: ctx.get('x-request-id') },
        'a refresh answer could not be kept for its grace window; a repeat of it will be refused',
      );
    }
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
    await pending.get(key)?.promise;
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
    const state: Slot = {};
    slots.set(ctx, state);
    try {
      await next();
      if (state.claimed && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
        await keepSuccessor(ctx, state.claimed);
      } else if (state.repeated && ctx.status === 400) {
        await replay(ctx, state.repeated);
      }
    } finally {
      if (state.claimed) release(state.claimed);
    }
  };

  return {
    withinGrace: (consumedAt) => slot() !== undefined && consumedAt > graceStart(),
    claimed(key) {
      const s = slot();
      if (!s) return;
      s.claimed = key;
      let resolve = () => {};
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      pending.set(key, { promise, resolve });
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
