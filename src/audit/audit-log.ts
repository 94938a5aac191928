import { AsyncLocalStorage } from 'node:async_hooks';

import type { Kysely } from 'kysely';

import type { Database } from '../db/tables.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import type { AuditActor, AuditEvent, AuditEventInput, AuditQuery } from './audit-event.ts';
import { insertAuditEvent, queryAuditEvents } from './audit.repository.ts';

export interface AuditLog {
  /** Records in the background: a failing audit write never blocks or breaks what it records. */
  record(event: AuditEventInput): void;
  /** Waits for writes in flight (shutdown, tests). */
  flush(): Promise<void>;
  query(query: AuditQuery): Promise<AuditEvent[]>;
  /**
   * Runs `fn` on behalf of an admin API caller: every event recorded meanwhile (by whichever
   * service) carries `details.actor`, so the log says who made each change.
   */
  actingAs<T>(actor: AuditActor, fn: () => Promise<T>): Promise<T>;
}

export function createAuditLog(deps: {
  db: Kysely<Database>;
  clock: Clock;
  logger: Logger;
  /** Sees every event (metrics). */
  observe?: (event: AuditEventInput) => void;
}): AuditLog {
  const { db, clock, logger } = deps;
  const pending = new Set<Promise<void>>();
  // One per audit log (no module-level state): several containers can live in one process.
  const acting = new AsyncLocalStorage<AuditActor>();
  return {
    record(recorded) {
      const at = clock.now();
      const actor = acting.getStore();
      const event = actor ? { ...recorded, details: { ...recorded.details, actor } } : recorded;
      deps.observe?.(event);
      // Every event is also a log line, so it is visible even when the database write fails.
      logger.info(
        {
          audit: event.type,
          accountId: event.accountId,
          clientId: event.clientId,
          ip: event.ip,
          details: event.details,
        },
        'audit event',
      );
      const write = insertAuditEvent(db, at, event)
        .catch((error: Error) =>
          logger.error(
            { err: error.message, audit: event.type },
            'AUDIT WRITE FAILED: the event above is not in the audit log',
          ),
        )
        .finally(() => pending.delete(write));
      pending.add(write);
    },
    async flush() {
      await Promise.all([...pending]);
    },
    query: (query) => queryAuditEvents(db, query),
    actingAs: (actor, fn) => acting.run(actor, fn),
  };
}
