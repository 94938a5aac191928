import { setTimeout as sleep } from 'node:timers/promises';

import type { Cleanup } from '../support/cleanup.ts';
import { freePort } from './child.ts';
import type { PhaseResult } from './load.ts';
import { posternEnv, registerBenchClients, startPostern } from './postern.ts';
import { processCpu } from './proc-cpu.ts';
import { measureRefresh, refreshInSequence, type RefreshClient } from './refresh.ts';
import { BENCH_USERS, WEB_CLIENT } from './scenario.ts';
import { signInOnce, webAppConfig } from './sign-in.ts';
import { timeEach } from './stats.ts';
import { countExpired, seedGrowth, type Seeded } from './growth-seed.ts';
import { basicAuth } from './token-checks.ts';
import { topUpChains, type WebApp } from './web-app.ts';

// The growth phase (issue 16, "Scale on paper"): sign-in and refresh latency, and refreshes under
// load, once the database holds a busy installation's rows; then the token path's latency while
// the sweeper deletes the expired ones.
//
// The latency against the empty database is measured in interleaved rounds, as the ratios of the
// other rows are: two new Postern processes, one on a database of its own (the same PostgreSQL
// server) that stays empty, one on the grown database, and rounds of sign-ins and refreshes one
// at a time alternate between them. Measured one after the other, minutes apart, the two medians moved by more than the
// ±15 % target with whatever else the machine was doing (4.7 ms empty against 6.4 ms grown, then
// 8.4 against 4.2, in two runs whose PostgreSQL execution times differed by 0.1 ms).

/** Rounds of the interleaved latency comparison, and what each round does on each database. */
const LATENCY_ROUNDS = 5;
const SIGN_INS_PER_ROUND = 4;
const REFRESHES_PER_ROUND = 20;

export interface SweepFigures {
  readonly expiredBefore: number;
  readonly expiredAfter: number;
  /** Seconds after the sweeping server started when no expired row was left, if that happened. */
  readonly finishedAfterSeconds: number | undefined;
  readonly refresh: PhaseResult;
}

/** Milliseconds per full sign-in and per refresh, one at a time. */
export interface Latencies {
  readonly signInMs: number[];
  readonly refreshMs: number[];
}

export interface GrowthFigures {
  readonly seeded: Seeded;
  /** From the interleaved rounds: the empty reference database and the grown one. */
  readonly latency: { readonly empty: Latencies; readonly grown: Latencies };
  /** Refreshes under load on the grown database. */
  readonly refresh: PhaseResult;
  readonly sweep: SweepFigures;
}

interface LatencyTarget {
  readonly config: WebApp['config'];
  readonly client: RefreshClient;
}

/** A Postern of its own for the latency rows, on `env`'s database, with the bench's web app. */
async function startLatencyServer(
  cleanup: Cleanup,
  env: Record<string, string>,
  webSecret: string,
): Promise<LatencyTarget & { stop: () => Promise<void> }> {
  const server = await startPostern(cleanup, env);
  const issuer = env.POSTERN_ISSUER!;
  return {
    config: await webAppConfig(issuer, webSecret),
    client: { tokenUrl: `${issuer}/token`, authorization: basicAuth(WEB_CLIENT.id, webSecret) },
    stop: () => server.stop(),
  };
}

/**
 * The two servers of the latency rows, both new processes started and warmed alike: one on an
 * empty database of its own (the bench's web app and people registered there too), one on the
 * bench's database, which is then seeded. The bench's own server is not one of them: it has run
 * every load phase before, and its warmer code made it faster than any new process.
 */
async function startLatencyPair(options: {
  cleanup: Cleanup;
  env: Record<string, string>;
  webSecret: string;
  sibling: () => Promise<string>;
}): Promise<{ empty: LatencyTarget; grown: LatencyTarget; stop: () => Promise<void> }> {
  const emptyEnv = posternEnv(await options.sibling(), await freePort());
  const empty = await startLatencyServer(options.cleanup, emptyEnv, (await registerBenchClients(emptyEnv)).webSecret);
  const port = await freePort();
  const grownEnv = { ...options.env, PORT: String(port), POSTERN_ISSUER: `http://127.0.0.1:${port}` };
  const grown = await startLatencyServer(options.cleanup, grownEnv, options.webSecret);
  for (const target of [empty, grown]) await warmUp(target);
  return {
    empty,
    grown,
    stop: async () => {
      await empty.stop();
      await grown.stop();
    },
  };
}

/** Unrecorded work on each new server first, so that what is measured runs optimised code. */
const WARM_UP_SIGN_INS = 30;
const WARM_UP_REFRESHES = 300;

async function warmUp(target: LatencyTarget): Promise<void> {
  const chain = await signInOnce(target.config, BENCH_USERS[0]!);
  await timeEach(WARM_UP_SIGN_INS, async () => {
    await signInOnce(target.config, BENCH_USERS[0]!);
  });
  await refreshInSequence(target.client, chain, WARM_UP_REFRESHES);
}

