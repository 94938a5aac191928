import { randomBytes } from 'node:crypto';

import type { Cleanup } from '../support/cleanup.ts';
import { postern } from '../support/postern-command.ts';
import { childEnv, spawnServer, waitForHttp, type ServerProcess } from './child.ts';
import { REDIRECT_URI } from '../support/relying-party.ts';
import { OWASP_ARGON2ID } from './argon2-ceiling.ts';
import { API, BENCH_USERS, OPAQUE_API, OPAQUE_CLIENT, SERVICE_CLIENT, WEB_CLIENT } from './scenario.ts';

/** What Postern's children share: the database, the secret, the address. */
export function posternEnv(databaseUrl: string, port: number): Record<string, string> {
  return childEnv({
    DATABASE_URL: databaseUrl,
    POSTERN_SECRET: randomBytes(36).toString('base64url'),
    POSTERN_MIGRATE_ON_START: 'true',
    POSTERN_DEMO: 'false',
    PORT: String(port),
    HOST: '127.0.0.1',
    // Not NODE_ENV=production: it demands an https issuer.
    POSTERN_ISSUER: `http://127.0.0.1:${port}`,
    LOG_LEVEL: 'warn',
    // Stated, not left to the defaults: the sign-in row is judged at OWASP's argon2id.
    POSTERN_ARGON2_MEMORY_KIB: String(OWASP_ARGON2ID.memoryKiB),
    POSTERN_ARGON2_ITERATIONS: String(OWASP_ARGON2ID.iterations),
    POSTERN_ARGON2_PARALLELISM: String(OWASP_ARGON2ID.parallelism),
    // No sweep during the run: the growth phase starts one when it means to measure it.
    POSTERN_SWEEP_INTERVAL_SECONDS: '86400',
  });
}

/**
 * `postern serve` as a child process, so its CPU time is its own. BENCH_CPU_PROF=DIR writes a
 * V8 CPU profile of it there when it stops (open it in Chrome DevTools).
 */
export async function startPostern(cleanup: Cleanup, env: Record<string, string>): Promise<ServerProcess> {
  const profileDir = process.env.BENCH_CPU_PROF;
  const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const server = spawnServer('postern serve', [...nodeArgs, 'src/cli.ts', 'serve'], env);
  cleanup.defer('stop postern serve', () => server.stop());
  await waitForHttp(server, `${env.POSTERN_ISSUER}/healthz`);
  return server;
}

async function createClient(
  env: Record<string, string>,
  client: { id: string; scope: string },
  resource: string,
): Promise<string> {
  const out = await postern(
    [
      'client',
      'create',
      '--id',
      client.id,
      '--grant-types',
      'client_credentials',
      '--resource',
      resource,
      '--scope',
      client.scope,
      '--json',
    ],
    env,
  );
  const secret = (JSON.parse(out) as { clientSecret?: unknown }).clientSecret;
  if (typeof secret !== 'string') throw new Error(`postern client create printed no clientSecret: ${out}`);
  return secret;
}

export interface BenchClients {
  readonly serviceSecret: string;
  readonly opaqueSecret: string;
  readonly webSecret: string;
}

/** The web app and the people of the sign-in and refresh rows. */
async function registerWebApp(env: Record<string, string>): Promise<string> {
  const out = await postern(
    [
      'client',
      'create',
      '--id',
      WEB_CLIENT.id,
      '--grant-types',
      'authorization_code,refresh_token',
      '--redirect-uri',
      REDIRECT_URI,
      '--scope',
      WEB_CLIENT.scope,
      '--first-party',
      '--json',
    ],
    env,
  );
  for (const person of BENCH_USERS) {
    await postern(
      ['user', 'create', '--username', person.username, '--email', person.email, '--password', person.password],
      env,
    );
  }
  return (JSON.parse(out) as { clientSecret: string }).clientSecret;
}

/** Registers the APIs and clients through the operator's command, as documented. */
export async function registerBenchClients(env: Record<string, string>): Promise<BenchClients> {
  await postern(
    [
      'resource',
      'create',
      '--id',
      API.resource,
      '--scope',
      API.scopes,
      '--format',
      'jwt',
      '--alg',
      API.alg,
      '--token-ttl',
      String(API.tokenTtlSeconds),
      '--json',
    ],
    env,
  );
  await postern(
    ['resource', 'create', '--id', OPAQUE_API.resource, '--scope', OPAQUE_API.scopes, '--format', 'opaque', '--json'],
    env,
  );
  return {
    serviceSecret: await createClient(env, SERVICE_CLIENT, API.resource),
    opaqueSecret: await createClient(env, OPAQUE_CLIENT, OPAQUE_API.resource),
    webSecret: await registerWebApp(env),
  };
}
