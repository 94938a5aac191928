import { measurePhase, type LoadSettings, type Meters, type PhaseResult, type Request } from './load.ts';
import { median, range } from './stats.ts';

// Postern against the baseline in interleaved rounds (A, B, B, A, A, B, ...): drift in a shared
// machine's speed falls on both sides alike, and the median of the per-round ratios is what
// the targets are judged on.

/** A server ready to be loaded: its phases, and how to read its CPU. */
export interface LoadTarget {
  readonly name: string;
  readonly phases: ReadonlyMap<string, Request>;
  readonly meters: Meters;
}

/** CPU a server spent, its PostgreSQL's included (the issue counts both as "server CPU"). */
export function serverCpu(r: PhaseResult): number {
  return r.serverCpuSeconds + (r.databaseCpuSeconds ?? 0);
}

export const perServerCpuSecond = (r: PhaseResult) => (serverCpu(r) > 0 ? r.requests / serverCpu(r) : NaN);

export interface RoundsResult {
  /** Every phase run, round by round. */
  readonly results: readonly PhaseResult[];
  /** Per phase: Postern's requests per server-CPU-second over the baseline's, one ratio per round. */
  readonly ratios: ReadonlyMap<string, readonly number[]>;
}

export async function interleavedRounds(options: {
  rounds: number;
  phases: readonly string[];
  postern: LoadTarget;
  baseline: LoadTarget;
  settings: LoadSettings;
  signal: AbortSignal;
  log: (line: string) => void;
}): Promise<RoundsResult> {
  const { postern, baseline, settings } = options;
  const results: PhaseResult[] = [];
  const ratios = new Map<string, number[]>(options.phases.map((p) => [p, []]));
  for (let round = 1; round <= options.rounds; round++) {
    for (const phase of options.phases) {
      // Who goes first alternates, so neither side always runs on the warmer (or busier) machine.
      const order = round % 2 ? [postern, baseline] : [baseline, postern];
      const pair = new Map<string, PhaseResult>();
      for (const target of order) {
        const request = target.phases.get(phase);
        if (!request) throw new Error(`${target.name} has no ${phase} phase`);
        const r = await measurePhase(target.name, phase, request, settings, target.meters, options.signal);
        options.log(
          `round ${round}/${options.rounds} ${target.name} ${phase}: ${r.requestsPerSecond.toFixed(0)} req/s, ${perServerCpuSecond(r).toFixed(0)} per server-CPU-s, ${r.non2xx + r.errors} failed`,
        );
        pair.set(target.name, r);
        results.push(r);
      }
      ratios
        .get(phase)!
        .push(perServerCpuSecond(pair.get(postern.name)!) / perServerCpuSecond(pair.get(baseline.name)!));
    }
  }
  return { results, ratios };
}

export interface RatioSummary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly rounds: readonly number[];
}

export function summarizeRatios(ratios: readonly number[]): RatioSummary {
  return { median: median(ratios), ...range(ratios), rounds: ratios };
}
