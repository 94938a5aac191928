import { randomUUID } from 'node:crypto';

import type { Middleware } from 'koa';

import type { Logger } from '../shared/logger.ts';

const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The protocol paths machines call at high rates (discovery, keys, tokens, introspection,
 * userinfo; oidc/engine-routes.ts). Their successes are counted by the request metrics
 * (http/metrics.routes.ts) and logged at debug only: an info line for each would cost more
 * than the request itself. Their failures, and every other request, keep the info line.
 */
const HOT_PATHS = /(?:^|\/)(?:\.well-known\/openid-configuration|jwks|token|token\/introspection|me)$/;

/**
 * Request id (a caller's X-Request-Id when it is sane, else a new one), a child logger that
 * carries it, and one access line per request written when the response has been sent, so
 * it also covers requests answered by the protocol engine (at debug for a hot path's success).
 */
export function requestContext(logger: Logger): Middleware {
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    const incoming = ctx.get('x-request-id');
    const requestId = VALID_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    // Made when first used: most requests (the engine's) never log anything but the access line.
    let child: Logger | undefined;
    Object.defineProperty(ctx.state, 'logger', {
      get: () => (child ??= logger.child({ requestId })),
      enumerable: true,
    });
    ctx.set('X-Request-Id', requestId);
    // Below info nothing is written: no listener at all (the bench and quiet deployments).
    if (!logger.isLevelEnabled('info')) return next();
    const hot = HOT_PATHS.test(ctx.path);
    ctx.res.once('finish', () => {
      const status = ctx.res.statusCode;
      const level = hot && status < 400 ? 'debug' : 'info';
      if (!logger.isLevelEnabled(level)) return;
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      (ctx.state.logger as Logger)[level](
        { method: ctx.method, path: ctx.path, status, ms: Math.round(ms * 10) / 10, ip: ctx.ip },
        'request',
      );
    });
    await next();
  };
}
