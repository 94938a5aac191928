import { sql, type Kysely, type Transaction } from 'kysely';

import type { Database } from '../db/tables.ts';

// TOTP factors and recovery codes. The two writes that guard a second factor, accepting a code
// and using a recovery code, are each ONE statement, so two instances given the same code at
// the same moment cannot both accept it.

/**
 * A secret shown but not confirmed lasts this long: after it, it can no longer be confirmed,
 * the next page shows a new one, and the sweeper deletes it (a secret shown on one page, to
 * whoever was looking, does not wait for another page to confirm it).
 */
export const PENDING_TOTP_MINUTES = 15;

export interface TotpRow {
  readonly secretSealed: string;
  readonly confirmedAt: Date | null;
  readonly createdAt: Date;
}

export async function findTotp(db: Kysely<Database>, accountId: string): Promise<TotpRow | undefined> {
  const row = await db
    .selectFrom('totp_factors')
    .select(['secret_sealed', 'confirmed_at', 'created_at'])
    .where('account_id', '=', accountId)
    .executeTakeFirst();
  return row && { secretSealed: row.secret_sealed, confirmedAt: row.confirmed_at, createdAt: row.created_at };
}

/** A new, unconfirmed secret replaces an earlier unconfirmed one; a confirmed factor is left alone. */
export async function savePendingTotp(
  db: Kysely<Database>,
  accountId: string,
  secretSealed: string,
  now: Date,
): Promise<boolean> {
  const result = await db
    .insertInto('totp_factors')
    .values({ account_id: accountId, secret_sealed: secretSealed, created_at: now })
    .onConflict((oc) =>
      oc
        .column('account_id')
        .doUpdateSet({ secret_sealed: secretSealed, created_at: now, last_used_step: null })
        .where('totp_factors.confirmed_at', 'is', null),
    )
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
}

/**
 * Accepts a code of time step `step` (RFC 6238 §5.2): a compare-and-set that succeeds only when
 * the step is after the last one accepted, and only for the secret the code was checked against
 * (a secret replaced in between is not the one the code proves). `confirming` accepts it for the
 * unconfirmed factor, still within its time, and confirms it in the same statement. Returns
 * false for a replayed (or older) code.
 */
export async function acceptTotpStep(
  db: Kysely<Database>,
  accountId: string,
  step: number,
  now: Date,
  expected: { readonly secretSealed: string; readonly confirming: boolean; readonly createdAfter: Date },
): Promise<boolean> {
  const { confirming } = expected;
  const result = await sql<{ account_id: string }>`
    update totp_factors set last_used_step = ${step},
      confirmed_at = ${confirming ? now : sql`confirmed_at`}
    where account_id = ${accountId}
      and secret_sealed = ${expected.secretSealed}
      and confirmed_at is ${confirming ? sql`null` : sql`not null`}
      and (${!confirming} or created_at > ${expected.createdAfter})
      and (last_used_step is null or last_used_step < ${step})
    returning account_id`.execute(db);
  return result.rows.length === 1;
}

/** Locks the account's confirmed factor for the rest of the transaction; false when there is none. */
export async function lockConfirmedTotp(tx: Transaction<Database>, accountId: string): Promise<boolean> {
  const row = await tx
    .selectFrom('totp_factors')
    .select('account_id')
    .where('account_id', '=', accountId)
    .where('confirmed_at', 'is not', null)
    .forUpdate()
    .executeTakeFirst();
  return row !== undefined;
}

/** The sweeper's part: secrets shown but never confirmed, older than PENDING_TOTP_MINUTES. */
export async function deleteStalePendingTotp(db: Kysely<Database>, now: Date): Promise<number> {
  const before = new Date(now.getTime() - PENDING_TOTP_MINUTES * 60_000);
  const result = await db
    .deleteFrom('totp_factors')
    .where('confirmed_at', 'is', null)
    .where('created_at', '<=', before)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

export async function deleteTotp(db: Kysely<Database>, accountId: string): Promise<number> {
  const result = await db.deleteFrom('totp_factors').where('account_id', '=', accountId).executeTakeFirst();
  return Number(result.numDeletedRows);
}

/**
 * The account's recovery codes become these (earlier ones, used or not, stop working). In the
 * caller's transaction, which holds the factor's row lock (lockConfirmedTotp, or the confirming
 * update), so two replacements at once cannot both delete the old codes and leave 20.
 */
export async function replaceRecoveryCodes(
  db: Transaction<Database>,
  accountId: string,
  hashes: readonly string[],
  now: Date,
): Promise<void> {
  await db.deleteFrom('recovery_codes').where('account_id', '=', accountId).execute();
  if (hashes.length === 0) return;
  await db
    .insertInto('recovery_codes')
    .values(hashes.map((code_hash) => ({ code_hash, account_id: accountId, created_at: now })))
    .execute();
}

/** Uses one code, once: of concurrent uses of the same code, one gets true. */
export async function useRecoveryCode(
  db: Kysely<Database>,
  accountId: string,
  hash: string,
  now: Date,
): Promise<boolean> {
  const result = await db
    .updateTable('recovery_codes')
    .set({ used_at: now })
    .where('code_hash', '=', hash)
    .where('account_id', '=', accountId)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function countUnusedRecoveryCodes(db: Kysely<Database>, accountId: string): Promise<number> {
  const row = await db
    .selectFrom('recovery_codes')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('account_id', '=', accountId)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

export async function deleteRecoveryCodes(db: Kysely<Database>, accountId: string): Promise<number> {
  const result = await db.deleteFrom('recovery_codes').where('account_id', '=', accountId).executeTakeFirst();
  return Number(result.numDeletedRows);
}
