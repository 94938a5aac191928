import type { Middleware } from 'koa';

import { isDatabaseUnavailable } from '../db/unavailable.ts';
import type { Logger } from '../shared/logger.ts';
import { errorPageData, sendPage, type Views } from './views.ts';

/** Our routes never answer with a stack trace: a readable page, the right status, a log line. */
export function errorPages(views: Views, logger: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.respond !== false && ctx.status === 404 && !ctx.body)
        sendPage(ctx, views, 'error', errorPageData('not_found', undefined, ctx.state.requestId), 404);
    } catch (error) {
      const e = error as {
        status?: number;
        statusCode?: number;
        error?: string;
        error_description?: string;
        expose?: boolean;
      };
      const log = (ctx.state.logger as Logger | undefined) ?? logger;
      // Straight from the database, or already translated by the engine's storage guard.
      if (isDatabaseUnavailable(error) || e.error === 'temporarily_unavailable') {
        log.warn({ err: (error as Error).message }, 'database unavailable');
        ctx.set('Retry-After', '5');
        return sendPage(ctx, views, 'error', errorPageData('service_unavailable', undefined, ctx.state.requestId), 503);
      }
      const status = e.status ?? e.statusCode ?? 500;
      if (status >= 500) log.error({ err: error }, 'request failed');
      // The engine's SessionNotFound: the sign-in page outlived its interaction (or its cookie).
      const code =
        (error as Error).name === 'SessionNotFound'
          ? 'session_not_found'
          : (e.error ?? (status >= 500 ? 'server_error' : 'invalid_request'));
      const description = status < 500 ? (e.error_description ?? (error as Error).message) : undefined;
      sendPage(ctx, views, 'error', errorPageData(code, description, ctx.state.requestId), status);
    }
  };
}
