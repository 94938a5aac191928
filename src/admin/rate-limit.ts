import { sql, type Kysely } from 'kysely';

import type { Database } from '../db/tables.ts';
import { PosternError } from '../shared/errors.ts';

// A fixed window per calling client, counted in the database so that every instance shares it
// (DESIGN §1). One statement starts a new window or counts into the current one: concurrent
// requests on many instances cannot read the same count and both pass (CONVENTIONS §5).

export interface RateLimiter {
  /** Counts one request; ERR_RATE_LIMITED with the seconds to wait once over the limit. */
  hit(caller: string, now: Date): Promise<void>;
}

export class RateLimited extends PosternError {
  readonly retryAfterSeconds: number;
  constructor(retryAfterSeconds: number) {
    super('ERR_RATE_LIMITED', `too many requests: retry after ${retryAfterSeconds} s`);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export function createRateLimiter(deps: { db: Kysely<Database>; limit: number; windowSeconds: number }): RateLimiter {
  const { db, limit, windowSeconds } = deps;
  return {
    async hit(caller, now) {
      const { rows } = await sql<{ window_start: Date; count: number }>`
        insert into admin_rate_limits as r (caller, window_start, count) values (${caller}, ${now}, 1)
        on conflict (caller) do update set
          window_start = case when r.window_start <= ${now}::timestamptz - make_interval(secs => ${windowSeconds})
                              then ${now}::timestamptz else r.window_start end,
          count = case when r.window_start <= ${now}::timestamptz - make_interval(secs => ${windowSeconds})
                       then 1 else r.count + 1 end
        returning window_start, count`.execute(db);
      const row = rows[0]!;
      if (row.count <= limit) return;
      const endsAt = new Date(row.window_start).getTime() + windowSeconds * 1000;
      throw new RateLimited(Math.max(1, Math.ceil((endsAt - now.getTime()) / 1000)));
    },
  };
}
