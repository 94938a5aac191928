import { invalid } from '../shared/errors.ts';

// What `postern client create` says, turned into the client metadata the protocol engine takes
// (snake_case, RFC 7591 names), plus our own: first_party, allowed_resources, api_scopes,
// resource_server_for. The engine only knows the OpenID Connect scopes, so `scope` holds those
// and `api_scopes` the scopes of resource servers this client may ask for.
//
// Together they are the client's allow-list, and nothing outside it is granted. The engine reads
// a missing `scope` as "every scope" and cannot hold an empty one (RFC 7591 §2 leaves the default
// to the server), so Postern gives `scope` its own meaning: missing means no OpenID Connect scope
// at all, and oidc/client-scopes.ts refuses them. That is also what every stored row meant: a
// client was only ever written without `scope` when it was registered with no OIDC scope.

export const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'] as const;
export const SECRET_AUTH_METHODS = ['client_secret_basic', 'client_secret_post'] as const;
/** The OpenID Connect scopes; every other scope belongs to a resource server. */
export const OIDC_SCOPES = ['openid', 'offline_access', 'profile', 'email', 'roles'];
export const PKCE_POLICIES = ['required', 'optional'] as const;
export const RESPONSE_TYPES = ['code', 'id_token'] as const;
/** Where an ID token may be sent from the authorization endpoint: never in a URL fragment. */
export const ID_TOKEN_RESPONSE_MODES = ['query', 'form_post'];

export interface NewClient {
  readonly clientId: string;
  readonly secret?: string;
  readonly public?: boolean;
  readonly authMethod?: (typeof SECRET_AUTH_METHODS)[number];
  readonly grantTypes: readonly string[];
  readonly redirectUris?: readonly string[];
  readonly postLogoutRedirectUris?: readonly string[];
  readonly scope?: string;
  readonly name?: string;
  readonly firstParty?: boolean;
  /** Resource servers (RFC 8707 indicators) this client may ask tokens for. */
  readonly resources?: readonly string[];
  /** The APIs this client acts for: it may introspect and revoke tokens meant for them. */
  readonly resourceServerFor?: readonly string[];
  /** private_key_jwt: the client's public keys, by URL or inline. */
  readonly jwksUri?: string;
  readonly jwks?: { keys: unknown[] };
  /** Refresh-token policy overrides (README: Refresh tokens). */
  readonly refreshRotation?: 'always' | 'never';
  readonly refreshIdleSeconds?: number;
  readonly refreshAbsoluteSeconds?: number;
  /** OpenID Connect Back-Channel Logout 1.0: where logout tokens are posted. */
  readonly backchannelLogoutUri?: string;
  /** 'optional': a confidential client may sign in without PKCE, with a nonce (RFC 9700 §2.1.1). */
  readonly pkce?: (typeof PKCE_POLICIES)[number];
  /** Authorization response types: 'code' (default), plus 'id_token' for server-side apps (form_post only). */
  readonly responseTypes?: readonly string[];
  /** The service's own roles, carried by its client-credentials tokens (README: Roles in access tokens). */
  readonly roles?: readonly string[];
  /** Every sign-in at this client needs a second factor (issue 14; README: Multi-factor sign-in). */
  readonly requireMfa?: boolean;
}

const CLIENT_ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/; // RFC 6749 §3.3 scope-token

/** The OpenID Connect scopes a client may ask for; a missing `scope` means none (see above). */
export function oidcScopesOf(metadata: Readonly<Record<string, unknown>>): string[] {
  return typeof metadata.scope === 'string' ? metadata.scope.split(' ').filter(Boolean) : [];
}

/** The scopes of its resource servers a client may ask for. */
export function apiScopesOf(metadata: Readonly<Record<string, unknown>>): string[] {
  return Array.isArray(metadata.api_scopes)
    ? metadata.api_scopes.filter((s): s is string => typeof s === 'string')
    : [];
}

