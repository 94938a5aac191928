import type { JWK } from 'jose';
import type { Kysely } from 'kysely';
import type { Middleware } from 'koa';
import Provider, { type Configuration, type FindAccount, type KoaContextWithOIDC } from 'oidc-provider';

import type { AccountService } from '../accounts/account.service.ts';
import { SCOPE_CLAIMS } from '../accounts/claims.ts';
import { ACR_VALUES } from '../accounts/mfa-policy.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { ResourceServerService } from '../clients/resource-server.service.ts';
import { issuerBasePath, type Config } from '../config/config.ts';
import type { Database } from '../db/tables.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import type { Metrics } from '../shared/metrics.ts';
import { accessTokenClaims } from './access-token-claims.ts';
import { ACCOUNT_PATH, accountPageClient } from './account-page-client.ts';
import type { AdapterClass } from './adapter.ts';
import { checkScopeParameter } from './client-scopes.ts';
import { engineMiddleware } from './engine-middleware.ts';
import { overrideEngine } from './engine-overrides.ts';
import { ENGINE_ROUTES } from './engine-routes.ts';
import { createFindAccount } from './find-account.ts';
import { loadExistingGrant } from './first-party-grant.ts';
import { hintMatchesSession } from './logout-hint.ts';
import { withMfaStepUp } from './mfa-step-up.ts';
import { interactionPolicyKeepingOfflineAccess } from './offline-access.ts';
import { pkceRequired } from './pkce-policy.ts';
import { retryFailedBackchannelLogout } from './backchannel-logout.ts';
import { watchEvents } from './provider-events.ts';
import type { RecordProtection } from './record-protection.ts';
import { issueRefreshToken, refreshTokenTtl, rotateRefreshToken } from './refresh-policy.ts';
import type { RefreshRotation } from './refresh-rotation.ts';
import { resourceIndicators } from './resource-indicators.ts';

/** Pages the engine renders itself; the http layer supplies them with our views and headers. */
export interface ProviderPages {
  error(ctx: KoaContextWithOIDC, out: { error: string; error_description?: string }): Promise<void>;
  /** `confirm` is false when the id_token_hint is the current session's: the page then submits itself. */
  logout(ctx: KoaContextWithOIDC, form: string, options: { confirm: boolean }): Promise<void>;
  postLogout(ctx: KoaContextWithOIDC): Promise<void>;
}

export interface ProviderDeps {
  readonly config: Config;
  readonly adapter: AdapterClass;
  readonly accounts: AccountService;
  readonly resources: ResourceServerService;
  readonly jwks: readonly JWK[];
  readonly cookieKeys: readonly string[];
  readonly clientSecretKey: Buffer;
  readonly pages: ProviderPages;
  /**
   * What the engine's requests need from the http layer, first in its app after Host pinning:
   * the request's state (id, logger) and the input boundary (http/storable-input.ts).
   */
  readonly edge: readonly Middleware[];
  readonly logger: Logger;
  readonly db: Kysely<Database>;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly protect: RecordProtection;
  readonly rotation: RefreshRotation;
}

// Asymmetric algorithms only: a symmetric one would use the client secret as a key, and we
// store only its hash (see clients/client-secret.ts).
const SIGNING_ALGS: ['RS256', 'PS256', 'ES256', 'EdDSA'] = ['RS256', 'PS256', 'ES256', 'EdDSA'];

type PolicyClient = { clientId: string; metadata(): Record<string, unknown> };
type PolicyToken = {
  clientId?: string | undefined;
  aud?: string | string[] | undefined;
  resourceServer?: { audience?: string | undefined } | undefined;
};

/**
 * Introspection (RFC 7662 §4) and revocation: a client may ask about the tokens issued to it,
 * and a resource server registered as a client (--introspects URI) about the tokens meant for it.
 */
function tokenPolicy(_ctx: KoaContextWithOIDC, client: PolicyClient, token: PolicyToken) {
  if (token.clientId === client.clientId) return true;
  const serves = client.metadata().resource_server_for;
  const audience = token.resourceServer?.audience ?? token.aud;
  const audiences = Array.isArray(audience) ? audience : audience ? [audience] : [];
  return Array.isArray(serves) && audiences.some((a) => serves.includes(a));
}

function stringList(key: string, value: unknown): void {
  if (value !== undefined && (!Array.isArray(value) || value.some((v) => typeof v !== 'string')))
    throw new Error(`${key} must be an array of strings`);
}

