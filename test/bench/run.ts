// `npm run bench`: issue 16's table, measured. Postern's hot paths under load next to plain
// node-oidc-provider, sign-in against the argon2id ceiling, row writes, the CLI's wall time,
// and a growth phase on a database seeded with millions of rows.
//
// Postern runs as a child process on PostgreSQL (DATABASE_URL's server, or a throwaway local
// cluster), set up with the real `postern` command; the baseline is oidc-provider with its
// in-memory adapter issuing the same ES256 JWTs. Each phase loads one endpoint from this
// process with autocannon for a fixed time, and reads the server's own CPU time around it.
//
//   BENCH_SECONDS (5)           seconds per measured phase
//   BENCH_WARMUP_SECONDS (1)    warm-up before each phase, not counted
//   BENCH_ROUNDS (5)            interleaved rounds of Postern and the baseline for the ratios
//   BENCH_CONNECTIONS (50)      keep-alive connections (and refresh chains)
//   BENCH_CLI_RUNS (5)          runs of each timed `postern` command
//   BENCH_GROWTH (1)            0 skips the growth phase
//   BENCH_GROWTH_ROWS (1000000) expired payloads, live payloads and audit events each
//   BENCH_SWEEP_SECONDS (20)    refresh load while the sweeper works off the expired rows
//   BENCH_CPU_PROF=DIR          also write a V8 CPU profile of Postern into DIR
//   DATABASE_URL                a PostgreSQL server to make the throwaway database on
//
// Exits non-zero on an error, or when a load phase got a non-2xx answer or a connection error;
// a missed target is a measurement, reported, not a failure.
import { randomBytes } from 'node:crypto';

import { measureArgon2Ceiling } from './argon2-ceiling.ts';
import { capacityReport } from './capacity.ts';
import { childEnv, freePort, spawnServer, waitForHttp, type ServerProcess } from './child.ts';
import { measureCli } from './cli-timing.ts';
import { envInt } from '../support/env-int.ts';
import { createCleanup, type Cleanup } from '../support/cleanup.ts';
import { openBenchDatabase, type BenchDatabase } from './database.ts';
import { measureGrowth, type GrowthFigures } from './growth.ts';
import { measurePhase, type LoadSettings, type PhaseResult, type Request } from './load.ts';
import { posternEnv, registerBenchClients, startPostern } from './postern.ts';
import { clockTicksPerSecond, processCpu, processTreeCpu } from './proc-cpu.ts';
import { header, table } from './report.ts';
import { interleavedRounds, summarizeRatios, type LoadTarget } from './rounds.ts';
import { API, OPAQUE_API, OPAQUE_CLIENT, SERVICE_CLIENT, tokenRequestBody, WEB_CLIENT } from './scenario.ts';
import { webAppConfig } from './sign-in.ts';
import {
  assertIntrospectsActive,
  assertJwtAccessToken,
  assertOpaqueToken,
  basicAuth,
  requestAccessToken,
} from './token-checks.ts';
import { signInReport, verdicts } from './verdicts.ts';
import { measureWebApp, type WebApp } from './web-app.ts';

const TOKEN_PHASE = 'client-credentials token';
const DISCOVERY_PHASE = 'discovery';
const INTROSPECTION_PHASE = 'introspection (opaque)';

const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

interface Settings extends LoadSettings {
  readonly rounds: number;
  readonly cliRuns: number;
  readonly growth: boolean;
  readonly growthRows: number;
  readonly sweepSeconds: number;
}

function readSettings(env: NodeJS.ProcessEnv): Settings {
  const int = (name: string, fallback: number, min: number, max: number) => envInt(env, name, fallback, min, max);
  return {
    seconds: int('BENCH_SECONDS', 5, 1, 600),
    warmupSeconds: int('BENCH_WARMUP_SECONDS', 1, 0, 60),
    connections: int('BENCH_CONNECTIONS', 50, 1, 1000),
    rounds: int('BENCH_ROUNDS', 5, 1, 100),
    cliRuns: int('BENCH_CLI_RUNS', 5, 1, 100),
    growth: int('BENCH_GROWTH', 1, 0, 1) === 1,
    growthRows: int('BENCH_GROWTH_ROWS', 1_000_000, 1000, 100_000_000),
    sweepSeconds: int('BENCH_SWEEP_SECONDS', 20, 1, 3600),
  };
}

interface Endpoints {
  readonly issuer: string;
  readonly token: string;
  readonly introspection: string | undefined;
}