function checkUri(uri: string, what: string): void {
  if (!URL.parse(uri) || uri.includes('#')) invalid(`${what} "${uri}" must be an absolute URI without a fragment`);
}

function authMethod(input: NewClient): string {
  const keys = input.jwksUri !== undefined || input.jwks !== undefined;
  if (input.public && (keys || input.secret))
    invalid('a public client has no secret and no keys: drop --public, or the secret and keys');
  if (keys && input.secret)
    invalid('a client authenticates with a secret or with its keys (private_key_jwt), not both');
  if (input.jwksUri !== undefined && input.jwks !== undefined) invalid('use --jwks-uri or --jwks-file, not both');
  if (input.public) return 'none';
  if (keys) return 'private_key_jwt';
  return input.authMethod ?? 'client_secret_basic';
}

function grants(input: NewClient): string[] {
  const grantTypes = [...new Set(input.grantTypes)];
  if (grantTypes.length === 0) invalid('at least one grant type is required');
  for (const g of grantTypes)
    if (!(GRANT_TYPES as readonly string[]).includes(g))
      invalid(`unknown grant type "${g}" (allowed: ${GRANT_TYPES.join(', ')})`);
  if (input.public && grantTypes.includes('client_credentials'))
    invalid('client_credentials needs a confidential client (drop --public)');
  return grantTypes;
}

function checkRefreshPolicy(input: NewClient, grantTypes: string[]): void {
  const given =
    input.refreshRotation !== undefined ||
    input.refreshIdleSeconds !== undefined ||
    input.refreshAbsoluteSeconds !== undefined;
  if (given && !grantTypes.includes('refresh_token'))
    invalid('the --refresh-* options need the refresh_token grant type');
  for (const [name, value] of [
    ['--refresh-idle-seconds', input.refreshIdleSeconds],
    ['--refresh-absolute-seconds', input.refreshAbsoluteSeconds],
  ] as const) {
    if (value !== undefined && (!Number.isInteger(value) || value < 60))
      invalid(`${name} must be a whole number of seconds, at least 60`);
  }
  if (
    input.refreshIdleSeconds !== undefined &&
    input.refreshAbsoluteSeconds !== undefined &&
    input.refreshAbsoluteSeconds < input.refreshIdleSeconds
  ) {
    invalid('--refresh-absolute-seconds must not be less than --refresh-idle-seconds');
  }
}

/** RFC 9700 §2.1.1: only a confidential client may go without PKCE; a public one has nothing else. */
function checkPkce(input: NewClient, method: string): void {
  if (input.pkce === undefined) return;
  if (!(PKCE_POLICIES as readonly string[]).includes(input.pkce))
    invalid(`--pkce must be ${PKCE_POLICIES.join(' or ')} (got "${input.pkce}")`);
  if (input.pkce === 'optional' && method === 'none')
    invalid('--pkce optional is for confidential clients only: a public client always uses PKCE');
}

function responseTypes(input: NewClient, code: boolean): string[] {
  if (input.responseTypes === undefined) return code ? ['code'] : [];
  const types = [...new Set(input.responseTypes)];
  for (const t of types)
    if (!(RESPONSE_TYPES as readonly string[]).includes(t))
      invalid(`unknown response type "${t}" (allowed: ${RESPONSE_TYPES.join(', ')})`);
  if (!code || !types.includes('code'))
    invalid('--response-types needs the authorization_code grant and must include code (e.g. code,id_token)');
  return types;
}

// The same names as account roles (accounts/account.service.ts): one role model for users and services.
const ROLE = /^[A-Za-z0-9][A-Za-z0-9:._-]{0,63}$/;

function roles(input: NewClient, grantTypes: string[]): string[] {
  const list = [...new Set(input.roles ?? [])];
  for (const r of list) if (!ROLE.test(r)) invalid(`"${r}" is not a valid role name`);
  if (list.length && !grantTypes.includes('client_credentials'))
    invalid('--role is for services: it needs the client_credentials grant type');
  return list;
}

