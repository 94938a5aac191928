import type { Context } from 'koa';

import { invalid, PosternError } from '../shared/errors.ts';
import { findUnstorable } from '../shared/storable-text.ts';
import { readBounded, unstorableDescription } from './storable-input.ts';

const LIMIT = 16 * 1024;

/** application/x-www-form-urlencoded only, bounded; our pages post nothing else. */
export async function readForm(ctx: Context): Promise<Record<string, string>> {
  if (!ctx.is('application/x-www-form-urlencoded'))
    throw new PosternError('ERR_UNSUPPORTED_MEDIA_TYPE', 'expected a form submission');
  const body = await readBounded(ctx, LIMIT);
  if (!body) throw new PosternError('ERR_TOO_LARGE', 'form too large');
  const params = new URLSearchParams(body.toString('utf8'));
  const form: Record<string, string> = {};
  for (const [key, value] of params) if (!(key in form)) form[key] = value;
  // Text the database cannot store is invalid input: a readable 400, never a 500 (DESIGN §4).
  const param = findUnstorable(form);
  if (param !== undefined) invalid(unstorableDescription(param), param);
  return form;
}
