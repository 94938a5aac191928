// Counts and latencies of every request the soak makes, per operation and per second of the run.

/** How an answer is classed: as expected, 503, another 5xx, another unexpected answer, no answer. */
export type Outcome = 'ok' | '503' | '5xx' | 'other' | 'net';

export interface Tally {
  ok: number;
  '503': number;
  '5xx': number;
  other: number;
  net: number;
}

const emptyTally = (): Tally => ({ ok: 0, '503': 0, '5xx': 0, other: 0, net: 0 });

// Latency histogram with 1 % wide buckets from 0.1 ms: bounded memory however long the soak.
const BUCKET_BASE = Math.log(1.01);
const BUCKETS = 1600; // up to ~0.1 ms * 1.01^1600, far beyond any timeout
const bucketOf = (ms: number) =>
  Math.min(BUCKETS - 1, Math.max(0, Math.ceil(Math.log(Math.max(ms, 0.1) / 0.1) / BUCKET_BASE)));
const upperBound = (bucket: number) => 0.1 * Math.exp(bucket * BUCKET_BASE);

export interface OpStats {
  readonly tally: Tally;
  readonly histogram: Uint32Array;
  /** 503 answers without a Retry-After header. */
  noRetryAfter: number;
}

/** A few examples of each kind of unexpected answer, for the report. */
export interface Sample {
  readonly at: number;
  readonly op: string;
  readonly status: number;
  readonly detail: string;
}

export interface Recorder {
  readonly startedAt: number;
  readonly ops: Map<string, OpStats>;
  /** Per second of the run (by request start): what came back. */
  readonly seconds: Tally[];
  readonly samples: Sample[];
  record(
    op: string,
    startedAt: number,
    ms: number,
    status: number,
    ok: boolean,
    detail?: string,
    retryAfter?: boolean,
  ): Outcome;
}

export function classify(status: number, ok: boolean): Outcome {
  if (ok) return 'ok';
  if (status === 0) return 'net';
  if (status === 503) return '503';
  if (status >= 500) return '5xx';
  return 'other';
}

export function createRecorder(startedAt = Date.now()): Recorder {
  const ops = new Map<string, OpStats>();
  const seconds: Tally[] = [];
  const samples: Sample[] = [];
  const seen = new Map<string, number>();
  return {
    startedAt,
    ops,
    seconds,
    samples,
    record(op, started, ms, status, ok, detail = '', retryAfter = true) {
      const outcome = classify(status, ok);
      let stats = ops.get(op);
      if (!stats) {
        stats = { tally: emptyTally(), histogram: new Uint32Array(BUCKETS), noRetryAfter: 0 };
        ops.set(op, stats);
      }
      stats.tally[outcome]++;
      stats.histogram[bucketOf(ms)]!++;
      if (outcome === '503' && !retryAfter) stats.noRetryAfter++;
      const second = Math.max(0, Math.floor((started - startedAt) / 1000));
      for (let i = seconds.length; i <= second; i++) seconds.push(emptyTally());
      seconds[second]![outcome]++;
      if (outcome !== 'ok') {
        // Up to 3 examples per operation, status and detail.
        const key = `${op} ${status} ${retryAfter} ${detail.slice(0, 60)}`;
        const n = seen.get(key) ?? 0;
        const note = outcome === '503' && !retryAfter ? 'NO Retry-After: ' : '';
        if (n < 3 && samples.length < 200)
          samples.push({ at: started - startedAt, op, status, detail: `${note}${detail}`.slice(0, 300) });
        seen.set(key, n + 1);
      }
      return outcome;
    },
  };
}

export function percentile(histogram: Uint32Array, p: number): number | undefined {
  const total = histogram.reduce((a, b) => a + b, 0);
  if (total === 0) return undefined;
  const rank = Math.ceil((p / 100) * total);
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i]!;
    if (seen >= rank) return upperBound(i);
  }
  return upperBound(histogram.length - 1);
}

export function sumTallies(tallies: Iterable<Tally>): Tally {
  const sum = emptyTally();
  for (const t of tallies) for (const k of Object.keys(sum) as (keyof Tally)[]) sum[k] += t[k];
  return sum;
}
