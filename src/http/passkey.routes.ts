import Router from '@koa/router';
import type { Context } from 'koa';

import type { Passkeys } from '../accounts/passkeys.ts';
import { passwordlessLogin } from '../accounts/mfa-policy.ts';
import { textsFor } from '../i18n/texts.ts';
import { isPosternError } from '../shared/errors.ts';
import { change, origin, signedIn, type AccountRouteDeps } from './account.routes.ts';
import { checkCsrf } from './csrf.ts';
import { readForm } from './form-body.ts';
import {
  finish,
  loginResult,
  postedForm,
  renderPrompt,
  type Details,
  type InteractionDeps,
} from './interaction.routes.ts';

// Passkeys over HTTP. On the login page: "Sign in with a passkey" (discoverable credentials,
// no username), whose challenge is bound to the interaction. On the account page: add one
// (bound to the account-page session) and remove one. The options are JSON for the script
// (views/assets/passkey.js); the results come back as ordinary form posts, so success and
// failure are answered as pages, like every other form.

export interface PasskeyRouteDeps {
  readonly passkeys: Passkeys;
  readonly interaction: InteractionDeps;
  readonly account: AccountRouteDeps;
}

/** The interaction uid is reachable only with this browser's interaction cookie (loadInteraction). */
const interactionBinding = (details: Details) => `interaction:${details.uid}`;

const signingIn = (details: Details) => details.prompt.name === 'login' || details.prompt.name === 'create';

function refuseJson(ctx: Context, status: number, error: string): void {
  ctx.status = status;
  ctx.body = { error };
}

function signInRoutes(router: Router, deps: PasskeyRouteDeps): void {
  router.post('/interaction/:uid/passkey/options', async (ctx) => {
    const { details } = await postedForm(ctx, deps.interaction);
    if (!signingIn(details)) return refuseJson(ctx, 409, 'not_signing_in');
    ctx.body = await deps.passkeys.authenticationOptions(interactionBinding(details));
  });
  router.post('/interaction/:uid/passkey', async (ctx) => {
    const { details, form } = await postedForm(ctx, deps.interaction);
    if (!signingIn(details)) return renderPrompt(ctx, deps.interaction, details);
    const result = await deps.passkeys.verifyAssertion(
      {
        binding: interactionBinding(details),
        credential: form.credential ?? '',
        step: 'passwordless',
        clientId: String(details.params.client_id),
      },
      origin(ctx),
    );
    if (!result.ok)
      return renderPrompt(ctx, deps.interaction, details, { error: textsFor().pages.passkeyLogin.refused });
    // The passkey is the whole proof: amr says which kind of key, and `user` if it verified the
    // person, which makes it multi-factor (accounts/mfa-policy.ts passwordlessLogin).
    const { amr, acr } = passwordlessLogin(result.amr);
    await finish(
      ctx,
      deps.interaction,
      loginResult(details, { accountId: result.account.id, amr, acr, remember: form.remember === 'yes' }),
    );
  });
}

function accountRoutes(router: Router, deps: PasskeyRouteDeps): void {
  router.post('/account/passkeys/options', async (ctx) => {
    const who = await signedIn(ctx, deps.account);
    const form = await readForm(ctx);
    if (!who) return refuseJson(ctx, 401, 'not_signed_in');
    if (!checkCsrf(deps.account.csrfKey, who.binding, form.csrf)) return refuseJson(ctx, 403, 'invalid_csrf');
    try {
      ctx.body = await deps.passkeys.registrationOptions(who.account, who.binding, {
        name: form.passkey_name ?? '',
        password: form.passkey_password ?? '',
      });
    } catch (error) {
      // The script then submits the form as it is, and the page shows the field errors.
      if (isPosternError(error, 'ERR_INVALID_INPUT')) return refuseJson(ctx, 400, 'invalid_input');
      throw error;
    }
  });
  router.post(
    '/account/passkeys',
    change(deps.account, 'passkey_added', (ctx, who, form) =>
      deps.passkeys.register(
        who.account,
        {
          binding: who.binding,
          name: form.passkey_name ?? '',
          password: form.passkey_password ?? '',
          credential: form.credential ?? '',
        },
        origin(ctx),
      ),
    ),
  );
  router.post(
    '/account/passkeys/remove',
    change(deps.account, 'passkey_removed', (ctx, who, form) =>
      deps.passkeys.remove(who.account.id, form.passkey ?? '', origin(ctx)),
    ),
  );
}

export function passkeyRoutes(deps: PasskeyRouteDeps): Router {
  const router = new Router();
  signInRoutes(router, deps);
  accountRoutes(router, deps);
  return router;
}
