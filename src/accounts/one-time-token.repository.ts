import { sql, type ExpressionBuilder, type Kysely } from 'kysely';

import type { Database, OneTimeTokenPurpose } from '../db/tables.ts';

// One-time tokens by their keyed hash. Using one is ONE conditional UPDATE: of any number of
// concurrent requests carrying the same token, exactly one gets the row back.

export interface TokenRow {
  readonly accountId: string;
  readonly purpose: OneTimeTokenPurpose;
  readonly tokenHash: string;
  readonly payloadSealed: string | null;
  readonly createdAt: Date;
  readonly expiresAt: Date;
}

const RETURNED = ['account_id', 'purpose', 'token_hash', 'payload_sealed', 'created_at', 'expires_at'] as const;

function toRow(r: {
  account_id: string;
  purpose: OneTimeTokenPurpose;
  token_hash: string;
  payload_sealed: string | null;
  created_at: Date;
  expires_at: Date;
}): TokenRow {
  return {
    accountId: r.account_id,
    purpose: r.purpose,
    tokenHash: r.token_hash,
    payloadSealed: r.payload_sealed,
    createdAt: new Date(r.created_at),
    expiresAt: new Date(r.expires_at),
  };
}

/** Unused, unexpired and of this purpose: the only tokens that may still be used. */
function isUsable(eb: ExpressionBuilder<Database, 'one_time_tokens'>, purpose: OneTimeTokenPurpose, now: Date) {
  return eb.and([eb('purpose', '=', purpose), eb('consumed_at', 'is', null), eb('expires_at', '>', now)]);
}

export async function insertToken(
  db: Kysely<Database>,
  row: Omit<TokenRow, 'payloadSealed'> & { payloadSealed: string | null; codeHash: string | null },
): Promise<void> {
  await db
    .insertInto('one_time_tokens')
    .values({
      token_hash: row.tokenHash,
      purpose: row.purpose,
      account_id: row.accountId,
      payload_sealed: row.payloadSealed,
      code_hash: row.codeHash,
      created_at: row.createdAt,
      expires_at: row.expiresAt,
    })
    .execute();
}

/** Unused tokens of one account (and purpose): a newer link replaces them, a reset ends them. */
export async function deleteUnusedTokens(
  db: Kysely<Database>,
  accountId: string,
  purpose: OneTimeTokenPurpose | undefined,
): Promise<number> {
  let q = db.deleteFrom('one_time_tokens').where('account_id', '=', accountId).where('consumed_at', 'is', null);
  if (purpose) q = q.where('purpose', '=', purpose);
  const result = await q.executeTakeFirst();
  return Number(result.numDeletedRows);
}

export async function findUsableToken(
  db: Kysely<Database>,
  tokenHash: string,
  purpose: OneTimeTokenPurpose,
  now: Date,
): Promise<TokenRow | undefined> {
  const row = await db
    .selectFrom('one_time_tokens')
    .select(RETURNED)
    .where('token_hash', '=', tokenHash)
    .where((eb) => isUsable(eb, purpose, now))
    .executeTakeFirst();
  return row && toRow(row);
}

/** Marks the token used if it is unused, unexpired and of this purpose; one caller wins. */
export async function consumeTokenByHash(
  db: Kysely<Database>,
  tokenHash: string,
  purpose: OneTimeTokenPurpose,
  now: Date,
): Promise<TokenRow | undefined> {
  const row = await db
    .updateTable('one_time_tokens')
    .set({ consumed_at: now })
    .where('token_hash', '=', tokenHash)
    .where((eb) => isUsable(eb, purpose, now))
    .returning(RETURNED)
    .executeTakeFirst();
  return row && toRow(row);
}

/** The same, found by the account and the hash of the code that came with the token. */
export async function consumeTokenByCode(
  db: Kysely<Database>,
  accountId: string,
  purpose: OneTimeTokenPurpose,
  codeHash: string,
  now: Date,
): Promise<TokenRow | undefined> {
  const row = await db
    .updateTable('one_time_tokens')
    .set({ consumed_at: now })
    .where('token_hash', '=', (eb) =>
      eb
        .selectFrom('one_time_tokens')
        .select('token_hash')
        .where('account_id', '=', accountId)
        .where('code_hash', '=', codeHash)
        .where((inner) => isUsable(inner, purpose, now))
        .limit(1),
    )
    .where('consumed_at', 'is', null)
    .returning(RETURNED)
    .executeTakeFirst();
  return row && toRow(row);
}

/** Used and expired tokens are kept a day (for support questions), then deleted. */
export async function deleteSpentTokensBatch(db: Kysely<Database>, before: Date, limit: number): Promise<number> {
  const result = await sql`
    delete from one_time_tokens where token_hash in (
      select token_hash from one_time_tokens where expires_at < ${before} limit ${limit}
    )`.execute(db);
  return Number(result.numAffectedRows ?? 0n);
}
