import { sql, type Kysely } from 'kysely';

import { deleteStaleThrottles } from '../accounts/throttle.repository.ts';
import type { Database } from '../db/tables.ts';
import { deleteInBatches } from '../shared/batches.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import { hashLegacyRecords } from './legacy-records.ts';
import type { RecordProtection } from './record-protection.ts';
import type { RefreshRotation } from './refresh-rotation.ts';
import { deleteOrphanedGrantActivity } from './session.repository.ts';

const BATCH = 1000;

/** Deletes expired provider rows in small batches, so no statement holds locks for long. */
export async function sweepExpired(db: Kysely<Database>, clock: Clock, maxBatches = 100): Promise<number> {
  let total = 0;
  for (let i = 0; i < maxBatches; i++) {
    const result = await sql`
      delete from oidc_payloads where ctid in (
        select ctid from oidc_payloads where expires_at <= ${clock.now()} limit ${BATCH}
      )`.execute(db);
    const deleted = Number(result.numAffectedRows ?? 0n);
    total += deleted;
    if (deleted < BATCH) break;
  }
  return total;
}

/** Activity rows are this old at least before they may go: their grant is saved first. */
const ACTIVITY_GRACE_MS = 3_600_000;

/** Where each grant was signed in from lives as long as the grant. */
export function sweepGrantActivity(db: Kysely<Database>, clock: Clock): Promise<number> {
  const now = clock.now();
  const createdBefore = new Date(now.getTime() - ACTIVITY_GRACE_MS);
  return deleteInBatches((limit) => deleteOrphanedGrantActivity(db, now, createdBefore, limit));
}

/** Another module's retention (the audit log), handed in by the container: oidc imports none of it. */
export type RetentionSweep = (now: Date) => Promise<number>;

export interface Sweeper {
  stop(): Promise<void>;
}

export function startSweeper(deps: {
  db: Kysely<Database>;
  clock: Clock;
  logger: Logger;
  intervalSeconds: number;
  /** Sign-in counters untouched for this long (window and longest lock passed) are deleted too. */
  throttleRetentionSeconds: number;
  /** Rows an older instance wrote with a clear id are converted (oidc/legacy-records.ts). */
  protect: RecordProtection;
  /** Sealed refresh successors are dropped once their grace window is over. */
  rotation: Pick<RefreshRotation, 'dropExpiredSuccessors'>;
  onSwept?: (deleted: number) => void;
  retention?: readonly RetentionSweep[];
}): Sweeper {
  let running: Promise<void> | undefined;
  const sweep = async () => {
    const records = await sweepExpired(deps.db, deps.clock);
    const before = new Date(deps.clock.now().getTime() - deps.throttleRetentionSeconds * 1000);
    const throttles = await deleteStaleThrottles(deps.db, before);
    await deps.rotation.dropExpiredSuccessors();
    await hashLegacyRecords(deps.db, deps.protect, { maxBatches: 10 });
    let retained = await sweepGrantActivity(deps.db, deps.clock);
    for (const sweepRetention of deps.retention ?? []) retained += await sweepRetention(deps.clock.now());
    return records + throttles + retained;
  };
  const run = () => {
    if (running) return;
    running = sweep()
      .then((n) => {
        deps.onSwept?.(n);
        if (n > 0) deps.logger.debug({ deleted: n }, 'swept expired records');
      })
      .catch((error: Error) => deps.logger.warn({ err: error.message }, 'sweeping expired records failed; will retry'))
      .finally(() => {
        running = undefined;
      });
  };
  const timer = setInterval(run, deps.intervalSeconds * 1000);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
