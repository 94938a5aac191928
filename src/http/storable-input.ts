import type { IncomingMessage } from 'node:http';
import * as querystring from 'node:querystring';
import { Readable } from 'node:stream';

import type { Context, Middleware } from 'koa';

import { findUnstorable } from '../shared/storable-text.ts';
import type { Logger } from '../shared/logger.ts';
import { requestError, sendError } from './edge-error.ts';
import type { Views } from './views.ts';

// The engine's own body limit (oidc-provider lib/shared/selective_body.js).
const ENGINE_BODY_LIMIT = 56 * 1024;

/** A request parameter holds text the database cannot store (NUL, a lone surrogate). */
export function unstorableDescription(param: string): string {
  return `the ${param} parameter holds characters that are not accepted (NUL or invalid Unicode)`;
}

/**
 * Invalid input answered without a stack trace: one warn line, then 400 invalid_request, as a
 * readable page for a browser and as an OAuth error (RFC 6749 §5.2) for everyone else.
 */
export function refuseInput(ctx: Context, views: Views, status: number, description: string): void {
  (ctx.state.logger as Logger).warn(
    { method: ctx.method, path: ctx.path, status, reason: description },
    'invalid input refused',
  );
  ctx.set('Cache-Control', 'no-store');
  sendError(ctx, views, requestError(status, description), ctx.accepts('json', 'html') === 'html' ? 'page' : 'oauth');
}

function decodedPath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path; // broken escapes stay as they are: they match no route.
  }
}

/** Path and query string of every request, ours and the engine's, before anything reads them. */
export function refuseUnstorableQuery(views: Views): Middleware {
  return async (ctx, next) => {
    const param = findUnstorable(decodedPath(ctx.path), 'path') ?? findUnstorable(querystring.parse(ctx.querystring));
    if (param !== undefined) return refuseInput(ctx, views, 400, unstorableDescription(param));
    await next();
  };
}

/**
 * Reads a body up to `limit` bytes; undefined when it is larger. The rest is then never read:
 * the answer says `Connection: close`, so the client still gets it and the connection ends
 * (kept alive, the unread bytes would stall the next request on it).
 */
export async function readBounded(ctx: Context, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      ctx.set('Connection', 'close');
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

function parseBody(ctx: Context, body: Buffer): unknown {
  if (ctx.is('application/x-www-form-urlencoded')) return querystring.parse(body.toString('utf8'));
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined; // not JSON: the engine answers that itself.
  }
}

/** The same request, its body already read, for the engine to read again. */
function withBody(req: IncomingMessage, body: Buffer): IncomingMessage {
  const replay = Readable.from([body], { objectMode: false });
  return Object.assign(replay, {
    headers: req.headers,
    rawHeaders: req.rawHeaders,
    method: req.method,
    url: req.url,
    httpVersion: req.httpVersion,
    httpVersionMajor: req.httpVersionMajor,
    httpVersionMinor: req.httpVersionMinor,
    socket: req.socket,
    complete: true,
    // Under an issuer with a path (http/base-path.ts) the engine builds its URLs from this.
    originalUrl: (req as IncomingMessage & { originalUrl?: string }).originalUrl,
  }) as unknown as IncomingMessage;
}

/**
 * The request the engine should read. A form or JSON body (the only ones it parses) is read
 * here first, bounded as the engine bounds it, and refused when it holds unstorable text; the
 * engine then gets the same bytes. undefined: refused, the answer is already set.
 */
export async function engineRequest(ctx: Context, views: Views): Promise<IncomingMessage | undefined> {
  if (ctx.method !== 'POST' || !ctx.is('application/x-www-form-urlencoded', 'application/json')) return ctx.req;
  const body = await readBounded(ctx, ENGINE_BODY_LIMIT);
  if (!body) {
    refuseInput(ctx, views, 413, 'the request body is too large');
    return undefined;
  }
  const param = findUnstorable(parseBody(ctx, body));
  if (param !== undefined) {
    refuseInput(ctx, views, 400, unstorableDescription(param));
    return undefined;
  }
  return withBody(ctx.req, body);
}
