import { sql, type Kysely } from 'kysely';

// Throttle scopes for self-service registration: registrations per client address and per
// email address, and verification mails sent again per account. They use the sign-in
// counters' table and atomic statements. The allowed scopes are read from the constraint as it
// stands and extended (as 202611301930 does), so this keeps any scope another migration added.
// Never edited once landed.
const SCOPES = ['register_ip', 'register_email', 'verify_resend'];

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
  await replaceCheck(db, [...new Set([...(await currentScopes(db)), ...SCOPES])]);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`delete from login_throttles where scope in ('register_ip', 'register_email', 'verify_resend')`.execute(db);
  await replaceCheck(
    db,
    (await currentScopes(db)).filter((s) => !SCOPES.includes(s)),
  );
}
