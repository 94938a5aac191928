import { errors, type KoaContextWithOIDC } from 'oidc-provider';

import { OIDC_SCOPES, oidcScopesOf } from '../clients/client-metadata.ts';

type Client = { metadata(): Record<string, unknown> };

/**
 * RFC 6749 §3.3: the server may refuse scopes a client was not registered for, and tells it
 * with invalid_scope (§4.1.2.1, §5.2). The engine checks a client's `scope` only when it holds
 * something; a client registered without OpenID Connect scopes has none, and must not get
 * openid, profile, email, roles or offline_access either (see clients/client-metadata.ts).
 */
export function refuseUnregisteredScopes(requested: unknown, client: Client): void {
  if (typeof requested !== 'string' || requested === '') return;
  const asked = requested.split(' ').filter((s) => OIDC_SCOPES.includes(s));
  if (asked.length === 0) return; // the usual client-credentials request: client.metadata() is not cheap
  const allowed = oidcScopesOf(client.metadata());
  const refused = asked.find((s) => !allowed.includes(s));
  if (refused !== undefined) throw new errors.InvalidScope('requested scope is not allowed', refused);
}

/**
 * For the engine's `extraParams`: a validator of the authorization request's (and a pushed
 * one's) `scope`, run after the engine's own scope checks.
 */
export async function checkScopeParameter(
  _ctx: KoaContextWithOIDC,
  value: string | undefined,
  client: unknown,
): Promise<void> {
  refuseUnregisteredScopes(value, client as Client);
}
