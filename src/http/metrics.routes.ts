import { timingSafeEqual } from 'node:crypto';

import type { Context, Middleware } from 'koa';

import type { RouterContext } from '@koa/router';

import type { Metrics } from '../shared/metrics.ts';

// Route labels are templates, so label sets stay bounded whatever paths clients send: our
// routers' own templates, the engine's as its middleware recorded them (ctx.oidc.route;
// oidc/engine-middleware.ts), 'other' for everything else.
function routeLabel(ctx: Context, metrics: Metrics): string {
  return (ctx as Partial<RouterContext>).routerPath ?? metrics.routes.get(ctx.res) ?? 'other';
}

/** Counts and times every request, including those the protocol engine answers on the raw response. */
export function recordRequests(metrics: Metrics): Middleware {
  return async (ctx, next) => {
    const end = metrics.httpDuration.startTimer();
    ctx.res.once('finish', () => {
      const labels = { method: ctx.method, route: routeLabel(ctx, metrics), status: String(ctx.res.statusCode) };
      metrics.httpRequests.inc(labels);
      end(labels);
    });
    await next();
  };
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
