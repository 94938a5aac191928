import { setTimeout as sleep } from 'node:timers/promises';

import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';

import { deriveKeyEncryptionKey, deriveKeys } from '../../src/config/secrets.ts';
import type { Database } from '../../src/db/tables.ts';
import { loadInstallationKey } from '../../src/keys/installation-key.ts';
import { createRecordProtection, type RecordProtection } from '../../src/oidc/record-protection.ts';
import { refreshChain, type Chain, type LoadContext, type LoadState } from './workload.ts';

export interface GrantCheck {
  /** Chains the load kept (every successful sign-in whose grant was not lost during the run). */
  readonly chains: number;
  /** Chains lost during the run (a refresh answered 4xx), with why. */
  readonly lostDuringRun: string[];
  /** Chains that did not refresh once more at the end. */
  readonly finalRefreshFailures: string[];
  /** Chains whose newest refresh token is not in oidc_payloads (under its keyed hash), or has no grant id. */
  readonly missingTokens: number;
  /** Rows stored under a chain's clear refresh token: DESIGN §5 says none may be. */
  readonly clearTokens: number;
  /** Grant ids shared by more than one chain. */
  readonly sharedGrants: number;
  /** Chains whose grant is not (or no longer) a live Grant row. */
  readonly missingGrants: number;
  /** Live Grant rows. */
  readonly grantRows: number;
  /** Grant rows that no chain holds, and how many of them the run can explain. */
  readonly extraGrants: number;
  readonly explainableExtra: number;
  readonly auditCounts: Record<string, number>;
  readonly problems: string[];
}

/** Every kept chain refreshes once more (alternating instances; a 503 or no answer is retried 5 times, 1 s apart). */
async function finalRefresh(ctx: LoadContext, chains: Chain[]): Promise<string[]> {
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < chains.length; i = next++) {
      const chain = chains[i]!;
      let result = await refreshChain(ctx, chain, i % ctx.instances.length, 'final refresh');
      for (let attempt = 1; attempt < 6 && result === 'unavailable'; attempt++) {
        await sleep(1000);
        result = await refreshChain(ctx, chain, (i + attempt) % ctx.instances.length, 'final refresh');
      }
      if (result !== 'ok') failures.push(`chain ${chain.id}: ${result} ${chain.lost ?? ''}`.trim());
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return failures;
}

/**
 * The key oidc_payloads rows are stored under, derived exactly as the app derives it (container.ts):
 * POSTERN_SECRET unseals the installation key, which gives the record keys.
 */
async function appRecordProtection(db: Kysely<Database>, secret: string): Promise<RecordProtection> {
  const derived = deriveKeys(await loadInstallationKey(db, deriveKeyEncryptionKey(secret)));
  return createRecordProtection({ hmacKey: derived.recordIdKey, sealKey: derived.recordSealKey });
}

/**
 * What is exactly checkable about grants, after the load:
 * - every chain the load kept refreshes once more (its grant was not lost);
 * - each chain's newest refresh token is a row, stored under the keyed hash of the token (never
 *   the token itself), bound to a grant, and no two chains share a grant (one sign-in, one grant:
 *   none duplicated or merged);
 * - each of those grants is a live Grant row (grant ids are keyed the same way on both sides);
 * - Grant rows no chain holds can only come from sign-ins whose outcome the load never learned:
 *   the request that saves the grant (the resume at /auth/UID) was sent, but the sign-in did not
 *   end with tokens (a 503, a timeout, a failed code exchange), or from chains lost during the
 *   run. With no such sign-in, count(Grant) must equal the number of chains exactly.
 */