function lifetimes(config: Config, clock: Clock): NonNullable<Configuration['ttl']> {
  const { ttl } = config;
  return {
    AccessToken: (_ctx, token) =>
      (token as { resourceServer?: { accessTokenTTL?: number } }).resourceServer?.accessTokenTTL ?? ttl.accessToken,
    AuthorizationCode: ttl.authorizationCode,
    ClientCredentials: (_ctx, token) =>
      (token as { resourceServer?: { accessTokenTTL?: number } }).resourceServer?.accessTokenTTL ?? ttl.accessToken,
    IdToken: ttl.idToken,
    RefreshToken: refreshTokenTtl(config.refresh, clock) as never,
    Interaction: ttl.interaction,
    Session: ttl.session,
    Grant: ttl.grant,
    DeviceCode: 600,
    BackchannelAuthenticationRequest: 600,
  };
}

/** The account's claims for a token: the account the request already loaded, or a fresh look-up. */
function claimsOf(findAccount: FindAccount) {
  return async (ctx: KoaContextWithOIDC | undefined, accountId: string) => {
    const loaded = ctx?.oidc?.account;
    const account = loaded?.accountId === accountId ? loaded : await findAccount(ctx as KoaContextWithOIDC, accountId);
    return account ? ((await account.claims('userinfo', '', {}, [])) as Record<string, unknown>) : undefined;
  };
}

