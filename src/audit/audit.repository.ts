import { sql, type Kysely } from 'kysely';

import type { AuditEventRow, Database } from '../db/tables.ts';
import type { AuditEvent, AuditEventInput, AuditQuery } from './audit-event.ts';

function toEvent(row: AuditEventRow): AuditEvent {
  return {
    id: String(row.id),
    at: row.at,
    type: row.type as AuditEvent['type'],
    accountId: row.account_id,
    clientId: row.client_id,
    ip: row.ip,
    userAgent: row.user_agent,
    details: row.details,
  };
}

export async function insertAuditEvent(db: Kysely<Database>, at: Date, event: AuditEventInput): Promise<void> {
  await db
    .insertInto('audit_events')
    .values({
      at,
      type: event.type,
      account_id: event.accountId ?? null,
      client_id: event.clientId ?? null,
      ip: event.ip ?? null,
      user_agent: event.userAgent?.slice(0, 512) ?? null,
      details: JSON.stringify(event.details ?? {}),
    })
    .execute();
}

/** Newest first. */
export async function queryAuditEvents(db: Kysely<Database>, query: AuditQuery): Promise<AuditEvent[]> {
  let q = db.selectFrom('audit_events').selectAll();
  if (query.accountId) q = q.where('account_id', '=', query.accountId);
  if (query.type) q = q.where('type', '=', query.type);
  if (query.clientId) q = q.where('client_id', '=', query.clientId);
  if (query.since) q = q.where('at', '>=', query.since);
  if (query.until) q = q.where('at', '<', query.until);
  // Pages follow the id (the order events were written), which no later write can enter
  // between two pages; `at` may disagree with it by the time a write waited.
  if (query.beforeId) q = q.where('id', '<', query.beforeId as never);
  q = query.paged ? q.orderBy('id', 'desc') : q.orderBy('at', 'desc').orderBy('id', 'desc');
  const rows = await q.limit(query.limit ?? 100).execute();
  return rows.map(toEvent);
}

/** One bounded batch of events older than `before`, oldest first (index audit_events_at). */
export async function deleteAuditEventsBefore(db: Kysely<Database>, before: Date, limit: number): Promise<number> {
  const result = await sql`
    delete from audit_events where id in (
      select id from audit_events where at < ${before} order by at limit ${limit}
    )`.execute(db);
  return Number(result.numAffectedRows ?? 0n);
}

/** Detail keys that hold a username or an email address (account.created, profile and email changes). */
const IDENTIFYING_DETAILS = ['username', 'email', 'from', 'to'];

/**
 * A deleted account's trail, pseudonymised: its rows keep the account id (a random UUID that,
 * with the account row gone, names no one), the time, type, client, IP and user agent; every
 * detail that held a username or an address (by key, or whose text is one of `identifiers`)
 * becomes "[deleted]".
 */
export async function pseudonymiseAccountEvents(
  db: Kysely<Database>,
  accountId: string,
  identifiers: readonly string[],
): Promise<number> {
  // An empty `in ()` is not SQL: the list holds at least the empty string, which changes nothing.
  const lowered = ['', ...identifiers.map((i) => i.toLowerCase())];
  const result = await sql`
    update audit_events set details = (
      select coalesce(jsonb_object_agg(d.key,
        case when jsonb_typeof(d.value) = 'string'
            and (d.key in (${sql.join(IDENTIFYING_DETAILS)}) or lower(d.value #>> '{}') in (${sql.join(lowered)}))
          then to_jsonb('[deleted]'::text) else d.value end), '{}'::jsonb)
      from jsonb_each(audit_events.details) d)
    where account_id = ${accountId} and details is not null and details <> '{}'::jsonb`.execute(db);
  return Number(result.numAffectedRows ?? 0n);
}
