import { randomBytes } from 'node:crypto';

import { sql, type Kysely, type Transaction } from 'kysely';

import type { Database } from '../db/tables.ts';
import { PosternError } from '../shared/errors.ts';
import { seal, unseal } from './sealed-box.ts';

// The installation key: 32 random bytes made once per database, stored sealed under the
// key-encryption key. Cookie, CSRF, client-secret and throttle keys derive from it, so a new
// POSTERN_SECRET (`postern keys reencrypt`) re-seals it and invalidates nothing.
const NAME = 'installation-key';

export async function loadInstallationKey(db: Kysely<Database>, keyEncryptionKey: Buffer): Promise<Buffer> {
  let row = await db.selectFrom('installation_secrets').select('sealed').where('name', '=', NAME).executeTakeFirst();
  if (!row) {
    const sealed = seal(keyEncryptionKey, NAME, randomBytes(32));
    // Two instances starting at once: the first insert wins, both read the winner.
    await db
      .insertInto('installation_secrets')
      .values({ name: NAME, sealed })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    row = await db
      .selectFrom('installation_secrets')
      .select('sealed')
      .where('name', '=', NAME)
      .executeTakeFirstOrThrow();
  }
  try {
    return unseal(keyEncryptionKey, NAME, row.sealed);
  } catch (error) {
    throw new PosternError(
      'ERR_SECRET_MISMATCH',
      'the stored keys cannot be decrypted: POSTERN_SECRET is not the secret this database was set up with (to change it, see "postern keys reencrypt")',
      { cause: error },
    );
  }
}

/**
 * Whether this key-encryption key still opens the stored installation key. False once
 * `postern keys reencrypt` has moved the store to another POSTERN_SECRET: a process started
 * before it must then seal nothing more. Read it under the key-store lock, which reencrypt holds.
 */
export async function keyEncryptionKeyIsCurrent(db: Kysely<Database>, keyEncryptionKey: Buffer): Promise<boolean> {
  const row = await db.selectFrom('installation_secrets').select('sealed').where('name', '=', NAME).executeTakeFirst();
  if (!row) return true; // nothing sealed yet: whoever seals first sets the secret
  try {
    unseal(keyEncryptionKey, NAME, row.sealed);
    return true;
  } catch {
    return false;
  }
}

/**
 * Re-seals the installation key under a new key-encryption key. In the caller's transaction,
 * which holds the key-store lock: the signing keys move with it, all or none.
 */
export async function resealInstallationKey(
  db: Transaction<Database>,
  from: Buffer,
  to: Buffer,
): Promise<'resealed' | 'already'> {
  const row = await db.selectFrom('installation_secrets').select('sealed').where('name', '=', NAME).executeTakeFirst();
  if (!row) return 'already';
  let plain: Buffer;
  try {
    plain = unseal(from, NAME, row.sealed);
  } catch {
    unseal(to, NAME, row.sealed); // throws if neither secret opens it
    return 'already';
  }
  await sql`update installation_secrets set sealed = ${seal(to, NAME, plain)} where name = ${NAME}`.execute(db);
  return 'resealed';
}
