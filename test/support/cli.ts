import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, expect } from 'vitest';

import { runCli } from '../../src/cli.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';
import { TEST_SECRET } from './server.ts';

// The `postern` command on a real database: `run` goes through its entry point (runCli) in this
// process, which costs milliseconds where a child process costs a second of start-up on a busy
// machine; `runBinary` spawns the real binary, as an operator runs it, for the tests about the
// process itself (exit status, stdio, `serve`).
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The command in this process, through the same entry point as the binary; lines as the binary prints them. */
export async function run(args: readonly string[], env: Record<string, string>, input?: string): Promise<Outcome> {
  let stdout = '';
  let stderr = '';
  const io = {
    out: (text: string) => {
      stdout += `${text}\n`;
    },
    err: (text: string) => {
      stderr += `${text}\n`;
    },
    readStdin: async () => input ?? '',
  };
  const code = await runCli(args, { env, io });
  return { code, stdout, stderr };
}

/** The real binary, spawned as a child process. */
export function runBinary(args: readonly string[], env: Record<string, string>, input?: string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['src/cli.ts', ...args], { cwd: ROOT, env, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

/** A refusal: non-zero, exactly one line on stderr naming the problem, no stack, nothing on stdout. */
export function expectOneLineError(outcome: Outcome, pattern: RegExp, code?: number): void {
  const lines = outcome.stderr.trimEnd().split('\n');
  expect(lines, outcome.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^postern: /);
  expect(lines[0]).toMatch(pattern);
  expect(outcome.stderr).not.toMatch(/\n\s+at /);
  expect(outcome.stdout).toBe('');
  if (code === undefined) expect(outcome.code).not.toBe(0);
  else expect(outcome.code).toBe(code);
}

export function expectOk(outcome: Outcome): void {
  expect(outcome.stderr).toBe('');
  expect(outcome.code).toBe(0);
}

export function baseEnv(database: TestDatabase, extra: Record<string, string> = {}): Record<string, string> {
  const inherited = Object.fromEntries(
    ['PATH', 'HOME', 'TMPDIR'].flatMap((k) => (process.env[k] ? [[k, process.env[k]]] : [])),
  );
  return {
    ...inherited,
    POSTERN_SECRET: TEST_SECRET,
    POSTERN_MIGRATE_ON_START: 'true',
    POSTERN_DEMO: 'false',
    ...database.env,
    ...extra,
  };
}

export async function waitForHealth(url: string, server: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 45_000;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`serve exited early: ${output()}`);
    const ok = await fetch(`${url}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`serve did not become healthy: ${output()}`);
}

/**
 * A database of its own for the tests of one file, dropped after them. `env` is one object,
 * filled in when beforeAll has run, so a file can take it once: `const { env } = useCliDatabase()`.
 */
export function useCliDatabase(): { readonly env: Record<string, string>; database(): TestDatabase } {
  let database: TestDatabase | undefined;
  const env: Record<string, string> = {};
  beforeAll(async () => {
    database = await createTestDatabase();
    Object.assign(env, baseEnv(database));
  });
  afterAll(async () => {
    await database?.drop();
  });
  return {
    env,
    database: () => {
      if (!database) throw new Error('the CLI test database exists only once beforeAll has run');
      return database;
    },
  };
}
