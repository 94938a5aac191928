import { sql, type Kysely } from 'kysely';

import type { Database } from '../db/tables.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';

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

export interface Sweeper {
  stop(): Promise<void>;
}

export function startSweeper(deps: { db: Kysely<Database>; clock: Clock; logger: Logger; intervalSeconds: number }): Sweeper {
  let running: Promise<void> | undefined;
  const run = () => {
    if (running) return;
    running = sweepExpired(deps.db, deps.clock)
      .then((n) => { if (n > 0) deps.logger.debug({ deleted: n }, 'swept expired provider records'); })
      .catch((error: Error) => deps.logger.warn({ err: error.message }, 'sweeping expired records failed; will retry'))
      .finally(() => { running = undefined; });
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