/**
 * Sign-ins and refreshes one at a time, in rounds that alternate between the targets (the order
 * swapped each round), after one unrecorded round that warms both up.
 */
async function interleavedLatencies(targets: readonly LatencyTarget[]): Promise<Latencies[]> {
  const out: Latencies[] = targets.map(() => ({ signInMs: [], refreshMs: [] }));
  const chains: string[] = [];
  for (const t of targets) chains.push(await signInOnce(t.config, BENCH_USERS[0]!));
  for (let round = -1; round < LATENCY_ROUNDS; round++) {
    const order = targets.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    for (const i of order) {
      const t = targets[i]!;
      const signIns = await timeEach(SIGN_INS_PER_ROUND, async () => {
        await signInOnce(t.config, BENCH_USERS[0]!);
      });
      const sequence = await refreshInSequence(t.client, chains[i]!, REFRESHES_PER_ROUND);
      chains[i] = sequence.token;
      if (round < 0) continue;
      out[i]!.signInMs.push(...signIns);
      out[i]!.refreshMs.push(...sequence.latenciesMs);
    }
  }
  return out;
}

/** Polls the expired-row count until stopped; notes when it first reached zero. */
function watchSweep(databaseUrl: string, started: number, signal: AbortSignal): Promise<number | undefined> {
  return (async () => {
    while (!signal.aborted) {
      if ((await countExpired(databaseUrl)) === 0) return (performance.now() - started) / 1000;
      await sleep(2000, undefined, { signal }).catch(() => undefined);
    }
    return undefined;
  })();
}

/**
 * The sweeper runs on its interval (POSTERN_SWEEP_INTERVAL_SECONDS); the bench server is started
 * with a day, so nothing was swept before this. A server on the same database, issuer and port
 * replaces it with a one-second interval: its first sweep starts at once and works the backlog
 * off in bounded batches while refreshes load it.
 */
async function measureSweep(options: {
  cleanup: Cleanup;
  env: Record<string, string>;
  stopServer: () => Promise<void>;
  app: WebApp;
  chains: string[];
  seconds: number;
  log: (line: string) => void;
}): Promise<SweepFigures> {
  const { app, log } = options;
  const expiredBefore = await countExpired(app.databaseUrl);
  await options.stopServer();
  log(`sweep: restarting postern with POSTERN_SWEEP_INTERVAL_SECONDS=1 (${expiredBefore} expired rows)`);
  const started = performance.now();
  const server = await startPostern(options.cleanup, { ...options.env, POSTERN_SWEEP_INTERVAL_SECONDS: '1' });
  const watching = new AbortController();
  const finished = watchSweep(app.databaseUrl, started, watching.signal);
  log(`sweep: refresh token (rotation on) under load while it sweeps (${options.seconds} s)`);
  const meters = { server: processCpu(server.pid), database: app.meters.database };
  const refresh = await measureRefresh({
    client: app.client,
    chains: options.chains,
    seconds: options.seconds,
    meters,
    server: 'postern (sweeping)',
  });
  watching.abort();
  const finishedAfterSeconds = await finished;
  return { expiredBefore, expiredAfter: await countExpired(app.databaseUrl), finishedAfterSeconds, refresh };
}

export async function measureGrowth(options: {
  rows: number;
  /** A fresh database on the same server, for the empty reference. */
  sibling: () => Promise<string>;
  /** The bench's web app's client secret (the grown latency server signs in with it). */
  webSecret: string;
  cleanup: Cleanup;
  env: Record<string, string>;
  stopServer: () => Promise<void>;
  app: WebApp;
  chains: string[];
  connections: number;
  seconds: number;
  sweepSeconds: number;
  log: (line: string) => void;
}): Promise<GrowthFigures> {
  const log = (line: string) => options.log(`growth: ${line}`);
  log('latency: two new postern processes, one on an empty database, one on this one (seeded next)');
  const pair = await startLatencyPair(options);
  const seeded = await seedGrowth(options.app.databaseUrl, options.rows, log);
  log(`seeded in ${seeded.seconds.toFixed(0)} s`);
  log(
    `latency: ${LATENCY_ROUNDS} rounds of ${SIGN_INS_PER_ROUND} sign-ins and ${REFRESHES_PER_ROUND} refreshes one at a time, empty and grown interleaved`,
  );
  const [empty, grown] = await interleavedLatencies([pair.empty, pair.grown]);
  await pair.stop();
  const { app, chains } = options;
  // Requests cut off when a load phase ends may take their chain with them.
  await topUpChains(app, chains, options.connections);
  while (chains.length > options.connections) chains.shift();
  log(`refresh token (rotation on) under load, ${chains.length} chains (${options.seconds} s)`);
  const refresh = await measureRefresh({ client: app.client, chains, seconds: options.seconds, meters: app.meters });
  await topUpChains(app, chains, options.connections);
  const sweep = await measureSweep({ ...options, seconds: options.sweepSeconds, log });
  return { seeded, latency: { empty: empty!, grown: grown! }, refresh, sweep };
}
