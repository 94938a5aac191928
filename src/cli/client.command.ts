import { readFileSync } from 'node:fs';

import {
  GRANT_TYPES,
  PKCE_POLICIES,
  RESPONSE_TYPES,
  SECRET_AUTH_METHODS,
  type NewClient,
} from '../clients/client-metadata.ts';
import { toClientView, type ClientView } from '../clients/client-view.ts';
import { PosternError } from '../shared/errors.ts';
import { commaList, exclusive, helpHint, missingOption, UsageError, type OptionSpecs, type Values } from './args.ts';
import { defineCommand, JSON_OPTION } from './command.ts';
import { fields, isoOrNever, listOrDash, table, toJson } from './output.ts';
import { withServices, type CliContext, type Command } from './runtime.ts';

function describeClient(view: ClientView): string {
  return fields([
    ['client id', view.clientId],
    ['name', view.name ?? '-'],
    ['type', `${view.type} (${view.tokenEndpointAuthMethod})`],
    ['grant types', listOrDash(view.grantTypes)],
    ['response types', listOrDash(view.responseTypes)],
    ['pkce', view.pkce === 'optional' ? 'optional (without it, a nonce is required)' : 'required'],
    ['roles', listOrDash(view.roles)],
    ['redirect uris', listOrDash(view.redirectUris)],
    ['post-logout uris', listOrDash(view.postLogoutRedirectUris)],
    ['oidc scopes', view.oidcScopes.join(' ') || 'none (no openid, profile, email, roles or offline_access)'],
    ['api scopes', view.apiScopes.join(' ') || 'none'],
    ['resources', listOrDash(view.resources)],
    ['introspects for', listOrDash(view.introspects)],
    ['jwks uri', view.jwksUri ?? '-'],
    ['first party', view.firstParty ? 'yes (consent is not asked)' : 'no'],
    ['second factor', view.requireMfa ? 'required (--require-mfa)' : 'as the user and installation require'],
    ['created', isoOrNever(view.createdAt)],
  ]);
}

const CREATE = 'client create';

const createOptions = {
  id: {
    type: 'string',
    value: 'ID',
    required: true,
    description: 'client_id (letters, digits, ". _ : @ -")',
  },
  'secret-stdin': {
    type: 'boolean',
    description:
      'read the secret to use (at least 32 characters) instead of a generated one from standard input (one trailing newline is dropped)',
  },
  secret: {
    type: 'string',
    value: 'S',
    description:
      'the same, from the command line (visible in the process list and shell history: a warning is printed); write --secret=S when S starts with "-"',
  },
  public: { type: 'boolean', description: 'a public client (SPA, native app): no secret, PKCE only' },
  'grant-types': {
    type: 'string',
    value: 'G[,G...]',
    required: true,
    multiple: true,
    description: GRANT_TYPES.join(', '),
  },
  'redirect-uri': {
    type: 'string',
    value: 'URI',
    multiple: true,
    description: 'required for authorization_code',
  },
  'post-logout-redirect-uri': { type: 'string', value: 'URI', multiple: true, description: 'where logout may return' },
  scope: {
    type: 'string',
    value: '"S S..."',
    description: `the only scopes it may ask for: OpenID Connect ones and its resources' (default for code flow: "openid profile email offline_access"); without openid it cannot sign anyone in for an ID token`,
  },
  'first-party': { type: 'boolean', description: 'an app of your own: users are not asked for consent' },
  name: { type: 'string', value: 'NAME', description: 'shown on the login and consent pages' },
  'auth-method': {
    type: 'string',
    value: 'M',
    description: `${SECRET_AUTH_METHODS.join(' | ')} (default client_secret_basic)`,
  },
  resource: {
    type: 'string',
    value: 'URI',
    multiple: true,
    description:
      'a resource server (API) this client may ask tokens for; with exactly one, requests that name none get it',
  },
  introspects: {
    type: 'string',
    value: 'URI',
    multiple: true,
    description: 'this client is that API: it may introspect and revoke tokens meant for it',
  },
  'jwks-uri': { type: 'string', value: 'URI', description: 'authenticate with private_key_jwt, keys published at URI' },
  'jwks-file': {
    type: 'string',
    value: 'F',
    description: 'authenticate with private_key_jwt, keys from a JWK Set file',
  },
  'refresh-rotation': {
    type: 'string',
    value: 'R',
    description: 'always (default) | never: a new refresh token on every use',
  },
  'refresh-idle-seconds': {
    type: 'string',
    value: 'S',
    description: 'a refresh token unused this long expires (default POSTERN_REFRESH_IDLE_SECONDS)',
  },
  'refresh-absolute-seconds': {
    type: 'string',
    value: 'S',
    description: 'no refresh token outlives this from sign-in (default POSTERN_REFRESH_ABSOLUTE_SECONDS)',
  },
  'backchannel-logout-uri': {
    type: 'string',
    value: 'URI',
    description: "receives a signed logout token when the user's session ends",
  },
  pkce: {
    type: 'string',
    value: 'P',
    description: `${PKCE_POLICIES.join(' | ')} (default required); optional: a confidential client may sign in without PKCE if it sends a nonce (RFC 9700 §2.1.1)`,
  },
  'response-types': {
    type: 'string',
    value: 'T[,T...]',
    multiple: true,
    description: `${RESPONSE_TYPES.join(', ')} (default code); id_token: an ID token posted to an https redirect URI with response_mode=form_post (never in a URL fragment)`,
  },
  role: {
    type: 'string',
    value: 'R',
    multiple: true,
    description:
      "the service's own roles (comma-separated too), carried by its client-credentials tokens for APIs created with --claims roles",
  },
  'require-mfa': {
    type: 'boolean',
    description: 'every sign-in at this client needs a second factor (README: Multi-factor sign-in)',
  },
  json: { type: 'boolean', description: 'print the client as JSON (with "clientSecret" when generated)' },
} as const satisfies OptionSpecs;

