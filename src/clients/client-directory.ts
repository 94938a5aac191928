import type { Kysely } from 'kysely';

import type { Database } from '../db/tables.ts';
import type { Clock } from '../shared/clock.ts';
import { createTtlCache } from '../shared/ttl-cache.ts';
import type { ClientRecord } from './client.ts';
import { findClient } from './client.repository.ts';

/**
 * Where a client record is looked up: by the engine's adapter on every token request, and by the
 * client service. The repository behind a short-lived cache (POSTERN_CACHE_SECONDS; misses too),
 * so a change made on another instance is seen within that time. It depends on nothing above
 * the database, which lets it be built before the engine that reads it.
 */
export interface ClientDirectory {
  find(clientId: string): Promise<ClientRecord | undefined>;
  /** Forgets a client now: this instance changed it. */
  forget(clientId: string): void;
}

export function createClientDirectory(deps: {
  db: Kysely<Database>;
  clock: Clock;
  ttlSeconds: number;
}): ClientDirectory {
  const cache = createTtlCache<ClientRecord | undefined>({
    ttlMs: deps.ttlSeconds * 1000,
    max: 10_000,
    clock: deps.clock,
  });
  return {
    find: (clientId) => cache.get(clientId, () => findClient(deps.db, clientId)),
    forget: (clientId) => cache.delete(clientId),
  };
}
