import { setTimeout as sleep } from 'node:timers/promises';

import type { Cleanup } from '../support/cleanup.ts';
import type { PhaseResult } from './load.ts';
import { startPostern } from './postern.ts';
import { processCpu } from './proc-cpu.ts';
import { measureRefresh } from './refresh.ts';
import { countExpired, seedGrowth, type Seeded } from './growth-seed.ts';
import { measureWebApp, topUpChains, type WebApp, type WebAppFigures } from './web-app.ts';

// The growth phase (issue 16, "Scale on paper"): the same sign-in and refresh figures once the
// database holds a busy installation's rows, then the token path's latency while the sweeper
// deletes the expired ones.

export interface SweepFigures {
  readonly expiredBefore: number;
  readonly expiredAfter: number;
  /** Seconds after the sweeping server started when no expired row was left, if that happened. */
  readonly finishedAfterSeconds: number | undefined;
  readonly refresh: PhaseResult;
}

export interface GrowthFigures {
  readonly seeded: Seeded;
  readonly web: WebAppFigures;
  readonly sweep: SweepFigures;
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
  cleanup: Cleanup;
  env: Record<string, string>;
  stopServer: () => Promise<void>;
  app: WebApp;
  chains: string[];
  signIns: number;
  connections: number;
  seconds: number;
  sweepSeconds: number;
  log: (line: string) => void;
}): Promise<GrowthFigures> {
  const log = (line: string) => options.log(`growth: ${line}`);
  const seeded = await seedGrowth(options.app.databaseUrl, options.rows, log);
  log(`seeded in ${seeded.seconds.toFixed(0)} s`);
  const web = await measureWebApp({
    app: options.app,
    chains: options.chains,
    signIns: options.signIns,
    connections: options.connections,
    seconds: options.seconds,
    countWrites: false,
    throughput: false,
    log,
  });
  // Requests cut off when a load phase ends may take their chain with them.
  await topUpChains(options.app, options.chains, options.connections);
  const sweep = await measureSweep({ ...options, seconds: options.sweepSeconds, log });
  return { seeded, web, sweep };
}