type CreateValues = Values<typeof createOptions>;

function seconds(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw)) throw new UsageError(`--${name} must be a whole number of seconds (got "${raw}")`);
  return Number(raw);
}

function readRefresh(
  values: CreateValues,
): Pick<NewClient, 'refreshRotation' | 'refreshIdleSeconds' | 'refreshAbsoluteSeconds'> {
  const rotation = values['refresh-rotation'];
  if (rotation !== undefined && rotation !== 'always' && rotation !== 'never')
    throw new UsageError(`--refresh-rotation must be always or never (got "${rotation}")`);
  const idle = seconds(values['refresh-idle-seconds'], 'refresh-idle-seconds');
  const absolute = seconds(values['refresh-absolute-seconds'], 'refresh-absolute-seconds');
  return {
    ...(rotation ? { refreshRotation: rotation } : {}),
    ...(idle !== undefined ? { refreshIdleSeconds: idle } : {}),
    ...(absolute !== undefined ? { refreshAbsoluteSeconds: absolute } : {}),
  };
}

function readJwksFile(file: string | undefined): { keys: unknown[] } | undefined {
  if (file === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new UsageError(`--jwks-file ${file}: ${(error as Error).message.split('\n')[0]}`);
  }
  if (!Array.isArray((parsed as { keys?: unknown })?.keys))
    throw new UsageError(`--jwks-file ${file}: not a JWK Set (no "keys" array)`);
  return parsed as { keys: unknown[] };
}

const SECRET_WARNING =
  'postern: warning: --secret leaves the secret in the process list and shell history; use --secret-stdin';

/**
 * The client secret given on the command line or on standard input; read before the database
 * is opened, so a missing one fails fast. Like --password-stdin, one trailing newline (what
 * `echo` and most secret stores add) is not part of it.
 */
async function readSecret(values: CreateValues, ctx: CliContext): Promise<string | undefined> {
  exclusive(CREATE, values, 'secret', 'secret-stdin');
  exclusive(CREATE, values, 'secret', 'public');
  exclusive(CREATE, values, 'secret-stdin', 'public');
  if (values['secret-stdin']) {
    const secret = (await ctx.io.readStdin()).replace(/\r?\n$/, '');
    if (secret === '') throw new UsageError('--secret-stdin: standard input was empty');
    return secret;
  }
  const secret = values.secret;
  if (secret !== undefined) ctx.io.err(SECRET_WARNING);
  return secret;
}

