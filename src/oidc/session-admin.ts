import type { Kysely } from 'kysely';
import type Provider from 'oidc-provider';

import type { AuditLog } from '../audit/audit-log.ts';
import type { Database } from '../db/tables.ts';
import type { Clock } from '../shared/clock.ts';
import {
  deleteGrant, deleteSession, listGrants, listSessions, removeClientFromSession, type GrantInfo, type SessionInfo,
} from './session.repository.ts';

export interface SessionAdmin {
  list(accountId: string): Promise<{ sessions: SessionInfo[]; grants: GrantInfo[] }>;
  /**
   * Ends the account's sessions (or only one client's part in them) and revokes its grants with
   * every token issued from them; clients with a back-channel logout URI are told.
   */
  logout(accountId: string, options?: { clientId?: string; reason?: string }): Promise<{ sessions: number; grants: number; notified: string[] }>;
}

export function createSessionAdmin(deps: { db: Kysely<Database>; provider: () => Provider; audit: AuditLog; clock: Clock }): SessionAdmin {
  const { db, audit, clock } = deps;

  async function notify(accountId: string, sessions: SessionInfo[], clientId: string | undefined): Promise<string[]> {
    const notified: string[] = [];
    for (const session of sessions) {
      for (const id of session.clients.filter((c) => !clientId || c === clientId)) {
        const client = (await deps.provider().Client.find(id)) as unknown as
          { backchannelLogoutUri?: string; backchannelLogout(sub: string, sid: string): Promise<void> } | undefined;
        if (!client?.backchannelLogoutUri) continue;
        // Non-blocking, retried in the background (see oidc/provider-events.ts).
        await client.backchannelLogout(accountId, session.sids[id] ?? '');
        notified.push(id);
      }
    }
    return notified;
  }

  return {
    async list(accountId) {
      const now = clock.now();
      return { sessions: await listSessions(db, accountId, now), grants: await listGrants(db, accountId, now) };
    },
    async logout(accountId, options = {}) {
      const now = clock.now();
      const sessions = (await listSessions(db, accountId, now)).filter((s) => !options.clientId || s.clients.includes(options.clientId));
      const grants = (await listGrants(db, accountId, now)).filter((g) => !options.clientId || g.clientId === options.clientId);
      const notified = await notify(accountId, sessions, options.clientId);
      for (const grant of grants) await deleteGrant(db, grant.grantId);
      for (const session of sessions) {
        if (options.clientId) await removeClientFromSession(db, session.id, options.clientId);
        else await deleteSession(db, session.id);
      }
      audit.record({
        type: 'account.logged_out',
        accountId,
        clientId: options.clientId ?? null,
        details: { sessions: sessions.length, grants: grants.length, notified, reason: options.reason ?? 'admin' },
      });
      return { sessions: sessions.length, grants: grants.length, notified };
    },
  };
}
