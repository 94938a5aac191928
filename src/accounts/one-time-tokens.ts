import { createHmac, createSecretKey, randomBytes, randomInt, type KeyObject } from 'node:crypto';

import type { Kysely } from 'kysely';

import type { Database, OneTimeTokenPurpose } from '../db/tables.ts';
import { seal, unseal } from '../keys/sealed-box.ts';
import { deleteInBatches } from '../shared/batches.ts';
import type { Clock } from '../shared/clock.ts';
import {
  consumeTokenByCode,
  consumeTokenByHash,
  deleteSpentTokensBatch,
  deleteUnusedTokens,
  findUsableToken,
  insertToken,
  type TokenRow,
} from './one-time-token.repository.ts';
import { chargeAttempt, clearThrottles, readThrottle, type ThrottleKey } from './throttle.repository.ts';

export type { OneTimeTokenPurpose };

// Single-use links (verification, reset, unlock, invitation, email change). DESIGN §5: the
// token is 256 random bits, so the database keeps only HMAC-SHA-256(key, token) and a dump
// holds no usable link. A verification mail may also carry a 6-digit code, bound to its token
// (using either uses both) and guarded by the sign-in throttle's atomic counter.

export interface IssuedToken {
  /** base64url, 43 characters: goes into the link, and nowhere else. */
  readonly token: string;
  /** Six digits, when asked for (withCode). */
  readonly code?: string;
  readonly expiresAt: Date;
}

export interface RedeemedToken {
  readonly accountId: string;
  readonly purpose: OneTimeTokenPurpose;
  readonly payload: Readonly<Record<string, unknown>> | undefined;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
}

export type CodeResult =
  | { readonly ok: true; readonly token: RedeemedToken }
  | { readonly ok: false; readonly reason: 'invalid' }
  | { readonly ok: false; readonly reason: 'throttled'; readonly retryAfterSeconds: number };

export interface OneTimeTokens {
  /**
   * A new token for the account (in the caller's transaction, with the mail that carries it).
   * Unused earlier tokens of the same purpose stop working unless keepEarlier is set.
   */
  issue(
    db: Kysely<Database>,
    input: {
      purpose: OneTimeTokenPurpose;
      accountId: string;
      ttlSeconds: number;
      payload?: Readonly<Record<string, unknown>>;
      withCode?: boolean;
      keepEarlier?: boolean;
    },
  ): Promise<IssuedToken>;
  /** Is the token usable now? For the page that shows a form before the token is used. */
  check(db: Kysely<Database>, token: string, purpose: OneTimeTokenPurpose): Promise<RedeemedToken | undefined>;
  /** Uses the token: one caller gets it back, every other (and any later) gets undefined. */
  consume(db: Kysely<Database>, token: string, purpose: OneTimeTokenPurpose): Promise<RedeemedToken | undefined>;
  /** Uses the account's token by its 6-digit code; CODE_ATTEMPTS wrong codes an hour, then 'throttled'. */
  consumeCode(
    db: Kysely<Database>,
    input: { accountId: string; purpose: OneTimeTokenPurpose; code: string },
  ): Promise<CodeResult>;
  /** Ends the account's unused tokens (of one purpose, or all): after a reset, a disable. */
  revoke(db: Kysely<Database>, accountId: string, purpose?: OneTimeTokenPurpose): Promise<number>;
  /** Deletes tokens a day past their expiry (the sweeper calls it). */
  sweep(db: Kysely<Database>, now: Date): Promise<number>;
}

/** 5 guesses an hour at a one-in-a-million code: 120 over a 24 h link, a 0.012 % chance. */
export const CODE_ATTEMPTS = 5;
const CODE_WINDOW_SECONDS = 3600;
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;
const KEEP_SPENT_MS = 86_400_000;

