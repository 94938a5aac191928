import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export { freePort } from '../support/net.ts';

/** The repository root: every child runs from there, as `npm run` does. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const KEEP_OUTPUT = 20_000; // characters of a child's output kept for error messages

export interface ServerProcess {
  readonly name: string;
  readonly pid: number;
  /** The last of what it wrote on stdout and stderr. */
  output(): string;
  alive(): boolean;
  /** SIGTERM, then SIGKILL if it has not exited after 10 s. Safe to call twice or after it died. */
  stop(): Promise<void>;
}

/** Environment for children: what a shell needs, nothing of the bench's own settings. */
export function childEnv(extra: Record<string, string>): Record<string, string> {
  const inherited = Object.fromEntries(
    ['PATH', 'HOME', 'TMPDIR', 'LANG'].flatMap((k) => (process.env[k] ? [[k, process.env[k]]] : [])),
  );
  return { ...inherited, ...extra };
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Starts a Node.js server script as a child process (the same Node as ours). */
export function spawnServer(name: string, args: readonly string[], env: Record<string, string>): ServerProcess {
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-KEEP_OUTPUT);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('error', (error) => keep(Buffer.from(`spawn failed: ${error.message}\n`)));
  if (child.pid === undefined) throw new Error(`could not start ${name}`);
  const pid = child.pid;
  return {
    name,
    pid,
    output: () => output,
    alive: () => child.exitCode === null && child.signalCode === null,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const gone = await Promise.race([exited(child).then(() => true), sleep(10_000).then(() => false)]);
      if (!gone) {
        child.kill('SIGKILL');
        await exited(child);
      }
    },
  };
}

/** Polls url until it answers 2xx; fails at once if the server exits, or after 60 s. */
export async function waitForHttp(server: ServerProcess, url: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const ok = await fetch(url, { signal: AbortSignal.timeout(2000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (!server.alive()) throw new Error(`${server.name} exited before it answered ${url}:\n${server.output()}`);
    await sleep(200);
  }
  throw new Error(`${server.name} did not answer ${url} within 60 s:\n${server.output()}`);
}