function buildConfiguration(deps: ProviderDeps): Configuration {
  const { config, pages } = deps;
  const findAccount = createFindAccount(deps.accounts);
  const secure = config.issuer.startsWith('https:');
  const basePath = issuerBasePath(config.issuer);
  // Under an issuer with a path, the engine's cookies stay under it too.
  const cookie = { httpOnly: true, sameSite: 'lax' as const, secure, signed: true, path: basePath || '/' };
  // OIDC Core §3.1.2.1: authorization requests by POST (opt-in). A cross-site form POST carries
  // the session cookie only when it is SameSite=None, which the engine therefore requires; the
  // interaction cookies are read on our own pages only and stay Lax. See README.
  const long = config.authorizationPost ? { ...cookie, sameSite: 'none' as const } : cookie;
  return {
    adapter: deps.adapter,
    // The account page's own client, for signing in only (oidc/account-page-client.ts).
    clients: [accountPageClient(config.issuer, config.publicName)],
    discovery: {
      claim_types_supported: ['normal'],
      // Not in OpenID Connect Discovery, but widely read (Keycloak and others publish it).
      account_management_uri: `${config.issuer}${ACCOUNT_PATH}`,
      // Prompt Create 1.0 §5: an OP that supports prompt=create lists it in prompt_values_supported
      // (the engine lists no prompts itself; this option adds metadata to its document).
      prompt_values_supported: ['none', 'login', 'consent', ...(config.registration.open ? ['create'] : [])],
    },
    routes: { ...ENGINE_ROUTES },
    enableHttpPostMethods: config.authorizationPost,
    findAccount,
    // OIDC Core §2 acr, advertised as acr_values_supported (accounts/mfa-policy.ts; README: Multi-factor sign-in).
    acrValues: [...ACR_VALUES],
    claims: {
      ...Object.fromEntries(Object.entries(SCOPE_CLAIMS).map(([scope, claims]) => [scope, [...claims]])),
      // How the user signed in, in every ID token (OIDC Core §2 acr, RFC 8176 amr; issue 14 §3):
      // the engine puts only claims of a granted scope into it, so they go with openid.
      openid: [...SCOPE_CLAIMS.openid, 'acr', 'amr'],
    },
    scopes: ['openid', 'offline_access', ...Object.keys(SCOPE_CLAIMS).filter((s) => s !== 'openid')],
    // A client gets only the OpenID Connect scopes it was registered for (oidc/client-scopes.ts).
    extraParams: { scope: checkScopeParameter },
    // Claims of granted scopes go into the ID token too, as Keycloak and most IdPs do; RPs expect them.
    conformIdTokenClaims: false,
    cookies: { keys: [...deps.cookieKeys], long, short: cookie },
    jwks: { keys: [...deps.jwks] as never },
    // id_token only for clients registered with --response-types code,id_token (form_post);
    // everyone else is answered unsupported_response_type (oidc/response-types.ts).
    responseTypes: ['code', 'id_token'],
    // RFC 9700 §2.1.1: PKCE for every client using the code flow, confidential ones too, unless
    // a confidential one registered with --pkce optional sends a nonce (oidc/pkce-policy.ts).
    pkce: { required: pkceRequired },
    extraTokenClaims: accessTokenClaims({ resources: deps.resources, claimsOf: claimsOf(findAccount) }) as never,
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    // Exact redirect URI matching, always named in the request.
    allowOmittingSingleRegisteredRedirectUri: false,
    extraClientMetadata: {
      properties: [
        'first_party',
        'allowed_resources',
        'api_scopes',
        'resource_server_for',
        'refresh_rotation',
        'refresh_idle_seconds',
        'refresh_absolute_seconds',
        'pkce',
        'roles',
        'require_mfa',
      ],
      validator(_ctx, key, value, metadata) {
        if (value === undefined) return;
        if (key === 'pkce' && value !== 'required' && value !== 'optional')
          throw new Error('pkce must be required or optional');
        // RFC 9700 §2.1.1: a public client has nothing but PKCE to bind its code.
        if (key === 'pkce' && value === 'optional' && metadata.token_endpoint_auth_method === 'none')
          throw new Error('a public client always uses PKCE');
        if (key === 'roles') stringList(key, value);
        if (key === 'first_party' && typeof value !== 'boolean') throw new Error('first_party must be a boolean');
        if (key === 'require_mfa' && typeof value !== 'boolean') throw new Error('require_mfa must be a boolean');
        if (['allowed_resources', 'api_scopes', 'resource_server_for'].includes(key)) stringList(key, value);
        if (key === 'refresh_rotation' && value !== 'always' && value !== 'never')
          throw new Error('refresh_rotation must be always or never');
        if (key.endsWith('_seconds') && !(Number.isInteger(value) && (value as number) >= 60))
          throw new Error(`${key} must be a whole number of seconds, at least 60`);
      },
    },
    // Every feature with an endpoint is named here: the ones we serve, and the engine's others
    // off, so discovery advertises nothing that we do not answer.
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: false },
      deviceFlow: { enabled: false },
      ciba: { enabled: false },
      // RFC 9126: PAR at /request (the engine's default); PAR-only clients are not offered.
      pushedAuthorizationRequests: { enabled: true },
      backchannelLogout: { enabled: true },
      userinfo: { enabled: true },
      clientCredentials: { enabled: true },
      revocation: { enabled: true, allowedPolicy: tokenPolicy },
      introspection: { enabled: true, allowedPolicy: tokenPolicy },
      resourceIndicators: resourceIndicators(deps.resources),
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx, form) => pages.logout(ctx, form, { confirm: !hintMatchesSession(ctx) }),
        postLogoutSuccessSource: (ctx) => pages.postLogout(ctx),
      },
    },
    enabledJWA: {
      idTokenSigningAlgValues: SIGNING_ALGS,
      userinfoSigningAlgValues: SIGNING_ALGS,
      introspectionSigningAlgValues: SIGNING_ALGS,
      authorizationSigningAlgValues: SIGNING_ALGS,
      requestObjectSigningAlgValues: SIGNING_ALGS,
      clientAuthSigningAlgValues: SIGNING_ALGS,
    },
    loadExistingGrant,
    rotateRefreshToken: rotateRefreshToken(config.refresh),
    issueRefreshToken,
    clientBasedCORS(_ctx, origin, client) {
      // Browser-based (public) clients may call us from the origins of their redirect URIs.
      return client.redirectUris?.some((uri) => URL.parse(uri)?.origin === origin) ?? false;
    },
    interactions: {
      policy: withMfaStepUp(interactionPolicyKeepingOfflineAccess({ create: config.registration.open })),
      url: (_ctx, interaction) => `${basePath}/interaction/${interaction.uid}`,
    },
    // The engine's own fetch refuses special-use addresses (SSRF protection); intranet setups
    // whose apps live on private addresses opt out with POSTERN_OUTBOUND_PRIVATE_NETWORK=true.
    fetch: (url, options) => {
      if (config.outboundPrivateNetwork) delete (options as { dispatcher?: unknown }).dispatcher;
      return globalThis.fetch(url, options);
    },
    renderError: (ctx, out) => pages.error(ctx, out as { error: string; error_description?: string }),
    ttl: lifetimes(config, deps.clock),
  };
}

export function createProvider(deps: ProviderDeps): Provider {
  const provider = new Provider(deps.config.issuer, buildConfiguration(deps));
  // The engine is a Koa app of its own, and what it records (grant activity, refresh-token
  // reuse) reads its ctx.ip. Trust exactly one proxy hop, as our app does (http/app.ts): with
  // Koa's default maxIpsCount of 0, ctx.ip is the FIRST X-Forwarded-For entry, which the client writes.
  provider.proxy = deps.config.trustProxy;
  provider.maxIpsCount = 1;
  // First of the engine's middleware: Host pinning and Retry-After (oidc/engine-middleware.ts).
  provider.use(engineMiddleware(deps));
  for (const middleware of deps.edge) provider.use(middleware);
  // Every replaced engine method, with its reason, is in oidc/engine-overrides.ts.
  overrideEngine(provider, deps);
  watchEvents(provider, deps);
  retryFailedBackchannelLogout(provider, deps.logger);
  provider.use(deps.rotation.middleware);
  return provider;
}
