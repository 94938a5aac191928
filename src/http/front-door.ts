import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';

import type Provider from 'oidc-provider';

import { engineMethods } from '../oidc/engine-routes.ts';
import type { Logger } from '../shared/logger.ts';
import type { Metrics } from '../shared/metrics.ts';
import { pathBelow } from './base-path.ts';
import { recordRequest } from './metrics.routes.ts';
import { assignRequestId, logAccess } from './request-context.ts';
import { setSecurityHeaders } from './security-headers.ts';

// Every request comes in here. What every answer carries (a request id, the security headers,
// a count and a duration in the metrics, one access line) is done once, on the raw request.
// Then a request for one of the engine's paths (oidc/engine-routes.ts) goes straight to the
// engine's own Koa app, and everything else to ours (http/app.ts): the engine's paths never walk
// our middleware and routers, which at the rates machines call /token and discovery cost more
// than the engine's own work did (issue 16's profiles). What the engine's requests still need
// from us runs inside the engine's app (oidc/engine-middleware.ts, http/storable-input.ts).

export interface FrontDoorDeps {
  /** The issuer's path ('' for none): everything but the root paths (http/base-path.ts) lives below it. */
  readonly basePath: string;
  readonly https: boolean;
  readonly trustProxy: boolean;
  /** POSTERN_AUTHORIZATION_POST: which engine paths there are depends on it (engine-routes.ts). */
  readonly authorizationPost: boolean;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Our Koa app's listener (http/app.ts). */
  readonly site: RequestListener;
  /** The current engine: the key ring builds a new one when the signing keys change. */
  readonly provider: () => Provider;
}

type EngineRequest = IncomingMessage & { originalUrl?: string };

/** The engine's paths, as its router serves them: the table's, and the resume step /auth/:uid. */
function enginePaths(authorizationPost: boolean): (path: string) => boolean {
  const exact = new Set([...engineMethods(authorizationPost).keys()].filter((path) => !path.includes(':')));
  const resume = /^\/auth\/[^/]+$/;
  return (path) => exact.has(path) || resume.test(path);
}

/** One request listener per engine instance, made when the engine first answers. */
function engineListener(provider: () => Provider): () => RequestListener {
  const listeners = new WeakMap<Provider, RequestListener>();
  return () => {
    const current = provider();
    let listener = listeners.get(current);
    if (!listener) {
      listener = current.callback() as RequestListener;
      listeners.set(current, listener);
    }
    return listener;
  };
}

export function frontDoor(deps: FrontDoorDeps): RequestListener {
  const { basePath, logger, metrics } = deps;
  const isEnginePath = enginePaths(deps.authorizationPost);
  const engine = engineListener(deps.provider);
  return (req: EngineRequest, res: ServerResponse) => {
    const started = process.hrtime.bigint();
    const requestId = assignRequestId(req, res);
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const path = queryAt === -1 ? url : url.slice(0, queryAt);
    const below = pathBelow(basePath, path);
    setSecurityHeaders(res, below ?? path, deps.https);
    res.once('finish', () => {
      recordRequest(metrics, req.method ?? '', res, started);
      logAccess(logger, { req, res, requestId, path, started }, deps.trustProxy);
    });
    if (below === undefined || !isEnginePath(below)) return deps.site(req, res);
    if (basePath !== '' && below !== path) {
      // The engine derives the prefix of every URL it publishes from req.originalUrl (as under
      // Express or koa-mount), so that is the URL as the client sent it.
      req.originalUrl = url;
      req.url = queryAt === -1 ? below : below + url.slice(queryAt);
    }
    return engine()(req, res);
  };
}
