import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import { errors } from 'oidc-provider';

import type { ResourceServerService } from '../clients/resource-server.service.ts';
import { refuseUnregisteredScopes } from './client-scopes.ts';
import { guardDatabase } from './unavailable.ts';

type Client = { metadata(): Record<string, unknown> };
type Grants = { allowed_resources: string[]; api_scopes: string[] };

// client.metadata() rebuilds the whole record on every call, and this is the token hot path:
// read each client's lists once. The engine keeps one Client object per version of a client's
// record, so a changed client is a new key here and the old entry goes with the old object.
const grantsOf = new WeakMap<Client, Grants>();

function list(client: Client, key: keyof Grants): string[] {
  let grants = grantsOf.get(client);
  if (!grants) {
    const metadata = client.metadata();
    const strings = (value: unknown) =>
      Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
    grants = { allowed_resources: strings(metadata.allowed_resources), api_scopes: strings(metadata.api_scopes) };
    grantsOf.set(client, grants);
  }
  return grants[key];
}

const OIDC_SCOPES = new Set(['openid', 'offline_access', 'profile', 'email', 'roles']);

/**
 * RFC 8707 resource indicators: which API a token is for, what it may carry, and how it is
 * made. A client gets tokens only for the resources it was registered with, and only scopes
 * that resource has; anything else is refused with invalid_target / invalid_scope, never
 * silently widened.
 */
export function resourceIndicators(
  resources: ResourceServerService,
): NonNullable<NonNullable<Configuration['features']>['resourceIndicators']> {
  return {
    enabled: true,
    // A plain OAuth client naming no resource gets its only one; one with several must name it.
    defaultResource(ctx: KoaContextWithOIDC, client: Client) {
      if (ctx.oidc.params?.grant_type !== 'client_credentials') return undefined as unknown as string;
      // Every client-credentials request without a resource comes here, every other goes to
      // getResourceServerInfo: between them, no OpenID Connect scope slips through.
      refuseUnregisteredScopes(ctx.oidc.params.scope, client);
      const allowed = list(client, 'allowed_resources');
      if (allowed.length > 1)
        throw new errors.InvalidTarget(
          `this client has several resources: name one with the resource parameter (${allowed.join(', ')})`,
        );
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
      const apiScopes = list(client, 'api_scopes');
      const permitted = server.scopes.filter((s) => apiScopes.includes(s));
      const asked = String(ctx.oidc.params?.scope ?? '')
        .split(' ')
        .filter((s) => s && !OIDC_SCOPES.has(s));
      const refused = asked.filter((s) => !permitted.includes(s));
      if (ctx.oidc.params?.grant_type === 'client_credentials') refuseUnregisteredScopes(ctx.oidc.params.scope, client);
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
