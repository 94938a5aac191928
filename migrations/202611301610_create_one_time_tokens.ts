import { sql, type Kysely } from 'kysely';

// One-time links (verification, reset, unlock, invitation, email change), stored under a keyed
// hash of the token (DESIGN §5), and a throttle scope for guesses at the 6-digit code that may
// stand in for a verification link. Never edited once landed.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('one_time_tokens')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('purpose', 'text', (c) =>
      c.notNull().check(sql`purpose in ('verify_email', 'reset_password', 'unlock', 'invite', 'email_change')`),
    )
    .addColumn('account_id', 'uuid', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    .addColumn('payload_sealed', 'text')
    .addColumn('code_hash', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('consumed_at', 'timestamptz')
    .execute();
  await db.schema
    .createIndex('one_time_tokens_account')
    .on('one_time_tokens')
    .columns(['account_id', 'purpose'])
    .execute();
  await db.schema.createIndex('one_time_tokens_expires').on('one_time_tokens').column('expires_at').execute();
  await sql`alter table login_throttles drop constraint login_throttles_scope_check`.execute(db);
  await sql`alter table login_throttles add constraint login_throttles_scope_check
    check (scope in ('account_ip', 'account', 'device', 'ip', 'one_time_code'))`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`delete from login_throttles where scope = 'one_time_code'`.execute(db);
  await sql`alter table login_throttles drop constraint login_throttles_scope_check`.execute(db);
  await sql`alter table login_throttles add constraint login_throttles_scope_check
    check (scope in ('account_ip', 'account', 'device', 'ip'))`.execute(db);
  await db.schema.dropTable('one_time_tokens').execute();
}
