import { sql, type Kysely } from 'kysely';

// Multi-factor sign-in (issue 14): an account's TOTP secret, sealed (DESIGN §5), with the last
// time step it accepted, and its recovery codes, stored as keyed hashes. Passkeys live in their
// own table (webauthn_credentials). Guesses at a code are counted in the sign-in counters under
// their own scope. The allowed scopes are read from the constraint as it stands and extended,
// so this migration keeps any scope another one added. Never edited once landed.
const SCOPES = ['mfa_code'];

async function currentScopes(db: Kysely<any>): Promise<string[]> {
  const result = await sql<{ definition: string }>`
    select pg_get_constraintdef(oid) as definition from pg_constraint
    where conrelid = 'login_throttles'::regclass and conname = 'login_throttles_scope_check'`.execute(db);
  const definition = result.rows[0]?.definition ?? '';
  return [...definition.matchAll(/'([a-z_]+)'/g)].map((m) => m[1]!);
}

async function replaceCheck(db: Kysely<any>, scopes: readonly string[]): Promise<void> {
  const list = sql.join(scopes.map((s) => sql.lit(s)));
  await sql`alter table login_throttles drop constraint login_throttles_scope_check`.execute(db);
  await sql`alter table login_throttles add constraint login_throttles_scope_check check (scope in (${list}))`.execute(
    db,
  );
}

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('totp_factors')
    .addColumn('account_id', 'uuid', (c) => c.primaryKey().references('accounts.id').onDelete('cascade'))
    .addColumn('secret_sealed', 'text', (c) => c.notNull())
    // null while enrolling: the secret was shown but no code has confirmed it yet.
    .addColumn('confirmed_at', 'timestamptz')
    // RFC 6238 §5.2: a code is accepted once; the last accepted step is raised by a compare-and-set.
    .addColumn('last_used_step', 'bigint')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('recovery_codes')
    .addColumn('code_hash', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'uuid', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('recovery_codes_account').on('recovery_codes').column('account_id').execute();
  const scopes = await currentScopes(db);
  await replaceCheck(db, [...new Set([...scopes, ...SCOPES])]);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`delete from login_throttles where scope = 'mfa_code'`.execute(db);
  const scopes = await currentScopes(db);
  await replaceCheck(
    db,
    scopes.filter((s) => !SCOPES.includes(s)),
  );
  await db.schema.dropTable('recovery_codes').execute();
  await db.schema.dropTable('totp_factors').execute();
}
