import type Provider from 'oidc-provider';

import type { AuditLog } from '../audit/audit-log.ts';
import type { LogoutResult, SessionAdmin } from './session-admin.ts';
import type { GrantInfo } from './session.repository.ts';

// What the account page lists (issue 13 §4): the person's browser sessions and the apps that
// hold a grant. Sessions hold no device or address of their own; each grant records where it
// was made (grant_activity, written on every authorization), so a session's device, address and
// last activity are those of the most recently used grant made in it.

export interface SessionView {
  /** The stored (hashed) id: what a "sign out" button names; not usable as a cookie. */
  readonly id: string;
  readonly current: boolean;
  readonly userAgent: string | null;
  readonly ip: string | null;
  readonly signedInAt: Date | null;
  readonly lastActivityAt: Date | null;
  /** Names of the apps signed in through this session. */
  readonly apps: readonly string[];
}

export interface AppView {
  readonly clientId: string;
  readonly name: string;
  readonly firstParty: boolean;
  readonly grantedAt: Date | null;
  readonly lastUsedAt: Date | null;
}

export interface AccountOverview {
  readonly sessions: readonly SessionView[];
  readonly apps: readonly AppView[];
}

const latest = (dates: readonly (Date | null)[]): Date | null =>
  dates.reduce<Date | null>((a, b) => (b && (!a || b > a) ? b : a), null);

async function clientNames(provider: Provider, ids: Iterable<string>) {
  const names = new Map<string, { name: string; firstParty: boolean }>();
  for (const id of ids) {
    const client = await provider.Client.find(id);
    names.set(id, {
      name: client?.clientName ?? id,
      firstParty: client?.metadata().first_party === true,
    });
  }
  return names;
}

function sessionView(
  session: Awaited<ReturnType<SessionAdmin['list']>>['sessions'][number],
  grants: readonly GrantInfo[],
  currentUid: string | undefined,
  names: ReadonlyMap<string, { name: string }>,
): SessionView {
  const own = grants
    .filter((g) => g.sessionUid === session.uid)
    .sort((a, b) => (b.lastUsedAt?.getTime() ?? 0) - (a.lastUsedAt?.getTime() ?? 0));
  const recent = own[0];
  return {
    id: session.id,
    current: session.uid === currentUid,
    userAgent: recent?.userAgent ?? null,
    ip: recent?.ip ?? null,
    signedInAt: session.loginAt,
    lastActivityAt: latest([session.loginAt, ...own.map((g) => g.lastUsedAt)]),
    apps: session.clients.map((c) => names.get(c)?.name ?? c),
  };
}

async function accountOverview(
  deps: { sessions: SessionAdmin; provider: () => Provider },
  accountId: string,
  currentSessionUid: string | undefined,
): Promise<AccountOverview> {
  const { sessions, grants } = await deps.sessions.list(accountId);
  const clientIds = new Set([...grants.map((g) => g.clientId), ...sessions.flatMap((s) => s.clients)]);
  const names = await clientNames(deps.provider(), clientIds);
  const byClient = new Map<string, GrantInfo[]>();
  for (const grant of grants) byClient.set(grant.clientId, [...(byClient.get(grant.clientId) ?? []), grant]);
  const apps = [...byClient].map(([clientId, list]) => ({
    clientId,
    name: names.get(clientId)?.name ?? clientId,
    firstParty: names.get(clientId)?.firstParty ?? false,
    grantedAt: list.map((g) => g.createdAt).reduce<Date | null>((a, b) => (b && (!a || b < a) ? b : a), null),
    lastUsedAt: latest(list.map((g) => g.lastUsedAt)),
  }));
  const views = sessions.map((s) => sessionView(s, grants, currentSessionUid, names));
  // This browser first, then the most recently active.
  views.sort(
    (a, b) =>
      Number(b.current) - Number(a.current) || (b.lastActivityAt?.getTime() ?? 0) - (a.lastActivityAt?.getTime() ?? 0),
  );
  return { sessions: views, apps: apps.sort((a, b) => a.name.localeCompare(b.name)) };
}

/** Where a change came from, for its audit event. */
export interface Origin {
  readonly ip?: string | null;
  readonly userAgent?: string | null;
}

/** The account page's view of sessions and grants, and the three things it does to them. */
export interface AccountSessions {
  overview(accountId: string, currentSessionUid: string | undefined): Promise<AccountOverview>;
  /** One session (by its stored id, only among the account's own) and the grants made in it. */
  signOut(accountId: string, sessionId: string, origin: Origin): Promise<LogoutResult>;
  /** Every session but this browser's, and every grant not made in it. */
  signOutOthers(accountId: string, currentSessionUid: string, origin: Origin): Promise<LogoutResult>;
  /** The app's grants with every token issued from them (offline_access refresh tokens too). */
  revokeApp(accountId: string, clientId: string, origin: Origin): Promise<LogoutResult>;
}

export function createAccountSessions(deps: {
  sessions: SessionAdmin;
  provider: () => Provider;
  audit: AuditLog;
}): AccountSessions {
  const { sessions, audit } = deps;
  const record = (
    type: 'account.session_ended' | 'account.app_revoked',
    accountId: string,
    origin: Origin,
    more: { clientId?: string; details: Record<string, unknown> },
  ) =>
    audit.record({
      type,
      accountId,
      clientId: more.clientId ?? null,
      ip: origin.ip ?? null,
      userAgent: origin.userAgent ?? null,
      details: more.details,
    });
  return {
    overview: (accountId, currentSessionUid) => accountOverview(deps, accountId, currentSessionUid),
    async signOut(accountId, sessionId, origin) {
      const result = await sessions.endSessions(accountId, { sessionId, reason: 'signed out from the account page' });
      record('account.session_ended', accountId, origin, {
        details: { sessions: result.sessions, grants: result.grants },
      });
      return result;
    },
    async signOutOthers(accountId, currentSessionUid, origin) {
      const result = await sessions.endSessions(accountId, {
        keepSessionUid: currentSessionUid,
        reason: 'signed out everywhere else from the account page',
      });
      record('account.session_ended', accountId, origin, {
        details: { everywhereElse: true, sessions: result.sessions, grants: result.grants },
      });
      return result;
    },
    async revokeApp(accountId, clientId, origin) {
      const result = await sessions.logout(accountId, { clientId, reason: 'access revoked from the account page' });
      record('account.app_revoked', accountId, origin, { clientId, details: { grants: result.grants } });
      return result;
    },
  };
}
