import type { Context } from 'koa';

import { DISCOVERY_PATH } from './engine-routes.ts';

// The discovery document is a function of the engine's configuration and of the URL it is asked
// on, whose host (and, behind a trusted proxy, scheme) engine-middleware.ts pins to the issuer:
// the same for every request one engine instance answers. The engine still builds it on each
// request (a dozen `new URL()` and a JSON serialisation: issue 16's profiles put discovery at
// 69 % of the bare engine), so the first answer is kept and sent again as the engine sent it.
//
// Kept per engine instance (the key ring builds a new one when the keys change, and this with
// it), and only for requests without an Origin header: a CORS request is answered by the
// engine, which echoes the Origin. Every header the engine set or changed (its Vary and CORS
// headers, the content type) is kept with the body; what the front door sets on every answer
// (request id, security headers) it sets again.

interface Kept {
  readonly body: string;
  readonly headers: readonly (readonly [string, string | string[]])[];
}

export interface DiscoveryCache {
  /** Answers the request from what was kept, if it can; false sends it to the engine. */
  answer(ctx: Context): boolean;
  /** Runs before the engine answers; returns what to call after it, to keep its answer. */
  watch(ctx: Context): ((ctx: Context) => void) | undefined;
}

// The plain request only: no query (whatever a query holds goes through the engine's input
// guard, as before) and no Origin.
const cacheable = (ctx: Context): boolean =>
  ctx.method === 'GET' && ctx.url === DISCOVERY_PATH && ctx.req.headers.origin === undefined;

export function discoveryCache(): DiscoveryCache {
  // By scheme: the only part of the URL that is not pinned when no proxy is trusted.
  const kept = new Map<string, Kept>();
  return {
    answer(ctx) {
      if (!cacheable(ctx)) return false;
      const entry = kept.get(ctx.protocol);
      if (!entry) return false;
      for (const [name, value] of entry.headers) ctx.set(name, value);
      ctx.status = 200;
      ctx.body = entry.body;
      return true;
    },
    watch(ctx) {
      if (!cacheable(ctx) || kept.has(ctx.protocol)) return undefined;
      const before = new Map(Object.entries(ctx.res.getHeaders()));
      return (after) => {
        const body: unknown = after.body;
        if (after.status !== 200 || body === null || typeof body !== 'object' || Buffer.isBuffer(body)) return;
        // Under the names as the engine spelled them (getHeaders() lower-cases them).
        // (OutgoingMessage#getRawHeaderNames, Node 15.13+, is missing from our @types/node.)
        const raw = (after.res as unknown as { getRawHeaderNames(): string[] }).getRawHeaderNames();
        const spelled = new Map(raw.map((name) => [name.toLowerCase(), name]));
        const headers: [string, string | string[]][] = [];
        for (const [name, value] of Object.entries(after.res.getHeaders())) {
          if (value === undefined || name === 'content-length' || before.get(name) === value) continue;
          headers.push([spelled.get(name) ?? name, typeof value === 'number' ? String(value) : value]);
        }
        kept.set(after.protocol, { body: JSON.stringify(body), headers });
      };
    },
  };
}
