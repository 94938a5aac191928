import { sql, type Kysely, type Transaction } from 'kysely';

import type { Database, KeyState, SigningKeyRow } from '../db/tables.ts';

type Executor = Kysely<Database> | Transaction<Database>;

export async function listSigningKeys(db: Executor): Promise<SigningKeyRow[]> {
  return db.selectFrom('signing_keys').selectAll().orderBy('created_at').orderBy('kid').execute();
}

export async function insertSigningKey(
  db: Executor,
  key: { kid: string; alg: string; state: KeyState; publicJwk: object; privateJwkEncrypted: string; activatedAt: Date | null },
): Promise<void> {
  await db.insertInto('signing_keys').values({
    kid: key.kid,
    alg: key.alg,
    state: key.state,
    public_jwk: JSON.stringify(key.publicJwk),
    private_jwk_encrypted: key.privateJwkEncrypted,
    activated_at: key.activatedAt,
  }).execute();
}

/** Serialises key changes across every instance for the rest of the transaction (DESIGN: Keys). */
export async function lockKeyStore(trx: Transaction<Database>): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext('postern:signing_keys'))`.execute(trx);
}
