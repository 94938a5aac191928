import type { MailStatus } from '../db/tables.ts';
import { PosternError } from '../shared/errors.ts';
import { parseLimit, UsageError } from './args.ts';
import { defineCommand, JSON_OPTION } from './command.ts';
import { table, toJson } from './output.ts';
import { withServices, type Command } from './runtime.ts';

const STATUSES: readonly MailStatus[] = ['pending', 'sent', 'failed'];

function parseStatus(raw: string | undefined): MailStatus | undefined {
  if (raw === undefined) return undefined;
  if (!(STATUSES as readonly string[]).includes(raw))
    throw new UsageError(`--status must be one of ${STATUSES.join(', ')} (got "${raw}")`);
  return raw as MailStatus;
}

const list = defineCommand({
  name: 'mail list',
  summary: "the mail outbox, newest first (without SMTP: with each message's text and link)",
  description: `Shows recipient, subject, state, attempts and the last delivery error. Without
POSTERN_SMTP_URL (the embedded demo) it also prints each message's text, links
included: that is where a person finds the link the log also shows.`,
  options: {
    status: { type: 'string', value: 'S', description: 'only messages in this state: pending, sent or failed' },
    limit: { type: 'string', value: 'N', description: 'at most N messages (default 50, at most 10000)' },
    json: JSON_OPTION,
  },
  async run({ values }, ctx) {
    const status = parseStatus(values.status);
    const limit = parseLimit(values.limit);
    const entries = await withServices(ctx, (c) =>
      c.mail.outbox.list({ ...(status ? { status } : {}), limit, withText: c.mail.outbox.mode === 'log' }),
    );
    if (values.json) {
      ctx.io.out(toJson(entries));
      return;
    }
    if (entries.length === 0) {
      ctx.io.out('no messages');
      return;
    }
    const rows = entries.map((e) => [
      e.id,
      e.createdAt.toISOString(),
      e.to,
      e.status,
      String(e.attempts),
      e.subject ?? '(sealed under another key)',
      e.lastError ?? '-',
    ]);
    ctx.io.out(table(['ID', 'CREATED', 'TO', 'STATUS', 'ATTEMPTS', 'SUBJECT', 'LAST ERROR'], rows));
    for (const e of entries.filter((x) => x.text !== undefined)) {
      ctx.io.out(`\n--- message ${e.id} to ${e.to}: ${e.subject ?? ''}\n${e.text!.trimEnd()}`);
    }
  },
});

const retry = defineCommand({
  name: 'mail retry',
  summary: 'send a failed message again (or every failed one)',
  description: `Puts a failed message (see "postern mail list --status failed") back in the outbox,
due now, with a fresh POSTERN_MAIL_GIVE_UP_SECONDS. A running server sends it within
a second or two. Its link keeps the expiry it was issued with. Name one ID, or --all-failed.`,
  options: {
    'all-failed': { type: 'boolean', description: 'every failed message' },
    json: JSON_OPTION,
  },
  positionals: [{ name: 'ID', description: 'the message number, as "postern mail list" shows it', optional: true }],
  async run({ values, positionals: [id] }, ctx) {
    const all = values['all-failed'];
    if ((id === undefined) === !all)
      throw new UsageError('name one message ID, or --all-failed (see "postern mail retry --help")');
    if (id !== undefined && !/^\d{1,18}$/.test(id)) throw new UsageError(`ID must be a message number (got "${id}")`);
    const count = await withServices(ctx, (c) => c.mail.outbox.retry(id === undefined ? { allFailed: true } : { id }));
    if (id !== undefined && count === 0) throw new PosternError('ERR_NOT_FOUND', `no failed message ${id}`);
    if (values.json) return ctx.io.out(toJson({ queued: count }));
    ctx.io.out(`${count} message(s) queued again`);
  },
});

export const mailCommands: readonly Command[] = [list, retry];
