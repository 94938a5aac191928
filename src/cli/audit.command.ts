import { AUDIT_EVENT_TYPES, type AuditEvent } from '../audit/audit-event.ts';
import { PosternError } from '../shared/errors.ts';
import { parseLimit, UsageError } from './args.ts';
import { defineCommand, JSON_OPTION } from './command.ts';
import { table, toJson } from './output.ts';
import { withServices } from './runtime.ts';

function parseSince(raw: string | undefined): Date | undefined {
  if (raw === undefined) return undefined;
  const at = new Date(raw);
  if (Number.isNaN(at.getTime())) throw new UsageError(`--since must be an ISO date or time (got "${raw}")`);
  return at;
}

function summary(e: AuditEvent): string {
  return Object.entries(e.details)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}

export const auditCommand = defineCommand({
  name: 'audit',
  summary: 'read the audit log (newest first)',
  options: {
    account: { type: 'string', value: 'U', description: 'events of one account (username, email or id)' },
    type: { type: 'string', value: 'T', description: `one event type: ${AUDIT_EVENT_TYPES.join(', ')}` },
    since: {
      type: 'string',
      value: 'ISO',
      description: 'events at or after this time, e.g. 2026-11-23 or 2026-11-23T08:00:00Z',
    },
    limit: { type: 'string', value: 'N', description: 'at most N events (default 50, at most 10000)' },
    json: JSON_OPTION,
  },
  async run({ values }, ctx) {
    const type = values.type;
    if (type !== undefined && !(AUDIT_EVENT_TYPES as readonly string[]).includes(type)) {
      throw new UsageError(`unknown event type "${type}" (one of: ${AUDIT_EVENT_TYPES.join(', ')})`);
    }
    const limit = parseLimit(values.limit);
    const since = parseSince(values.since);
    const login = values.account;
    const events = await withServices(ctx, async (c) => {
      const account =
        login === undefined ? undefined : ((await c.accounts.findByLogin(login)) ?? (await c.accounts.findById(login)));
      if (login !== undefined && !account) throw new PosternError('ERR_NOT_FOUND', `no account "${login}"`);
      return c.audit.query({
        ...(account ? { accountId: account.id } : {}),
        ...(type ? { type } : {}),
        ...(since ? { since } : {}),
        limit,
      });
    });
    if (values.json) {
      ctx.io.out(toJson(events));
      return;
    }
    if (events.length === 0) {
      ctx.io.out('no events');
      return;
    }
    ctx.io.out(
      table(
        ['AT', 'TYPE', 'ACCOUNT', 'CLIENT', 'IP', 'DETAILS'],
        events.map((e) => [e.at.toISOString(), e.type, e.accountId ?? '-', e.clientId ?? '-', e.ip ?? '-', summary(e)]),
      ),
    );
  },
});
