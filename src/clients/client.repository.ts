import { sql, type Kysely, type Transaction } from 'kysely';

import type { ClientRow, Database } from '../db/tables.ts';
import { isStorableText } from '../shared/storable-text.ts';
import type { ClientRecord } from './client.ts';

type Executor = Kysely<Database> | Transaction<Database>;

function toClient(row: ClientRow): ClientRecord {
  return {
    clientId: row.client_id,
    secretHash: row.secret_hash,
    metadata: row.metadata,
    firstParty: row.first_party,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function insertClient(
  db: Executor,
  client: { clientId: string; secretHash: string | null; metadata: Record<string, unknown>; firstParty: boolean },
): Promise<ClientRecord> {
  const row = await db
    .insertInto('clients')
    .values({
      client_id: client.clientId,
      secret_hash: client.secretHash,
      metadata: JSON.stringify(client.metadata),
      first_party: client.firstParty,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toClient(row);
}

export async function findClient(db: Executor, clientId: string): Promise<ClientRecord | undefined> {
  // No client id holds text the database cannot store (NUL, a lone surrogate): none such exists.
  if (!isStorableText(clientId)) return undefined;
  const row = await db.selectFrom('clients').selectAll().where('client_id', '=', clientId).executeTakeFirst();
  return row && toClient(row);
}

export async function listClients(db: Executor): Promise<ClientRecord[]> {
  const rows = await db.selectFrom('clients').selectAll().orderBy('created_at').execute();
  return rows.map(toClient);
}

/** Whether any client is registered (a new installation has none). */
export async function hasClients(db: Executor): Promise<boolean> {
  return (await db.selectFrom('clients').select('client_id').limit(1).executeTakeFirst()) !== undefined;
}

export async function deleteClient(db: Executor, clientId: string): Promise<boolean> {
  const result = await db.deleteFrom('clients').where('client_id', '=', clientId).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

export async function updateClient(
  db: Executor,
  clientId: string,
  update: { secretHash?: string; metadata?: Record<string, unknown>; firstParty?: boolean },
): Promise<ClientRecord | undefined> {
  const row = await db
    .updateTable('clients')
    .set({
      ...(update.secretHash !== undefined ? { secret_hash: update.secretHash } : {}),
      ...(update.metadata !== undefined ? { metadata: JSON.stringify(update.metadata) } : {}),
      ...(update.firstParty !== undefined ? { first_party: update.firstParty } : {}),
      updated_at: sql<Date>`now()` as unknown as Date,
    })
    .where('client_id', '=', clientId)
    .returningAll()
    .executeTakeFirst();
  return row && toClient(row);
}

/** One page by client id (keyset pagination: stable while clients are added). */
export async function listClientPage(db: Executor, query: { after?: string; limit: number }): Promise<ClientRecord[]> {
  if (query.after !== undefined && !isStorableText(query.after)) return [];
  let q = db.selectFrom('clients').selectAll();
  if (query.after !== undefined) q = q.where('client_id', '>', query.after);
  const rows = await q.orderBy('client_id').limit(query.limit).execute();
  return rows.map(toClient);
}
