import type { Context } from 'koa';

import { findUnstorable } from '../shared/storable-text.ts';
import { readBounded, unstorableDescription } from './storable-input.ts';

const LIMIT = 16 * 1024;

export class BadForm extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** application/x-www-form-urlencoded only, bounded; our pages post nothing else. */
export async function readForm(ctx: Context): Promise<Record<string, string>> {
  if (!ctx.is('application/x-www-form-urlencoded')) throw new BadForm(415, 'expected a form submission');
  const body = await readBounded(ctx, LIMIT);
  if (!body) throw new BadForm(413, 'form too large');
  const params = new URLSearchParams(body.toString('utf8'));
  const form: Record<string, string> = {};
  for (const [key, value] of params) if (!(key in form)) form[key] = value;
  // Text the database cannot store is invalid input: a readable 400, never a 500 (DESIGN §4).
  const param = findUnstorable(form);
  if (param !== undefined) throw new BadForm(400, unstorableDescription(param));
  return form;
}
