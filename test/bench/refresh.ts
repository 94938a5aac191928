import autocannon from 'autocannon';
import pg from 'pg';

import { toPhaseResult, type Meters, type PhaseResult } from './load.ts';
import { timeEach } from './stats.ts';

// The refresh-token row of the benchmark (rotation on), and the database row writes a sign-in
// and a refresh cost, read from PostgreSQL's own statistics (pg_stat_user_tables).

export const REFRESH_PHASE = 'refresh token (rotation on)';

/** Sum of rows inserted, updated and deleted in our tables so far, as PostgreSQL counts them. */
export async function rowWrites(databaseUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    // Backends report their counts when they go idle, but at most once a second, and an idle
    // backend that reported less than a second ago waits up to 10 s (PostgreSQL 15's
    // PGSTAT_IDLE_INTERVAL): wait that out, then read past this session's cached snapshot.
    await new Promise((resolve) => setTimeout(resolve, 11_000));
    await client.query('select pg_stat_clear_snapshot()');
    const { rows } = await client.query<{ writes: string }>(
      `select coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) as writes from pg_stat_user_tables
        where relname <> 'postern_migrations' and relname <> 'postern_migrations_lock'`,
    );
    return Number(rows[0]!.writes);
  } finally {
    await client.end();
  }
}

export interface RefreshClient {
  readonly tokenUrl: string;
  /** HTTP Basic header of the web app. */
  readonly authorization: string;
}

function refreshBody(token: string): string {
  return new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token }).toString();
}

/** One refresh, as the web app makes it; returns the rotated refresh token. */
async function refreshOnce(client: RefreshClient, token: string): Promise<string> {
  const response = await fetch(client.tokenUrl, {
    method: 'POST',
    headers: { authorization: client.authorization, 'content-type': 'application/x-www-form-urlencoded' },
    body: refreshBody(token),
    signal: AbortSignal.timeout(10_000),
  });
  const json = (await response.json()) as { refresh_token?: string; error?: string };
  if (!response.ok || !json.refresh_token) throw new Error(`refresh answered ${response.status} ${json.error ?? ''}`);
  return json.refresh_token;
}

/**
 * One chain refreshed `count` times in a row, each request alone on the server: the latency of
 * a refresh, and the chain's newest token.
 */
export async function refreshInSequence(
  client: RefreshClient,
  token: string,
  count: number,
): Promise<{ latenciesMs: number[]; token: string }> {
  let current = token;
  const latenciesMs = await timeEach(count, async () => {
    current = await refreshOnce(client, current);
  });
  return { latenciesMs, token: current };
}

/**
 * Refreshes under load, each request with the newest token of a chain (rotation is on), as a
 * real client must: a request takes a chain's token from the pool and its answer puts the new
 * one back (autocannon resets a connection's context between requests, so the pool holds them).
 * There are as many connections as chains. `chains` is updated in place with the newest tokens,
 * so a later phase can go on with them.
 */
export async function measureRefresh(options: {
  client: RefreshClient;
  chains: string[];
  seconds: number;
  meters: Meters;
  server?: string;
}): Promise<PhaseResult> {
  const pool = options.chains;
  const cpuBefore = options.meters.server.read();
  const databaseBefore = options.meters.database?.read();
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.client.tokenUrl,
        connections: pool.length,
        duration: options.seconds,
        timeout: 10,
        requests: [
          {
            method: 'POST',
            headers: {
              authorization: options.client.authorization,
              'content-type': 'application/x-www-form-urlencoded',
            },
            setupRequest(request: Record<string, unknown>, context: { token?: string | undefined }) {
              context.token = pool.pop();
              return { ...request, body: refreshBody(context.token ?? '') };
            },
            onResponse(status: number, body: string, context: { token?: string }) {
              const next = status === 200 ? (JSON.parse(body) as { refresh_token?: string }).refresh_token : undefined;
              if (next ?? context.token) pool.push((next ?? context.token)!);
            },
          },
        ],
      } as never,
      (error, r) => (error ? reject(error) : resolve(r)),
    );
    instance.on('error', reject);
  });
  return toPhaseResult(
    options.server ?? 'postern',
    REFRESH_PHASE,
    result,
    options.meters.server.read() - cpuBefore,
    databaseBefore === undefined ? undefined : options.meters.database!.read() - databaseBefore,
  );
}
