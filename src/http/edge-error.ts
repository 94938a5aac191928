import { STATUS_CODES } from 'node:http';

import { HttpError } from 'koa';
import type { Context } from 'koa';
import { errors } from 'oidc-provider';

import { isDatabaseUnavailable } from '../shared/database-unavailable.ts';
import { type ErrorCode, type FieldError, PosternError } from '../shared/errors.ts';
import { errorPageData, type Views } from './views.ts';

// CONVENTIONS "Errors with codes": the domain throws codes, the edge decides the HTTP status.
// One error, described once (describeError), can then be answered three ways: a readable page
// (people), an OAuth error (RFC 6749 §5.2; clients of the protocol), or problem details
// (RFC 9457; the admin API).

/** The HTTP status of each of our codes. */
export const STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = {
  ERR_INVALID_INPUT: 400,
  ERR_WEAK_PASSWORD: 400,
  ERR_UNAUTHORIZED: 401,
  ERR_FORBIDDEN: 403,
  ERR_NOT_FOUND: 404,
  ERR_DUPLICATE: 409,
  ERR_CONFLICT: 409,
  ERR_TOO_LARGE: 413,
  // The client hung up before its request was read: nobody reads the answer, but it is the
  // client's doing (its read fails with ECONNRESET, which is also how a lost database fails).
  ERR_CLIENT_GONE: 400,
  ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  ERR_IDEMPOTENCY_MISMATCH: 422,
  ERR_RATE_LIMITED: 429,
  ERR_UPSTREAM_FAILED: 502,
  ERR_DATABASE_UNAVAILABLE: 503,
  ERR_SCHEMA_BEHIND: 503,
  // A feature that needs mail, in production without POSTERN_SMTP_URL: not available here.
  ERR_MAIL_DISABLED: 503,
  ERR_CONFIG_INVALID: 500,
  ERR_DATA_DIR_LOCKED: 500,
  ERR_SECRET_MISMATCH: 500,
};

/** An error as the edge answers it. */
export interface EdgeError {
  readonly status: number;
  /** The OAuth error code (RFC 6749 §5.2), or one of our pages' own (not_found, session_not_found). */
  readonly error: string;
  /** Safe to show: only for errors of the request (4xx); a server's own failure says nothing. */
  readonly description?: string;
  /** The problem type's last segment: our code (ERR_DUPLICATE: duplicate), else the error. */
  readonly problem: string;
  readonly fields?: readonly FieldError[];
}

/** The OAuth error a status stands for, when nothing more precise is known. */
function errorForStatus(status: number): string {
  if (status === 503) return 'temporarily_unavailable';
  if (status >= 500) return 'server_error';
  return status === 404 ? 'not_found' : 'invalid_request';
}

const slug = (name: string) => name.replace(/^ERR_/, '').toLowerCase().replaceAll('_', '-');

function fromEngine(error: errors.OIDCProviderError): EdgeError {
  // SessionNotFound: the sign-in page outlived its interaction (or its cookie).
  const code = error instanceof errors.SessionNotFound ? 'session_not_found' : error.error;
  const description = error.status < 500 ? error.error_description : undefined;
  return { status: error.status, error: code, problem: slug(code), ...(description ? { description } : {}) };
}

function fromPostern(error: PosternError): EdgeError {
  const status = STATUS_BY_CODE[error.code];
  const shown = status < 500 ? { description: error.message, fields: error.fields } : {};
  return { status, error: errorForStatus(status), problem: slug(error.code), ...shown };
}

/** A request refused at the edge itself (too large, a method a path does not take): invalid_request. */
export function requestError(status: number, description: string): EdgeError {
  return { status, error: 'invalid_request', problem: 'invalid-request', description };
}

/** Whatever was thrown, as the edge answers it; anything it does not know is a 500 that says nothing. */
export function describeError(error: unknown): EdgeError {
  if (error instanceof errors.OIDCProviderError) return fromEngine(error);
  if (error instanceof PosternError) return fromPostern(error);
  if (isDatabaseUnavailable(error)) return fromPostern(new PosternError('ERR_DATABASE_UNAVAILABLE', 'unavailable'));
  // Koa's own (ctx.throw, http-errors): their message is safe to show when they say so.
  if (error instanceof HttpError) {
    const code = errorForStatus(error.status);
    return {
      status: error.status,
      error: code,
      problem: slug(code),
      ...(error.expose ? { description: error.message } : {}),
    };
  }
  return { status: 500, error: 'server_error', problem: 'server-error' };
}

/** RFC 6749 §5.2. */
export function oauthError(e: EdgeError): { error: string; error_description?: string } {
  return e.description ? { error: e.error, error_description: e.description } : { error: e.error };
}

export interface ProblemDetails {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail?: string;
  /** Extension member: the fields at fault. */
  readonly errors?: readonly { readonly field: string; readonly detail: string }[];
}

/**
 * RFC 9457 problem details. `type` is the same URI for every occurrence of a problem: under the
 * issuer, which a deployment controls (§3.1.1), `<issuer>/problems/<problem>`. `title` is the
 * status's reason phrase, which does not vary between occurrences either.
 */
export function problemDetails(e: EdgeError, issuer: string): ProblemDetails {
  return {
    type: `${issuer}/problems/${e.problem}`,
    title: STATUS_CODES[e.status] ?? 'Error',
    status: e.status,
    ...(e.description ? { detail: e.description } : {}),
    ...(e.fields?.length ? { errors: e.fields.map(({ field, detail }) => ({ field, detail })) } : {}),
  };
}

export type ErrorFormat = 'page' | 'oauth' | { problem: { issuer: string } };

/** One error in one format: what goes on the wire. */
export function renderError(
  e: EdgeError,
  format: ErrorFormat,
  page: { views: Views; requestId: string | undefined },
): { type: string; body: string | object } {
  if (format === 'page')
    return { type: 'html', body: page.views.render('error', errorPageData(e.error, e.description, page.requestId)) };
  if (format === 'oauth') return { type: 'json', body: oauthError(e) };
  return { type: 'application/problem+json', body: problemDetails(e, format.problem.issuer) };
}

/** Answers one error in the format the route speaks. */
export function sendError(ctx: Context, views: Views, e: EdgeError, format: ErrorFormat): void {
  const { type, body } = renderError(e, format, { views, requestId: ctx.state.requestId as string | undefined });
  ctx.status = e.status;
  ctx.type = type;
  ctx.body = body;
}
