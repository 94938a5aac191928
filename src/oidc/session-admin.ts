import type { Kysely } from 'kysely';
import type Provider from 'oidc-provider';

import type { AuditLog } from '../audit/audit-log.ts';
import type { Database } from '../db/tables.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import { type BackchannelDelivery, deliverLogoutToken, type LogoutTokenRecipient } from './backchannel-logout.ts';
import {
  deleteGrant,
  deleteSession,
  listGrants,
  listSessions,
  removeClientFromSession,
  type GrantInfo,
  type SessionInfo,
} from './session.repository.ts';

export interface LogoutResult {
  readonly sessions: number;
  readonly grants: number;
  /** Clients a logout token was sent to. */
  readonly notified: string[];
  /** One per logout token: queued on the server, delivered or failed in a command. */
  readonly deliveries: BackchannelDelivery[];
}

export interface SessionAdmin {
  list(accountId: string): Promise<{ sessions: SessionInfo[]; grants: GrantInfo[] }>;
  /**
   * Ends the account's sessions (or only one client's part in them) and revokes its grants with
   * every token issued from them; clients with a back-channel logout URI are told.
   */
  logout(accountId: string, options?: { clientId?: string; reason?: string }): Promise<LogoutResult>;
  /**
   * Ends some of the account's sessions, each with the grants made in it (offline_access
   * refresh tokens included): one session (`sessionId`, its stored id), or every session but
   * `keepSessionUid` together with every grant not made in that one (of other browsers, or of
   * no known session), so that this browser and its apps stay signed in.
   */
  endSessions(
    accountId: string,
    options: { sessionId?: string; keepSessionUid?: string; reason: string },
  ): Promise<LogoutResult>;
}

export function createSessionAdmin(deps: {
  db: Kysely<Database>;
  /** The engine, for back-channel logout only: a command builds it then, and only then. */
  provider: () => Promise<Provider>;
  audit: AuditLog;
  clock: Clock;
  logger: Logger;
  /**
   * A command exits when it is done: it waits for each logout token (retried) and reports it.
   * The server never lets delivery block a logout: the token goes in the background, `queued`.
   */
  waitForBackchannelLogout: boolean;
}): SessionAdmin {
  const { db, audit, clock } = deps;
  const delivery = { logger: deps.logger, wait: deps.waitForBackchannelLogout };

  /** Starts every logout token on its way; each settles when sent or queued (oidc/backchannel-logout.ts). */
  async function notify(
    accountId: string,
    sessions: SessionInfo[],
    clientId: string | undefined,
  ): Promise<Promise<BackchannelDelivery>[]> {
    const deliveries: Promise<BackchannelDelivery>[] = [];
    for (const session of sessions) {
      for (const id of session.clients.filter((c) => !clientId || c === clientId)) {
        const { Client } = await deps.provider();
        const client = (await Client.find(id)) as LogoutTokenRecipient | undefined;
        if (!client?.backchannelLogoutUri) continue;
        const sent = deliverLogoutToken(client, accountId, session.sids[id] ?? '', delivery);
        deliveries.push(delivery.wait ? sent : Promise.resolve({ clientId: client.clientId, status: 'queued' }));
      }
    }
    return deliveries;
  }

  async function end(
    accountId: string,
    sessions: SessionInfo[],
    grants: GrantInfo[],
    options: { clientId: string | undefined; reason: string },
  ): Promise<LogoutResult> {
    const pending = await notify(accountId, sessions, options.clientId);
    // Each grant goes with everything issued from it, or not at all.
    for (const grant of grants) await db.transaction().execute((trx) => deleteGrant(trx, grant.grantId));
    for (const session of sessions) {
      if (options.clientId) await removeClientFromSession(db, session.id, options.clientId);
      else await deleteSession(db, session.id);
    }
    // The logout is done; now wait for the logout tokens (at once on the server, bounded in a command).
    const deliveries = await Promise.all(pending);
    const notified = [...new Set(deliveries.map((d) => d.clientId))];
    audit.record({
      type: 'account.logged_out',
      accountId,
      clientId: options.clientId ?? null,
      details: { sessions: sessions.length, grants: grants.length, notified, deliveries, reason: options.reason },
    });
    return { sessions: sessions.length, grants: grants.length, notified, deliveries };
  }

  return {
    async list(accountId) {
      const now = clock.now();
      return { sessions: await listSessions(db, accountId, now), grants: await listGrants(db, accountId, now) };
    },
    async logout(accountId, options = {}) {
      const now = clock.now();
      const sessions = (await listSessions(db, accountId, now)).filter(
        (s) => !options.clientId || s.clients.includes(options.clientId),
      );
      const grants = (await listGrants(db, accountId, now)).filter(
        (g) => !options.clientId || g.clientId === options.clientId,
      );
      return end(accountId, sessions, grants, { clientId: options.clientId, reason: options.reason ?? 'admin' });
    },
    async endSessions(accountId, options) {
      const now = clock.now();
      const all = await listSessions(db, accountId, now);
      const sessions = options.sessionId
        ? all.filter((s) => s.id === options.sessionId)
        : all.filter((s) => s.uid !== options.keepSessionUid);
      const ended = new Set(sessions.map((s) => s.uid));
      const grants = (await listGrants(db, accountId, now)).filter((g) =>
        options.sessionId ? g.sessionUid !== null && ended.has(g.sessionUid) : g.sessionUid !== options.keepSessionUid,
      );
      return end(accountId, sessions, grants, { clientId: undefined, reason: options.reason });
    },
  };
}
