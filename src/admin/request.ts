import type { Context } from 'koa';

import { readBounded, unstorableDescription } from '../http/storable-input.ts';
import { invalid, PosternError } from '../shared/errors.ts';
import { findUnstorable } from '../shared/storable-text.ts';

const BODY_LIMIT = 64 * 1024;

/** A JSON body (none: an empty object), bounded; text the database cannot store is refused by field. */
export async function readJsonBody(ctx: Context): Promise<unknown> {
  const raw = await readBounded(ctx, BODY_LIMIT);
  if (!raw) throw new PosternError('ERR_TOO_LARGE', `the request body is larger than ${BODY_LIMIT} bytes`);
  if (raw.length === 0) return {};
  if (!ctx.is('application/json')) throw new PosternError('ERR_UNSUPPORTED_MEDIA_TYPE', 'expected application/json');
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    invalid('the request body is not valid JSON', 'body');
  }
  const field = findUnstorable(body);
  if (field !== undefined) invalid(unstorableDescription(field), field);
  return body;
}

/** The query as an object of strings (a repeated parameter keeps its first value). */
export function readQuery(ctx: Context): Record<string, string> {
  const query: Record<string, string> = {};
  for (const [key, value] of new URLSearchParams(ctx.querystring)) if (!(key in query)) query[key] = value;
  const field = findUnstorable(query);
  if (field !== undefined) invalid(unstorableDescription(field), field);
  return query;
}

/** RFC 9110 field-value, printable ASCII: what can be stored and compared. */
export function readIdempotencyKey(ctx: Context): string | undefined {
  const key = ctx.get('idempotency-key');
  if (key === '') return undefined;
  if (!/^[\x21-\x7E]{1,255}$/.test(key)) invalid('must be 1-255 printable ASCII characters', 'Idempotency-Key');
  return key;
}
