import { randomUUID } from 'node:crypto';

import type { Middleware } from 'koa';

import type { Logger } from '../shared/logger.ts';

const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Request id (a caller's X-Request-Id when it is sane, else a new one), a child logger that
 * carries it, and one access line per request written when the response has been sent, so
 * it also covers requests answered by the protocol engine.
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
    ctx.res.once('finish', () => {
      if (!logger.isLevelEnabled('info')) return;
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      (ctx.state.logger as Logger).info(
        { method: ctx.method, path: ctx.path, status: ctx.res.statusCode, ms: Math.round(ms * 10) / 10, ip: ctx.ip },
        'request',
      );
    });
    await next();
  };
}
