import type { Kysely } from 'kysely';

import type { AuditLog } from '../audit/audit-log.ts';
import type { Database } from '../db/tables.ts';
import { isUniqueViolation } from '../db/unique-violation.ts';
import { invalid, PosternError } from '../shared/errors.ts';
import { checkClientIdFree } from './built-in-clients.ts';
import type { ClientRecord } from './client.ts';
import type { ClientDirectory } from './client-directory.ts';
import { buildMetadata, OIDC_SCOPES, type NewClient } from './client-metadata.ts';
import { applyChanges, type ClientChanges } from './client-changes.ts';
import {
  deleteClient,
  findClient,
  insertClient,
  listClientPage,
  listClients,
  updateClient,
} from './client.repository.ts';
import { generateClientSecret, hashClientSecret, MIN_CLIENT_SECRET_LENGTH } from './client-secret.ts';
import type { ResourceServerService } from './resource-server.service.ts';

export type { NewClient } from './client-metadata.ts';
export type { ClientChanges } from './client-changes.ts';

export interface ClientService {
  /** `secret` is returned once, when Postern generated it; only its hash is stored. */
  create(input: NewClient): Promise<{ client: ClientRecord; secret?: string }>;
  /** Through the client directory: cached for a few seconds (POSTERN_CACHE_SECONDS). */
  find(clientId: string): Promise<ClientRecord | undefined>;
  list(): Promise<ClientRecord[]>;
  /** One page by client id (the admin API's list). */
  listPage(query: { after?: string; limit: number }): Promise<ClientRecord[]>;
  /** Checked by the same rules as create; the secret and the client's kind stay. */
  update(clientId: string, changes: ClientChanges): Promise<ClientRecord>;
  /** A new generated secret, returned once; the old one stops working at once. */
  rotateSecret(clientId: string): Promise<{ client: ClientRecord; secret: string }>;
  delete(clientId: string): Promise<void>;
}

/** Checks metadata the way the protocol engine will when it loads the client (injected by the container). */
export type MetadataValidator = (metadata: Record<string, unknown>) => Promise<void>;

/** Every resource must exist, and every API scope must belong to one of the client's resources. */
async function checkResources(input: NewClient, resources: ResourceServerService): Promise<void> {
  const servers = [];
  for (const identifier of new Set([...(input.resources ?? []), ...(input.resourceServerFor ?? [])])) {
    const server = await resources.find(identifier);
    if (!server)
      invalid(`no resource server "${identifier}" (create it first: postern resource create --id ${identifier} ...)`);
    if (input.resources?.includes(identifier)) servers.push(server);
  }
  const apiScopes = (input.scope ?? '').split(/\s+/).filter((s) => s && !OIDC_SCOPES.includes(s));
  for (const scope of apiScopes) {
    if (!servers.some((s) => s.scopes.includes(scope))) {
      invalid(
        `scope "${scope}" belongs to none of this client's resources (${servers.map((s) => s.identifier).join(', ') || 'none: add --resource URI'})`,
      );
    }
  }
}

/** Metadata as the engine will load it: checked the way it will check it. */
async function checkWithEngine(validate: MetadataValidator, metadata: Record<string, unknown>): Promise<void> {
  try {
    await validate(metadata);
  } catch (error) {
    const e = error as { error_description?: string; message?: string };
    invalid(`invalid client: ${e.error_description ?? e.message ?? 'rejected'}`);
  }
}

export function createClientService(deps: {
  db: Kysely<Database>;
  clientSecretKey: Buffer;
  validate: MetadataValidator;
  audit: AuditLog;
  resources: ResourceServerService;
  directory: ClientDirectory;
}): ClientService {
  const { db, clientSecretKey, validate, audit, directory } = deps;
  return {
    async create(input) {
      checkClientIdFree(input.clientId);
      if (input.secret !== undefined && input.secret.length < MIN_CLIENT_SECRET_LENGTH) {
        invalid(
          `a client secret must be at least ${MIN_CLIENT_SECRET_LENGTH} characters; omit --secret to have one generated`,
        );
      }
      const usesSecret = !input.public && input.jwksUri === undefined && input.jwks === undefined;
      const generated = usesSecret && input.secret === undefined ? generateClientSecret() : undefined;
      const secret = input.secret ?? generated;
      const secretHash = secret === undefined ? null : hashClientSecret(clientSecretKey, secret);
      const metadata = buildMetadata(input, secretHash);
      await checkResources(input, deps.resources);
      await checkWithEngine(validate, metadata);
      if (await findClient(db, input.clientId))
        throw new PosternError('ERR_DUPLICATE', `a client "${input.clientId}" already exists`);
      try {
        const { client_secret: _omit, ...stored } = metadata;
        const client = await insertClient(db, {
          clientId: input.clientId,
          secretHash,
          metadata: stored,
          firstParty: input.firstParty ?? false,
        });
        directory.forget(client.clientId);
        audit.record({
          type: 'client.created',
          clientId: client.clientId,
          details: { grantTypes: stored.grant_types, public: input.public === true },
        });
        return generated === undefined ? { client } : { client, secret: generated };
      } catch (error) {
        if (isUniqueViolation(error))
          throw new PosternError('ERR_DUPLICATE', `a client "${input.clientId}" already exists`);
        throw error;
      }
    },
    find: (clientId) => directory.find(clientId),
    list: () => listClients(db),
    listPage: (query) => listClientPage(db, query),
    async update(clientId, changes) {
      const current = await findClient(db, clientId);
      if (!current) throw new PosternError('ERR_NOT_FOUND', `no client "${clientId}"`);
      const input = applyChanges(current, changes);
      const metadata = buildMetadata(input, current.secretHash);
      await checkResources(input, deps.resources);
      await checkWithEngine(validate, metadata);
      const { client_secret: _omit, ...stored } = metadata;
      const client = await updateClient(db, clientId, {
        metadata: stored,
        ...(changes.firstParty !== undefined ? { firstParty: changes.firstParty } : {}),
      });
      if (!client) throw new PosternError('ERR_NOT_FOUND', `no client "${clientId}"`);
      directory.forget(clientId);
      audit.record({ type: 'client.updated', clientId, details: { changed: Object.keys(changes) } });
      return client;
    },
    async rotateSecret(clientId) {
      const current = await findClient(db, clientId);
      if (!current) throw new PosternError('ERR_NOT_FOUND', `no client "${clientId}"`);
      // A public client has nothing to rotate; one with keys (private_key_jwt) rotates its keys.
      if (current.secretHash === null) invalid(`client "${clientId}" does not authenticate with a secret`, 'clientId');
      const secret = generateClientSecret();
      const client = await updateClient(db, clientId, { secretHash: hashClientSecret(clientSecretKey, secret) });
      if (!client) throw new PosternError('ERR_NOT_FOUND', `no client "${clientId}"`);
      directory.forget(clientId);
      audit.record({ type: 'client.secret_rotated', clientId });
      return { client, secret };
    },
    async delete(clientId) {
      if (!(await deleteClient(db, clientId))) throw new PosternError('ERR_NOT_FOUND', `no client "${clientId}"`);
      directory.forget(clientId);
      audit.record({ type: 'client.deleted', clientId });
    },
  };
}