export async function checkGrants(
  ctx: LoadContext,
  state: LoadState,
  database: { directUrl: string; secret: string },
): Promise<GrantCheck> {
  const lostDuringRun = state.chains.filter((c) => c.lost).map((c) => `chain ${c.id}: ${c.lost}`);
  const kept = state.chains.filter((c) => !c.lost);
  const finalRefreshFailures = await finalRefresh(ctx, kept);
  const pool = new pg.Pool({
    connectionString: database.directUrl,
    max: 1,
    connectionTimeoutMillis: 10_000,
    query_timeout: 60_000,
  });
  pool.on('error', () => {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    const protect = await appRecordProtection(db, database.secret);
    const keyOf = new Map(kept.map((c) => [c, protect.hashId(c.refreshToken)]));
    const tokens = await db
      .selectFrom('oidc_payloads')
      .select(['id', 'grant_id'])
      .where('kind', '=', 'RefreshToken')
      .where('id_hashed', '=', true)
      .where(sql<boolean>`id = any(${[...keyOf.values()]}::text[])`)
      .execute();
    const grantOf = new Map(tokens.map((r) => [r.id, r.grant_id]));
    const chainGrants = kept.map((c) => grantOf.get(keyOf.get(c)!) ?? undefined);
    const missingTokens = chainGrants.filter((g) => !g).length;
    const clear = await db
      .selectFrom('oidc_payloads')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where(sql<boolean>`id = any(${kept.map((c) => c.refreshToken)}::text[])`)
      .executeTakeFirstOrThrow();
    const clearTokens = Number(clear.n);
    const distinct = new Set(chainGrants.filter((g): g is string => Boolean(g)));
    const sharedGrants = chainGrants.length - missingTokens - distinct.size;
    const grants = await db
      .selectFrom('oidc_payloads')
      .select('id')
      .where('kind', '=', 'Grant')
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', sql<Date>`now()`)]))
      .execute();
    const live = new Set(grants.map((r) => r.id));
    const missingGrants = [...distinct].filter((g) => !live.has(g)).length;
    const extraGrants = [...live].filter((g) => !distinct.has(g)).length;
    const explainableExtra = state.signIns.failedPastResume + lostDuringRun.length;
    const audit = await db
      .selectFrom('audit_events')
      .select((eb) => ['type', eb.fn.countAll<string>().as('n')])
      .groupBy('type')
      .orderBy('type')
      .execute();
    const auditCounts = Object.fromEntries(audit.map((r) => [r.type, Number(r.n)]));
    const problems = [
      ...(lostDuringRun.length ? [`${lostDuringRun.length} refresh chain(s) lost during the run`] : []),
      ...(finalRefreshFailures.length
        ? [`${finalRefreshFailures.length} kept chain(s) did not refresh at the end`]
        : []),
      ...(missingTokens
        ? [`${missingTokens} newest refresh token(s) not found in oidc_payloads (by keyed hash) with a grant id`]
        : []),
      ...(clearTokens ? [`${clearTokens} row(s) stored under a clear refresh token`] : []),
      ...(sharedGrants ? [`${sharedGrants} chain(s) share a grant with another chain (duplicated sign-in grant)`] : []),
      ...(missingGrants ? [`${missingGrants} chain grant(s) have no live Grant row (lost)`] : []),
      ...((auditCounts['refresh_token.reused'] ?? 0) > 0
        ? [`${auditCounts['refresh_token.reused']} refresh_token.reused audit event(s): a grant was revoked as stolen`]
        : []),
      ...((auditCounts['lockout.started'] ?? 0) > 0
        ? [`${auditCounts['lockout.started']} lockout.started audit event(s): honest users were locked out`]
        : []),
      ...(extraGrants > explainableExtra
        ? [
            `${extraGrants} Grant row(s) held by no chain, more than the ${explainableExtra} the run can explain (duplicated)`,
          ]
        : []),
    ];
    return {
      chains: kept.length,
      lostDuringRun,
      finalRefreshFailures,
      missingTokens,
      clearTokens,
      sharedGrants,
      missingGrants,
      grantRows: live.size,
      extraGrants,
      explainableExtra,
      auditCounts,
      problems,
    };
  } finally {
    await db.destroy();
  }
}
