import type { JWK } from 'jose';
import type { Kysely, Transaction } from 'kysely';

import type { AuditLog } from '../audit/audit-log.ts';
import type { Database, SigningKeyRow } from '../db/tables.ts';
import type { Clock } from '../shared/clock.ts';
import { isPosternError, PosternError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { keyEncryptionKeyIsCurrent } from './installation-key.ts';
import { decryptPrivateJwk, encryptPrivateJwk } from './key-encryption.ts';
import { isEmptyPlan, nextKeyReadyAt, planRotation, type KeyPolicy } from './key-lifecycle.ts';
import {
  activateNextKey,
  deleteSigningKey,
  insertSigningKey,
  keyStoreFingerprint,
  listSigningKeys,
  lockKeyStore,
  retireCurrentKey,
} from './key.repository.ts';

export interface SigningKeySet {
  /** Private JWKs for the protocol engine: current keys first; the others may only verify. */
  readonly providerKeys: JWK[];
  /** The public JWK Set we publish: every next, current and retired key. */
  readonly publicJwks: { keys: JWK[] };
  readonly rows: readonly SigningKeyRow[];
  readonly fingerprint: string;
}

export interface KeyService {
  readonly policy: KeyPolicy;
  /** Makes the missing current and next keys; safe to call from many instances at once. */
  ensureKeys(): Promise<void>;
  load(): Promise<SigningKeySet>;
  fingerprint(): Promise<string>;
  /** The scheduled rotation: promotes due keys, deletes expired retired ones. Returns whether anything changed. */
  rotateIfDue(rows?: readonly SigningKeyRow[]): Promise<boolean>;
  /** An early rotation by an operator; refuses a next key caches may not know yet unless forced. */
  rotate(options: { alg?: string; force?: boolean }): Promise<{ alg: string; retired: string; activated: string }[]>;
  /** Compromise: the key goes at once; a current key is replaced immediately. */
  revoke(kid: string): Promise<{ revoked: SigningKeyRow; activated?: string }>;
  list(): Promise<SigningKeyRow[]>;
}

async function makeKey(alg: string): Promise<{ kid: string; publicJwk: JWK; privateJwk: JWK }> {
  // Loaded when a key is made, which most commands never do.
  const { calculateJwkThumbprint, exportJWK, generateKeyPair } = await import('jose');
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const meta = { kid, alg, use: 'sig' };
  return { kid, publicJwk: { ...publicJwk, ...meta }, privateJwk: { ...(await exportJWK(privateKey)), ...meta } };
}

export function openKey(keyEncryptionKey: Buffer, row: SigningKeyRow): JWK {
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

const STALE_SECRET =
  "this instance's POSTERN_SECRET no longer opens the key store: it was re-encrypted under a new " +
  'secret (postern keys reencrypt); this instance writes no signing key and serves with the keys it has ' +
  'until it is restarted with the new POSTERN_SECRET';

export function createKeyService(deps: {
  db: Kysely<Database>;
  keyEncryptionKey: Buffer;
  clock: Clock;
  audit: AuditLog;
  policy: KeyPolicy;
  /** How long a retired key stays published: the longest lifetime of a token it signed, plus clock tolerance. */
  retireSeconds: number;
  logger: Logger;
}): KeyService {
  const { db, keyEncryptionKey, clock, audit, policy, logger } = deps;
  /** Said once: the poll would otherwise repeat it every few seconds until the restart. */
  let staleSecretLogged = false;

  async function addKey(
    trx: Transaction<Database>,
    alg: string,
    state: 'current' | 'next',
    now: Date,
  ): Promise<string> {
    const key = await makeKey(alg);
    await insertSigningKey(trx, {
      kid: key.kid,
      alg,
      state,
      publicJwk: key.publicJwk,
      createdAt: now,
      privateJwkEncrypted: encryptPrivateJwk(keyEncryptionKey, key.kid, key.privateJwk),
      activatedAt: state === 'current' ? now : null,
    });
    audit.record({ type: 'key.created', details: { kid: key.kid, alg, state } });
    return key.kid;
  }

  /** next -> current, current -> retired, and a new next; in the caller's transaction. */
  async function promote(trx: Transaction<Database>, alg: string, now: Date) {
    const retireAfter = new Date(now.getTime() + deps.retireSeconds * 1000);
    const retired = await retireCurrentKey(trx, alg, retireAfter);
    const activated = await activateNextKey(trx, alg, now);
    if (!activated) throw new PosternError('ERR_NOT_FOUND', `no next ${alg} key to activate`);
    await addKey(trx, alg, 'next', now);
    audit.record({ type: 'key.rotated', details: { alg, retired, activated, retireAfter: retireAfter.toISOString() } });
    return { alg, retired: retired ?? '-', activated };
  }

  /** Fills every gap: an algorithm without a current key gets its next one (or a new one), then a next. */
  async function complete(trx: Transaction<Database>, rows: readonly SigningKeyRow[], now: Date) {
    for (const alg of policy.algs) {
      const has = (state: string) => rows.some((k) => k.alg === alg && k.state === state);
      if (!has('current')) {
        if (has('next')) await activateNextKey(trx, alg, now);
        else await addKey(trx, alg, 'current', now);
      }
      if (!has('next') || !has('current')) await addKey(trx, alg, 'next', now);
    }
  }

  const inLock = <T>(fn: (trx: Transaction<Database>, rows: SigningKeyRow[], now: Date) => Promise<T>) =>
    db.transaction().execute(async (trx) => {
      await lockKeyStore(trx);
      // A key sealed under a secret the store no longer uses would strand every instance
      // started with the new one; reencrypt takes the same lock, so this check cannot race it.
      if (!(await keyEncryptionKeyIsCurrent(trx, keyEncryptionKey)))
        throw new PosternError('ERR_SECRET_MISMATCH', STALE_SECRET);
      // Read under the lock: another instance may have changed the store while we waited.
      return fn(trx, await listSigningKeys(trx), clock.now());
    });

  return {
    policy,
    async ensureKeys() {
      if (planRotation(await listSigningKeys(db), clock.now(), policy).incomplete.length === 0) return;
      await inLock((trx, rows, now) => complete(trx, rows, now));
    },

    async load() {
      const rows = await listSigningKeys(db);
      const ordered = [...rows.filter((k) => k.state === 'current'), ...rows.filter((k) => k.state !== 'current')];
      const providerKeys = ordered.map((row) => {
        const jwk = openKey(keyEncryptionKey, row);
        // key_ops keeps the engine from signing with anything but a current key.
        return row.state === 'current' ? jwk : { ...jwk, key_ops: ['verify'] };
      });
      const publicJwks = { keys: rows.map((row) => row.public_jwk as JWK) };
      return { providerKeys, publicJwks, rows, fingerprint: await keyStoreFingerprint(db) };
    },

    fingerprint: () => keyStoreFingerprint(db),

    async rotateIfDue(known) {
      if (isEmptyPlan(planRotation(known ?? (await listSigningKeys(db)), clock.now(), policy))) return false;
      return inLock(async (trx, rows, now) => {
        const plan = planRotation(rows, now, policy);
        if (isEmptyPlan(plan)) return false;
        for (const alg of plan.promote) await promote(trx, alg, now);
        for (const kid of plan.remove) {
          await deleteSigningKey(trx, kid);
          audit.record({ type: 'key.deleted', details: { kid, why: 'every token it signed has expired' } });
        }
        await complete(trx, await listSigningKeys(trx), now);
        return true;
      }).catch((error: unknown) => {
        // The scheduled rotation of a stale instance: write nothing, say so once, keep serving.
        if (!isPosternError(error, 'ERR_SECRET_MISMATCH')) throw error;
        if (!staleSecretLogged) logger.error({ code: error.code }, STALE_SECRET);
        staleSecretLogged = true;
        return false;
      });
    },

    rotate({ alg, force }) {
      if (alg !== undefined && !policy.algs.includes(alg)) {
        throw new PosternError(
          'ERR_INVALID_INPUT',
          `no keys for ${alg} (algorithms in use: ${policy.algs.join(', ')})`,
        );
      }
      return inLock(async (trx, rows, now) => {
        const results = [];
        for (const a of alg ? [alg] : policy.algs) {
          const next = rows.find((k) => k.alg === a && k.state === 'next');
          if (!next) throw new PosternError('ERR_NOT_FOUND', `no next ${a} key; start Postern once to create it`);
          const readyAt = nextKeyReadyAt(next, policy);
          if (readyAt > now && !force) {
            throw new PosternError(
              'ERR_INVALID_INPUT',
              `the next ${a} key ${next.kid} has been published only since ${next.created_at.toISOString()}; caches may not know it before ${readyAt.toISOString()} (use --force to rotate anyway)`,
            );
          }
          results.push(await promote(trx, a, now));
        }
        return results;
      });
    },

    revoke(kid) {
      return inLock(async (trx, rows, now) => {
        const revoked = rows.find((k) => k.kid === kid);
        if (!revoked) throw new PosternError('ERR_NOT_FOUND', `no signing key "${kid}"`);
        await deleteSigningKey(trx, kid);
        let activated: string | undefined;
        // A compromised current key is replaced at once: its successor is already published.
        if (revoked.state === 'current') activated = await activateNextKey(trx, revoked.alg, now);
        await complete(trx, await listSigningKeys(trx), now);
        audit.record({ type: 'key.revoked', details: { kid, alg: revoked.alg, state: revoked.state, activated } });
        return activated ? { revoked, activated } : { revoked };
      });
    },

    list: () => listSigningKeys(db),
  };
}
