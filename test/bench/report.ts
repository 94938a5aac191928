import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { ROOT } from './child.ts';
import type { LoadSettings, PhaseResult } from './load.ts';

export interface RunFacts {
  readonly settings: LoadSettings;
  readonly clockTicks: number;
  readonly postgres: string;
  readonly tokens: string;
  readonly rounds: number;
}

function packageVersion(name: string): string {
  try {
    return (
      JSON.parse(readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }
    ).version;
  } catch {
    return '?';
  }
}

export function header(facts: RunFacts): string {
  const cpus = os.cpus();
  const { settings } = facts;
  return [
    `Postern benchmark, ${new Date().toISOString()}`,
    `  machine    ${cpus.length} cores (${cpus[0]?.model.trim() ?? 'unknown cpu'}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ${os.type()} ${os.release()}`,
    `  node       ${process.version}, oidc-provider ${packageVersion('oidc-provider')}, autocannon ${packageVersion('autocannon')}`,
    `  database   ${facts.postgres}`,
    `  load       ${settings.connections} keep-alive connections, ${settings.warmupSeconds} s warm-up + ${settings.seconds} s per phase, from this process on the same cores`,
    `  rounds     ${facts.rounds} interleaved rounds of Postern and the baseline (order alternates) for the ratios`,
    `  CPU        utime+stime of the server process, all its threads, from /proc/<pid>/stat (CLK_TCK ${facts.clockTicks}); pg = postmaster + backends`,
    `  tokens     ${facts.tokens}`,
  ].join('\n');
}

export const perThousand = (cpu: number, requests: number) => (requests > 0 ? (cpu / requests) * 1000 : NaN);
const perCpuSecond = (r: PhaseResult) => (r.serverCpuSeconds > 0 ? r.requests / r.serverCpuSeconds : NaN);

export function fixed(value: number | undefined, digits: number): string {
  return value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits);
}

export function table(results: readonly PhaseResult[]): string {
  const head = ['server', 'phase', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx', 'CPU s/1k req', 'req/CPU-s', 'pg CPU s/1k'];
  // req/CPU-s is per CPU-second of the server process alone; pg CPU is PostgreSQL's, apart.
  const rows = results.map((r) => [
    r.server,
    r.phase,
    fixed(r.requestsPerSecond, 0),
    fixed(r.p50Ms, 1),
    fixed(r.p99Ms, 1),
    String(r.non2xx + r.errors),
    fixed(perThousand(r.serverCpuSeconds, r.requests), 3),
    fixed(perCpuSecond(r), 0),
    r.databaseCpuSeconds === undefined ? '-' : fixed(perThousand(r.databaseCpuSeconds, r.requests), 3),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  // Text columns flush left, numbers flush right.
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const problems = results
    .filter((r) => r.non2xx + r.errors > 0)
    .map((r) => {
      const codes = Object.entries(r.statusCodes)
        .filter(([code]) => !code.startsWith('2'))
        .map(([code, n]) => `${code} x${n}`);
      return `  ${r.server} ${r.phase}: ${[...codes, r.errors ? `${r.errors} connection errors/timeouts` : ''].filter(Boolean).join(', ')}`;
    });
  return [
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    ...(problems.length ? ['', 'not 2xx:', ...problems] : []),
  ].join('\n');
}
