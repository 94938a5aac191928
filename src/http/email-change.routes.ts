import Router from '@koa/router';
import type { Context } from 'koa';

import type { AccountPageService } from '../accounts/account-page.service.ts';
import { fillText, textsFor } from '../i18n/texts.ts';
import { isPosternError } from '../shared/errors.ts';
import { readForm } from './form-body.ts';
import { sendPage, type Views } from './views.ts';

// The link of the email-change-confirm mail. Opening it changes nothing (mail scanners open
// links): the page asks, and its button POSTs the token back. The token is the proof, wherever
// the link is opened: 256 random bits that only the new mailbox received, used once, so the
// form needs no other CSRF token and no sign-in (it is often opened on another device).

const t = textsFor().pages.emailConfirm;

const token = (value: unknown) => (typeof value === 'string' && /^[\w-]{20,100}$/.test(value) ? value : undefined);

function invalidLink(ctx: Context, views: Views): void {
  sendPage(ctx, views, 'email-confirm', { heading: t.invalidHeading, message: t.invalid, toAccount: t.toAccount }, 410);
}

async function showConfirm(ctx: Context, deps: { accountPage: AccountPageService; views: Views }): Promise<void> {
  const presented = token(ctx.query.token);
  const email = presented && (await deps.accountPage.pendingEmailChange(presented));
  if (!presented || !email) return invalidLink(ctx, deps.views);
  // The link's token must not leak through the Referer of anything this page loads.
  ctx.set('Cache-Control', 'no-store');
  sendPage(ctx, deps.views, 'email-confirm', {
    heading: t.title,
    message: fillText(t.lead, { email }),
    token: presented,
    submit: t.submit,
  });
}

async function confirm(ctx: Context, deps: { accountPage: AccountPageService; views: Views }): Promise<void> {
  const presented = token((await readForm(ctx)).token);
  try {
    const account =
      presented &&
      (await deps.accountPage.confirmEmailChange(presented, { ip: ctx.ip, userAgent: ctx.get('user-agent') }));
    if (!account) return invalidLink(ctx, deps.views);
    sendPage(ctx, deps.views, 'email-confirm', {
      heading: t.doneHeading,
      message: fillText(t.done, { email: account.email }),
      toAccount: t.toAccount,
    });
  } catch (error) {
    if (!isPosternError(error, 'ERR_DUPLICATE')) throw error;
    sendPage(
      ctx,
      deps.views,
      'email-confirm',
      { heading: t.takenHeading, message: t.taken, toAccount: t.toAccount },
      409,
    );
  }
}

export function emailChangeRoutes(deps: { accountPage: AccountPageService; views: Views }): Router {
  const router = new Router();
  router.get('/account/email/confirm', (ctx) => showConfirm(ctx, deps));
  router.post('/account/email/confirm', (ctx) => confirm(ctx, deps));
  return router;
}
