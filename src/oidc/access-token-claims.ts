import type { KoaContextWithOIDC } from 'oidc-provider';

import type { ResourceServerService } from '../clients/resource-server.service.ts';
import { guardDatabase } from './unavailable.ts';

type Token = {
  kind: string;
  accountId?: string;
  client?: { metadata(): Record<string, unknown> };
  resourceServer?: { audience?: string };
};
type ClaimsOf = (
  ctx: KoaContextWithOIDC | undefined,
  accountId: string,
) => Promise<Record<string, unknown> | undefined>;

const strings = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];

/** The user claims a resource server asked for (resource create --claims); an empty roles list is left out. */
function pick(claims: Record<string, unknown>, wanted: readonly string[]): Record<string, unknown> {
  const picked: Record<string, unknown> = {};
  for (const name of wanted) {
    const value = claims[name];
    if (value === undefined || value === null || (Array.isArray(value) && value.length === 0)) continue;
    picked[name] = value;
  }
  return picked;
}

type Authentication = { acr?: string; amr?: string[] };

/**
 * How the user signed in, for amr and acr (issue 14 §3): the engine keeps them on the code or
 * the refresh token the access token is issued from, not on the access token itself.
 */
function authenticationOf(ctx: KoaContextWithOIDC | undefined, wanted: readonly string[]): Record<string, unknown> {
  if (!wanted.includes('amr') && !wanted.includes('acr')) return {};
  const entities = ctx?.oidc?.entities as
    | { AuthorizationCode?: Authentication; RefreshToken?: Authentication }
    | undefined;
  const source = entities?.AuthorizationCode ?? entities?.RefreshToken;
  return {
    ...(wanted.includes('amr') && source?.amr?.length ? { amr: source.amr } : {}),
    ...(wanted.includes('acr') && source?.acr ? { acr: source.acr } : {}),
  };
}

/**
 * extraTokenClaims: what an API needs to authorize from the token alone. RFC 9068 §2.2.3.1:
 * roles go in a `roles` array. A user's token carries the claims its resource server was
 * created with; a service's client-credentials token carries the service's own roles, when
 * that resource server carries roles. Tokens for any other API, or for userinfo, carry nothing extra.
 */
export function accessTokenClaims(deps: { resources: ResourceServerService; claimsOf: ClaimsOf }) {
  return async (ctx: KoaContextWithOIDC | undefined, token: Token): Promise<Record<string, unknown> | undefined> => {
    const audience = token.resourceServer?.audience;
    if (!audience) return undefined;
    const server = await guardDatabase(() => deps.resources.find(audience));
    if (!server || server.claims.length === 0) return undefined;
    if (token.kind === 'ClientCredentials') {
      const roles = strings(token.client?.metadata().roles);
      return server.claims.includes('roles') && roles.length ? { roles } : undefined;
    }
    if (!token.accountId) return undefined;
    const claims = await deps.claimsOf(ctx, token.accountId);
    return claims ? { ...pick(claims, server.claims), ...authenticationOf(ctx, server.claims) } : undefined;
  };
}
