import { createHash, randomBytes } from 'node:crypto';

import type { ClientMetadata } from 'oidc-provider';

import { ACCOUNT_PAGE_CLIENT_ID } from '../clients/built-in-clients.ts';
import { ENGINE_ROUTES } from './engine-routes.ts';

// The account page (/account) is a first-party view: it reads the engine's own session cookie
// (Session.get, as the engine's maintainer suggests for pages of the provider itself). Signing
// in, though, is something only an authorization request starts, and one needs a client: this
// built-in one, static in the engine's configuration (so no database row and no secret). The
// page sends a signed-out browser through the ordinary login with it; on the way back the
// browser holds a session, which is all the page needs: the code is never redeemed (it expires
// unused within the code lifetime), so nothing is ever issued to this client but the sign-in.

// The id is reserved where clients are created (clients/built-in-clients.ts).
export { ACCOUNT_PAGE_CLIENT_ID };
export const ACCOUNT_PATH = '/account';
export const ACCOUNT_SIGNED_IN_PATH = '/account/signed-in';

export function accountPageClient(issuer: string, publicName: string): ClientMetadata {
  return {
    client_id: ACCOUNT_PAGE_CLIENT_ID,
    client_name: `${publicName} account page`,
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [`${issuer}${ACCOUNT_SIGNED_IN_PATH}`],
    scope: 'openid',
    first_party: true,
  };
}

/**
 * Where a signed-out visitor of the account page goes: the login, then back. PKCE is required
 * of every client (oidc/pkce-policy.ts); the verifier is thrown away with the code.
 */
export function accountSignInUrl(issuer: string): string {
  const challenge = createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url');
  const url = new URL(`${issuer}${ENGINE_ROUTES.authorization}`);
  url.search = new URLSearchParams({
    client_id: ACCOUNT_PAGE_CLIENT_ID,
    response_type: 'code',
    scope: 'openid',
    redirect_uri: `${issuer}${ACCOUNT_SIGNED_IN_PATH}`,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: randomBytes(16).toString('base64url'),
  }).toString();
  return url.href;
}
