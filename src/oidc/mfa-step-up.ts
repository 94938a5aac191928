import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';

import { acrAsksForMfa, hasSecondFactor } from '../accounts/mfa-policy.ts';

/**
 * Step-up (issue 14 §3): a session that signed in with a password only, at a client registered
 * with --require-mfa or for a request whose acr_values name urn:postern:mfa, is sent back to
 * the login prompt with the reason `mfa_required`; the sign-in pages then ask for the second
 * factor of the session's account only, not for a new login (http/mfa.routes.ts). A check in
 * the engine's interaction policy is its documented way to ask for a prompt.
 */
export function mfaStepUpCheck(): InstanceType<typeof interactionPolicy.Check> {
  // prompt=none: the error is login_required (OIDC Core §3.1.2.6: the end-user must authenticate
  // again), not the engine's default interaction_required, so an RP's silent check reads it as "sign in".
  return new interactionPolicy.Check(
    'mfa_required',
    'a second factor is required',
    'login_required',
    (ctx: KoaContextWithOIDC) => {
      const { session, client, params } = ctx.oidc;
      if (!session?.accountId || hasSecondFactor(session.amr as string[] | undefined))
        return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      const asked = client?.metadata().require_mfa === true || acrAsksForMfa(params?.acr_values);
      return asked ? interactionPolicy.Check.REQUEST_PROMPT : interactionPolicy.Check.NO_NEED_TO_PROMPT;
    },
  );
}

/** The engine's policy (as given) with the step-up check last among the login prompt's checks. */
export function withMfaStepUp<T extends ReturnType<typeof interactionPolicy.base>>(policy: T): T {
  policy.get('login')!.checks.add(mfaStepUpCheck());
  return policy;
}
