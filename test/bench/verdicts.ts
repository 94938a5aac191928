import type { Argon2Ceiling } from './argon2-ceiling.ts';
import type { CliTiming } from './cli-timing.ts';
import type { GrowthFigures } from './growth.ts';
import type { PhaseResult } from './load.ts';
import { fixed, perThousand } from './report.ts';
import { perServerCpuSecond, type RatioSummary } from './rounds.ts';
import { median } from './stats.ts';
import type { WebAppFigures } from './web-app.ts';

// Issue 16's table, row by row: the figure, the target, and PASS or MISS.

export interface Figures {
  readonly tokenRatio: RatioSummary;
  readonly discoveryRatio: RatioSummary;
  readonly introspection: PhaseResult;
  readonly web: WebAppFigures;
  readonly argon2: Argon2Ceiling;
  readonly cli: readonly CliTiming[];
  readonly growth: GrowthFigures | undefined;
}

const percent = (ratio: number) => `${(ratio * 100).toFixed(1)} %`;
const line = (ok: boolean, text: string) => `  ${ok ? 'PASS' : 'MISS'}  ${text}`;
const signed = (ratio: number) => `${ratio >= 1 ? '+' : ''}${((ratio - 1) * 100).toFixed(1)} %`;

function ratioLine(what: string, r: RatioSummary): string {
  return line(
    r.median >= 0.9,
    `${what} per server-CPU-second, Postern / bare: median ${percent(r.median)} of ${r.rounds.length} rounds (range ${percent(r.min)}-${percent(r.max)}; rounds ${r.rounds.map((x) => (x * 100).toFixed(0)).join(', ')}) (target >= 90 %)`,
  );
}

function refreshLines(refresh: PhaseResult): string[] {
  const perPosternCpu = refresh.requests / refresh.serverCpuSeconds;
  const pgPerThousand = perThousand(refresh.databaseCpuSeconds ?? NaN, refresh.requests);
  return [
    line(
      perPosternCpu >= 800,
      `refreshes (rotation on) per Postern-CPU-second: ${fixed(perPosternCpu, 0)} (target >= 800)`,
    ),
    line(
      pgPerThousand <= 1.0,
      `  PostgreSQL CPU-seconds per 1,000 refreshes: ${fixed(pgPerThousand, 2)} (target <= 1.0)`,
    ),
  ];
}

function signInLine(web: WebAppFigures, argon2: Argon2Ceiling): string {
  const rate = web.signIns.perServerCpuSecond;
  const share = rate / argon2.perCpuSecond;
  return line(
    share >= 0.8,
    `full sign-ins per server-CPU-second at OWASP argon2id: ${fixed(rate, 1)} = ${percent(share)} of bare argon2id verify, ${fixed(argon2.perCpuSecond, 1)} per CPU-second in this run (target >= 80 %)`,
  );
}

function cliLines(cli: readonly CliTiming[]): string[] {
  return cli.map((t) => {
    const limit = t.database === 'postgresql' ? 0.4 : 1.2;
    return line(
      t.medianSeconds <= limit,
      `${t.command}, ${t.database === 'postgresql' ? 'PostgreSQL' : 'embedded'}: median ${t.medianSeconds.toFixed(2)} s of ${t.runs} (range ${t.minSeconds.toFixed(2)}-${t.maxSeconds.toFixed(2)} s) (target <= ${limit} s)`,
    );
  });
}

/** Target: within ±15 % of the empty database's figure. */
function growthLine(what: string, empty: readonly number[], grown: readonly number[]): string {
  const ratio = median(grown) / median(empty);
  return line(
    Math.abs(ratio - 1) <= 0.15,
    `${what} after growth: median ${median(grown).toFixed(1)} ms vs ${median(empty).toFixed(1)} ms empty (${grown.length} each, interleaved), ${signed(ratio)} (target within ±15 %)`,
  );
}

function growthLines(web: WebAppFigures, growth: GrowthFigures): string[] {
  const { sweep } = growth;
  const swept = sweep.expiredBefore - sweep.expiredAfter;
  const seconds = sweep.refresh.seconds;
  const finished =
    sweep.finishedAfterSeconds === undefined
      ? `still sweeping when the phase ended (${sweep.expiredAfter} left)`
      : `backlog gone ${sweep.finishedAfterSeconds.toFixed(0)} s after the sweeping server started`;
  return [
    growthLine('full sign-in latency (one at a time)', growth.latency.empty.signInMs, growth.latency.grown.signInMs),
    growthLine('refresh latency (one at a time)', growth.latency.empty.refreshMs, growth.latency.grown.refreshMs),
    `  INFO  refresh under load, p50 / p99: empty ${web.refresh.p50Ms} / ${web.refresh.p99Ms} ms, grown ${growth.refresh.p50Ms} / ${growth.refresh.p99Ms} ms, during the sweep ${sweep.refresh.p50Ms} / ${sweep.refresh.p99Ms} ms (${sweep.refresh.non2xx + sweep.refresh.errors} failed)`,
    `  INFO  sweep: ${swept} expired rows deleted during the ${seconds} s phase (${(swept / seconds).toFixed(0)} rows/s), ${finished}`,
  ];
}

export function verdicts(f: Figures): string {
  const introspection = perServerCpuSecond(f.introspection);
  return [
    'Issue 16 targets:',
    ratioLine('client-credentials tokens', f.tokenRatio),
    ratioLine('discovery', f.discoveryRatio),
    ...refreshLines(f.web.refresh),
    line(
      introspection >= 2000,
      `introspections of an opaque token per server-CPU-second (PostgreSQL included): ${fixed(introspection, 0)} (target >= 2,000)`,
    ),
    line(
      f.web.writesPerSignIn <= 10,
      `row writes per full sign-in: ${f.web.writesPerSignIn.toFixed(1)} (target <= 10)`,
    ),
    line(f.web.writesPerRefresh <= 2, `row writes per refresh: ${f.web.writesPerRefresh.toFixed(1)} (target <= 2)`),
    signInLine(f.web, f.argon2),
    ...cliLines(f.cli),
    ...(f.growth ? growthLines(f.web, f.growth) : ['  SKIP  growth phase (BENCH_GROWTH=0)']),
    '  ----  `npm test` on a busy machine: not measured by the benchmark',
  ].join('\n');
}

/** The argon2id ceiling next to the sign-in rate, with what they are made of. */
export function signInReport(web: WebAppFigures, argon2: Argon2Ceiling): string {
  const s = web.signIns;
  return [
    'Sign-in against the argon2id ceiling (m=19 MiB, t=2, p=1):',
    `  bare argon2id verify      ${fixed(argon2.perCpuSecond, 1)} per CPU-second (${argon2.verifications} verifications in ${argon2.cpuSeconds.toFixed(1)} CPU-s, one at a time, in the bench process)`,
    `  full sign-ins             ${fixed(s.perServerCpuSecond, 1)} per server-CPU-second (${s.signIns} in ${s.seconds.toFixed(1)} s; Postern ${s.posternCpuSeconds.toFixed(1)} + PostgreSQL ${s.databaseCpuSeconds.toFixed(1)} CPU-s; ${fixed(s.signIns / s.seconds, 1)}/s wall)`,
    `  one sign-in, one at a time: median ${median(web.signInLatenciesMs).toFixed(0)} ms; one refresh: median ${median(web.refreshLatenciesMs).toFixed(1)} ms`,
  ].join('\n');
}
