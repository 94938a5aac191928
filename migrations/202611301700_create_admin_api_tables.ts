import { sql, type Kysely } from 'kysely';

// The admin API's own state (README: Admin API). Never edited once landed.
// - admin_idempotency: one row per (caller, Idempotency-Key): the request's fingerprint and,
//   once answered, the sealed response, so that a retry gets the first answer; swept at expiry.
// - admin_rate_limits: one fixed-window counter per calling client, bumped in one statement.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('admin_idempotency')
    .addColumn('caller', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('fingerprint', 'text', (c) => c.notNull())
    .addColumn('status', 'integer')
    .addColumn('response_sealed', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('admin_idempotency_pk', ['caller', 'key'])
    .execute();
  await db.schema.createIndex('admin_idempotency_expires_at').on('admin_idempotency').column('expires_at').execute();
  await db.schema
    .createTable('admin_rate_limits')
    .addColumn('caller', 'text', (c) => c.primaryKey())
    .addColumn('window_start', 'timestamptz', (c) => c.notNull())
    .addColumn('count', 'integer', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('admin_rate_limits_window_start')
    .on('admin_rate_limits')
    .column('window_start')
    .execute();
  // The audit log is read by client too (admin API: GET /audit?client=...).
  await db.schema.createIndex('audit_events_client_id').on('audit_events').columns(['client_id', 'id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('audit_events_client_id').execute();
  await db.schema.dropTable('admin_rate_limits').execute();
  await db.schema.dropTable('admin_idempotency').execute();
}
