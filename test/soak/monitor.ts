import type { PosternProcess } from './postern.ts';
import type { InstanceResult } from './report.ts';
import type { ResourceServer } from './resource-server.ts';
import { sumTallies, type Recorder } from './stats.ts';
import type { LoadState } from './workload.ts';

export interface Monitor {
  /** RSS per instance: start, middle and end when named, the highest sample always. */
  readonly rss: InstanceResult['rss'][];
  sample(when?: 'start' | 'middle' | 'end'): void;
  stop(): void;
}

/** Samples each Postern's RSS every 5 s and logs a line of progress every 15 s. */
export function startMonitor(
  instances: readonly PosternProcess[],
  watched: { recorder: Recorder; resourceServer: ResourceServer; load: LoadState },
  log: (line: string) => void,
): Monitor {
  const { recorder, resourceServer, load } = watched;
  const rss = instances.map(() => ({}) as InstanceResult['rss']);
  const sample = (when?: 'start' | 'middle' | 'end') =>
    instances.forEach((inst, i) => {
      const value = inst.rssMb();
      if (value === undefined) return;
      const r = rss[i]!;
      if (when) r[when] = value;
      r.max = Math.max(r.max ?? 0, value);
    });
  let tick = 0;
  const timer = setInterval(() => {
    sample();
    if (++tick % 3 !== 0) return;
    const t = sumTallies([...recorder.ops.values()].map((s) => s.tally));
    log(
      `+${Math.round((Date.now() - recorder.startedAt) / 1000)} s: ok ${t.ok}, 503 ${t['503']}, other 5xx ${t['5xx']}, other ${t.other}, no answer ${t.net}; ` +
        `tokens verified ${resourceServer.verified}, failed ${resourceServer.failed}; chains ${load.chains.length}; ` +
        `RSS ${instances.map((p) => `${p.rssMb()?.toFixed(0) ?? '-'} MB`).join(' / ')}`,
    );
  }, 5000);
  return { rss, sample, stop: () => clearInterval(timer) };
}
