import type { Middleware } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';

import type { Config } from '../config/config.ts';
import type { Metrics } from '../shared/metrics.ts';
import { discoveryCache } from './discovery-cache.ts';
import { DISCOVERY_PATH, engineMethods, engineRouteTemplate } from './engine-routes.ts';
import type { ProviderPages } from './provider.ts';
import { RETRY_AFTER_SECONDS } from './unavailable.ts';

/**
 * The engine builds every URL it publishes (discovery, redirects) from the request. Pin them to
 * the issuer: a Host or X-Forwarded-Host header must never choose where tokens point.
 */
function pinToIssuer(headers: Record<string, string | string[] | undefined>, issuer: URL, trustProxy: boolean): void {
  headers.host = issuer.host;
  // Deleted only when sent: a delete turns the headers object into a slow dictionary.
  if (headers['x-forwarded-host'] !== undefined) delete headers['x-forwarded-host'];
  if (trustProxy) headers['x-forwarded-proto'] = issuer.protocol.slice(0, -1);
}

/**
 * Runs inside the engine's own Koa app, around its router (the documented `provider.use` hook),
 * so it is part of every provider the key ring builds, each with its own discovery cache
 * (oidc/discovery-cache.ts).
 */
export function engineMiddleware(deps: { config: Config; pages: ProviderPages; metrics: Metrics }): Middleware {
  const { config, pages, metrics } = deps;
  const issuer = new URL(config.issuer);
  const methods = engineMethods(config.authorizationPost);
  const discovery = discoveryCache();
  return async (ctx, next) => {
    pinToIssuer(ctx.req.headers, issuer, config.trustProxy);
    if (discovery.answer(ctx)) {
      metrics.routes.set(ctx.res, DISCOVERY_PATH);
      return;
    }
    const keep = discovery.watch(ctx);
    await next();
    keep?.(ctx);
    // The engine's ctx is not ours: say which of its routes answered on the response both share.
    const route = (ctx as Partial<KoaContextWithOIDC>).oidc?.route;
    const template = route === undefined ? undefined : engineRouteTemplate(route);
    if (template) metrics.routes.set(ctx.res, template);
    if (ctx.status === 503) ctx.set('Retry-After', RETRY_AFTER_SECONDS);
    if (ctx.status !== 404 || ctx.body != null) return;
    // The engine's router found nothing. A path it serves, asked with another method, is 405
    // with Allow (RFC 9110 §15.5.6); anything else is our readable "not found" page.
    const allowed = methods.get(ctx.path);
    const out = allowed
      ? {
          error: 'invalid_request',
          error_description: `${ctx.path} accepts ${allowed.filter((m) => m !== 'HEAD').join(' or ')} requests only`,
        }
      : { error: 'not_found' };
    await pages.error(ctx as never, out);
    ctx.status = allowed ? 405 : 404;
    if (!allowed) return;
    ctx.set('Allow', allowed.join(', '));
    metrics.routes.set(ctx.res, ctx.path); // a path of the table: a template, bounded
  };
}
