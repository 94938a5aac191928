import autocannon from 'autocannon';

import type { CpuMeter } from './proc-cpu.ts';

export interface Request {
  readonly url: string;
  readonly method: 'GET' | 'POST';
  readonly headers?: Record<string, string>;
  readonly body?: string;
}

export interface LoadSettings {
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly connections: number;
}

export interface PhaseResult {
  readonly server: string;
  readonly phase: string;
  readonly requests: number;
  readonly seconds: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly non2xx: number;
  /** Connection errors and timeouts. */
  readonly errors: number;
  readonly statusCodes: Readonly<Record<string, number>>;
  readonly serverCpuSeconds: number;
  /** PostgreSQL's CPU over the phase, when its processes can be read. */
  readonly databaseCpuSeconds: number | undefined;
}

/** One autocannon run over keep-alive connections; an aborted signal ends it early. */
function fire(request: Request, connections: number, seconds: number, signal: AbortSignal): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon({ ...request, connections, duration: seconds, timeout: 10 }, (error, result) => {
      signal.removeEventListener('abort', stop);
      if (error) reject(error);
      else if (signal.aborted) reject(new Error('interrupted'));
      else resolve(result);
    });
    const stop = () => instance.stop();
    signal.addEventListener('abort', stop, { once: true });
    instance.on('error', reject);
  });
}

export interface Meters {
  readonly server: CpuMeter;
  readonly database?: CpuMeter | undefined;
}

/**
 * Warm-up (not counted), then a fixed-duration run with the server's CPU time read right
 * before and after it: CPU per request comes from the server process, not from the machine,
 * whose cores the load generator shares.
 */
export async function measurePhase(
  server: string,
  phase: string,
  request: Request,
  settings: LoadSettings,
  meters: Meters,
  signal: AbortSignal,
): Promise<PhaseResult> {
  if (settings.warmupSeconds > 0) await fire(request, settings.connections, settings.warmupSeconds, signal);
  const cpuBefore = meters.server.read();
  const databaseBefore = meters.database?.read();
  const result = await fire(request, settings.connections, settings.seconds, signal);
  return toPhaseResult(
    server,
    phase,
    result,
    meters.server.read() - cpuBefore,
    databaseBefore === undefined ? undefined : meters.database!.read() - databaseBefore,
  );
}

/** An autocannon result and the CPU read around it, as one row of the report. */
export function toPhaseResult(
  server: string,
  phase: string,
  result: autocannon.Result,
  serverCpuSeconds: number,
  databaseCpuSeconds: number | undefined,
): PhaseResult {
  const requests = result.requests.total;
  return {
    server,
    phase,
    requests,
    seconds: result.duration,
    requestsPerSecond: requests / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, { count }]) => [code, count])),
    serverCpuSeconds,
    databaseCpuSeconds,
  };
}
