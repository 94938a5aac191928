import { sql, type Kysely, type Transaction } from 'kysely';

import type { Database } from '../db/tables.ts';

// The engine's Session and Grant records, read by account for `postern user sessions|logout`,
// and where each grant was signed in from. Ids here are the stored ones: keyed hashes of the
// engine's ids (oidc/record-protection.ts), which the engine never sees.

export interface GrantInfo {
  readonly grantId: string;
  readonly clientId: string;
  readonly createdAt: Date | null;
  readonly expiresAt: Date | null;
  readonly lastUsedAt: Date | null;
  readonly ip: string | null;
  readonly userAgent: string | null;
  /** The uid of the session (browser sign-in) the grant was made in, when known. */
  readonly sessionUid: string | null;
}

export interface SessionInfo {
  readonly id: string;
  readonly uid: string;
  readonly loginAt: Date | null;
  readonly expiresAt: Date | null;
  readonly clients: readonly string[];
  /** clientId -> sid, for back-channel logout. */
  readonly sids: Readonly<Record<string, string>>;
}

const fromEpoch = (v: unknown) => (typeof v === 'number' || typeof v === 'string' ? new Date(Number(v) * 1000) : null);

/** `grantId` is the stored (hashed) id of the Grant record, as listGrants joins on it. */
export async function recordGrantActivity(
  db: Kysely<Database>,
  row: {
    grantId: string;
    accountId: string;
    clientId: string;
    sessionUid: string | null;
    ip: string | null;
    userAgent: string | null;
  },
): Promise<void> {
  const values = { session_uid: row.sessionUid, ip: row.ip, user_agent: row.userAgent?.slice(0, 512) ?? null };
  await db
    .insertInto('grant_activity')
    .values({ grant_id: row.grantId, account_id: row.accountId, client_id: row.clientId, ...values })
    .onConflict((oc) => oc.column('grant_id').doUpdateSet(values))
    .execute();
}

/**
 * One bounded batch of activity rows whose grant is gone (revoked, swept) or expired: where a
 * grant was signed in from is kept as long as the grant, no longer. Rows younger than
 * `createdBefore` are left alone, so a row is never taken in the moment before its grant is saved.
 */
export async function deleteOrphanedGrantActivity(
  db: Kysely<Database>,
  now: Date,
  createdBefore: Date,
  limit: number,
): Promise<number> {
  const result = await sql`
    delete from grant_activity where grant_id in (
      select a.grant_id from grant_activity a
      where a.created_at < ${createdBefore} and not exists (
        select 1 from oidc_payloads g
        where g.kind = 'Grant' and g.id = a.grant_id and (g.expires_at is null or g.expires_at > ${now}))
      limit ${limit}
    )`.execute(db);
  return Number(result.numAffectedRows ?? 0n);
}

export async function listGrants(db: Kysely<Database>, accountId: string, now: Date): Promise<GrantInfo[]> {
  const { rows } = await sql<{
    id: string;
    payload: Record<string, unknown>;
    expires_at: Date | null;
    created_at: Date | null;
    ip: string | null;
    user_agent: string | null;
    session_uid: string | null;
    last_used: string | null;
  }>`
    select g.id, g.payload, g.expires_at, a.created_at, a.ip, a.user_agent, a.session_uid,
      (select max((t.payload->>'iat')::bigint) from oidc_payloads t where t.grant_id = g.id) as last_used
    from oidc_payloads g left join grant_activity a on a.grant_id = g.id
    where g.kind = 'Grant' and g.payload->>'accountId' = ${accountId} and (g.expires_at is null or g.expires_at > ${now})
    order by g.payload->>'iat'`.execute(db);
  return rows.map((r) => ({
    grantId: r.id,
    clientId: String(r.payload.clientId),
    createdAt: r.created_at ?? fromEpoch(r.payload.iat),
    expiresAt: r.expires_at,
    lastUsedAt: fromEpoch(r.last_used) ?? r.created_at,
    ip: r.ip,
    userAgent: r.user_agent,
    sessionUid: r.session_uid,
  }));
}

export async function listSessions(db: Kysely<Database>, accountId: string, now: Date): Promise<SessionInfo[]> {
  const rows = await db
    .selectFrom('oidc_payloads')
    .select(['id', 'payload', 'expires_at'])
    .where('kind', '=', 'Session')
    .where(sql`payload->>'accountId'`, '=', accountId)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    .execute();
  return rows.map((r) => {
    const p = r.payload as { uid?: string; loginTs?: number; authorizations?: Record<string, { sid?: string }> };
    const authorizations = p.authorizations ?? {};
    return {
      id: r.id,
      uid: String(p.uid ?? ''),
      loginAt: fromEpoch(p.loginTs),
      expiresAt: r.expires_at,
      clients: Object.keys(authorizations),
      sids: Object.fromEntries(Object.entries(authorizations).map(([c, a]) => [c, String(a.sid ?? '')])),
    };
  });
}

/** A grant and everything issued from it: tokens, codes, its activity row; all or none, in the caller's transaction. */
export async function deleteGrant(trx: Transaction<Database>, grantId: string): Promise<void> {
  await trx.deleteFrom('oidc_payloads').where('grant_id', '=', grantId).execute();
  await trx.deleteFrom('oidc_payloads').where('kind', '=', 'Grant').where('id', '=', grantId).execute();
  await trx.deleteFrom('grant_activity').where('grant_id', '=', grantId).execute();
}

export async function deleteSession(db: Kysely<Database>, id: string): Promise<void> {
  await db.deleteFrom('oidc_payloads').where('kind', '=', 'Session').where('id', '=', id).execute();
}

/** Takes one client out of a session (the browser stays signed in to the others). */
export async function removeClientFromSession(db: Kysely<Database>, id: string, clientId: string): Promise<void> {
  await sql`update oidc_payloads set payload = payload #- array['authorizations', ${clientId}]::text[]
    where kind = 'Session' and id = ${id}`.execute(db);
}
