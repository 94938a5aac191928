import { sql, type Kysely } from 'kysely';

// Refresh-token reuse grace (how many times a just-rotated token was answered again) and where
// each grant was signed in from (for `postern user sessions`). Never edited once landed.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('oidc_payloads')
    .addColumn('grace_uses', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .createTable('grant_activity')
    .addColumn('grant_id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('session_uid', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('ip', 'text')
    .addColumn('user_agent', 'text')
    .execute();
  await db.schema.createIndex('grant_activity_account').on('grant_activity').column('account_id').execute();
  // Sessions and grants are looked up by account for `postern user sessions|logout`.
  await sql`create index oidc_payloads_account on oidc_payloads ((payload->>'accountId')) where kind in ('Session', 'Grant')`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index oidc_payloads_account`.execute(db);
  await db.schema.dropTable('grant_activity').execute();
  await db.schema.alterTable('oidc_payloads').dropColumn('grace_uses').execute();
}