export function createOneTimeTokens(deps: { hmacKey: Buffer; sealKey: Buffer; clock: Clock }): OneTimeTokens {
  const hmacKey: KeyObject = createSecretKey(deps.hmacKey);
  const sealKey = Buffer.from(deps.sealKey);
  const hash = (value: string) => createHmac('sha256', hmacKey).update(value, 'utf8').digest('base64url');
  // The code is only 20 bits: its hash is keyed and bound to the account and purpose.
  const codeHash = (accountId: string, purpose: string, code: string) => hash(`code:${purpose}:${accountId}:${code}`);
  const binding = (tokenHash: string) => `one_time_tokens:${tokenHash}`;
  const redeemed = (row: TokenRow): RedeemedToken => ({
    accountId: row.accountId,
    purpose: row.purpose,
    payload: row.payloadSealed
      ? (JSON.parse(unseal(sealKey, binding(row.tokenHash), row.payloadSealed).toString('utf8')) as Record<
          string,
          unknown
        >)
      : undefined,
    issuedAt: row.createdAt,
    expiresAt: row.expiresAt,
  });
  const codeThrottle = (accountId: string, purpose: string): ThrottleKey => ({
    scope: 'one_time_code',
    key: `${purpose}:${accountId}`,
    accountId,
  });
  return {
    async issue(db, input) {
      const now = deps.clock.now();
      const token = randomBytes(32).toString('base64url');
      const tokenHash = hash(token);
      const code = input.withCode ? String(randomInt(0, 1_000_000)).padStart(6, '0') : undefined;
      const expiresAt = new Date(now.getTime() + input.ttlSeconds * 1000);
      if (!input.keepEarlier) await deleteUnusedTokens(db, input.accountId, input.purpose);
      await insertToken(db, {
        tokenHash,
        purpose: input.purpose,
        accountId: input.accountId,
        payloadSealed: input.payload
          ? seal(sealKey, binding(tokenHash), Buffer.from(JSON.stringify(input.payload), 'utf8'))
          : null,
        codeHash: code === undefined ? null : codeHash(input.accountId, input.purpose, code),
        createdAt: now,
        expiresAt,
      });
      return { token, ...(code === undefined ? {} : { code }), expiresAt };
    },
    async check(db, token, purpose) {
      if (!TOKEN_SHAPE.test(token)) return undefined;
      const row = await findUsableToken(db, hash(token), purpose, deps.clock.now());
      return row && redeemed(row);
    },
    async consume(db, token, purpose) {
      if (!TOKEN_SHAPE.test(token)) return undefined;
      const row = await consumeTokenByHash(db, hash(token), purpose, deps.clock.now());
      return row && redeemed(row);
    },
    async consumeCode(db, { accountId, purpose, code }) {
      const digits = code.replace(/[\s-]/g, '');
      if (!/^\d{6}$/.test(digits)) return { ok: false, reason: 'invalid' };
      const now = deps.clock.now();
      const key = codeThrottle(accountId, purpose);
      // Charged before the comparison, in one statement: parallel guesses cannot overrun the limit.
      if (!(await chargeAttempt(db, key, now, CODE_WINDOW_SECONDS, CODE_ATTEMPTS))) {
        const state = await readThrottle(db, key);
        const end = (state?.windowStartedAt.getTime() ?? now.getTime()) + CODE_WINDOW_SECONDS * 1000;
        return {
          ok: false,
          reason: 'throttled',
          retryAfterSeconds: Math.max(1, Math.ceil((end - now.getTime()) / 1000)),
        };
      }
      const row = await consumeTokenByCode(db, accountId, purpose, codeHash(accountId, purpose, digits), now);
      if (!row) return { ok: false, reason: 'invalid' };
      await clearThrottles(db, [key]);
      return { ok: true, token: redeemed(row) };
    },
    revoke: (db, accountId, purpose) => deleteUnusedTokens(db, accountId, purpose),
    sweep(db, now) {
      const before = new Date(now.getTime() - KEEP_SPENT_MS);
      return deleteInBatches((limit) => deleteSpentTokensBatch(db, before, limit));
    },
  };
}
