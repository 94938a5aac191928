import autocannon from 'autocannon';
import * as oidc from 'openid-client';
import pg from 'pg';

import { exchange, newBrowser, REDIRECT_URI, signIn } from '../support/relying-party.ts';
import { toPhaseResult, type Meters, type PhaseResult } from './load.ts';

// The refresh-token row of the benchmark (rotation on), and the database row writes a sign-in
// and a refresh cost, read from PostgreSQL's own statistics (pg_stat_user_tables).

export const WEB_CLIENT = { id: 'bench-web', scope: 'openid offline_access' } as const;
export const BENCH_USER = {
  username: 'bench',
  email: 'bench@example.com',
  password: 'bench user has a long passphrase',
} as const;

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

export function webAppConfig(issuer: string, secret: string): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(issuer), WEB_CLIENT.id, secret, oidc.ClientSecretBasic(secret), {
    execute: [oidc.allowInsecureRequests],
  });
}

/** Full sign-ins through the login page (code + PKCE, then the token exchange), one after another. */
export async function signInMany(config: oidc.Configuration, count: number): Promise<string[]> {
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) {
    const auth = await signIn(newBrowser(), config, BENCH_USER, { scope: WEB_CLIENT.scope, prompt: 'consent' });
    const result = await exchange(config, auth);
    if (!result.refresh_token) throw new Error('a sign-in got no refresh token');
    tokens.push(result.refresh_token);
  }
  return tokens;
}

export const WEB_REDIRECT_URI = REDIRECT_URI;

/** One chain refreshed `count` times in a row; returns its newest refresh token. */
export async function refreshInSequence(config: oidc.Configuration, token: string, count: number): Promise<string> {
  let current = token;
  for (let i = 0; i < count; i++) current = (await oidc.refreshTokenGrant(config, current)).refresh_token ?? current;
  return current;
}

export interface WriteCounts {
  readonly perSignIn: number;
  readonly perRefresh: number;
  readonly signIns: number;
  readonly refreshes: number;
}

/**
 * Refreshes under load, each request with the newest token of a chain (rotation is on), as a
 * real client must: a request takes a chain's token from the pool and its answer puts the new
 * one back (autocannon resets a connection's context between requests, so the pool holds them).
 * There are as many chains as connections.
 */
export async function measureRefresh(options: {
  tokenUrl: string;
  authorization: string;
  tokens: string[];
  seconds: number;
  meters: Meters;
}): Promise<PhaseResult> {
  const pool = [...options.tokens];
  const cpuBefore = options.meters.server.read();
  const databaseBefore = options.meters.database?.read();
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.tokenUrl,
        connections: options.tokens.length,
        duration: options.seconds,
        timeout: 10,
        requests: [
          {
            method: 'POST',
            headers: { authorization: options.authorization, 'content-type': 'application/x-www-form-urlencoded' },
            setupRequest(request: Record<string, unknown>, context: { token?: string | undefined }) {
              context.token = pool.pop();
              return {
                ...request,
                body: new URLSearchParams({
                  grant_type: 'refresh_token',
                  refresh_token: context.token ?? '',
                }).toString(),
              };
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
    'postern',
    'refresh token (rotation on)',
    result,
    options.meters.server.read() - cpuBefore,
    databaseBefore === undefined ? undefined : options.meters.database!.read() - databaseBefore,
  );
}

export interface RefreshRow {
  readonly result: PhaseResult;
  readonly writes: WriteCounts;
}

/**
 * Sign-ins through the login page (one chain per connection), the row writes of a sign-in and
 * of a refresh (measured one by one, apart from the load), then the refresh phase under load.
 */
export async function refreshRow(options: {
  issuer: string;
  tokenUrl: string;
  webSecret: string;
  databaseUrl: string;
  connections: number;
  seconds: number;
  meters: Meters;
  log: (line: string) => void;
}): Promise<RefreshRow> {
  const config = await webAppConfig(options.issuer, options.webSecret);
  options.log(`postern: ${options.connections} sign-ins through the login page (one refresh chain per connection)`);
  const before = await rowWrites(options.databaseUrl);
  const chains = await signInMany(config, options.connections);
  const afterSignIns = await rowWrites(options.databaseUrl);
  const refreshes = 50;
  chains[0] = await refreshInSequence(config, chains[0]!, refreshes);
  const afterRefreshes = await rowWrites(options.databaseUrl);
  options.log(`postern: refresh token (rotation on) (${options.seconds} s)`);
  const authorization = `Basic ${Buffer.from(`${WEB_CLIENT.id}:${options.webSecret}`).toString('base64')}`;
  const result = await measureRefresh({
    tokenUrl: options.tokenUrl,
    authorization,
    tokens: chains,
    seconds: options.seconds,
    meters: options.meters,
  });
  return {
    result,
    writes: {
      perSignIn: (afterSignIns - before) / chains.length,
      perRefresh: (afterRefreshes - afterSignIns) / refreshes,
      signIns: chains.length,
      refreshes,
    },
  };
}

/** Lines for the report: write counts and the refresh targets. */
export function refreshReport(row: RefreshRow): string {
  const { result, writes } = row;
  const perCpu = result.requests / result.serverCpuSeconds;
  const mark = (ok: boolean) => (ok ? 'PASS' : 'MISS');
  return [
    `Database row writes (pg_stat_user_tables: rows inserted + updated + deleted, all tables):`,
    `  per sign-in   ${writes.perSignIn.toFixed(1)}  (mean of ${writes.signIns} full sign-ins: login page, code, token exchange)`,
    `  per refresh   ${writes.perRefresh.toFixed(1)}  (mean of ${writes.refreshes} refreshes of one chain, one at a time)`,
    'Targets (refresh token, rotation on):',
    `  ${mark(perCpu >= 800)}  refreshes per server-CPU-second: ${perCpu.toFixed(0)} (target >= 800)`,
    `  ${mark(writes.perRefresh <= 2)}  row writes per refresh: ${writes.perRefresh.toFixed(1)} (target <= 2)`,
    `  ${mark(writes.perSignIn <= 5)}  row writes per sign-in: ${writes.perSignIn.toFixed(1)} (target <= 5)`,
  ].join('\n');
}
