import type { Clock } from './clock.ts';

/**
 * A small in-process read cache for data another instance may change: entries (misses too)
 * live `ttlMs`, so a change made anywhere is seen everywhere within that time. Concurrent
 * loads of one key share one query. Bounded: the oldest entries go first.
 */
export interface TtlCache<V> {
  get(key: string, load: () => Promise<V>): Promise<V>;
  /** Forgets a key now (a change made by this instance). */
  delete(key: string): void;
}

export function createTtlCache<V>(options: { ttlMs: number; max: number; clock: Clock }): TtlCache<V> {
  const entries = new Map<string, { value: Promise<V>; expires: number }>();
  return {
    get(key, load) {
      const now = options.clock.now().getTime();
      const hit = entries.get(key);
      if (hit && hit.expires > now) return hit.value;
      const value = load();
      entries.delete(key);
      entries.set(key, { value, expires: now + options.ttlMs });
      // A failed load is not remembered.
      value.catch(() => {
        if (entries.get(key)?.value === value) entries.delete(key);
      });
      while (entries.size > options.max) entries.delete(entries.keys().next().value!);
      return value;
    },
    delete(key) {
      entries.delete(key);
    },
  };
}
