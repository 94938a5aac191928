import type { KoaContextWithOIDC } from 'oidc-provider';

interface HintClaims {
  sub?: unknown;
  sid?: unknown;
}

/**
 * RP-Initiated Logout 1.0 §2: the OP MUST ask the End-User to confirm when no id_token_hint was
 * given, or when the hint does not belong to the current session with the RP or to the
 * signed-in End-User. By the time the engine asks for its logout page it has already checked
 * the hint's signature and issuer, and that its `aud` is a known client (expiry is ignored on
 * purpose, §4). What is left is whether it is *this* session's: same End-User, a client this
 * session has signed in to, and, when the token carries one, the same `sid`. Then there is
 * nothing to ask, as Keycloak and Auth0 also decide.
 */
export function hintMatchesSession(ctx: KoaContextWithOIDC): boolean {
  const { session, client, entities } = ctx.oidc;
  const hint = (entities as { IdTokenHint?: { payload?: HintClaims } }).IdTokenHint?.payload;
  if (!hint || !session?.accountId || !client) return false;
  // Subjects are public (the engine's default subject type): sub is the account id.
  if (hint.sub !== session.accountId) return false;
  const sid = session.sidFor(client.clientId);
  if (!sid) return false;
  return hint.sid === undefined || hint.sid === sid;
}