export function buildMetadata(input: NewClient, secretHash: string | null): Record<string, unknown> {
  if (!CLIENT_ID.test(input.clientId))
    invalid('client id must be 1-128 letters, digits or ". _ : @ -", starting with a letter or digit');
  const method = authMethod(input);
  const grantTypes = grants(input);
  const redirectUris = [...new Set(input.redirectUris ?? [])];
  const code = grantTypes.includes('authorization_code');
  if (code && redirectUris.length === 0) invalid('authorization_code needs at least one --redirect-uri');
  if (!code && redirectUris.length > 0) invalid('--redirect-uri only applies to the authorization_code grant');
  for (const u of redirectUris) checkUri(u, 'redirect URI');
  const postLogout = [...new Set(input.postLogoutRedirectUris ?? [])];
  for (const u of postLogout) checkUri(u, 'post-logout redirect URI');
  if (input.jwksUri !== undefined) checkUri(input.jwksUri, 'JWKS URI');
  if (input.backchannelLogoutUri !== undefined) checkUri(input.backchannelLogoutUri, 'back-channel logout URI');
  checkRefreshPolicy(input, grantTypes);
  checkPkce(input, method);
  const types = responseTypes(input, code);
  const serviceRoles = roles(input, grantTypes);
  const requested = (input.scope ?? (code ? 'openid profile email offline_access' : ''))
    .trim()
    .split(/\s+/)
    .filter(Boolean);
  for (const s of requested) if (!SCOPE_TOKEN.test(s)) invalid(`"${s}" is not a valid scope`);
  const scope = requested.filter((s) => OIDC_SCOPES.includes(s));
  const apiScopes = requested.filter((s) => !OIDC_SCOPES.includes(s));
  const resources = [...new Set(input.resources ?? [])];
  const serves = [...new Set(input.resourceServerFor ?? [])];
  return {
    client_id: input.clientId,
    ...(input.name ? { client_name: input.name } : {}),
    // OIDC Core 3.2: an ID token from the authorization endpoint is the implicit grant; named
    // here so the engine's rules for it (https redirect URIs, no localhost) apply at registration.
    grant_types: types.includes('id_token') ? [...grantTypes, 'implicit'] : grantTypes,
    response_types: types,
    // An ID token straight from the authorization endpoint goes by form_post (or is an error by
    // query), never in a URL fragment, where scripts, history and logs can read it.
    ...(types.includes('id_token') ? { response_modes: ID_TOKEN_RESPONSE_MODES } : {}),
    redirect_uris: redirectUris,
    post_logout_redirect_uris: postLogout,
    token_endpoint_auth_method: method,
    ...(scope.length ? { scope: scope.join(' ') } : {}),
    ...(secretHash ? { client_secret: secretHash } : {}),
    ...(input.jwksUri !== undefined ? { jwks_uri: input.jwksUri } : {}),
    ...(input.jwks !== undefined ? { jwks: input.jwks } : {}),
    ...(resources.length ? { allowed_resources: resources } : {}),
    api_scopes: apiScopes,
    ...(serves.length ? { resource_server_for: serves } : {}),
    ...(input.refreshRotation ? { refresh_rotation: input.refreshRotation } : {}),
    ...(input.refreshIdleSeconds !== undefined ? { refresh_idle_seconds: input.refreshIdleSeconds } : {}),
    ...(input.refreshAbsoluteSeconds !== undefined ? { refresh_absolute_seconds: input.refreshAbsoluteSeconds } : {}),
    ...(input.backchannelLogoutUri !== undefined
      ? { backchannel_logout_uri: input.backchannelLogoutUri, backchannel_logout_session_required: true }
      : {}),
    ...(input.pkce === 'optional' ? { pkce: 'optional' } : {}),
    ...(serviceRoles.length ? { roles: serviceRoles } : {}),
    ...(input.requireMfa ? { require_mfa: true } : {}),
  };
}
