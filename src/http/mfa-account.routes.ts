import Router from '@koa/router';
import type { Context } from 'koa';

import type { MfaService } from '../accounts/mfa.service.ts';
import { accountSignInUrl } from '../oidc/account-page-client.ts';
import { isPosternError, type FieldError } from '../shared/errors.ts';
import { postedAccountForm, signedIn, type AccountRouteDeps, type SignedIn } from './account.routes.ts';
import { enrollmentView } from './mfa.routes.ts';
import { sendPage } from './views.ts';

// Two-step verification on the account page (issue 14 §1): set up an authenticator app (the QR
// code is an SVG drawn here, so no script is needed), see the recovery codes once, get new ones,
// turn it off with the password and a code. Forms carry the account page's session-bound token.

export interface MfaAccountDeps extends AccountRouteDeps {
  readonly mfa: MfaService;
  /** POSTERN_MFA=required or a required role: the page says a sign-in will ask for it. */
  readonly requiredFor: (roles: readonly string[]) => boolean;
}

const PATH = '/account/two-factor';
const DONE: Record<string, string> = { disabled: 'Two-step verification is off.' };

const origin = (ctx: Context) => ({ ip: ctx.ip, userAgent: ctx.get('user-agent') || null });

async function showStatus(
  ctx: Context,
  deps: MfaAccountDeps,
  who: SignedIn,
  extra: { errors?: readonly FieldError[]; done?: string } = {},
  status = 200,
) {
  const errors = extra.errors ?? [];
  sendPage(
    ctx,
    deps.views,
    'account-mfa',
    {
      ...(await deps.mfa.status(who.account.id)),
      required: deps.requiredFor(who.account.roles),
      csrf: who.csrf,
      errors,
      errorFor: Object.fromEntries(errors.map((e) => [e.field, e.detail])),
      done: extra.done,
    },
    status,
  );
}

/** The password field's error (mfa.service confirmTotp), as the page's one message. */
const passwordRefused = (fields: readonly FieldError[]) =>
  `${fields[0]?.detail ?? 'the password is not correct'}.`.replace(/^./, (c) => c.toUpperCase());

async function showEnroll(ctx: Context, deps: MfaAccountDeps, who: SignedIn, error?: string) {
  const enrollment = (await deps.mfa.pendingTotp(who.account.id)) ?? (await deps.mfa.startTotp(who.account.id));
  sendPage(
    ctx,
    deps.views,
    'mfa-enroll',
    {
      ...(await enrollmentView(enrollment)),
      action: `${deps.issuer}${PATH}/totp/confirm`,
      cancel: `${deps.issuer}${PATH}`,
      csrf: who.csrf,
      required: false,
      // Whoever holds this session proves it is theirs before adding a factor (a stolen session cannot).
      askPassword: true,
      error,
    },
    error ? 400 : 200,
  );
}

/** A POST of these pages: signed in, with this session's form token; else the account page or 403. */
function post(deps: MfaAccountDeps, run: (ctx: Context, who: SignedIn, form: Record<string, string>) => Promise<void>) {
  return async (ctx: Context) => {
    const posted = await postedAccountForm(ctx, deps);
    if (!posted) return;
    const { who, form } = posted;
    try {
      await run(ctx, who, form);
    } catch (error) {
      if (isPosternError(error, 'ERR_CONFLICT')) return showStatus(ctx, deps, who, {}, 409);
      if (!isPosternError(error, 'ERR_INVALID_INPUT') || error.fields.length === 0) throw error;
      return showStatus(ctx, deps, who, { errors: error.fields }, 400);
    }
  };
}

export function mfaAccountRoutes(deps: MfaAccountDeps): Router {
  const router = new Router();
  router.get(PATH, async (ctx) => {
    const who = await signedIn(ctx, deps);
    if (!who) {
      ctx.status = 303;
      return ctx.redirect(accountSignInUrl(deps.issuer));
    }
    const done = typeof ctx.query.done === 'string' ? DONE[ctx.query.done] : undefined;
    await showStatus(ctx, deps, who, done ? { done } : {});
  });
  router.post(
    `${PATH}/totp`,
    post(deps, (ctx, who) => showEnroll(ctx, deps, who)),
  );
  router.post(
    `${PATH}/totp/confirm`,
    post(deps, async (ctx, who, form) => {
      let result: Awaited<ReturnType<MfaService['confirmTotp']>>;
      try {
        const input = { code: form.code ?? '', password: form.password ?? '' };
        result = await deps.mfa.confirmTotp(who.account.id, input, origin(ctx));
      } catch (error) {
        if (!isPosternError(error, 'ERR_INVALID_INPUT')) throw error;
        return showEnroll(ctx, deps, who, passwordRefused(error.fields));
      }
      if (!result.ok)
        return showEnroll(
          ctx,
          deps,
          who,
          result.reason === 'locked'
            ? 'Too many wrong codes. Wait a few minutes, then try again.'
            : 'That code is not right.',
        );
      sendPage(ctx, deps.views, 'recovery-codes', { codes: result.recoveryCodes ?? [] });
    }),
  );
  router.post(
    `${PATH}/recovery-codes`,
    post(deps, async (ctx, who, form) => {
      const codes = await deps.mfa.regenerateRecoveryCodes(
        who.account.id,
        { password: form.codes_password ?? '', code: form.codes_code ?? '' },
        origin(ctx),
      );
      sendPage(ctx, deps.views, 'recovery-codes', { codes });
    }),
  );
  router.post(
    `${PATH}/disable`,
    post(deps, async (ctx, who, form) => {
      await deps.mfa.disableTotp(
        who.account.id,
        { password: form.disable_password ?? '', code: form.disable_code ?? '' },
        origin(ctx),
      );
      ctx.status = 303;
      ctx.redirect(`${deps.issuer}${PATH}?done=disabled`);
    }),
  );
  return router;
}
