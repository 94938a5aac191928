import type { IncomingMessage } from 'node:http';
import * as querystring from 'node:querystring';
import { Readable } from 'node:stream';

import type { Context, Middleware } from 'koa';

import { PosternError } from '../shared/errors.ts';
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

/**
 * A percent-escape that can spell unstorable text once decoded: NUL, or a byte above 0x7F (part
 * of a UTF-8 sequence, which may be broken). Escapes of other ASCII (%3A, %2F in URLs) cannot.
 */
const RISKY_ESCAPE = /%(?:00|[89a-f])/i;

/**
 * The parameter of the path or query string holding unstorable text, if any. The HTTP parser
 * lets no control character into a URL and reads other bytes as Latin-1, so only an escape can
 * spell a NUL or a broken UTF-8 sequence: a URL without a risky one is fine as is.
 */
function unstorableInUrl(ctx: Context): string | undefined {
  if (!RISKY_ESCAPE.test(ctx.url)) return undefined;
  return findUnstorable(decodedPath(ctx.path), 'path') ?? findUnstorable(querystring.parse(ctx.querystring));
}

/** Path and query string of every request of ours, before anything reads them. */
export function refuseUnstorableQuery(views: Views): Middleware {
  return async (ctx, next) => {
    const param = unstorableInUrl(ctx);
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
  try {
    for await (const chunk of ctx.req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) {
        ctx.set('Connection', 'close');
        return undefined;
      }
      chunks.push(chunk);
    }
  } catch (error) {
    // The client hung up mid-body ("aborted", ECONNRESET): said as such, so that no edge takes
    // it for a lost database connection, which fails with the same code.
    if (ctx.req.destroyed)
      throw new PosternError('ERR_CLIENT_GONE', 'the client went away before its request was read');
    throw error;
  }
  return Buffer.concat(chunks, size);
}

/**
 * Whether a body needs parsing to know. Decoding replaces broken UTF-8, so beyond a raw NUL byte
 * only an escape can spell unstorable text: in a form, a percent-escape of NUL or of a byte above
 * 0x7F; in JSON, a \\u escape. Most bodies (token requests) have none and are parsed once only,
 * by the engine.
 */
function mayBeUnstorable(form: boolean, body: Buffer): boolean {
  const text = body.toString('latin1');
  if (text.includes('\0')) return true;
  return form ? RISKY_ESCAPE.test(text) : text.includes('\\u');
}

function parseBody(form: boolean, body: Buffer): unknown {
  if (form) return querystring.parse(body.toString('utf8'));
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
async function engineRequest(ctx: Context, views: Views): Promise<IncomingMessage | undefined> {
  const type = ctx.method === 'POST' ? ctx.is('application/x-www-form-urlencoded', 'application/json') : false;
  if (!type) return ctx.req;
  const form = type === 'application/x-www-form-urlencoded';
  const body = await readBounded(ctx, ENGINE_BODY_LIMIT);
  if (!body) {
    refuseInput(ctx, views, 413, 'the request body is too large');
    return undefined;
  }
  const param = mayBeUnstorable(form, body) ? findUnstorable(parseBody(form, body)) : undefined;
  if (param !== undefined) {
    refuseInput(ctx, views, 400, unstorableDescription(param));
    return undefined;
  }
  return withBody(ctx.req, body);
}

/**
 * First in the engine's own app (oidc/provider.ts, before its router): the engine's requests get
 * the same boundary as ours. Path, query string and body are refused with a 400 when they hold
 * text the database cannot store, before the engine reads any of them.
 */
export function guardEngineInput(views: Views): Middleware {
  return async (ctx, next) => {
    const param = unstorableInUrl(ctx);
    if (param !== undefined) return refuseInput(ctx, views, 400, unstorableDescription(param));
    const req = await engineRequest(ctx, views);
    if (!req) return;
    if (req !== ctx.req) {
      ctx.req = req;
      ctx.request.req = req;
      ctx.response.req = req;
    }
    await next();
  };
}
