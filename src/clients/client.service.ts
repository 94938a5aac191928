import type { Kysely } from 'kysely';

import type { AuditLog } from '../audit/audit-log.ts';
import type { Database } from '../db/tables.ts';
import { PosternError } from '../shared/errors.ts';
import type { ClientRecord } from './client.ts';
import { deleteClient, findClient, insertClient, listClients } from './client.repository.ts';
import { generateClientSecret, hashClientSecret, MIN_CLIENT_SECRET_LENGTH } from './client-secret.ts';

export const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'] as const;
export const SECRET_AUTH_METHODS = ['client_secret_basic', 'client_secret_post'] as const;

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
}

export interface ClientService {
  /** `secret` is returned once, when Postern generated it; only its hash is stored. */
  create(input: NewClient): Promise<{ client: ClientRecord; secret?: string }>;
  find(clientId: string): Promise<ClientRecord | undefined>;
  list(): Promise<ClientRecord[]>;
  delete(clientId: string): Promise<void>;
}

/** Checks metadata the way the protocol engine will when it loads the client (injected by the container). */
export type MetadataValidator = (metadata: Record<string, unknown>) => Promise<void>;

const CLIENT_ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/; // RFC 6749 §3.3 scope-token

function invalid(message: string): never {
  throw new PosternError('ERR_INVALID_INPUT', message);
}

function checkUri(uri: string, what: string): void {
  const url = URL.parse(uri);
  if (!url || uri.includes('#')) invalid(`${what} "${uri}" must be an absolute URI without a fragment`);
}

export function buildMetadata(input: NewClient, secretHash: string | null): Record<string, unknown> {
  if (!CLIENT_ID.test(input.clientId)) invalid('client id must be 1-128 letters, digits or ". _ : @ -", starting with a letter or digit');
  if (input.public && input.secret) invalid('a public client has no secret: use --secret or --public, not both');
  const grantTypes = [...new Set(input.grantTypes)];
  if (grantTypes.length === 0) invalid('at least one grant type is required');
  for (const g of grantTypes) if (!(GRANT_TYPES as readonly string[]).includes(g)) invalid(`unknown grant type "${g}" (allowed: ${GRANT_TYPES.join(', ')})`);
  if (input.public && grantTypes.includes('client_credentials')) invalid('client_credentials needs a confidential client (drop --public)');
  const redirectUris = [...new Set(input.redirectUris ?? [])];
  const code = grantTypes.includes('authorization_code');
  if (code && redirectUris.length === 0) invalid('authorization_code needs at least one --redirect-uri');
  if (!code && redirectUris.length > 0) invalid('--redirect-uri only applies to the authorization_code grant');
  redirectUris.forEach((u) => checkUri(u, 'redirect URI'));
  const postLogout = [...new Set(input.postLogoutRedirectUris ?? [])];
  postLogout.forEach((u) => checkUri(u, 'post-logout redirect URI'));
  const scope = (input.scope ?? (code ? 'openid profile email offline_access' : '')).trim().split(/\s+/).filter(Boolean);
  for (const s of scope) if (!SCOPE_TOKEN.test(s)) invalid(`"${s}" is not a valid scope`);
  return {
    client_id: input.clientId,
    ...(input.name ? { client_name: input.name } : {}),
    grant_types: grantTypes,
    response_types: code ? ['code'] : [],
    redirect_uris: redirectUris,
    post_logout_redirect_uris: postLogout,
    token_endpoint_auth_method: input.public ? 'none' : (input.authMethod ?? 'client_secret_basic'),
    ...(scope.length ? { scope: scope.join(' ') } : {}),
    ...(secretHash ? { client_secret: secretHash } : {}),
  };
}

export function createClientService(deps: {
  db: Kysely<Database>;
  clientSecretKey: Buffer;
  validate: MetadataValidator;
  audit: AuditLog;
}): ClientService {
  const { db, clientSecretKey, validate, audit } = deps;
  return {
    async create(input) {
      if (input.secret !== undefined && input.secret.length < MIN_CLIENT_SECRET_LENGTH) {
        invalid(`a client secret must be at least ${MIN_CLIENT_SECRET_LENGTH} characters; omit --secret to have one generated`);
      }
      const generated = input.public || input.secret !== undefined ? undefined : generateClientSecret();
      const secret = input.secret ?? generated;
      const secretHash = secret === undefined ? null : hashClientSecret(clientSecretKey, secret);
      const metadata = buildMetadata(input, secretHash);
      try {
        await validate(metadata);
      } catch (error) {
        const e = error as { error_description?: string; message?: string };
        invalid(`invalid client: ${e.error_description ?? e.message ?? 'rejected'}`);
      }
      if (await findClient(db, input.clientId)) throw new PosternError('ERR_DUPLICATE', `a client "${input.clientId}" already exists`);
      try {
        const { client_secret: _omit, ...stored } = metadata;
        const client = await insertClient(db, { clientId: input.clientId, secretHash, metadata: stored, firstParty: input.firstParty ?? false });
        audit.record({ type: 'client.created', clientId: client.clientId, details: { grantTypes: stored.grant_types, public: input.public === true } });
        return generated === undefined ? { client } : { client, secret: generated };
      } catch (error) {
        if ((error as { code?: string }).code === '23505') throw new PosternError('ERR_DUPLICATE', `a client "${input.clientId}" already exists`);
        throw error;
      }
    },
    find: (clientId) => findClient(db, clientId),
    list: () => listClients(db),
    async delete(clientId) {
      if (!(await deleteClient(db, clientId))) throw new PosternError('ERR_NOT_FOUND', `no client "${clientId}"`);
      audit.record({ type: 'client.deleted', clientId });
    },
  };
}