/** Endpoint URLs as the server publishes them, rather than guessed paths. */
async function discover(issuer: string): Promise<Endpoints> {
  const response = await fetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`discovery at ${issuer} answered ${response.status}`);
  const metadata = (await response.json()) as Record<string, unknown>;
  const url = (key: string) => (typeof metadata[key] === 'string' ? metadata[key] : undefined);
  const token = url('token_endpoint');
  const introspection = url('introspection_endpoint');
  if (!token) throw new Error(`discovery at ${issuer} names no token_endpoint`);
  // Every request of the benchmark goes to this machine.
  for (const endpoint of [token, introspection ?? issuer]) {
    if (!endpoint.startsWith('http://127.0.0.1:')) throw new Error(`refusing to load ${endpoint}: not on 127.0.0.1`);
  }
  return { issuer, token, introspection };
}

/** The phases both servers run: a client-credentials token, discovery. */
function commonPhases(endpoints: Endpoints, authorization: string): [string, Request][] {
  return [
    [
      TOKEN_PHASE,
      {
        url: endpoints.token,
        method: 'POST',
        headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
        body: tokenRequestBody(SERVICE_CLIENT.scope, API.resource),
      },
    ],
    [DISCOVERY_PHASE, { url: `${endpoints.issuer}/.well-known/openid-configuration`, method: 'GET' }],
  ];
}

interface Run {
  readonly cleanup: Cleanup;
  readonly signal: AbortSignal;
  readonly settings: Settings;
  readonly database: BenchDatabase;
}

interface Postern extends LoadTarget {
  readonly env: Record<string, string>;
  readonly webSecret: string;
  readonly server: ServerProcess;
  readonly app: WebApp;
}

async function checkJwtIssued(endpoints: Endpoints, authorization: string): Promise<void> {
  const token = await requestAccessToken(
    endpoints.token,
    authorization,
    tokenRequestBody(SERVICE_CLIENT.scope, API.resource),
  );
  assertJwtAccessToken(token, { alg: API.alg, audience: API.resource });
}

/** The introspection phase's request, after proving that its token comes back active. */
async function introspectionRequest(endpoints: Endpoints, secret: string): Promise<Request> {
  if (!endpoints.introspection) throw new Error('Postern publishes no introspection_endpoint');
  const authorization = basicAuth(OPAQUE_CLIENT.id, secret);
  const token = await requestAccessToken(
    endpoints.token,
    authorization,
    tokenRequestBody(OPAQUE_CLIENT.scope, OPAQUE_API.resource),
  );
  assertOpaqueToken(token);
  await assertIntrospectsActive(endpoints.introspection, authorization, token);
  return {
    url: endpoints.introspection,
    method: 'POST',
    headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }).toString(),
  };
}

async function preparePostern(run: Run): Promise<Postern> {
  const env = posternEnv(run.database.url, await freePort());
  log(`starting postern serve (migrates the database on the ${run.database.where})`);
  const server = await startPostern(run.cleanup, env);
  log('registering the APIs, clients and people with the postern command');
  const clients = await registerBenchClients(env);
  const endpoints = await discover(env.POSTERN_ISSUER!);
  await checkJwtIssued(endpoints, basicAuth(SERVICE_CLIENT.id, clients.serviceSecret));
  const phases = new Map(commonPhases(endpoints, basicAuth(SERVICE_CLIENT.id, clients.serviceSecret))).set(
    INTROSPECTION_PHASE,
    await introspectionRequest(endpoints, clients.opaqueSecret),
  );
  const pg = run.database.postmasterPid;
  const meters = { server: processCpu(server.pid), database: pg ? processTreeCpu(pg) : undefined };
  const app: WebApp = {
    config: await webAppConfig(endpoints.issuer, clients.webSecret),
    client: { tokenUrl: endpoints.token, authorization: basicAuth(WEB_CLIENT.id, clients.webSecret) },
    databaseUrl: run.database.url,
    meters,
  };
  return { name: 'postern', phases, meters, env, webSecret: clients.webSecret, server, app };
}

async function prepareBaseline(run: Run): Promise<LoadTarget> {
  const port = await freePort();
  const secret = randomBytes(32).toString('base64url');
  const issuer = `http://127.0.0.1:${port}`;
  log('starting the baseline (plain oidc-provider, in-memory adapter)');
  const server: ServerProcess = spawnServer(
    'baseline-server',
    ['test/bench/baseline-server.ts'],
    childEnv({ PORT: String(port), BASELINE_CLIENT_SECRET: secret }),
  );
  run.cleanup.defer('stop the baseline server', () => server.stop());
  await waitForHttp(server, `${issuer}/.well-known/openid-configuration`);
  const endpoints = await discover(issuer);
  const authorization = basicAuth(SERVICE_CLIENT.id, secret);
  await checkJwtIssued(endpoints, authorization);
  return {
    name: 'baseline',
    phases: new Map(commonPhases(endpoints, authorization)),
    meters: { server: processCpu(server.pid) },
  };
}

