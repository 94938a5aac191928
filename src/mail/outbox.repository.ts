import { sql, type Kysely, type Transaction } from 'kysely';

import type { Database, MailStatus } from '../db/tables.ts';

type Executor = Kysely<Database> | Transaction<Database>;

// The outbox's SQL. Claiming is one statement (FOR UPDATE SKIP LOCKED inside an UPDATE), so
// instances polling together each get different rows; a claim is a lease, so a row whose
// sender died mid-send is claimed again once the lease is over.

export interface OutboxRow {
  readonly id: string;
  readonly recipient: string;
  readonly template: string;
  readonly sealed: string;
  readonly status: MailStatus;
  readonly attempts: number;
  readonly lastError: string | null;
  readonly createdAt: Date;
  readonly nextAttemptAt: Date;
  readonly giveUpAt: Date;
  readonly finishedAt: Date | null;
}

export interface NewOutboxRow {
  readonly recipient: string;
  readonly template: string;
  readonly sealed: string;
  readonly createdAt: Date;
  readonly giveUpAt: Date;
}

const COLUMNS = [
  sql<string>`id::text`.as('id'),
  'recipient',
  'template',
  'sealed',
  'status',
  'attempts',
  'last_error',
  'created_at',
  'next_attempt_at',
  'give_up_at',
  'finished_at',
] as const;

type RawRow = {
  id: string;
  recipient: string;
  template: string;
  sealed: string;
  status: MailStatus;
  attempts: number;
  last_error: string | null;
  created_at: Date;
  next_attempt_at: Date;
  give_up_at: Date;
  finished_at: Date | null;
};

function toRow(r: RawRow): OutboxRow {
  return {
    id: r.id,
    recipient: r.recipient,
    template: r.template,
    sealed: r.sealed,
    status: r.status,
    attempts: r.attempts,
    lastError: r.last_error,
    createdAt: new Date(r.created_at),
    nextAttemptAt: new Date(r.next_attempt_at),
    giveUpAt: new Date(r.give_up_at),
    finishedAt: r.finished_at && new Date(r.finished_at),
  };
}

/** Written with the caller's transaction: the message exists only if its event does. */
export async function insertOutboxRow(tx: Transaction<Database>, row: NewOutboxRow): Promise<string> {
  const inserted = await tx
    .insertInto('mail_outbox')
    .values({
      recipient: row.recipient,
      template: row.template,
      sealed: row.sealed,
      created_at: row.createdAt,
      next_attempt_at: row.createdAt,
      give_up_at: row.giveUpAt,
    })
    .returning(sql<string>`id::text`.as('id'))
    .executeTakeFirstOrThrow();
  return inserted.id;
}

/**
 * Claims up to `limit` due messages for `leaseSeconds` and counts the attempt now, so an
 * attempt that dies mid-send still counts. SKIP LOCKED: a row another instance is claiming in
 * this instant is left to it rather than waited for.
 */
export async function claimDueMessages(
  db: Kysely<Database>,
  now: Date,
  leaseSeconds: number,
  claimToken: string,
  limit: number,
): Promise<OutboxRow[]> {
  const leaseEnd = new Date(now.getTime() + leaseSeconds * 1000);
  const result = await sql<RawRow>`
    update mail_outbox set claimed_until = ${leaseEnd}, claim_token = ${claimToken}, attempts = attempts + 1
    where id in (
      select id from mail_outbox
      where status = 'pending' and next_attempt_at <= ${now}
        and (claimed_until is null or claimed_until <= ${now})
      order by next_attempt_at
      limit ${limit}
      for update skip locked
    )
    returning id::text as id, recipient, template, sealed, status, attempts, last_error, created_at,
      next_attempt_at, give_up_at, finished_at`.execute(db);
  return result.rows.map(toRow);
}

/** Only the holder of the claim records the outcome: a sender whose lease ran out writes nothing. */
export async function markSent(db: Kysely<Database>, id: string, claimToken: string, now: Date): Promise<boolean> {
  const result = await db
    .updateTable('mail_outbox')
    .set({ status: 'sent', finished_at: now, claimed_until: null, claim_token: null, last_error: null })
    .where(sql`id`, '=', sql`${id}::bigint`)
    .where('claim_token', '=', claimToken)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function markRetry(
  db: Kysely<Database>,
  id: string,
  claimToken: string,
  nextAttemptAt: Date,
  error: string,
): Promise<void> {
  await db
    .updateTable('mail_outbox')
    .set({ next_attempt_at: nextAttemptAt, last_error: error, claimed_until: null, claim_token: null })
    .where(sql`id`, '=', sql`${id}::bigint`)
    .where('claim_token', '=', claimToken)
    .execute();
}

export async function markFailed(
  db: Kysely<Database>,
  id: string,
  claimToken: string,
  now: Date,
  error: string,
): Promise<boolean> {
  const result = await db
    .updateTable('mail_outbox')
    .set({ status: 'failed', finished_at: now, last_error: error, claimed_until: null, claim_token: null })
    .where(sql`id`, '=', sql`${id}::bigint`)
    .where('claim_token', '=', claimToken)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function listOutbox(db: Executor, query: { status?: MailStatus; limit: number }): Promise<OutboxRow[]> {
  let q = db.selectFrom('mail_outbox').select(COLUMNS);
  if (query.status) q = q.where('status', '=', query.status);
  const rows = await q.orderBy('id', 'desc').limit(query.limit).execute();
  return rows.map((r) => toRow(r as RawRow));
}

/** `postern mail retry`: failed messages go back to pending, due now, with a fresh deadline. */
export async function requeueFailed(
  db: Executor,
  target: { id: string } | { allFailed: true },
  now: Date,
  giveUpAt: Date,
): Promise<number> {
  let q = db
    .updateTable('mail_outbox')
    .set({ status: 'pending', attempts: 0, next_attempt_at: now, give_up_at: giveUpAt, finished_at: null })
    .where('status', '=', 'failed');
  if ('id' in target) q = q.where(sql`id`, '=', sql`${target.id}::bigint`);
  const result = await q.executeTakeFirst();
  return Number(result.numUpdatedRows);
}

export async function countPending(db: Executor): Promise<number> {
  const row = await db
    .selectFrom('mail_outbox')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('status', '=', 'pending')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Finished (sent or failed) messages past retention, in one bounded batch. */
export async function deleteFinishedBatch(db: Executor, before: Date, limit: number): Promise<number> {
  const result = await sql`
    delete from mail_outbox where id in (
      select id from mail_outbox where finished_at is not null and finished_at < ${before} limit ${limit}
    )`.execute(db);
  return Number(result.numAffectedRows ?? 0n);
}
