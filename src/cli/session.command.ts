import type { BackchannelDelivery } from '../oidc/backchannel-logout.ts';
import { PosternError } from '../shared/errors.ts';
import { defineCommand, JSON_OPTION, USER_ARGUMENT } from './command.ts';
import { isoOrNever, table, toJson } from './output.ts';
import { withServices, type CliContext, type Command, type Services } from './runtime.ts';

async function accountFor(c: Services, login: string) {
  const account = (await c.accounts.findByLogin(login)) ?? (await c.accounts.findById(login));
  if (!account) throw new PosternError('ERR_NOT_FOUND', `no account "${login}"`);
  return account;
}

/**
 * Back-channel logout as it went: the command waited for each logout token (retried within
 * about 10 s). The logout itself succeeded either way, so a failed delivery is a warning line on
 * stderr, one per token, and the exit status stays 0.
 */
export function reportDeliveries(ctx: CliContext, deliveries: readonly BackchannelDelivery[]): string {
  for (const d of deliveries.filter((d) => d.status === 'failed')) {
    ctx.io.err(
      `postern: warning: back-channel logout to "${d.clientId}" failed after ${d.attempts ?? 1} attempt(s): ${d.error ?? 'no answer'}`,
    );
  }
  const attempts = (d: BackchannelDelivery) =>
    d.attempts !== undefined && d.attempts > 1 ? ` (after ${d.attempts} attempts)` : '';
  const delivered = deliveries.filter((d) => d.status !== 'failed').map((d) => `${d.clientId}${attempts(d)}`);
  const failed = deliveries.filter((d) => d.status === 'failed').map((d) => d.clientId);
  return [
    ...(delivered.length ? [`back-channel logout delivered to ${delivered.join(', ')}`] : []),
    ...(failed.length ? [`back-channel logout NOT delivered to ${failed.join(', ')}`] : []),
  ]
    .map((part) => `, ${part}`)
    .join('');
}

const sessions = defineCommand({
  name: 'user sessions',
  summary: "list a user's sign-in sessions and grants",
  description: `Sessions are browser sign-ins; grants are what each app was given (refresh tokens live on a
grant, and may outlive the session with offline_access).`,
  options: { json: JSON_OPTION },
  positionals: [USER_ARGUMENT],
  async run({ values, positionals: [login] }, ctx) {
    const result = await withServices(ctx, async (c) => c.sessions.list((await accountFor(c, login)).id));
    if (values.json) return ctx.io.out(toJson(result));
    ctx.io.out(
      result.sessions.length === 0
        ? 'sessions: none'
        : table(
            ['SESSION', 'SIGNED IN', 'EXPIRES', 'APPS'],
            result.sessions.map((s) => [
              s.uid,
              isoOrNever(s.loginAt),
              isoOrNever(s.expiresAt),
              s.clients.join(', ') || '-',
            ]),
          ),
    );
    ctx.io.out('');
    ctx.io.out(
      result.grants.length === 0
        ? 'grants: none'
        : table(
            ['GRANT', 'CLIENT', 'CREATED', 'LAST USED', 'IP', 'USER AGENT'],
            result.grants.map((g) => [
              g.grantId,
              g.clientId,
              isoOrNever(g.createdAt),
              isoOrNever(g.lastUsedAt),
              g.ip ?? '-',
              g.userAgent ?? '-',
            ]),
          ),
    );
  },
});

const logout = defineCommand({
  name: 'user logout',
  summary: "end a user's sessions and revoke their tokens",
  description: `Ends every session of the user and revokes every grant with all tokens issued from it
(refresh tokens included). With --client, only that app's. Apps registered with a back-channel
logout URI are sent a logout token; the command waits for each (retried after 1, 2 and 4 s,
10 s at most) and warns on stderr for each one that was not delivered (the exit status stays 0:
the logout itself is done).`,
  options: {
    client: { type: 'string', value: 'C', description: "only this app's sessions and grants (a client id)" },
    json: { type: 'boolean', description: 'print the result as JSON, with every back-channel delivery' },
  },
  positionals: [USER_ARGUMENT],
  async run({ values, positionals: [login] }, ctx) {
    const clientId = values.client;
    const { username, result } = await withServices(ctx, async (c) => {
      const account = await accountFor(c, login);
      return {
        username: account.username,
        result: await c.sessions.logout(account.id, { ...(clientId ? { clientId } : {}), reason: 'admin logout' }),
      };
    });
    const deliveries = reportDeliveries(ctx, result.deliveries);
    if (values.json) return ctx.io.out(toJson(result));
    ctx.io.out(
      `logged out "${username}"${clientId ? ` from ${clientId}` : ''}: ${result.sessions} session(s) ended, ${result.grants} grant(s) revoked${deliveries}`,
    );
  },
});

export const sessionCommands: readonly Command[] = [sessions, logout];
