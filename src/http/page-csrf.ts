import { randomBytes } from 'node:crypto';

import type { Context } from 'koa';

import { checkCsrf, csrfToken } from './csrf.ts';

// Forms outside a sign-in (forgot password, set a password, unlock) have no interaction to
// bind their CSRF token to: they bind it to a random id in a signed, HttpOnly, SameSite=Lax
// cookie of this browser, so a page elsewhere can neither read the token nor post the form.
const NAME = 'postern_form';
const ID_SHAPE = /^[A-Za-z0-9_-]{22}$/;

export interface PageCsrfOptions {
  readonly key: Buffer;
  readonly secure: boolean;
  readonly basePath: string;
}

/** The token for a form on this page; gives the browser its id cookie first if it has none. */
export function pageCsrfToken(ctx: Context, options: PageCsrfOptions): string {
  let id = ctx.cookies.get(NAME, { signed: true });
  if (!id || !ID_SHAPE.test(id)) {
    id = randomBytes(16).toString('base64url');
    ctx.cookies.set(NAME, id, {
      signed: true,
      httpOnly: true,
      sameSite: 'lax',
      secure: options.secure,
      path: options.basePath || '/',
      overwrite: true,
    });
  }
  return csrfToken(options.key, `page:${id}`);
}

export function checkPageCsrf(ctx: Context, options: PageCsrfOptions, presented: string | undefined): boolean {
  const id = ctx.cookies.get(NAME, { signed: true });
  return typeof id === 'string' && ID_SHAPE.test(id) && checkCsrf(options.key, `page:${id}`, presented);
}
