import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Cleanup } from '../support/cleanup.ts';

export { freePort } from '../support/net.ts';
export { postern } from '../support/postern-command.ts';
import { ROOT } from './cluster.ts';

const KEEP_OUTPUT = 20_000; // characters of a child's output kept for error messages

/** What a Postern child wrote, boiled down: pino JSON lines by level and message. */
export interface LogSummary {
  readonly errors: Map<string, number>;
  readonly warnings: Map<string, number>;
  /** Lines that mention an unhandled rejection or an uncaught exception. */
  readonly crashes: string[];
}

export interface PosternProcess {
  readonly name: string;
  readonly pid: number;
  readonly url: string;
  output(): string;
  log(): LogSummary;
  /** undefined while it runs; else how it ended. */
  exit(): string | undefined;
  /** Resident set size in MB (/proc/PID/status VmRSS), undefined once it is gone. */
  rssMb(): number | undefined;
  stop(): Promise<void>;
}

/** The environment of every child: a shell's basics plus Postern's settings, nothing else of ours. */
export function childEnv(extra: Record<string, string>): Record<string, string> {
  const inherited = Object.fromEntries(
    ['PATH', 'HOME', 'TMPDIR', 'LANG'].flatMap((k) => (process.env[k] ? [[k, process.env[k]]] : [])),
  );
  return { ...inherited, ...extra };
}

function count(map: Map<string, number>, key: string): void {
  if (map.size < 100 || map.has(key)) map.set(key, (map.get(key) ?? 0) + 1);
}

function createLogSummary(): LogSummary & { line(text: string): void } {
  const summary = { errors: new Map<string, number>(), warnings: new Map<string, number>(), crashes: [] as string[] };
  return {
    ...summary,
    line(text) {
      if (
        /unhandled ?rejection|uncaught ?exception|triggerUncaughtException/i.test(text) &&
        summary.crashes.length < 20
      )
        summary.crashes.push(text.slice(0, 500));
      let entry: { level?: number; msg?: string; err?: unknown } | undefined;
      try {
        entry = JSON.parse(text) as typeof entry;
      } catch {
        entry = undefined;
      }
      if (!entry || typeof entry.level !== 'number') return;
      const err = typeof entry.err === 'string' ? entry.err : (entry.err as { message?: string } | undefined)?.message;
      const key = `${entry.msg ?? '?'}${err ? `: ${err.slice(0, 120)}` : ''}`;
      if (entry.level >= 50) count(summary.errors, key);
      else if (entry.level >= 40) count(summary.warnings, key);
    },
  };
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** `postern serve` as a child process; ready when /healthz answers. */
export async function startPostern(
  cleanup: Cleanup,
  name: string,
  env: Record<string, string>,
  url: string,
): Promise<PosternProcess> {
  const child = spawn(process.execPath, ['src/cli.ts', 'serve'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not start ${name}`);
  const pid = child.pid;
  let output = '';
  const summary = createLogSummary();
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      output = (output + text).slice(-KEEP_OUTPUT);
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) summary.line(line);
    });
  }
  let stopping = false;
  let exitText: string | undefined;
  child.once('exit', (code, signal) => {
    exitText = `${stopping ? 'stopped' : 'EXITED'} (code ${code}, signal ${signal})`;
  });
  const server: PosternProcess = {
    name,
    pid,
    url,
    output: () => output,
    log: () => summary,
    exit: () => exitText,
    rssMb() {
      try {
        const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
        return kb ? Number(kb) / 1024 : undefined;
      } catch {
        return undefined;
      }
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      stopping = true;
      child.kill('SIGTERM');
      const gone = await Promise.race([exited(child).then(() => true), sleep(10_000).then(() => false)]);
      if (!gone) {
        child.kill('SIGKILL');
        await exited(child);
      }
    },
  };
  cleanup.defer(`stop ${name}`, () => server.stop());
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const ok = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return server;
    if (exitText) throw new Error(`${name} exited before it answered /healthz:\n${output}`);
    await sleep(200);
  }
  throw new Error(`${name} did not answer /healthz within 60 s:\n${output}`);
}
