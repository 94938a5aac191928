import type { Container } from '../container.ts';
import { PosternError } from '../shared/errors.ts';
import { flag, optionalString } from './args.ts';
import { isoOrNever, table, toJson } from './output.ts';
import { withServices, type Command } from './runtime.ts';

async function accountFor(c: Container, login: string) {
  const account = await c.accounts.findByLogin(login) ?? await c.accounts.findById(login);
  if (!account) throw new PosternError('ERR_NOT_FOUND', `no account "${login}"`);
  return account;
}

const sessions: Command = {
  name: 'user sessions',
  summary: 'list a user\'s sign-in sessions and grants',
  usage: `Usage: postern user sessions USER [--json]

Sessions are browser sign-ins; grants are what each app was given (refresh tokens live on a
grant, and may outlive the session with offline_access).`,
  options: { json: { type: 'boolean' } },
  positionals: ['USER'],
  async run({ values, positionals }, ctx) {
    const result = await withServices(ctx, async (c) => c.sessions.list((await accountFor(c, positionals[0]!)).id));
    if (flag(values, 'json')) return ctx.io.out(toJson(result));
    ctx.io.out(result.sessions.length === 0 ? 'sessions: none' : table(
      ['SESSION', 'SIGNED IN', 'EXPIRES', 'APPS'],
      result.sessions.map((s) => [s.uid, isoOrNever(s.loginAt), isoOrNever(s.expiresAt), s.clients.join(', ') || '-']),
    ));
    ctx.io.out('');
    ctx.io.out(result.grants.length === 0 ? 'grants: none' : table(
      ['GRANT', 'CLIENT', 'CREATED', 'LAST USED', 'IP', 'USER AGENT'],
      result.grants.map((g) => [g.grantId, g.clientId, isoOrNever(g.createdAt), isoOrNever(g.lastUsedAt), g.ip ?? '-', g.userAgent ?? '-']),
    ));
  },
};

const logout: Command = {
  name: 'user logout',
  summary: 'end a user\'s sessions and revoke their tokens',
  usage: `Usage: postern user logout USER [--client C] [--json]

Ends every session of the user and revokes every grant with all tokens issued from it
(refresh tokens included). With --client, only that app's. Apps registered with a back-channel
logout URI are sent a logout token.`,
  options: { client: { type: 'string' }, json: { type: 'boolean' } },
  positionals: ['USER'],
  async run({ values, positionals }, ctx) {
    const clientId = optionalString(values, 'client');
    const { username, result } = await withServices(ctx, async (c) => {
      const account = await accountFor(c, positionals[0]!);
      return { username: account.username, result: await c.sessions.logout(account.id, { ...(clientId ? { clientId } : {}), reason: 'admin logout' }) };
    });
    if (flag(values, 'json')) return ctx.io.out(toJson(result));
    ctx.io.out(`logged out "${username}"${clientId ? ` from ${clientId}` : ''}: ${result.sessions} session(s) ended, ${result.grants} grant(s) revoked${result.notified.length ? `, back-channel logout sent to ${result.notified.join(', ')}` : ''}`);
  },
};

export const sessionCommands: readonly Command[] = [sessions, logout];
