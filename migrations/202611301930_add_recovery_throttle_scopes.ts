import { sql, type Kysely } from 'kysely';

// Rate limits on reset and unlock requests (per account and per client address) use the
// sign-in counters under two new scopes. The allowed scopes are read from the constraint as it
// stands and extended, so this migration keeps any scope another one added. Never edited once landed.
const SCOPES = ['recovery_account', 'recovery_ip'];

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
  const scopes = await currentScopes(db);
  await replaceCheck(db, [...new Set([...scopes, ...SCOPES])]);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`delete from login_throttles where scope in ('recovery_account', 'recovery_ip')`.execute(db);
  const scopes = await currentScopes(db);
  await replaceCheck(
    db,
    scopes.filter((s) => !SCOPES.includes(s)),
  );
}
