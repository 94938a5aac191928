import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import pg from 'pg';

import { ROOT } from './child.ts';
import type { Cleanup } from '../support/cleanup.ts';

export interface BenchDatabase {
  /** The throwaway database Postern runs on. */
  readonly url: string;
  readonly serverVersion: string;
  readonly where: string;
  /** The postmaster's pid when the cluster is ours (its CPU can then be read too). */
  readonly postmasterPid: number | undefined;
  /** Another throwaway database on the same server, dropped at cleanup. */
  readonly sibling: () => Promise<string>;
}

const CLUSTER_SCRIPT = path.join(ROOT, '.ci/pg-cluster.sh');

function runClusterScript(command: 'start' | 'stop', dir: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // Its progress goes to our stderr; stdout carries just the URL.
    const child = spawn(CLUSTER_SCRIPT, [command, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 ? resolve(stdout.trim()) : reject(new Error(`pg-cluster.sh ${command} exited with ${code}`)),
    );
  });
}

/** A throwaway local cluster, stopped and removed at cleanup. */
async function startCluster(cleanup: Cleanup): Promise<{ url: string; postmasterPid: number | undefined }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postern-bench-pg-'));
  cleanup.defer('stop the PostgreSQL cluster', async () => {
    // Without the script's marker, the start failed before taking the directory.
    if (existsSync(path.join(dir, '.pg-cluster'))) await runClusterScript('stop', dir);
    else rmSync(dir, { recursive: true, force: true });
  });
  const url = await runClusterScript('start', dir);
  const pid = Number(readFileSync(path.join(dir, 'data/postmaster.pid'), 'utf8').split('\n')[0]);
  return { url, postmasterPid: Number.isInteger(pid) && pid > 0 ? pid : undefined };
}

async function onServer<T>(serverUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A database of its own on that server, dropped at cleanup; returns its URL and the server's version. */
async function createDatabase(cleanup: Cleanup, serverUrl: string): Promise<{ url: string; serverVersion: string }> {
  const name = `postern_bench_${randomBytes(6).toString('hex')}`;
  cleanup.defer(`drop database ${name}`, () =>
    onServer(serverUrl, async (client) => {
      await client.query(`drop database if exists ${name} with (force)`);
    }),
  );
  const serverVersion = await onServer(serverUrl, async (client) => {
    await client.query(`create database ${name}`);
    const { rows } = await client.query<{ server_version: string }>('show server_version');
    return rows[0]?.server_version ?? 'unknown';
  });
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return { url: url.href, serverVersion };
}

/**
 * PostgreSQL for the run: DATABASE_URL's server if given, else a throwaway cluster; either way
 * Postern gets a database of its own, dropped at cleanup.
 */
export async function openBenchDatabase(cleanup: Cleanup, databaseUrl: string | undefined): Promise<BenchDatabase> {
  const cluster = databaseUrl ? undefined : await startCluster(cleanup);
  const serverUrl = databaseUrl ?? cluster!.url;
  const { url, serverVersion } = await createDatabase(cleanup, serverUrl);
  const { host } = new URL(url);
  return {
    url,
    serverVersion,
    where: cluster ? `throwaway cluster on ${host}` : `DATABASE_URL's server ${host}`,
    postmasterPid: cluster?.postmasterPid,
    sibling: async () => (await createDatabase(cleanup, serverUrl)).url,
  };
}
