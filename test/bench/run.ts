// `npm run bench`: Postern's hot path under load, next to plain node-oidc-provider.
//
// Postern runs as a child process on PostgreSQL (DATABASE_URL's server, or a throwaway local
// cluster), set up with the real `postern` command; the baseline is oidc-provider with its
// in-memory adapter issuing the same ES256 JWTs. Each phase loads one endpoint from this
// process with autocannon for a fixed time, and reads the server's own CPU time around it.
//
//   BENCH_SECONDS (10)  BENCH_WARMUP_SECONDS (2)  BENCH_CONNECTIONS (50)  DATABASE_URL
//   BENCH_CPU_PROF=DIR  also write a V8 CPU profile of Postern into DIR
//
// Exits non-zero on an error, or when a token phase got a non-2xx answer or a connection error;
// a missed target is a measurement, reported, not a failure.
import { randomBytes } from 'node:crypto';

import { childEnv, freePort, spawnServer, waitForHttp, type ServerProcess } from './child.ts';
import { envInt } from '../support/env-int.ts';
import { createCleanup, type Cleanup } from '../support/cleanup.ts';
import { openBenchDatabase, type BenchDatabase } from './database.ts';
import { measurePhase, type LoadSettings, type Meters, type PhaseResult, type Request } from './load.ts';
import { posternEnv, registerBenchClients, startPostern } from './postern.ts';
import { clockTicksPerSecond, processCpu, processTreeCpu } from './proc-cpu.ts';
import { refreshReport, refreshRow } from './refresh.ts';
import { comparison, header, table } from './report.ts';
import { API, OPAQUE_API, OPAQUE_CLIENT, SERVICE_CLIENT, tokenRequestBody } from './scenario.ts';
import {
  assertIntrospectsActive,
  assertJwtAccessToken,
  assertOpaqueToken,
  basicAuth,
  requestAccessToken,
} from './token-checks.ts';

const TOKEN_PHASE = 'client-credentials token';
const INTROSPECTION_PHASE = 'introspection (opaque)';
const PHASES = [TOKEN_PHASE, 'discovery', 'jwks', INTROSPECTION_PHASE];

const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

function readSettings(env: NodeJS.ProcessEnv): LoadSettings {
  const int = (name: string, fallback: number, min: number, max: number) => envInt(env, name, fallback, min, max);
  return {
    seconds: int('BENCH_SECONDS', 10, 1, 600),
    warmupSeconds: int('BENCH_WARMUP_SECONDS', 2, 0, 60),
    connections: int('BENCH_CONNECTIONS', 50, 1, 1000),
  };
}

interface Endpoints {
  readonly issuer: string;
  readonly token: string;
  readonly jwks: string;
  readonly introspection: string | undefined;
}

/** Endpoint URLs as the server publishes them, rather than guessed paths. */
async function discover(issuer: string): Promise<Endpoints> {
  const response = await fetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`discovery at ${issuer} answered ${response.status}`);
  const metadata = (await response.json()) as Record<string, unknown>;
  const url = (key: string) => (typeof metadata[key] === 'string' ? metadata[key] : undefined);
  const token = url('token_endpoint');
  const jwks = url('jwks_uri');
  const introspection = url('introspection_endpoint');
  if (!token || !jwks) throw new Error(`discovery at ${issuer} names no token_endpoint or jwks_uri`);
  // Every request of the benchmark goes to this machine.
  for (const endpoint of [token, jwks, introspection ?? issuer]) {
    if (!endpoint.startsWith('http://127.0.0.1:')) throw new Error(`refusing to load ${endpoint}: not on 127.0.0.1`);
  }
  return { issuer, token, jwks, introspection };
}

/** The phases both servers run: a client-credentials token, discovery, JWKS. */
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
    ['discovery', { url: `${endpoints.issuer}/.well-known/openid-configuration`, method: 'GET' }],
    ['jwks', { url: endpoints.jwks, method: 'GET' }],
  ];
}

interface Run {
  readonly cleanup: Cleanup;
  readonly signal: AbortSignal;
  readonly settings: LoadSettings;
  readonly database: BenchDatabase;
}

/** A server ready to be loaded: its phases, and how to read its CPU. */
interface Target {
  readonly name: string;
  readonly phases: ReadonlyMap<string, Request>;
  readonly meters: Meters;
  /** Postern only: what the refresh-token row needs. */
  readonly web?: { issuer: string; tokenUrl: string; secret: string };
}

async function checkJwtIssued(endpoints: Endpoints, authorization: string): Promise<void> {
  const token = await requestAccessToken(
    endpoints.token,
    authorization,
    tokenRequestBody(SERVICE_CLIENT.scope, API.resource),
  );
  assertJwtAccessToken(token, { alg: API.alg, audience: API.resource });
}

