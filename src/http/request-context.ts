import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

import type { Middleware } from 'koa';

import type { Logger } from '../shared/logger.ts';

const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The protocol paths machines call at high rates (discovery, keys, tokens, introspection,
 * userinfo; oidc/engine-routes.ts). Their successes are counted by the request metrics
 * and logged at debug only: an info line for each would cost more than the request itself.
 * Their failures, and every other request, keep the info line.
 */
const HOT_PATHS = /(?:^|\/)(?:\.well-known\/openid-configuration|jwks|token|token\/introspection|me)$/;

/** The caller's X-Request-Id when it is sane, else a new one; it goes back on the response. */
export function assignRequestId(req: IncomingMessage, res: ServerResponse): string {
  const incoming = req.headers['x-request-id'];
  const requestId = typeof incoming === 'string' && VALID_REQUEST_ID.test(incoming) ? incoming : randomUUID();
  res.setHeader('X-Request-Id', requestId);
  return requestId;
}

/**
 * The client's address as Koa computes it with `maxIpsCount: 1` (http/app.ts): behind a trusted
 * proxy, the X-Forwarded-For entry our proxy appended (the last), never one the client wrote.
 */
function clientIp(req: IncomingMessage, trustProxy: boolean): string {
  const forwarded = trustProxy ? req.headers['x-forwarded-for'] : undefined;
  const last = typeof forwarded === 'string' ? forwarded.split(',').at(-1)?.trim() : undefined;
  return last || req.socket.remoteAddress || '';
}

/** One access line once the response has been sent (at debug for a hot path's success). */
export function logAccess(
  logger: Logger,
  request: { req: IncomingMessage; res: ServerResponse; requestId: string; path: string; started: bigint },
  trustProxy: boolean,
): void {
  const { req, res, path } = request;
  const status = res.statusCode;
  const level = HOT_PATHS.test(path) && status < 400 ? 'debug' : 'info';
  if (!logger.isLevelEnabled(level)) return;
  const ms = Number(process.hrtime.bigint() - request.started) / 1e6;
  logger
    .child({ requestId: request.requestId })
    [level](
      { method: req.method, path, status, ms: Math.round(ms * 10) / 10, ip: clientIp(req, trustProxy) },
      'request',
    );
}

/** `ctx.state` of our app: the request id, and a child logger that carries it, made when first used. */
class RequestState {
  [key: string]: unknown;
  #child: Logger | undefined;
  readonly #root: Logger;
  readonly requestId: string;

  constructor(root: Logger, requestId: string) {
    this.#root = root;
    this.requestId = requestId;
  }

  get logger(): Logger {
    this.#child ??= this.#root.child({ requestId: this.requestId });
    return this.#child;
  }
}

/**
 * A Koa app's view of the request the front door (http/front-door.ts) let in: `ctx.state.requestId`
 * and `ctx.state.logger` (most requests never log but the access line, so it is made when first used).
 */
export function requestState(logger: Logger): Middleware {
  return (ctx, next) => {
    ctx.state = new RequestState(logger, String(ctx.response.get('x-request-id')));
    return next();
  };
}
