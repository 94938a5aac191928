import type * as oidc from 'openid-client';

import type { Meters, PhaseResult } from './load.ts';
import { measureRefresh, refreshInSequence, rowWrites, type RefreshClient } from './refresh.ts';
import { BENCH_USERS } from './scenario.ts';
import { measureSignIns, signInOnce, type SignInThroughput } from './sign-in.ts';
import { timeEach } from './stats.ts';

// The rows of the table that a web app and its people cause: full sign-ins (their
// latency, rate and row writes) and refreshes with rotation (latency, rate, row writes).

export const SEQUENTIAL_REFRESHES = 100;

export interface WebAppFigures {
  /** Milliseconds per full sign-in, one at a time. */
  readonly signInLatenciesMs: readonly number[];
  /** Milliseconds per refresh, one at a time. */
  readonly refreshLatenciesMs: readonly number[];
  readonly writesPerSignIn: number;
  readonly writesPerRefresh: number;
  readonly refresh: PhaseResult;
  readonly signIns: SignInThroughput;
}

export interface WebApp {
  readonly config: oidc.Configuration;
  readonly client: RefreshClient;
  readonly databaseUrl: string;
  readonly meters: Meters;
}

/** Sign-ins one at a time until there are `count` chains; returns how long each took. */
export async function topUpChains(app: WebApp, chains: string[], count: number): Promise<number[]> {
  return timeEach(Math.max(0, count - chains.length), async () => {
    chains.push(await signInOnce(app.config, BENCH_USERS[0]!));
  });
}

/**
 * `chains` (one per connection) are made by sign-ins one at a time, and refreshed one at a
 * time, with PostgreSQL's write counters read around each step; then refresh and sign-in
 * throughput under load.
 */
export async function measureWebApp(options: {
  app: WebApp;
  chains: string[];
  signIns: number;
  connections: number;
  seconds: number;
  log: (line: string) => void;
}): Promise<WebAppFigures> {
  const { app, chains, log } = options;
  const writes = () => rowWrites(app.databaseUrl);
  log(`${options.signIns} full sign-ins, one at a time`);
  const before = await writes();
  const signInLatenciesMs = await timeEach(options.signIns, async () => {
    chains.push(await signInOnce(app.config, BENCH_USERS[0]!));
  });
  const afterSignIns = await writes();
  log(`${SEQUENTIAL_REFRESHES} refreshes of one chain, one at a time`);
  const sequence = await refreshInSequence(app.client, chains.pop()!, SEQUENTIAL_REFRESHES);
  chains.push(sequence.token);
  const afterRefreshes = await writes();
  await topUpChains(app, chains, options.connections);
  while (chains.length > options.connections) chains.shift();
  log(`refresh token (rotation on) under load, ${chains.length} chains (${options.seconds} s)`);
  const refresh = await measureRefresh({ client: app.client, chains, seconds: options.seconds, meters: app.meters });
  log(`full sign-ins under load, ${BENCH_USERS.length} people at once (${options.seconds} s)`);
  const signIns = await measureSignIns({ config: app.config, seconds: options.seconds, meters: app.meters });
  return {
    signInLatenciesMs,
    refreshLatenciesMs: sequence.latenciesMs,
    writesPerSignIn: (afterSignIns - before) / options.signIns,
    writesPerRefresh: (afterRefreshes - afterSignIns) / SEQUENTIAL_REFRESHES,
    refresh,
    signIns,
  };
}
