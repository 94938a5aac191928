import Router from '@koa/router';
import type { Context } from 'koa';

import type { Account } from '../accounts/account.ts';
import type { PasswordLinkPurpose, RecoveryService } from '../accounts/recovery.service.ts';
import { RESET_LINK_SECONDS } from '../accounts/recovery.service.ts';
import { fillText, textsFor } from '../i18n/texts.ts';
import { PosternError } from '../shared/errors.ts';
import { rememberDevice } from './device-cookie.ts';
import { readForm } from './form-body.ts';
import { checkPageCsrf, pageCsrfToken, type PageCsrfOptions } from './page-csrf.ts';
import { sendPage, type Views } from './views.ts';

// "Forgot your password?", the set-password page of a reset or an invitation, and the unlock
// page. Links in mail only ever lead to a page with a button: mail scanners fetch links, and
// a GET must not use up a single-use link (RFC 9110 §9.2.1: GET is safe).

export interface RecoveryRouteDeps {
  readonly recovery: RecoveryService;
  readonly views: Views;
  readonly csrf: PageCsrfOptions;
}

type FieldError = { field?: string; message: string };

const texts = () => textsFor().pages.recovery;

/** What differs between the reset page and the invitation page: only words. */
const PASSWORD_PAGES: Record<PasswordLinkPurpose, { path: string; title: 'resetTitle' | 'inviteTitle' }> = {
  reset_password: { path: '/reset-password', title: 'resetTitle' },
  invite: { path: '/set-password', title: 'inviteTitle' },
};

const queryToken = (ctx: Context) => (typeof ctx.query.token === 'string' ? ctx.query.token : '');

function askPage(ctx: Context, deps: RecoveryRouteDeps, login = '', errors: FieldError[] = [], status = 200) {
  const csrf = pageCsrfToken(ctx, deps.csrf);
  sendPage(ctx, deps.views, 'forgot-password', { t: texts(), csrf, login, errors }, status);
}

function invalidLinkPage(ctx: Context, deps: RecoveryRouteDeps) {
  // Used, expired and forged look alike: each is simply not a usable link (410, RFC 9110 §15.5.11).
  sendPage(ctx, deps.views, 'link-invalid', { t: texts() }, 410);
}

async function ask(ctx: Context, deps: RecoveryRouteDeps): Promise<void> {
  const form = await readForm(ctx);
  const login = (form.login ?? '').trim();
  if (!checkPageCsrf(ctx, deps.csrf, form.csrf))
    return askPage(ctx, deps, login, [{ message: texts().formExpired }], 403);
  if (!login) return askPage(ctx, deps, '', [{ field: 'login', message: texts().askMissing }], 400);
  await deps.recovery.request({ login, ip: ctx.ip, userAgent: ctx.get('user-agent') });
  const t = texts();
  sendPage(ctx, deps.views, 'check-inbox', {
    t: { ...t, sentIntro: fillText(t.sentIntro, { minutes: RESET_LINK_SECONDS / 60 }) },
  });
}

function passwordPage(
  ctx: Context,
  deps: RecoveryRouteDeps,
  purpose: PasswordLinkPurpose,
  view: { account: Account; token: string; errors?: FieldError[] },
  status = 200,
) {
  const t = texts();
  const reset = purpose === 'reset_password';
  const errors = view.errors ?? [];
  sendPage(
    ctx,
    deps.views,
    'set-password',
    {
      t,
      title: t[PASSWORD_PAGES[purpose].title],
      intro: fillText(reset ? t.resetIntro : t.inviteIntro, { username: view.account.username }),
      submit: reset ? t.resetSubmit : t.inviteSubmit,
      action: PASSWORD_PAGES[purpose].path,
      csrf: pageCsrfToken(ctx, deps.csrf),
      token: view.token,
      username: view.account.username,
      errors,
      fieldError: errors[0]?.field,
    },
    status,
  );
}

