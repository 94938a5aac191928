import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { Kysely } from 'kysely';

import type { Database, SigningKeyRow } from '../db/tables.ts';
import type { Clock } from '../shared/clock.ts';
import { PosternError } from '../shared/errors.ts';
import { decryptPrivateJwk, encryptPrivateJwk } from './key-encryption.ts';
import { insertSigningKey, listSigningKeys, lockKeyStore } from './key.repository.ts';

/** OIDC Core §15.1: RS256 must be supported for ID tokens, so it is always kept. */
export const REQUIRED_ALGS = ['RS256'] as const;

export interface SigningKeySet {
  /** Private JWKs for the protocol engine, each with kid, alg and use. */
  readonly keys: JWK[];
  readonly rows: readonly SigningKeyRow[];
}

export interface KeyService {
  /** Makes a current key for every algorithm that lacks one; safe to call from many instances at once. */
  ensureKeys(): Promise<void>;
  load(): Promise<SigningKeySet>;
  list(): Promise<SigningKeyRow[]>;
}

async function makeKey(alg: string): Promise<{ kid: string; publicJwk: JWK; privateJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const meta = { kid, alg, use: 'sig' };
  return { kid, publicJwk: { ...publicJwk, ...meta }, privateJwk: { ...(await exportJWK(privateKey)), ...meta } };
}

function openKey(keyEncryptionKey: Buffer, row: SigningKeyRow): JWK {
  try {
    return decryptPrivateJwk(keyEncryptionKey, row.kid, row.private_jwk_encrypted) as JWK;
  } catch (error) {
    throw new PosternError(
      'ERR_SECRET_MISMATCH',
      `signing key ${row.kid} cannot be decrypted: POSTERN_SECRET is not the secret the keys were stored with`,
      { cause: error },
    );
  }
}

export function createKeyService(deps: { db: Kysely<Database>; keyEncryptionKey: Buffer; clock: Clock; algs?: readonly string[] }): KeyService {
  const { db, keyEncryptionKey, clock } = deps;
  const algs = deps.algs ?? REQUIRED_ALGS;
  return {
    async ensureKeys() {
      const existing = await listSigningKeys(db);
      if (algs.every((alg) => existing.some((k) => k.alg === alg && k.state === 'current'))) return;
      await db.transaction().execute(async (trx) => {
        await lockKeyStore(trx);
        // Re-read under the lock: another instance may have made them while we waited.
        const rows = await listSigningKeys(trx);
        for (const alg of algs) {
          if (rows.some((k) => k.alg === alg && k.state === 'current')) continue;
          const key = await makeKey(alg);
          await insertSigningKey(trx, {
            kid: key.kid,
            alg,
            state: 'current',
            publicJwk: key.publicJwk,
            privateJwkEncrypted: encryptPrivateJwk(keyEncryptionKey, key.kid, key.privateJwk),
            activatedAt: clock.now(),
          });
        }
      });
    },
    async load() {
      const rows = await listSigningKeys(db);
      const keys = rows
        .filter((row) => row.state === 'current')
        .map((row) => openKey(keyEncryptionKey, row));
      return { keys, rows };
    },
    list: () => listSigningKeys(db),
  };
}
