import type { ClientRecord } from './client.ts';
import { apiScopesOf, oidcScopesOf, type NewClient } from './client-metadata.ts';

// Changing a client: its stored metadata read back into what `client create` takes, the changes
// laid over it, and the whole built again by buildMetadata, so that an update is checked by
// exactly the rules a creation is (no second set of rules to drift).

/** What may change after creation; the id, the kind (public or not) and the secret may not (rotate it instead). */
export type ClientChanges = Partial<
  Omit<NewClient, 'clientId' | 'secret' | 'public' | 'jwks' | 'jwksUri' | 'authMethod' | 'firstParty'>
> & { readonly firstParty?: boolean };

const strings = (value: unknown): string[] | undefined =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : undefined;
const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
const int = (value: unknown): number | undefined => (typeof value === 'number' ? value : undefined);

/** The inverse of buildMetadata: what `client create` would have been given for this client. */
export function newClientOf(client: ClientRecord): NewClient {
  const m = client.metadata;
  const method = text(m.token_endpoint_auth_method);
  const scope = [...oidcScopesOf(m), ...apiScopesOf(m)].join(' ');
  const entries: Partial<Record<keyof NewClient, unknown>> = {
    clientId: client.clientId,
    public: method === 'none',
    authMethod: method === 'client_secret_basic' || method === 'client_secret_post' ? method : undefined,
    // 'implicit' is what buildMetadata adds for the id_token response type: not asked for.
    grantTypes: strings(m.grant_types)?.filter((g) => g !== 'implicit') ?? [],
    redirectUris: strings(m.redirect_uris),
    postLogoutRedirectUris: strings(m.post_logout_redirect_uris),
    scope,
    name: text(m.client_name),
    firstParty: client.firstParty,
    resources: strings(m.allowed_resources),
    resourceServerFor: strings(m.resource_server_for),
    jwksUri: text(m.jwks_uri),
    jwks: m.jwks,
    refreshRotation: text(m.refresh_rotation),
    refreshIdleSeconds: int(m.refresh_idle_seconds),
    refreshAbsoluteSeconds: int(m.refresh_absolute_seconds),
    backchannelLogoutUri: text(m.backchannel_logout_uri),
    pkce: text(m.pkce),
    responseTypes: strings(m.response_types)?.length ? strings(m.response_types) : undefined,
    roles: strings(m.roles),
    requireMfa: m.require_mfa === true ? true : undefined,
  };
  return Object.fromEntries(Object.entries(entries).filter(([, v]) => v !== undefined)) as unknown as NewClient;
}

/** The client as it would be created with the changes; a change to undefined is no change. */
export function applyChanges(client: ClientRecord, changes: ClientChanges): NewClient {
  const given = Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined));
  return { ...newClientOf(client), ...given };
}
