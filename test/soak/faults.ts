import { setTimeout as sleep } from 'node:timers/promises';

import type { SoakDatabase } from './cluster.ts';
import { postern } from './postern.ts';
import { clientCredentials, type LoadContext } from './workload.ts';

const PROBE_EVERY_MS = 100;
const PROBE_TIMEOUT_MS = 6000;
/** How long after PostgreSQL is back we wait for every instance to answer before giving up. */
const RECOVERY_GIVE_UP_MS = 30_000;

export interface OutageReport {
  readonly downAt: number;
  readonly upAt: number;
  /** Per instance: ms from "PostgreSQL accepts connections" to its first 2xx token; undefined: never. */
  readonly recoveryMs: (number | undefined)[];
  /** From the outage's start to the last instance's recovery (or giving up): the outage window. */
  readonly windowEnd: number;
}

/**
 * Takes PostgreSQL away while each instance is probed every 100 ms with a client-credentials
 * token request (DB-backed: the client cache lives POSTERN_CACHE_SECONDS=1 and failed loads are
 * not cached, so after a second of outage every token request needs the database), and measures
 * how long after PostgreSQL is back each instance gives its first 2xx.
 */
export async function outageWithProbes(
  ctx: LoadContext,
  database: SoakDatabase,
  seconds: number,
): Promise<OutageReport> {
  const successes: number[][] = ctx.instances.map(() => []);
  const inFlight = new Set<Promise<void>>();
  let upAt: number | undefined;
  let gaveUp = false;
  const recovered = () => upAt !== undefined && successes.every((list) => list.some((t) => t >= upAt!));
  const probing = (async () => {
    for (;;) {
      if (gaveUp || recovered() || (upAt !== undefined && Date.now() > upAt + RECOVERY_GIVE_UP_MS)) break;
      for (let i = 0; i < ctx.instances.length; i++) {
        const probe = clientCredentials(ctx, i, 'probe: client credentials', PROBE_TIMEOUT_MS).then((ok) => {
          if (ok) successes[i]!.push(Date.now());
        });
        inFlight.add(probe);
        void probe.finally(() => inFlight.delete(probe));
      }
      await sleep(PROBE_EVERY_MS);
    }
    await Promise.all(inFlight);
  })();
  let times: Awaited<ReturnType<SoakDatabase['outage']>> | undefined;
  try {
    times = await database.outage(seconds);
  } finally {
    upAt = times?.upAt;
    gaveUp = times === undefined;
    await probing;
  }
  const recoveryMs = successes.map((list) => {
    const first = list.filter((t) => t >= times.upAt).sort((a, b) => a - b)[0];
    return first === undefined ? undefined : first - times.upAt;
  });
  const windowEnd = times.upAt + Math.max(...recoveryMs.map((ms) => ms ?? RECOVERY_GIVE_UP_MS));
  return { ...times, recoveryMs, windowEnd };
}

export interface RotationReport {
  readonly at: number;
  /** When the command exited. */
  readonly doneAt: number;
  /** "alg: KID now signs; ..." as the command printed it, or its error. */
  readonly output: string;
  readonly ok: boolean;
  /** The kids that began to sign (alg:kid), from the command's JSON. */
  readonly activated: string[];
}

/** `postern keys rotate --force`, with the instances' environment, while the load runs. */
export async function rotateKeys(env: Record<string, string>): Promise<RotationReport> {
  const at = Date.now();
  try {
    const out = await postern(['keys', 'rotate', '--force', '--json'], env);
    const results = JSON.parse(out) as { alg: string; activated: string }[];
    return {
      at,
      doneAt: Date.now(),
      ok: true,
      output: out.trim(),
      activated: results.map((r) => `${r.alg}:${r.activated}`),
    };
  } catch (error) {
    return { at, doneAt: Date.now(), ok: false, output: (error as Error).message, activated: [] };
  }
}
