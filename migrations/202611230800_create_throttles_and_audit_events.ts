import { sql, type Kysely } from 'kysely';

// Sign-in throttling counters (one row per scope and key, updated by single atomic statements)
// and the audit log. Never edited once landed.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('login_throttles')
    .addColumn('scope', 'text', (c) => c.notNull().check(sql`scope in ('account_ip', 'account', 'device', 'ip')`))
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('account_id', 'uuid')
    .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('window_started_at', 'timestamptz', (c) => c.notNull())
    .addColumn('locked_until', 'timestamptz')
    .addColumn('lockouts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('login_throttles_pkey', ['scope', 'key'])
    .execute();
  await db.schema
    .createIndex('login_throttles_account')
    .on('login_throttles')
    .column('account_id')
    .where(sql.ref('account_id'), 'is not', null)
    .execute();
  await db.schema.createIndex('login_throttles_updated_at').on('login_throttles').column('updated_at').execute();

  await db.schema
    .createTable('audit_events')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('account_id', 'uuid')
    .addColumn('client_id', 'text')
    .addColumn('ip', 'text')
    .addColumn('user_agent', 'text')
    .addColumn('details', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .execute();
  await db.schema.createIndex('audit_events_at').on('audit_events').column('at').execute();
  await db.schema.createIndex('audit_events_account_at').on('audit_events').columns(['account_id', 'at']).execute();
  await db.schema.createIndex('audit_events_type_at').on('audit_events').columns(['type', 'at']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('audit_events').execute();
  await db.schema.dropTable('login_throttles').execute();
}
