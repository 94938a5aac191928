import type { WebAppFigures } from './web-app.ts';

// What one PostgreSQL primary holds, from this run's own figures: PostgreSQL's CPU per sign-in
// and per refresh (read from its processes while each loaded alone) and the row writes of each.
// Postern pods scale out behind a load balancer (DESIGN "All state in PostgreSQL"); the primary
// does not, so it is the ceiling.

/** A primary of this size, kept at this share of its CPU (headroom for vacuum, checkpoints, failover). */
export const PRIMARY = { cores: 16, utilisation: 0.5 } as const;

export interface Capacity {
  readonly signInsPerCore: number;
  readonly refreshesPerCore: number;
  readonly signInsPerSecond: number;
  readonly refreshesPerSecond: number;
  readonly writesAtSignIns: number;
  readonly writesAtRefreshes: number;
  readonly posternSignInsPerCore: number;
  readonly posternRefreshesPerCore: number;
}

export function capacity(web: WebAppFigures): Capacity | undefined {
  const s = web.signIns;
  const r = web.refresh;
  if (!r.databaseCpuSeconds || !s.databaseCpuSeconds) return undefined;
  const signInsPerCore = s.signIns / s.databaseCpuSeconds;
  const refreshesPerCore = r.requests / r.databaseCpuSeconds;
  const usable = PRIMARY.cores * PRIMARY.utilisation;
  return {
    signInsPerCore,
    refreshesPerCore,
    signInsPerSecond: signInsPerCore * usable,
    refreshesPerSecond: refreshesPerCore * usable,
    writesAtSignIns: signInsPerCore * usable * web.writesPerSignIn,
    writesAtRefreshes: refreshesPerCore * usable * web.writesPerRefresh,
    posternSignInsPerCore: s.signIns / s.posternCpuSeconds,
    posternRefreshesPerCore: r.requests / r.serverCpuSeconds,
  };
}

const n = (x: number) => Math.round(x).toLocaleString('en-US');

export function capacityReport(web: WebAppFigures): string {
  const c = capacity(web);
  if (!c) return 'Capacity: PostgreSQL CPU could not be read (DATABASE_URL names a server not started by the bench).';
  return [
    `Capacity of one PostgreSQL primary (${PRIMARY.cores} cores at ${PRIMARY.utilisation * 100} % CPU, from this run's PostgreSQL CPU per operation):`,
    `  per PostgreSQL core     ${n(c.signInsPerCore)} sign-ins/s, or ${n(c.refreshesPerCore)} refreshes/s`,
    `  sign-ins only           ${n(c.signInsPerSecond)}/s, ${n(c.writesAtSignIns)} row writes/s (${web.writesPerSignIn.toFixed(1)} per sign-in)`,
    `  refreshes only          ${n(c.refreshesPerSecond)}/s, ${n(c.writesAtRefreshes)} row writes/s (${web.writesPerRefresh.toFixed(1)} per refresh)`,
    `  a mix takes its share of each. Postern itself scales out (a Postern core holds ${n(c.posternSignInsPerCore)} sign-ins/s`,
    `  or ${n(c.posternRefreshesPerCore)} refreshes/s), so past this the primary is the limit. The bench cluster runs`,
    '  with fsync off: on real disks, WAL flushes and replication bound writes/s as well.',
  ].join('\n');
}
