import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import { errors } from 'oidc-provider';

import type { ResourceServerService } from '../clients/resource-server.service.ts';
import { guardDatabase } from './unavailable.ts';

type Client = { metadata(): Record<string, unknown> };

function list(client: Client, key: 'allowed_resources' | 'api_scopes'): string[] {
  const value = client.metadata()[key];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

const OIDC_SCOPES = new Set(['openid', 'offline_access', 'profile', 'email', 'roles']);

/**
 * RFC 8707 resource indicators: which API a token is for, what it may carry, and how it is
 * made. A client gets tokens only for the resources it was registered with, and only scopes
 * that resource has; anything else is refused with invalid_target / invalid_scope, never
 * silently widened.
 */
export function resourceIndicators(resources: ResourceServerService): NonNullable<NonNullable<Configuration['features']>['resourceIndicators']> {
  return {
    enabled: true,
    // A plain OAuth client naming no resource gets its only one; one with several must name it.
    defaultResource(ctx: KoaContextWithOIDC, client: Client) {
      if (ctx.oidc.params?.grant_type !== 'client_credentials') return undefined as unknown as string;
      const allowed = list(client, 'allowed_resources');
      if (allowed.length > 1) throw new errors.InvalidTarget(`this client has several resources: name one with the resource parameter (${allowed.join(', ')})`);
      return allowed[0] as string;
    },
    // A code or refresh token exchange that names no resource gets the one the user granted.
    useGrantedResource: () => true,
    async getResourceServerInfo(ctx: KoaContextWithOIDC, indicator: string, client: Client) {
      const server = await guardDatabase(() => resources.find(indicator));
      if (!server || !list(client, 'allowed_resources').includes(indicator)) {
        throw new errors.InvalidTarget(`this client may not request tokens for ${indicator}`);
      }
      // What the token may carry: scopes the API offers AND the client was given.
      const permitted = server.scopes.filter((s) => list(client, 'api_scopes').includes(s));
      const asked = String(ctx.oidc.params?.scope ?? '').split(' ').filter((s) => s && !OIDC_SCOPES.has(s));
      const refused = asked.filter((s) => !permitted.includes(s));
      if (refused.length && ctx.oidc.params?.grant_type === 'client_credentials') {
        throw new errors.InvalidScope(`not allowed for ${indicator}: ${refused.join(' ')}`, refused.join(' '));
      }
      return {
        scope: permitted.join(' '),
        audience: server.identifier,
        accessTokenTTL: server.accessTokenTtl,
        accessTokenFormat: server.tokenFormat,
        ...(server.tokenFormat === 'jwt' ? { jwt: { sign: { alg: server.signingAlg } } } : {}),
      } as never;
    },
  } as never;
}
