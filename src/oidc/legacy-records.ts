import type { Kysely } from 'kysely';
import type { AdapterPayload } from 'oidc-provider';

import type { Database } from '../db/tables.ts';
import { concealPayload } from './record-payload.ts';
import type { RecordProtection } from './record-protection.ts';

// Rows written before engine ids were hashed (migration 202611301000) keep their clear id until
// the app, which alone can unseal the installation key, converts them: all of them when a server
// starts and on every sweep (an older instance may still write some during a rolling upgrade),
// and any one of them the moment the adapter finds it. A converted row is the row the new code
// would have written, so sessions and tokens live on across the upgrade.

type Executor = Kysely<Database>;

/** Converts one legacy row; harmless if another process converted or replaced it first. */
export async function hashLegacyRecord(
  db: Executor,
  protect: RecordProtection,
  kind: string,
  id: string,
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const old = await trx
      .deleteFrom('oidc_payloads')
      .where('kind', '=', kind)
      .where('id', '=', id)
      .where('id_hashed', '=', false)
      .returningAll()
      .executeTakeFirst();
    if (!old) return;
    const key = protect.hashId(id);
    const hash = (v: string | null) => (v === null ? null : protect.hashId(v));
    const payload = { ...(old.payload as AdapterPayload), jti: id };
    await trx
      .insertInto('oidc_payloads')
      .values({
        kind,
        id: key,
        id_hashed: true,
        payload: JSON.stringify(concealPayload(protect, kind, id, key, payload)),
        grant_id: hash(old.grant_id),
        uid: hash(old.uid),
        user_code: hash(old.user_code),
        expires_at: old.expires_at,
        consumed_at: old.consumed_at,
        grace_uses: old.grace_uses,
      })
      // The engine saved the record again under its hashed id meanwhile: that copy is newer.
      .onConflict((oc) => oc.columns(['kind', 'id']).doNothing())
      .execute();
    // Where the grant was signed in from is keyed like the grant (oidc/session.repository.ts).
    if (kind === 'Grant')
      await trx.updateTable('grant_activity').set({ grant_id: key }).where('grant_id', '=', id).execute();
  });
}

/** Converts legacy rows in batches; returns how many. */
export async function hashLegacyRecords(
  db: Executor,
  protect: RecordProtection,
  options: { batch?: number; maxBatches?: number } = {},
): Promise<number> {
  const batch = options.batch ?? 500;
  let total = 0;
  for (let i = 0; i < (options.maxBatches ?? 100); i++) {
    const rows = await db
      .selectFrom('oidc_payloads')
      .select(['kind', 'id'])
      .where('id_hashed', '=', false)
      .limit(batch)
      .execute();
    for (const row of rows) await hashLegacyRecord(db, protect, row.kind, row.id);
    total += rows.length;
    if (rows.length < batch) break;
  }
  return total;
}
