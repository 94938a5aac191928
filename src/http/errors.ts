import type { Middleware } from 'koa';

import type { Logger } from '../shared/logger.ts';
import { errorPageData, sendPage, type Views } from './views.ts';

// Node and PostgreSQL codes that mean "the database is not there right now" (class 08:
// connection exception; 57P0x: the server is shutting down or restarting).
const UNAVAILABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EPIPE', '57P01', '57P02', '57P03', '08000', '08003', '08006', '08001', '08004']);

export function isDatabaseUnavailable(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | undefined;
  if (typeof e?.code === 'string' && UNAVAILABLE.has(e.code)) return true;
  return typeof e?.message === 'string' && /Connection terminated|timeout exceeded when trying to connect/i.test(e.message);
}

/** Our routes never answer with a stack trace: a readable page, the right status, a log line. */
export function errorPages(views: Views, logger: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.respond !== false && ctx.status === 404 && !ctx.body) sendPage(ctx, views, 'error', errorPageData('not_found', undefined, ctx.state.requestId), 404);
    } catch (error) {
      const e = error as { status?: number; statusCode?: number; error?: string; error_description?: string; expose?: boolean };
      const log = (ctx.state.logger as Logger | undefined) ?? logger;
      if (isDatabaseUnavailable(error)) {
        log.warn({ err: (error as Error).message }, 'database unavailable');
        ctx.set('Retry-After', '5');
        return sendPage(ctx, views, 'error', errorPageData('service_unavailable', undefined, ctx.state.requestId), 503);
      }
      const status = e.status ?? e.statusCode ?? 500;
      if (status >= 500) log.error({ err: error }, 'request failed');
      // The engine's SessionNotFound: the sign-in page outlived its interaction (or its cookie).
      const code = (error as Error).name === 'SessionNotFound' ? 'session_not_found' : e.error ?? (status >= 500 ? 'server_error' : 'invalid_request');
      const description = status < 500 ? (e.error_description ?? (error as Error).message) : undefined;
      sendPage(ctx, views, 'error', errorPageData(code, description, ctx.state.requestId), status);
    }
  };
}
