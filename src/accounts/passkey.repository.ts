import { sql, type Kysely, type Transaction } from 'kysely';

import type { Database, WebauthnChallengePurpose } from '../db/tables.ts';

// Passkeys and the challenges of WebAuthn ceremonies under way. The two operations that guard
// security are each ONE statement: using a challenge (delete ... returning, so of concurrent
// requests on any number of instances exactly one gets it) and moving a credential's signature
// counter forward (a compare-and-set, so two uses of one assertion cannot both pass).

type Executor = Kysely<Database> | Transaction<Database>;

export interface StoredPasskey {
  readonly id: string;
  readonly accountId: string;
  readonly publicKey: string;
  readonly counter: number;
  readonly transports: readonly string[];
  readonly deviceType: 'singleDevice' | 'multiDevice';
  readonly backedUp: boolean;
  readonly name: string;
  readonly createdAt: Date;
  readonly lastUsedAt: Date | null;
}

interface Row {
  id: string;
  account_id: string;
  public_key: string;
  counter: string;
  transports: string[];
  device_type: 'singleDevice' | 'multiDevice';
  backed_up: boolean;
  name: string;
  created_at: Date;
  last_used_at: Date | null;
}

function toPasskey(r: Row): StoredPasskey {
  return {
    id: r.id,
    accountId: r.account_id,
    publicKey: r.public_key,
    counter: Number(r.counter),
    transports: r.transports,
    deviceType: r.device_type,
    backedUp: r.backed_up,
    name: r.name,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
  };
}

const COLUMNS = [
  'id',
  'account_id',
  'public_key',
  sql<string>`counter::text`.as('counter'),
  'transports',
  'device_type',
  'backed_up',
  'name',
  'created_at',
  'last_used_at',
] as const;

export async function insertPasskey(db: Executor, p: Omit<StoredPasskey, 'lastUsedAt'>): Promise<void> {
  await db
    .insertInto('webauthn_credentials')
    .values({
      id: p.id,
      account_id: p.accountId,
      public_key: p.publicKey,
      counter: p.counter,
      transports: [...p.transports],
      device_type: p.deviceType,
      backed_up: p.backedUp,
      name: p.name,
      created_at: p.createdAt,
    })
    .execute();
}

export async function listPasskeys(db: Executor, accountId: string): Promise<StoredPasskey[]> {
  const rows = await db
    .selectFrom('webauthn_credentials')
    .select(COLUMNS)
    .where('account_id', '=', accountId)
    .orderBy('created_at')
    .orderBy('id')
    .execute();
  return rows.map(toPasskey);
}

export async function findPasskey(db: Executor, id: string): Promise<StoredPasskey | undefined> {
  const row = await db.selectFrom('webauthn_credentials').select(COLUMNS).where('id', '=', id).executeTakeFirst();
  return row && toPasskey(row);
}

/** Removes one of the account's passkeys; returns it, or undefined when it is not the account's. */
export async function deletePasskey(db: Executor, accountId: string, id: string): Promise<StoredPasskey | undefined> {
  const row = await db
    .deleteFrom('webauthn_credentials')
    .where('account_id', '=', accountId)
    .where('id', '=', id)
    .returning(COLUMNS)
    .executeTakeFirst();
  return row && toPasskey(row);
}

/** Removes every passkey of the account; returns how many there were. */
export async function deleteAccountPasskeys(db: Executor, accountId: string): Promise<number> {
  const result = await db.deleteFrom('webauthn_credentials').where('account_id', '=', accountId).executeTakeFirst();
  return Number(result.numDeletedRows);
}

/**
 * Records a use. WebAuthn §6.1.1: a counter that does not move forward may mean a cloned
 * authenticator; the library refuses it against the value read, and this compare-and-set
 * refuses it against the value stored now, so a second use racing the first cannot pass.
 * Authenticators that keep no counter always send 0, and stay at 0.
 */
export async function advanceCounter(
  db: Executor,
  id: string,
  seen: { readonly from: number; readonly to: number },
  at: Date,
): Promise<boolean> {
  const result = await sql<{ id: string }>`
    update webauthn_credentials set counter = ${seen.to}, last_used_at = ${at}
    where id = ${id} and counter = ${seen.from} and (${seen.to}::bigint > counter or ${seen.to}::bigint = 0)
    returning id`.execute(db);
  return result.rows.length === 1;
}

/** One challenge per binding and purpose: a new ceremony replaces the one before it. */
export async function putChallenge(
  db: Executor,
  c: {
    bindingHash: string;
    purpose: WebauthnChallengePurpose;
    challengeHash: string;
    accountId: string | null;
    expiresAt: Date;
  },
): Promise<void> {
  await db
    .insertInto('webauthn_challenges')
    .values({
      binding_hash: c.bindingHash,
      purpose: c.purpose,
      challenge_hash: c.challengeHash,
      account_id: c.accountId,
      expires_at: c.expiresAt,
    })
    .onConflict((oc) =>
      oc.columns(['binding_hash', 'purpose']).doUpdateSet({
        challenge_hash: c.challengeHash,
        account_id: c.accountId,
        expires_at: c.expiresAt,
      }),
    )
    .execute();
}

/**
 * Uses a challenge: ONE delete ... returning, so one request gets it and every other, on any
 * instance, finds nothing. An expired challenge is deleted too, and refused.
 */
export async function takeChallenge(
  db: Executor,
  c: { bindingHash: string; purpose: WebauthnChallengePurpose; challengeHash: string },
  now: Date,
): Promise<{ accountId: string | null } | undefined> {
  const row = await db
    .deleteFrom('webauthn_challenges')
    .where('binding_hash', '=', c.bindingHash)
    .where('purpose', '=', c.purpose)
    .where('challenge_hash', '=', c.challengeHash)
    .returning(['account_id', 'expires_at'])
    .executeTakeFirst();
  if (!row || row.expires_at.getTime() <= now.getTime()) return undefined;
  return { accountId: row.account_id };
}

export async function deleteExpiredChallenges(db: Executor, before: Date): Promise<number> {
  const result = await db.deleteFrom('webauthn_challenges').where('expires_at', '<', before).executeTakeFirst();
  return Number(result.numDeletedRows);
}