/** A load phase must be clean: an error there means the numbers describe failures. */
function loadProblems(results: readonly PhaseResult[]): string[] {
  return results
    .filter((r) => r.non2xx > 0 || r.errors > 0 || r.requests === 0)
    .map((r) => `${r.server} ${r.phase}: ${r.requests} requests, ${r.non2xx} non-2xx, ${r.errors} connection errors`);
}

async function measureEverything(run: Run): Promise<string[]> {
  const { settings } = run;
  const postern = await preparePostern(run);
  const baseline = await prepareBaseline(run);
  const rounds = await interleavedRounds({
    rounds: settings.rounds,
    phases: [TOKEN_PHASE, DISCOVERY_PHASE],
    postern,
    baseline,
    settings,
    signal: run.signal,
    log,
  });
  log(`postern: ${INTROSPECTION_PHASE}`);
  const introspection = await measurePhase(
    'postern',
    INTROSPECTION_PHASE,
    postern.phases.get(INTROSPECTION_PHASE)!,
    settings,
    postern.meters,
    run.signal,
  );
  log('bare argon2id verify rate, in this process');
  const argon2 = await measureArgon2Ceiling(settings.seconds);
  const chains: string[] = [];
  const web = await measureWebApp({
    app: postern.app,
    chains,
    signIns: settings.connections,
    connections: settings.connections,
    seconds: settings.seconds,
    log: (line) => log(`postern: ${line}`),
  });
  const cli = await measureCli({ posternEnv: postern.env, runs: settings.cliRuns, cleanup: run.cleanup, log });
  let growth: GrowthFigures | undefined;
  if (settings.growth) {
    growth = await measureGrowth({
      rows: settings.growthRows,
      sibling: run.database.sibling,
      webSecret: postern.webSecret,
      cleanup: run.cleanup,
      env: postern.env,
      stopServer: () => postern.server.stop(),
      app: postern.app,
      chains,
      connections: settings.connections,
      seconds: settings.seconds,
      sweepSeconds: settings.sweepSeconds,
      log,
    });
  }
  const results = [
    ...rounds.results,
    introspection,
    web.refresh,
    ...(growth ? [{ ...growth.refresh, server: 'postern (grown)' }, growth.sweep.refresh] : []),
  ];
  console.log(
    [
      '',
      header({
        settings,
        rounds: settings.rounds,
        clockTicks: clockTicksPerSecond(),
        postgres: `PostgreSQL ${run.database.serverVersion} (${run.database.where})`,
        tokens: `client_credentials, ${API.alg} JWT access tokens (typ at+jwt) for ${API.resource}, scope ${SERVICE_CLIENT.scope}, HTTP Basic client auth`,
      }),
      '',
      table(results),
      '',
      signInReport(web, argon2),
      ...(growth
        ? [
            '',
            `Growth: seeded ${growth.seeded.expiredPayloads.toLocaleString('en-US')} expired + ${growth.seeded.livePayloads.toLocaleString('en-US')} live oidc_payloads rows and ${growth.seeded.auditEvents.toLocaleString('en-US')} audit_events rows in ${growth.seeded.seconds.toFixed(0)} s`,
          ]
        : []),
      '',
      verdicts({
        tokenRatio: summarizeRatios(rounds.ratios.get(TOKEN_PHASE)!),
        discoveryRatio: summarizeRatios(rounds.ratios.get(DISCOVERY_PHASE)!),
        introspection,
        web,
        argon2,
        cli,
        growth,
      }),
      '',
      capacityReport(web),
      '',
      'Figures from a shared machine vary between runs; ratios come from interleaved rounds for that reason.',
      '',
    ].join('\n'),
  );
  return loadProblems(results);
}

async function main(): Promise<number> {
  const cleanup = createCleanup(log);
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) return;
    log(`${signal}: stopping the load and cleaning up`);
    controller.abort();
    void cleanup.run().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const settings = readSettings(process.env);
    const database = await openBenchDatabase(cleanup, process.env.DATABASE_URL?.trim() || undefined);
    const problems = await measureEverything({ cleanup, signal: controller.signal, settings, database });
    for (const problem of problems) log(`FAILED: ${problem}`);
    return problems.length > 0 ? 1 : 0;
  } catch (error) {
    if (!controller.signal.aborted) log(`error: ${(error as Error).message}`);
    return 1;
  } finally {
    await cleanup.run();
  }
}

process.exitCode = await main();
