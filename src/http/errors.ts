import type { Middleware } from 'koa';

import { RETRY_AFTER_SECONDS } from '../oidc/unavailable.ts';
import type { Logger } from '../shared/logger.ts';
import { describeError, sendError } from './edge-error.ts';
import { errorPageData, sendPage, type Views } from './views.ts';

/** Our routes never answer with a stack trace: a readable page, the right status, a log line. */
export function errorPages(views: Views, logger: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.respond !== false && ctx.status === 404 && !ctx.body)
        sendPage(ctx, views, 'error', errorPageData('not_found', undefined, ctx.state.requestId), 404);
    } catch (error) {
      const e = describeError(error);
      const log = (ctx.state.logger as Logger | undefined) ?? logger;
      // Straight from the database, or already translated by the engine's storage guard.
      if (e.status === 503) {
        log.warn({ err: (error as Error).message }, 'database unavailable');
        ctx.set('Retry-After', RETRY_AFTER_SECONDS);
      } else if (e.status >= 500) log.error({ err: error }, 'request failed');
      sendError(ctx, views, e, 'page');
    }
  };
}
