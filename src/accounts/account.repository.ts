import { sql, type Kysely, type Transaction } from 'kysely';

import { compileOnce } from '../db/compile-once.ts';
import type { AccountRow, AccountUpdate, Database, NewAccountRow } from '../db/tables.ts';
import { isStorableText } from '../shared/storable-text.ts';
import type { Account, Profile } from './account.ts';

type Executor = Kysely<Database> | Transaction<Database>;

export function toAccount(row: AccountRow): Account {
  return {
    id: row.id,
    username: row.username,
    email: row.email,
    emailVerified: row.email_verified,
    profile: row.profile as Profile,
    roles: row.roles,
    disabled: row.disabled,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    lastLoginAt: row.last_login_at,
  };
}

export async function insertAccount(db: Executor, row: NewAccountRow): Promise<Account> {
  const inserted = await db.insertInto('accounts').values(row).returningAll().executeTakeFirstOrThrow();
  return toAccount(inserted);
}

/** A malformed id cannot be a uuid: answer "none" rather than let the database raise. */
const isUuid = (id: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id);

export async function findAccountById(db: Executor, id: string): Promise<Account | undefined> {
  if (!isUuid(id)) return undefined;
  const row = await db.selectFrom('accounts').selectAll().where('id', '=', id).executeTakeFirst();
  return row && toAccount(row);
}

/**
 * findAccountById with its statement compiled once (db/compile-once.ts): the engine asks for the
 * account on every refresh and userinfo call.
 */
export function compileFindAccountById(db: Kysely<Database>): (id: string) => Promise<Account | undefined> {
  const select = compileOnce<{ id: string }, AccountRow>(db, (p) =>
    db.selectFrom('accounts').selectAll().where('id', '=', p('id')).compile(),
  );
  return async (id) => {
    if (!isUuid(id)) return undefined;
    const { rows } = await select({ id });
    return rows[0] && toAccount(rows[0]);
  };
}

/** Username or email, case-insensitively, with the stored hash for sign-in. */
export async function findAccountForLogin(
  db: Executor,
  login: string,
): Promise<{ account: Account; passwordHash: string | null } | undefined> {
  // No username or email holds text the database cannot store: none such exists.
  if (!isStorableText(login)) return undefined;
  const row = await db
    .selectFrom('accounts')
    .selectAll()
    .where((eb) =>
      eb.or([eb(sql`lower(username)`, '=', login.toLowerCase()), eb(sql`lower(email)`, '=', login.toLowerCase())]),
    )
    .orderBy(sql`lower(username) = ${login.toLowerCase()}`, 'desc')
    .executeTakeFirst();
  return row && { account: toAccount(row), passwordHash: row.password_hash };
}

export async function findAccountByLogin(db: Executor, login: string): Promise<Account | undefined> {
  return (await findAccountForLogin(db, login))?.account;
}

export async function listAccounts(db: Executor, limit = 1000): Promise<Account[]> {
  const rows = await db.selectFrom('accounts').selectAll().orderBy('created_at').limit(limit).execute();
  return rows.map(toAccount);
}

export interface AccountPageQuery {
  /** Part of the username, email or name, regardless of case. */
  readonly search?: string;
  /** Only usernames after this one (keyset pagination: stable while accounts are added). */
  readonly after?: string;
  readonly limit: number;
}

/** Escapes LIKE's wildcards, so a search for "a_b" finds that text only. */
const likeText = (text: string) => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/** By username (unique regardless of case: citext), one page; the order the cursor follows. */
export async function listAccountPage(db: Executor, query: AccountPageQuery): Promise<Account[]> {
  // No username, email or name holds text the database cannot store: nothing matches.
  if (![query.search ?? '', query.after ?? ''].every(isStorableText)) return [];
  let q = db.selectFrom('accounts').selectAll();
  if (query.search) {
    const pattern = likeText(query.search);
    q = q.where((eb) =>
      eb.or([
        eb(sql`username::text`, 'ilike', pattern),
        eb(sql`email::text`, 'ilike', pattern),
        eb(sql`profile->>'name'`, 'ilike', pattern),
      ]),
    );
  }
  if (query.after !== undefined) q = q.where('username', '>', query.after);
  const rows = await q.orderBy('username').limit(query.limit).execute();
  return rows.map(toAccount);
}

/** Whether any account exists (a new installation has none). */
export async function hasAccounts(db: Executor): Promise<boolean> {
  return (await db.selectFrom('accounts').select('id').limit(1).executeTakeFirst()) !== undefined;
}

export async function updateAccount(db: Executor, id: string, update: AccountUpdate): Promise<Account | undefined> {
  const row = await db
    .updateTable('accounts')
    .set({ ...update, updated_at: sql<Date>`now()` as unknown as Date })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
  return row && toAccount(row);
}

/**
 * A sign-in: the login time and, when the hashing parameters changed, the new hash. Not a
 * change of the account, so updated_at (the `updated_at` claim) stays as it was.
 */
export async function recordLogin(
  db: Executor,
  id: string,
  at: Date,
  passwordHash?: string,
): Promise<Account | undefined> {
  const row = await db
    .updateTable('accounts')
    .set({ last_login_at: at, ...(passwordHash ? { password_hash: passwordHash } : {}) })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
  return row && toAccount(row);
}

/** The same password under the current hashing parameters: no change to the account (updated_at stays). */
export async function storeRehashedPassword(
  db: Executor,
  id: string,
  passwordHash: string,
): Promise<Account | undefined> {
  const row = await db
    .updateTable('accounts')
    .set({ password_hash: passwordHash })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
  return row && toAccount(row);
}

/** The stored password hash (null for an invited account that has not chosen one yet). */
export async function findPasswordHash(db: Executor, id: string): Promise<string | null | undefined> {
  const row = await db.selectFrom('accounts').select('password_hash').where('id', '=', id).executeTakeFirst();
  return row?.password_hash;
}

/** Removes the account; its one-time tokens go with it (foreign key, on delete cascade). */
export async function deleteAccountRow(db: Executor, id: string): Promise<boolean> {
  const result = await db.deleteFrom('accounts').where('id', '=', id).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}
