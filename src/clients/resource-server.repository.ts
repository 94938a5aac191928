import type { Kysely } from 'kysely';

import type { Database, ResourceServerRow } from '../db/tables.ts';
import { isStorableText } from '../shared/storable-text.ts';
import type { ResourceServer } from './resource-server.ts';

function toResourceServer(row: ResourceServerRow): ResourceServer {
  return {
    identifier: row.identifier,
    scopes: row.scopes,
    accessTokenTtl: row.access_token_ttl,
    tokenFormat: row.token_format,
    signingAlg: row.signing_alg,
    claims: row.claims,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

type NewResourceServer = Omit<ResourceServer, 'createdAt' | 'updatedAt'>;

function toColumns(rs: NewResourceServer) {
  return {
    identifier: rs.identifier,
    scopes: [...rs.scopes],
    access_token_ttl: rs.accessTokenTtl,
    token_format: rs.tokenFormat,
    signing_alg: rs.signingAlg,
    claims: [...rs.claims],
  };
}

/** Inserts it unless one with that identifier exists (then nothing changes); true if inserted. */
export async function insertResourceServerIfMissing(db: Kysely<Database>, rs: NewResourceServer): Promise<boolean> {
  const row = await db
    .insertInto('resource_servers')
    .values(toColumns(rs))
    .onConflict((oc) => oc.column('identifier').doNothing())
    .returning('identifier')
    .executeTakeFirst();
  return row !== undefined;
}

export async function insertResourceServer(db: Kysely<Database>, rs: NewResourceServer): Promise<ResourceServer> {
  const row = await db.insertInto('resource_servers').values(toColumns(rs)).returningAll().executeTakeFirstOrThrow();
  return toResourceServer(row);
}

export async function findResourceServer(
  db: Kysely<Database>,
  identifier: string,
): Promise<ResourceServer | undefined> {
  if (!isStorableText(identifier)) return undefined; // no such identifier can exist
  const row = await db
    .selectFrom('resource_servers')
    .selectAll()
    .where('identifier', '=', identifier)
    .executeTakeFirst();
  return row && toResourceServer(row);
}

export async function listResourceServers(db: Kysely<Database>): Promise<ResourceServer[]> {
  return (await db.selectFrom('resource_servers').selectAll().orderBy('created_at').execute()).map(toResourceServer);
}

export async function deleteResourceServer(db: Kysely<Database>, identifier: string): Promise<boolean> {
  const result = await db.deleteFrom('resource_servers').where('identifier', '=', identifier).executeTakeFirst();
  return result.numDeletedRows > 0n;
}