async function preparePostern(run: Run): Promise<Target> {
  const env = posternEnv(run.database.url, await freePort());
  log(`starting postern serve (migrates the database on the ${run.database.where})`);
  const server = await startPostern(run.cleanup, env);
  log('registering the APIs and clients with the postern command');
  const clients = await registerBenchClients(env);
  const endpoints = await discover(env.POSTERN_ISSUER!);
  const authorization = basicAuth(SERVICE_CLIENT.id, clients.serviceSecret);
  await checkJwtIssued(endpoints, authorization);

  if (!endpoints.introspection) throw new Error('Postern publishes no introspection_endpoint');
  const opaqueAuthorization = basicAuth(OPAQUE_CLIENT.id, clients.opaqueSecret);
  const opaqueToken = await requestAccessToken(
    endpoints.token,
    opaqueAuthorization,
    tokenRequestBody(OPAQUE_CLIENT.scope, OPAQUE_API.resource),
  );
  assertOpaqueToken(opaqueToken);
  await assertIntrospectsActive(endpoints.introspection, opaqueAuthorization, opaqueToken);

  const phases = new Map(commonPhases(endpoints, authorization)).set(INTROSPECTION_PHASE, {
    url: endpoints.introspection,
    method: 'POST',
    headers: { authorization: opaqueAuthorization, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: opaqueToken }).toString(),
  });
  const pg = run.database.postmasterPid;
  return {
    name: 'postern',
    phases,
    meters: { server: processCpu(server.pid), database: pg ? processTreeCpu(pg) : undefined },
    web: { issuer: endpoints.issuer, tokenUrl: endpoints.token, secret: clients.webSecret },
  };
}

async function prepareBaseline(run: Run): Promise<Target> {
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

/**
 * Phase by phase, Postern then the baseline: the two runs of a phase are next to each other
 * in time, so drift in the machine's speed (a shared VM) bends their ratio the least. Both
 * servers stay up throughout; the idle one costs the measured one nothing but a little noise.
 */
async function runPhases(run: Run, targets: readonly Target[]): Promise<PhaseResult[]> {
  const results: PhaseResult[] = [];
  for (const phase of PHASES) {
    for (const target of targets) {
      const request = target.phases.get(phase);
      if (!request) continue;
      log(`${target.name}: ${phase} (${run.settings.warmupSeconds} s warm-up + ${run.settings.seconds} s)`);
      const r = await measurePhase(target.name, phase, request, run.settings, target.meters, run.signal);
      log(
        `  ${r.requestsPerSecond.toFixed(0)} req/s, p99 ${r.p99Ms} ms, ${r.serverCpuSeconds.toFixed(2)} s server CPU, ${r.non2xx} non-2xx, ${r.errors} errors`,
      );
      results.push(r);
    }
  }
  return results;
}

/** The token phase must be clean: an error there means the numbers describe failures. */
function tokenPhaseProblems(results: readonly PhaseResult[]): string[] {
  return results
    .filter((r) => r.phase === TOKEN_PHASE && (r.non2xx > 0 || r.errors > 0 || r.requests === 0))
    .map((r) => `${r.server} ${r.phase}: ${r.requests} requests, ${r.non2xx} non-2xx, ${r.errors} connection errors`);
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
    const run: Run = { cleanup, signal: controller.signal, settings, database };
    const postern = await preparePostern(run);
    const results = await runPhases(run, [postern, await prepareBaseline(run)]);
    const refresh = await refreshRow({
      issuer: postern.web!.issuer,
      tokenUrl: postern.web!.tokenUrl,
      webSecret: postern.web!.secret,
      databaseUrl: database.url,
      connections: settings.connections,
      seconds: settings.seconds,
      meters: postern.meters,
      log,
    });
    const posternResults = results.filter((r) => r.server === 'postern');
    const baseline = results.filter((r) => r.server === 'baseline');
    console.log(
      [
        '',
        header({
          settings,
          clockTicks: clockTicksPerSecond(),
          postgres: `PostgreSQL ${database.serverVersion} (${database.where})`,
          tokens: `client_credentials, ${API.alg} JWT access tokens (typ at+jwt) for ${API.resource}, scope ${SERVICE_CLIENT.scope}, HTTP Basic client auth`,
        }),
        '',
        table([...results, refresh.result]),
        '',
        comparison(posternResults, baseline, TOKEN_PHASE, settings.connections),
        '',
        refreshReport(refresh),
        '',
      ].join('\n'),
    );
    const problems = tokenPhaseProblems(results);
    if (refresh.result.non2xx > 0 || refresh.result.errors > 0)
      problems.push(`refresh phase: ${refresh.result.non2xx} non-2xx, ${refresh.result.errors} errors`);
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
