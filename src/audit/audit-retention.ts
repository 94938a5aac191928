import type { Kysely } from 'kysely';

import type { Database } from '../db/tables.ts';
import { deleteInBatches } from '../shared/batches.ts';
import { deleteAuditEventsBefore } from './audit.repository.ts';

const DAY_MS = 86_400_000;

/**
 * Deletes audit events older than the retention (POSTERN_AUDIT_RETENTION_DAYS), in bounded
 * batches. Run by the background sweeper; returns how many went.
 */
export function sweepAuditEvents(db: Kysely<Database>, now: Date, retentionDays: number): Promise<number> {
  const before = new Date(now.getTime() - retentionDays * DAY_MS);
  return deleteInBatches((limit) => deleteAuditEventsBefore(db, before, limit));
}
