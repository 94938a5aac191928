import { sql, type Kysely } from 'kysely';

// The mail outbox (src/mail/): a message is written in the same transaction as the event that
// causes it, then delivered by a sender job on every instance. The rendered message is sealed
// (it holds a live link); the recipient stays in clear to be searched. Never edited once landed.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('mail_outbox')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('recipient', 'text', (c) => c.notNull())
    .addColumn('template', 'text', (c) => c.notNull())
    .addColumn('sealed', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c.notNull().defaultTo('pending').check(sql`status in ('pending', 'sent', 'failed')`),
    )
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('next_attempt_at', 'timestamptz', (c) => c.notNull())
    .addColumn('give_up_at', 'timestamptz', (c) => c.notNull())
    .addColumn('claimed_until', 'timestamptz')
    .addColumn('claim_token', 'text')
    .addColumn('finished_at', 'timestamptz')
    .execute();
  // The sender's query: due pending messages, oldest first.
  await db.schema
    .createIndex('mail_outbox_due')
    .on('mail_outbox')
    .column('next_attempt_at')
    .where(sql.ref('status'), '=', 'pending')
    .execute();
  await db.schema
    .createIndex('mail_outbox_finished')
    .on('mail_outbox')
    .column('finished_at')
    .where(sql.ref('finished_at'), 'is not', null)
    .execute();
  await sql`create index mail_outbox_recipient on mail_outbox (lower(recipient))`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('mail_outbox').execute();
}
