import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';

import type { AccountPageService } from '../accounts/account-page.service.ts';
import type { Account } from '../accounts/account.ts';
import type { AccountService } from '../accounts/account.service.ts';
import type { Passkeys } from '../accounts/passkeys.ts';
import { textsFor } from '../i18n/texts.ts';
import { ACCOUNT_PATH, accountSignInUrl } from '../oidc/account-page-client.ts';
import type { AccountSessions } from '../oidc/account-sessions.ts';
import { isPosternError, type FieldError } from '../shared/errors.ts';
import { accountPageData, type Done } from './account.view.ts';
import { checkCsrf, csrfToken } from './csrf.ts';
import { readForm } from './form-body.ts';
import type { PageScript } from './passkey-scripts.ts';
import { sendPage, type Views } from './views.ts';

// The account page (issue 13 §4): a first-party view over the engine's own session cookie.
// Every change is a POST from a form of this page, carrying a token bound to the session
// (whose id only this browser holds), then a redirect back (303, post/redirect/get).

export interface AccountRouteDeps {
  readonly issuer: string;
  readonly provider: () => Provider;
  readonly accounts: AccountService;
  readonly accountPage: AccountPageService;
  readonly accountSessions: AccountSessions;
  readonly views: Views;
  readonly csrfKey: Buffer;
  /** Passkeys, listed on the page and added with the scripts (http/passkey.routes.ts). */
  readonly passkeys?: Passkeys;
  readonly passkeyScripts?: readonly PageScript[];
}

export interface SignedIn {
  readonly account: Account;
  /** The session's public uid (what grants record) and its secret id (the cookie's value). */
  readonly uid: string;
  /** What this browser's form tokens are bound to: the session's secret id, which only it holds. */
  readonly binding: string;
  readonly csrf: string;
}

const texts = textsFor().pages;

/** The engine's session of this browser, read from its signed cookie, if someone is signed in. */
export async function signedIn(ctx: Context, deps: AccountRouteDeps): Promise<SignedIn | undefined> {
  const session = await deps.provider().Session.get(ctx);
  if (!session.accountId || !session.jti) return undefined;
  const account = await deps.accounts.findById(session.accountId);
  if (!account || account.disabled) return undefined;
  const binding = `account:${session.jti}`;
  return { account, uid: session.uid, binding, csrf: csrfToken(deps.csrfKey, binding) };
}

export const origin = (ctx: Context) => ({ ip: ctx.ip, userAgent: ctx.get('user-agent') || null });

async function showPage(
  ctx: Context,
  deps: AccountRouteDeps,
  who: SignedIn,
  extra: { done?: Done; errors?: readonly FieldError[]; values?: Record<string, string> } = {},
  status = 200,
): Promise<void> {
  const overview = await deps.accountSessions.overview(who.account.id, who.uid);
  const passkeys = deps.passkeys?.available ? { passkeys: await deps.passkeys.list(who.account.id) } : {};
  sendPage(
    ctx,
    deps.views,
    'account',
    {
      ...accountPageData({
        account: who.account,
        csrf: who.csrf,
        overview,
        service: deps.accountPage,
        ...extra,
        ...passkeys,
      }),
      ...(deps.passkeyScripts ? { scripts: deps.passkeyScripts } : {}),
    },
    status,
  );
}

const DONE: readonly Done[] = [
  'profile',
  'email',
  'password',
  'session',
  'others',
  'app',
  'passkey_added',
  'passkey_removed',
];

async function getAccount(ctx: Context, deps: AccountRouteDeps): Promise<void> {
  const who = await signedIn(ctx, deps);
  if (!who) {
    ctx.status = 303;
    return ctx.redirect(accountSignInUrl(deps.issuer));
  }
  const done = DONE.find((d) => d === ctx.query.done);
  await showPage(ctx, deps, who, done ? { done } : {});
}

/**
 * Every POST of the account pages (this one, two-step verification) starts here: signed in, a
 * form, its token bound to this session. undefined when that was answered already: not signed
 * in goes to the account page (which signs in first), a missing or foreign token gets 403.
 */
export async function postedAccountForm(
  ctx: Context,
  deps: AccountRouteDeps,
): Promise<{ who: SignedIn; form: Record<string, string> } | undefined> {
  const who = await signedIn(ctx, deps);
  const form = await readForm(ctx);
  if (!who) {
    ctx.status = 303;
    ctx.redirect(`${deps.issuer}${ACCOUNT_PATH}`);
    return undefined;
  }
  if (!checkCsrf(deps.csrfKey, who.binding, form.csrf)) {
    sendPage(
      ctx,
      deps.views,
      'error',
      {
        heading: 'This form has expired',
        message: 'Go back to your account page and try again.',
        code: 'invalid_csrf',
      },
      403,
    );
    return undefined;
  }
  return { who, form };
}

