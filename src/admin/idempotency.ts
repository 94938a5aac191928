import { createHash } from 'node:crypto';

import { sql, type Kysely } from 'kysely';

import type { Database } from '../db/tables.ts';
import { seal, unseal } from '../keys/sealed-box.ts';
import { PosternError } from '../shared/errors.ts';

// Idempotency-Key (draft-ietf-httpapi-idempotency-key-header): a create or update retried with
// the same key gets the first answer instead of acting twice. One row per (caller, key) holds
// the request's fingerprint and, once answered, the answer; the answer is sealed (AES-256-GCM),
// as it may hold a generated client secret (DESIGN §5). Rows expire and are swept.

export type Claim =
  | { readonly kind: 'new' }
  | { readonly kind: 'replay'; readonly status: number; readonly body: unknown };

export interface IdempotencyStore {
  /** Claims the key for this request, or returns the answer the first one got. */
  claim(caller: string, key: string, fingerprint: string, now: Date): Promise<Claim>;
  /** Keeps the answer for retries. */
  complete(caller: string, key: string, status: number, body: unknown): Promise<void>;
  /** The request failed: a retry may try again. */
  release(caller: string, key: string): Promise<void>;
}

/** The request as the key promises it: method, path and body, in one hash. */
export function fingerprintOf(method: string, path: string, body: unknown): string {
  return createHash('sha256')
    .update(`${method} ${path}\n${JSON.stringify(body ?? null)}`)
    .digest('base64url');
}

export function createIdempotencyStore(deps: {
  db: Kysely<Database>;
  sealKey: Buffer;
  ttlSeconds: number;
}): IdempotencyStore {
  const { db, sealKey } = deps;
  const binding = (caller: string, key: string) => `admin-idempotency:${caller}:${key}`;
  const row = (caller: string, key: string) =>
    db.selectFrom('admin_idempotency').selectAll().where('caller', '=', caller).where('key', '=', key);
  return {
    async claim(caller, key, fingerprint, now) {
      // An expired key is free again.
      await db
        .deleteFrom('admin_idempotency')
        .where('caller', '=', caller)
        .where('key', '=', key)
        .where('expires_at', '<=', now)
        .execute();
      // One insert wins, on any number of instances; the others read what it holds.
      const inserted = await db
        .insertInto('admin_idempotency')
        .values({
          caller,
          key,
          fingerprint,
          created_at: now,
          expires_at: new Date(now.getTime() + deps.ttlSeconds * 1000),
        })
        .onConflict((oc) => oc.columns(['caller', 'key']).doNothing())
        .returning('key')
        .executeTakeFirst();
      if (inserted) return { kind: 'new' };
      const held = await row(caller, key).executeTakeFirst();
      if (!held) return this.claim(caller, key, fingerprint, now);
      if (held.fingerprint !== fingerprint)
        throw new PosternError(
          'ERR_IDEMPOTENCY_MISMATCH',
          'this Idempotency-Key was used for a different request; use a new key',
          { fields: [{ field: 'Idempotency-Key', detail: 'was used for a different request' }] },
        );
      if (held.status === null || held.response_sealed === null)
        throw new PosternError('ERR_CONFLICT', 'a request with this Idempotency-Key is still in progress; retry later');
      const body = JSON.parse(unseal(sealKey, binding(caller, key), held.response_sealed).toString('utf8'));
      return { kind: 'replay', status: held.status, body };
    },
    async complete(caller, key, status, body) {
      const sealed = seal(sealKey, binding(caller, key), Buffer.from(JSON.stringify(body ?? null), 'utf8'));
      await db
        .updateTable('admin_idempotency')
        .set({ status, response_sealed: sealed })
        .where('caller', '=', caller)
        .where('key', '=', key)
        .execute();
    },
    async release(caller, key) {
      await db.deleteFrom('admin_idempotency').where('caller', '=', caller).where('key', '=', key).execute();
    },
  };
}

/** The sweeper's part: expired keys, and rate-limit windows long past. */
export async function sweepAdminState(db: Kysely<Database>, now: Date, rateWindowSeconds: number): Promise<number> {
  const keys = await db.deleteFrom('admin_idempotency').where('expires_at', '<=', now).executeTakeFirst();
  const windows = await db
    .deleteFrom('admin_rate_limits')
    .where('window_start', '<', sql<Date>`${now}::timestamptz - make_interval(secs => ${rateWindowSeconds})`)
    .executeTakeFirst();
  return Number(keys.numDeletedRows) + Number(windows.numDeletedRows);
}
