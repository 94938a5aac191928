import { apiScopesOf, oidcScopesOf } from './client-metadata.ts';
import type { ClientRecord } from './client.ts';

/** What the CLI and the admin API show of a client: picked field by field, so a secret or its hash can never slip out. */
export interface ClientView {
  readonly clientId: string;
  readonly name: string | null;
  readonly type: 'confidential' | 'public';
  readonly tokenEndpointAuthMethod: string;
  readonly grantTypes: readonly string[];
  readonly responseTypes: readonly string[];
  readonly pkce: 'required' | 'optional';
  readonly roles: readonly string[];
  readonly redirectUris: readonly string[];
  readonly postLogoutRedirectUris: readonly string[];
  /** Everything the client may ask for (OpenID Connect scopes, then API scopes); null: nothing. */
  readonly scope: string | null;
  readonly oidcScopes: readonly string[];
  readonly apiScopes: readonly string[];
  readonly resources: readonly string[];
  readonly introspects: readonly string[];
  readonly jwksUri: string | null;
  readonly firstParty: boolean;
  /** Sign-ins at this client need a second factor (--require-mfa). */
  readonly requireMfa: boolean;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

const strings = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
const stringOrNull = (value: unknown): string | null => (typeof value === 'string' ? value : null);

export function toClientView(client: ClientRecord): ClientView {
  const m = client.metadata;
  const authMethod = stringOrNull(m.token_endpoint_auth_method) ?? 'client_secret_basic';
  // The same reading of the metadata as the provider's (clients/client-metadata.ts), so this is
  // exactly what the client may ask for.
  const oidcScopes = oidcScopesOf(m);
  const apiScopes = apiScopesOf(m);
  return {
    clientId: client.clientId,
    name: stringOrNull(m.client_name),
    type: authMethod === 'none' ? 'public' : 'confidential',
    tokenEndpointAuthMethod: authMethod,
    grantTypes: strings(m.grant_types),
    responseTypes: strings(m.response_types),
    pkce: m.pkce === 'optional' && authMethod !== 'none' ? 'optional' : 'required',
    roles: strings(m.roles),
    redirectUris: strings(m.redirect_uris),
    postLogoutRedirectUris: strings(m.post_logout_redirect_uris),
    scope: [...oidcScopes, ...apiScopes].join(' ') || null,
    oidcScopes,
    apiScopes,
    resources: strings(m.allowed_resources),
    introspects: strings(m.resource_server_for),
    jwksUri: stringOrNull(m.jwks_uri),
    firstParty: client.firstParty,
    requireMfa: m.require_mfa === true,
    createdAt: client.createdAt,
    updatedAt: client.updatedAt,
  };
}