/**
 * A POST of the page: signed in, a form, its token bound to this session. Then the change;
 * a field error shows the page again with an error summary (400), anything else goes to the
 * error pages. Success: back to the page with a notice.
 */
export function change(
  deps: AccountRouteDeps,
  done: Done | undefined,
  /** Returns 'answered' when it sent its own page. */
  run: (ctx: Context, who: SignedIn, form: Record<string, string>) => Promise<unknown>,
) {
  return async (ctx: Context) => {
    const posted = await postedAccountForm(ctx, deps);
    if (!posted) return;
    const { who, form } = posted;
    try {
      if ((await run(ctx, who, form)) === 'answered') return;
    } catch (error) {
      if (!isPosternError(error, 'ERR_INVALID_INPUT') || error.fields.length === 0) throw error;
      const values = Object.fromEntries(Object.entries(form).filter(([k]) => !/password|csrf/.test(k)));
      return showPage(ctx, deps, who, { errors: error.fields, values }, 400);
    }
    ctx.status = 303;
    ctx.redirect(`${deps.issuer}${ACCOUNT_PATH}${done ? `?done=${done}` : ''}`);
  };
}

function accountChanges(router: Router, deps: AccountRouteDeps): void {
  const { accountPage, accountSessions } = deps;
  router.post(
    '/account/profile',
    change(deps, 'profile', async (ctx, who, form) => {
      await accountPage.updateProfile(
        who.account.id,
        {
          name: form.name ?? '',
          givenName: form.given_name ?? '',
          familyName: form.family_name ?? '',
          username: form.username ?? who.account.username,
        },
        origin(ctx),
      );
    }),
  );
  router.post(
    '/account/email',
    change(deps, 'email', (ctx, who, form) =>
      accountPage.requestEmailChange(
        who.account.id,
        { newEmail: form.new_email ?? '', currentPassword: form.email_password ?? '' },
        origin(ctx),
      ),
    ),
  );
  router.post(
    '/account/password',
    change(deps, 'password', (ctx, who, form) =>
      accountPage.changePassword(
        who.account.id,
        { currentPassword: form.current_password ?? '', newPassword: form.new_password ?? '', keepSessionUid: who.uid },
        origin(ctx),
      ),
    ),
  );
  router.post(
    '/account/sessions/sign-out',
    change(deps, 'session', async (ctx, who, form) => {
      await accountSessions.signOut(who.account.id, form.session ?? '', origin(ctx));
    }),
  );
  router.post(
    '/account/sessions/sign-out-others',
    change(deps, 'others', async (ctx, who) => {
      await accountSessions.signOutOthers(who.account.id, who.uid, origin(ctx));
    }),
  );
  router.post(
    '/account/apps/revoke',
    change(deps, 'app', async (ctx, who, form) => {
      await accountSessions.revokeApp(who.account.id, form.client_id ?? '', origin(ctx));
    }),
  );
}

/** Deletion exists only when POSTERN_ACCOUNT_DELETION=on: otherwise the path is not there (404). */
function accountDeletion(router: Router, deps: AccountRouteDeps): void {
  if (!deps.accountPage.deletionEnabled) return;
  router.post(
    '/account/delete',
    change(deps, undefined, async (ctx, who, form) => {
      await deps.accountPage.deleteAccount(who.account.id, { password: form.delete_password ?? '' }, origin(ctx));
      const t = texts.account.delete;
      sendPage(ctx, deps.views, 'error', { heading: t.deletedHeading, message: t.deleted });
      return 'answered';
    }),
  );
}

export function accountRoutes(deps: AccountRouteDeps): Router {
  const router = new Router();
  router.get(ACCOUNT_PATH, (ctx) => getAccount(ctx, deps));
  // Back from signing in (oidc/account-page-client.ts): the session is all the page needs.
  router.get('/account/signed-in', (ctx) => {
    // Signing in was cancelled or refused: say so, rather than send the browser round again.
    if (typeof ctx.query.error === 'string') {
      const t = texts.account;
      return sendPage(ctx, deps.views, 'error', { heading: t.notSignedInHeading, message: t.notSignedIn });
    }
    ctx.status = 303;
    ctx.redirect(`${deps.issuer}${ACCOUNT_PATH}`);
  });
  accountChanges(router, deps);
  accountDeletion(router, deps);
  return router;
}
