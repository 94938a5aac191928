import { timingSafeEqual } from 'node:crypto';

import type { ServerResponse } from 'node:http';

import type { Middleware } from 'koa';

import type { Metrics } from '../shared/metrics.ts';

/**
 * Counts and times one request once its response has been sent (http/front-door.ts). Route
 * labels are templates, so label sets stay bounded whatever paths clients send: the template
 * the part that routed the request recorded (our routers, http/app.ts; the engine's
 * middleware, oidc/engine-middleware.ts), else 'other'.
 */
export function recordRequest(metrics: Metrics, method: string, res: ServerResponse, started: bigint): void {
  const labels = { method, route: metrics.routes.get(res) ?? 'other', status: String(res.statusCode) };
  metrics.httpRequests.inc(labels);
  metrics.httpDuration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
}

/** /metrics on the public port only with `Authorization: Bearer <POSTERN_METRICS_TOKEN>`. */
export function metricsOnMainPort(metrics: Metrics, token: string): Middleware {
  const expected = Buffer.from(`Bearer ${token}`);
  return async (ctx, next) => {
    if (ctx.path !== '/metrics') return next();
    const given = Buffer.from(ctx.get('authorization'));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      ctx.status = 401;
      ctx.set('WWW-Authenticate', 'Bearer realm="metrics"');
      ctx.body = { error: 'invalid_token' };
      return;
    }
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  };
}
