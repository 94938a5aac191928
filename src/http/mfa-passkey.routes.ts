import type Router from '@koa/router';
import type { Context } from 'koa';

import { ACR_MFA, amrWith, hasSecondFactor } from '../accounts/mfa-policy.ts';
import type { Passkeys } from '../accounts/passkeys.ts';
import { textsFor } from '../i18n/texts.ts';
import { pending, showVerify, type MfaPageDeps } from './mfa.routes.ts';

// A passkey as the second step of signing in (issue 14 §2 "as a second factor"): after the
// password, or to step up a session that signed in with a password only. The options list only
// the pending account's passkeys (allowCredentials), and the challenge is bound to this
// interaction and to that account (accounts/passkey-assertion.ts): another account's passkey is
// refused, and so is an assertion made for the login page's passwordless button, whose
// challenge has another binding.

type Details = Parameters<MfaPageDeps['complete']>[1];

const secondFactorBinding = (details: Details) => `interaction-mfa:${details.uid}`;

function refuseJson(ctx: Context, status: number, error: string): void {
  ctx.status = status;
  ctx.body = { error };
}

async function refused(ctx: Context, deps: MfaPageDeps, details: Details, accountId: string): Promise<void> {
  const methods = await deps.mfa.methods(accountId);
  await showVerify(ctx, deps, details, methods, textsFor().pages.passkeySecondFactor.refused);
}

async function options(ctx: Context, deps: MfaPageDeps, passkeys: Passkeys): Promise<void> {
  const { details } = await deps.posted(ctx);
  const p = pending(ctx, details);
  if (!p) return refuseJson(ctx, 409, 'not_signing_in');
  ctx.body = await passkeys.authenticationOptions(secondFactorBinding(details), p.accountId);
}

async function verify(ctx: Context, deps: MfaPageDeps, passkeys: Passkeys): Promise<void> {
  const { details, form } = await deps.posted(ctx);
  const p = pending(ctx, details);
  if (!p) return deps.showLogin(ctx, details);
  const result = await passkeys.verifyAssertion(
    {
      binding: secondFactorBinding(details),
      credential: form.credential ?? '',
      step: 'second_factor',
      clientId: String(details.params.client_id),
    },
    { ip: ctx.ip, userAgent: ctx.get('user-agent') || null },
  );
  if (!result.ok || result.account.id !== p.accountId) return refused(ctx, deps, details, p.accountId);
  // RFC 8176 §2: pwd (or the session's own), and hwk|swk (+ user) from the key, mfa as they are
  // more than one factor. A passkey without user verification after a passkey adds nothing.
  const amr = amrWith(p.amr, ...result.amr);
  if (!hasSecondFactor(amr)) return refused(ctx, deps, details, p.accountId);
  await deps.complete(ctx, details, { accountId: p.accountId, amr, acr: ACR_MFA, remember: p.remember });
}

/** Mounted on the interaction router (prefix /interaction/:uid), where passkeys are served. */
export function mountPasskeySecondFactor(router: Router, deps: MfaPageDeps, passkeys: Passkeys): void {
  router.post('/mfa/passkey/options', (ctx) => options(ctx, deps, passkeys));
  router.post('/mfa/passkey', (ctx) => verify(ctx, deps, passkeys));
}
