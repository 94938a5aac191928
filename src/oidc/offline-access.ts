import { decodeJwt } from 'jose';
import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';

const OFFLINE = 'offline_access';

/** The scope the client sent, before the engine filtered it: query or form, or its request object. */
function sentScope(ctx: KoaContextWithOIDC): string {
  const raw = (ctx.method === 'POST' ? ctx.oidc.body : ctx.query) as Record<string, unknown> | undefined;
  if (typeof raw?.request === 'string') {
    // The engine has already verified the request object (JAR) by now; only its scope is read.
    try {
      return String(decodeJwt(raw.request).scope ?? '');
    } catch {
      return '';
    }
  }
  return typeof raw?.scope === 'string' ? raw.scope : '';
}

/**
 * OpenID Connect Core §11: without prompt=consent the engine drops offline_access from the
 * request, although every sign-in of a refresh-token client gets a refresh token; relying
 * parties that repeat their scope on refresh (mod_auth_openidc, Authlib) were then refused.
 * §11 allows "other conditions" instead of prompt=consent, and Postern has two: a first-party
 * client's consent is implied (loadExistingGrant), and a third-party client's consent page
 * asks for offline access by name, unless the user already gave it. So offline_access is put
 * back into the request when the client sent it, may have it (its scope allow-list and the
 * refresh_token grant) and uses the code flow (§11: only a response that returns a code).
 * It then reaches the grant, the code and the refresh token like any other scope.
 */
export function keepRequestedOfflineAccess(ctx: KoaContextWithOIDC): void {
  const { oidc } = ctx;
  const params = oidc.params as { scope?: string; response_type?: string } | undefined;
  const client = oidc.client;
  if (oidc.route !== 'authorization' || !params || !client) return;
  const scopes = new Set(
    String(params.scope ?? '')
      .split(' ')
      .filter(Boolean),
  );
  if (scopes.has(OFFLINE) || !scopes.has('openid') || !sentScope(ctx).split(' ').includes(OFFLINE)) return;
  if (
    !String(params.response_type ?? '')
      .split(' ')
      .includes('code') ||
    !client.grantTypeAllowed('refresh_token')
  )
    return;
  if (client.scope !== undefined && !client.scope.split(' ').includes(OFFLINE)) return;
  params.scope = [...scopes, OFFLINE].join(' ');
}

/**
 * The engine's interaction policy with one step first: keep offline_access before anything is
 * decided, so that a request from a browser with no session yet saves it in its interaction.
 * (With a session, loadExistingGrant has already done it; doing it twice changes nothing.)
 */
export function interactionPolicyKeepingOfflineAccess(options: { create?: boolean } = {}) {
  const policy = interactionPolicy.base();
  const keep = new interactionPolicy.Check(
    'offline_access_kept',
    'offline_access kept for the consent decision',
    (ctx) => {
      keepRequestedOfflineAccess(ctx);
      return interactionPolicy.Check.NO_NEED_TO_PROMPT;
    },
  );
  policy.get('login')!.checks.add(keep, 0);
  // OpenID Connect Prompt Create 1.0 §4: prompt=create asks for the account-creation page. A
  // requestable prompt named create (the engine's documented way to add a prompt value) comes
  // before login, so such a request opens an interaction on the registration page; its result
  // carries `create` (http/interaction.routes.ts) so it is not asked again on resume.
  // The engine stops at the first prompt that asks, so create runs the offline_access step too.
  if (options.create) policy.add(new interactionPolicy.Prompt({ name: 'create', requestable: true }, keep), 0);
  return policy;
}