function readNewClient(values: CreateValues, secret: string | undefined): NewClient {
  // Declared required, but "--grant-types ," names none either.
  const grantTypes = commaList(values['grant-types']);
  if (grantTypes.length === 0) throw missingOption(CREATE, 'grant-types');
  const authMethod = values['auth-method'];
  if (authMethod !== undefined && values.public)
    throw new UsageError(`--auth-method does not apply to a public client ${helpHint(CREATE)}`);
  if (authMethod !== undefined && !(SECRET_AUTH_METHODS as readonly string[]).includes(authMethod)) {
    throw new UsageError(`--auth-method must be one of ${SECRET_AUTH_METHODS.join(', ')} (got "${authMethod}")`);
  }
  const { scope, name, pkce } = values;
  const jwksUri = values['jwks-uri'];
  const jwks = readJwksFile(values['jwks-file']);
  const backchannel = values['backchannel-logout-uri'];
  if (pkce !== undefined && !(PKCE_POLICIES as readonly string[]).includes(pkce))
    throw new UsageError(`--pkce must be ${PKCE_POLICIES.join(' or ')} (got "${pkce}")`);
  const responseTypes = commaList(values['response-types']);
  return {
    clientId: values.id,
    grantTypes,
    redirectUris: values['redirect-uri'],
    postLogoutRedirectUris: values['post-logout-redirect-uri'],
    public: values.public,
    firstParty: values['first-party'],
    ...(secret !== undefined ? { secret } : {}),
    ...(scope !== undefined ? { scope } : {}),
    ...(name !== undefined ? { name } : {}),
    ...(authMethod !== undefined ? { authMethod: authMethod as NonNullable<NewClient['authMethod']> } : {}),
    resources: values.resource,
    resourceServerFor: values.introspects,
    ...(jwksUri !== undefined ? { jwksUri } : {}),
    ...(jwks !== undefined ? { jwks } : {}),
    ...readRefresh(values),
    ...(backchannel !== undefined ? { backchannelLogoutUri: backchannel } : {}),
    ...(pkce !== undefined ? { pkce: pkce as NonNullable<NewClient['pkce']> } : {}),
    ...(responseTypes.length ? { responseTypes } : {}),
    roles: commaList(values.role),
    ...(values['require-mfa'] ? { requireMfa: true } : {}),
  };
}

const create = defineCommand({
  name: CREATE,
  summary: 'register a client (prints a generated secret once)',
  description: `Registers an OAuth client. A confidential client without --secret gets a generated secret,
printed once: only its hash is stored.`,
  options: createOptions,
  async run({ values }, ctx) {
    const secret = await readSecret(values, ctx);
    const input = readNewClient(values, secret);
    const { client, secret: generated } = await withServices(ctx, (c) => c.clients.create(input));
    const view = toClientView(client);
    if (values.json) {
      ctx.io.out(toJson(generated === undefined ? view : { ...view, clientSecret: generated }));
      return;
    }
    ctx.io.out(`created ${view.type} client "${view.clientId}" (${view.tokenEndpointAuthMethod})`);
    if (generated !== undefined) {
      ctx.io.out(`client secret: ${generated}`);
      ctx.io.out('Store this secret now: it will not be shown again (only its hash is kept).');
    }
  },
});

const list = defineCommand({
  name: 'client list',
  summary: 'list clients',
  options: { json: JSON_OPTION },
  async run({ values }, ctx) {
    const views = (await withServices(ctx, (c) => c.clients.list())).map(toClientView);
    if (values.json) return ctx.io.out(toJson(views));
    if (views.length === 0) return ctx.io.out('no clients');
    ctx.io.out(
      table(
        ['CLIENT ID', 'TYPE', 'GRANT TYPES', 'FIRST PARTY', 'NAME'],
        views.map((v) => [v.clientId, v.type, v.grantTypes.join(','), v.firstParty ? 'yes' : 'no', v.name ?? '']),
      ),
    );
  },
});

const CLIENT_ID = { name: 'ID', description: 'the client_id' } as const;

const show = defineCommand({
  name: 'client show',
  summary: 'show one client (never its secret)',
  options: { json: JSON_OPTION },
  positionals: [CLIENT_ID],
  async run({ values, positionals: [id] }, ctx) {
    const client = await withServices(ctx, (c) => c.clients.find(id));
    if (!client) throw new PosternError('ERR_NOT_FOUND', `no client "${id}"`);
    const view = toClientView(client);
    ctx.io.out(values.json ? toJson(view) : describeClient(view));
  },
});

const remove = defineCommand({
  name: 'client delete',
  summary: 'delete a client',
  options: { json: { type: 'boolean', description: 'print {"deleted": ID}' } },
  positionals: [CLIENT_ID],
  async run({ values, positionals: [id] }, ctx) {
    await withServices(ctx, (c) => c.clients.delete(id));
    ctx.io.out(values.json ? toJson({ deleted: id }) : `deleted client "${id}"`);
  },
});

export const clientCommands: readonly Command[] = [create, list, show, remove];
