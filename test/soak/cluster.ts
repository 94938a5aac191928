import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import pg from 'pg';

import type { Cleanup } from '../support/cleanup.ts';
import { startProxy, type TcpProxy } from './proxy.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLUSTER_SCRIPT = path.join(ROOT, '.ci/pg-cluster.sh');

export type OutageMode = 'restart' | 'proxy';

export interface OutageTimes {
  /** When we took PostgreSQL away (pg_ctl stop issued, or the proxy cut). */
  readonly downAt: number;
  /** When PostgreSQL accepted a connection again (our own probe, every 50 ms). */
  readonly upAt: number;
}

export interface SoakDatabase {
  /** What Postern and the `postern` command connect to (through the proxy in proxy mode). */
  readonly url: string;
  /** The same database without the proxy, for the final checks. */
  readonly directUrl: string;
  readonly where: string;
  readonly outageMode: OutageMode;
  /** Takes PostgreSQL away for about `seconds`, brings it back, and says when it answered again. */
  outage(seconds: number): Promise<OutageTimes>;
}

/** Runs a program to completion; fails with its output when it exits non-zero. */
function run(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-4000);
    });
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0
        ? resolve(stdout.trim())
        : reject(new Error(`${path.basename(command)} ${args.join(' ')} exited with ${code}: ${stderr.trim()}`)),
    );
  });
}

/** The first moment a fresh connection to `url` works, polling every 50 ms for up to a minute. */
export async function waitAccepting(url: string): Promise<number> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000, query_timeout: 2000 });
    client.on('error', () => {});
    try {
      await client.connect();
      const at = Date.now();
      await client.query('select 1');
      return at;
    } catch {
      await sleep(50);
    } finally {
      await client.end().catch(() => {});
    }
  }
  throw new Error('PostgreSQL did not accept connections again within 60 s');
}

async function onServer<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000, query_timeout: 30_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

interface OwnCluster {
  readonly url: string;
  /** pg_ctl stop, wait, pg_ctl start on the same port: a real restart. */
  restart(seconds: number, directUrl: string): Promise<OutageTimes>;
}

/** A throwaway cluster from .ci/pg-cluster.sh (stopped and removed at cleanup). */
async function startOwnCluster(cleanup: Cleanup, log: (line: string) => void): Promise<OwnCluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postern-soak-pg-'));
  // A restart under way (Ctrl-C during the outage) finishes before the cluster is stopped and
  // removed, so no server is left starting on a deleted directory.
  let restarting: Promise<unknown> = Promise.resolve();
  cleanup.defer('stop the PostgreSQL cluster', async () => {
    await restarting.catch(() => {});
    // Without the script's marker, the start failed before taking the directory.
    if (existsSync(path.join(dir, '.pg-cluster'))) await run(CLUSTER_SCRIPT, ['stop', dir]);
    else rmSync(dir, { recursive: true, force: true });
  });
  log(`starting a throwaway PostgreSQL cluster in ${dir}`);
  const url = await run(CLUSTER_SCRIPT, ['start', dir]);
  const bindir = readFileSync(path.join(dir, 'bindir'), 'utf8').trim();
  const port = readFileSync(path.join(dir, 'port'), 'utf8').trim();
  // As the script does: as root, the server runs as the postgres user, from /, in the C locale.
  const asRoot = process.getuid?.() === 0;
  const pgCtl = (args: string[]) => {
    const command = asRoot ? 'runuser' : path.join(bindir, 'pg_ctl');
    const prefix = asRoot ? ['-u', 'postgres', '--', path.join(bindir, 'pg_ctl')] : [];
    return run(command, [...prefix, `--pgdata=${path.join(dir, 'data')}`, ...args], {
      cwd: '/',
      env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
    });
  };
  const restart = async (seconds: number, directUrl: string): Promise<OutageTimes> => {
    const downAt = Date.now();
    await pgCtl(['--mode=fast', '--wait', '--timeout=30', 'stop']);
    await sleep(Math.max(0, downAt + seconds * 1000 - Date.now()));
    const accepting = waitAccepting(directUrl);
    await pgCtl([`--log=${path.join(dir, 'postgres.log')}`, `--options=-p ${port}`, '--wait', '--timeout=60', 'start']);
    return { downAt, upAt: await accepting };
  };
  return {
    url,
    restart(seconds, directUrl) {
      const done = restart(seconds, directUrl);
      restarting = done;
      return done;
    },
  };
}

/**
 * PostgreSQL for the run: DATABASE_URL's server if given, else a throwaway cluster; either way
 * a fresh database postern_soak_<random>, dropped at cleanup. `mode` picks the outage: a real
 * restart (own cluster only) or a cut of our TCP proxy.
 */
export async function openSoakDatabase(
  cleanup: Cleanup,
  databaseUrl: string | undefined,
  mode: OutageMode | undefined,
  log: (line: string) => void,
): Promise<SoakDatabase> {
  const cluster = databaseUrl ? undefined : await startOwnCluster(cleanup, log);
  const outageMode = mode ?? (cluster ? 'restart' : 'proxy');
  if (outageMode === 'restart' && !cluster)
    throw new Error('SOAK_OUTAGE=restart needs a cluster of our own: unset DATABASE_URL');
  const serverUrl = databaseUrl ?? cluster!.url;
  const name = `postern_soak_${randomBytes(6).toString('hex')}`;
  await onServer(serverUrl, (client) => client.query(`create database ${name}`));
  // Our own cluster goes as a whole; on DATABASE_URL's server, only our database.
  if (!cluster) {
    cleanup.defer(`drop database ${name}`, () =>
      onServer(serverUrl, async (client) => {
        await client.query(`drop database if exists ${name} with (force)`);
      }),
    );
  }
  const direct = new URL(serverUrl);
  direct.pathname = `/${name}`;
  const directUrl = direct.href;
  const where = cluster ? `throwaway cluster on ${direct.host}` : `DATABASE_URL's server ${direct.host}`;

  if (outageMode === 'restart') {
    return { url: directUrl, directUrl, where, outageMode, outage: (seconds) => cluster!.restart(seconds, directUrl) };
  }
  if (!direct.hostname) throw new Error('proxy mode needs a TCP host in DATABASE_URL (not a unix socket)');
  const proxy: TcpProxy = await startProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
  cleanup.defer('close the TCP proxy', () => proxy.close());
  const viaProxy = new URL(directUrl);
  viaProxy.hostname = '127.0.0.1';
  viaProxy.port = String(proxy.port);
  return {
    url: viaProxy.href,
    directUrl,
    where: `${where}, through a TCP proxy on 127.0.0.1:${proxy.port}`,
    outageMode,
    async outage(seconds) {
      const downAt = Date.now();
      await proxy.cut();
      await sleep(Math.max(0, downAt + seconds * 1000 - Date.now()));
      await proxy.restore();
      return { downAt, upAt: await waitAccepting(viaProxy.href) };
    },
  };
}
