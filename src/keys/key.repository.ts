import { sql, type Kysely, type Transaction } from 'kysely';

import type { Database, KeyState, SigningKeyRow } from '../db/tables.ts';

type Executor = Kysely<Database> | Transaction<Database>;

export async function listSigningKeys(db: Executor): Promise<SigningKeyRow[]> {
  return db.selectFrom('signing_keys').selectAll().orderBy('created_at').orderBy('kid').execute();
}

export async function insertSigningKey(
  db: Executor,
  key: {
    kid: string;
    alg: string;
    state: KeyState;
    publicJwk: object;
    privateJwkEncrypted: string;
    createdAt: Date;
    activatedAt: Date | null;
  },
): Promise<void> {
  await db
    .insertInto('signing_keys')
    .values({
      kid: key.kid,
      alg: key.alg,
      state: key.state,
      public_jwk: JSON.stringify(key.publicJwk),
      private_jwk_encrypted: key.privateJwkEncrypted,
      created_at: key.createdAt,
      activated_at: key.activatedAt,
    })
    .execute();
}

export async function retireCurrentKey(db: Executor, alg: string, retireAfter: Date): Promise<string | undefined> {
  const row = await db
    .updateTable('signing_keys')
    .set({ state: 'retired', retire_after: retireAfter })
    .where('alg', '=', alg)
    .where('state', '=', 'current')
    .returning('kid')
    .executeTakeFirst();
  return row?.kid;
}

export async function activateNextKey(db: Executor, alg: string, now: Date): Promise<string | undefined> {
  const row = await db
    .updateTable('signing_keys')
    .set({ state: 'current', activated_at: now })
    .where('alg', '=', alg)
    .where('state', '=', 'next')
    .returning('kid')
    .executeTakeFirst();
  return row?.kid;
}

export async function deleteSigningKey(db: Executor, kid: string): Promise<SigningKeyRow | undefined> {
  return db.deleteFrom('signing_keys').where('kid', '=', kid).returningAll().executeTakeFirst();
}

export async function updateEncryptedKey(db: Executor, kid: string, privateJwkEncrypted: string): Promise<void> {
  await db
    .updateTable('signing_keys')
    .set({ private_jwk_encrypted: privateJwkEncrypted })
    .where('kid', '=', kid)
    .execute();
}

/** Changes whenever a key is added, changes state or goes: what instances poll to follow. */
export async function keyStoreFingerprint(db: Executor): Promise<string> {
  const { rows } = await sql<{ fingerprint: string | null }>`
    select md5(string_agg(kid || ':' || state, ',' order by kid)) as fingerprint from signing_keys`.execute(db);
  return rows[0]?.fingerprint ?? 'empty';
}

/** Serialises key changes across every instance for the rest of the transaction (DESIGN: Keys). */
export async function lockKeyStore(trx: Transaction<Database>): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext('postern:signing_keys'))`.execute(trx);
}