async function choosePassword(ctx: Context, deps: RecoveryRouteDeps, purpose: PasswordLinkPurpose): Promise<void> {
  const form = await readForm(ctx);
  const token = form.token ?? '';
  const account = await deps.recovery.checkLink(token, purpose);
  if (!account) return invalidLinkPage(ctx, deps);
  const again = (errors: FieldError[], status: number) =>
    passwordPage(ctx, deps, purpose, { account, token, errors }, status);
  if (!checkPageCsrf(ctx, deps.csrf, form.csrf)) return again([{ message: texts().formExpired }], 403);
  const password = form.password ?? '';
  if (password !== (form.confirm ?? '')) return again([{ field: 'confirm', message: texts().mismatch }], 400);
  try {
    const result = await deps.recovery.setPassword({
      token,
      purpose,
      password,
      ip: ctx.ip,
      userAgent: ctx.get('user-agent'),
    });
    if (!result.ok) return invalidLinkPage(ctx, deps);
  } catch (error) {
    if (error instanceof PosternError && error.code === 'ERR_WEAK_PASSWORD')
      return again(
        [{ field: 'password', message: `${error.message.charAt(0).toUpperCase()}${error.message.slice(1)}.` }],
        400,
      );
    throw error;
  }
  // The person proved the mailbox and chose the password: this browser is theirs.
  rememberDevice(ctx, account.id, undefined, deps.csrf.secure, deps.csrf.basePath);
  const t = texts();
  sendPage(ctx, deps.views, 'password-set', { t, message: purpose === 'invite' ? t.doneInvite : t.doneReset });
}

async function showUnlock(ctx: Context, deps: RecoveryRouteDeps): Promise<void> {
  const token = queryToken(ctx);
  const account = await deps.recovery.checkLink(token, 'unlock');
  if (!account) return invalidLinkPage(ctx, deps);
  const t = texts();
  sendPage(ctx, deps.views, 'unlock', {
    t,
    intro: fillText(t.unlockIntro, { username: account.username }),
    csrf: pageCsrfToken(ctx, deps.csrf),
    token,
  });
}

async function unlock(ctx: Context, deps: RecoveryRouteDeps): Promise<void> {
  const form = await readForm(ctx);
  if (!checkPageCsrf(ctx, deps.csrf, form.csrf)) return showUnlockAgain(ctx, deps, form.token ?? '');
  const result = await deps.recovery.unlock({ token: form.token ?? '', ip: ctx.ip, userAgent: ctx.get('user-agent') });
  if (!result) return invalidLinkPage(ctx, deps);
  // The lock ends for this browser only: as a trusted device it is counted on its own, while
  // the account-wide lock strangers caused stays for them (sign-in.service.ts subjectKeys).
  rememberDevice(ctx, result.account.id, undefined, deps.csrf.secure, deps.csrf.basePath);
  const t = texts();
  sendPage(ctx, deps.views, 'unlocked', {
    t,
    intro: fillText(t.unlockedIntro, { username: result.account.username }),
    resetToken: result.resetToken,
  });
}

/** An expired form: the unlock page again, with a fresh token (the link is still unused). */
async function showUnlockAgain(ctx: Context, deps: RecoveryRouteDeps, token: string): Promise<void> {
  ctx.query = { token };
  await showUnlock(ctx, deps);
  ctx.status = 403;
}

export function recoveryRoutes(deps: RecoveryRouteDeps): Router {
  const router = new Router();
  router.get('/forgot-password', (ctx) => askPage(ctx, deps));
  router.post('/forgot-password', (ctx) => ask(ctx, deps));
  for (const purpose of ['reset_password', 'invite'] as const) {
    const { path } = PASSWORD_PAGES[purpose];
    router.get(path, async (ctx) => {
      const token = queryToken(ctx);
      const account = await deps.recovery.checkLink(token, purpose);
      if (!account) return invalidLinkPage(ctx, deps);
      passwordPage(ctx, deps, purpose, { account, token });
    });
    router.post(path, (ctx) => choosePassword(ctx, deps, purpose));
  }
  router.get('/unlock', (ctx) => showUnlock(ctx, deps));
  router.post('/unlock', (ctx) => unlock(ctx, deps));
  return router;
}
