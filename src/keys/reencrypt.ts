import type { Kysely } from 'kysely';

import type { Database } from '../db/tables.ts';
import { PosternError } from '../shared/errors.ts';
import { resealInstallationKey } from './installation-key.ts';
import { decryptPrivateJwk, encryptPrivateJwk } from './key-encryption.ts';
import { listSigningKeys, lockKeyStore, updateEncryptedKey } from './key.repository.ts';

export interface ReencryptResult {
  /** Keys moved to the new secret. */
  readonly reencrypted: number;
  /** Keys already under the new secret (a repeated or resumed run). */
  readonly already: number;
}

/**
 * Moves everything sealed under one POSTERN_SECRET to another, in one transaction: either all
 * of it moves or none. Safe to run again: what is already under the new secret is left alone.
 */
export async function reencryptStore(db: Kysely<Database>, from: Buffer, to: Buffer): Promise<ReencryptResult> {
  return db.transaction().execute(async (trx) => {
    await lockKeyStore(trx);
    let reencrypted = 0;
    let already = 0;
    if ((await resealInstallationKey(trx, from, to)) === 'resealed') reencrypted++;
    else already++;
    for (const row of await listSigningKeys(trx)) {
      let jwk: Record<string, unknown>;
      try {
        jwk = decryptPrivateJwk(from, row.kid, row.private_jwk_encrypted);
      } catch {
        try {
          decryptPrivateJwk(to, row.kid, row.private_jwk_encrypted);
        } catch {
          throw new PosternError(
            'ERR_SECRET_MISMATCH',
            `signing key ${row.kid} opens with neither the old nor the new secret; nothing was changed`,
          );
        }
        already++;
        continue;
      }
      await updateEncryptedKey(trx, row.kid, encryptPrivateJwk(to, row.kid, jwk));
      reencrypted++;
    }
    return { reencrypted, already };
  });
}
