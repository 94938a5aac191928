import type { Kysely, Transaction } from 'kysely';

import type { MailSettings } from '../config/config.ts';
import type { Database, MailStatus } from '../db/tables.ts';
import { seal, unseal } from '../keys/sealed-box.ts';
import { deleteInBatches } from '../shared/batches.ts';
import type { Clock } from '../shared/clock.ts';
import { PosternError } from '../shared/errors.ts';
import {
  countPending,
  deleteFinishedBatch,
  insertOutboxRow,
  listOutbox,
  requeueFailed,
  type OutboxRow,
} from './outbox.repository.ts';
import type { MailRenderer, MailTemplate, MailTemplateData, RenderedMail } from './templates.ts';

export interface MailMessage<T extends MailTemplate = MailTemplate> {
  readonly to: string;
  readonly template: T;
  readonly data: MailTemplateData[T];
  /** Give up at this time at the latest (the link's expiry): a dead link is not worth sending. */
  readonly notAfter?: Date;
}

export interface OutboxEntry {
  readonly id: string;
  readonly to: string;
  readonly template: string;
  readonly status: MailStatus;
  readonly attempts: number;
  readonly lastError: string | null;
  readonly createdAt: Date;
  readonly nextAttemptAt: Date;
  readonly finishedAt: Date | null;
  /** undefined when the sealed content does not open (another installation key). */
  readonly subject: string | undefined;
  /** The rendered text part: only when asked for (no-SMTP mode, where it is how a link is found). */
  readonly text?: string;
}

export interface MailOutbox {
  readonly mode: MailSettings['mode'];
  /** false in production without POSTERN_SMTP_URL: features that need mail stay off. */
  readonly enabled: boolean;
  /** An absolute link under the issuer, for a template's data. */
  link(path: string, query?: Readonly<Record<string, string>>): string;
  /**
   * Renders, seals and writes one message in the caller's transaction, so it exists only if
   * the event that causes it commits; the sender delivers it after. Throws ERR_MAIL_DISABLED
   * when mail is off (check `enabled` first).
   */
  enqueue<T extends MailTemplate>(tx: Transaction<Database>, message: MailMessage<T>): Promise<string>;
  /**
   * The work of `enqueue` but the write (render, seal, wake the sender): a request that must not
   * tell whether an account exists does it for nobody, so both answers cost the same.
   */
  rehearse<T extends MailTemplate>(message: MailMessage<T>): void;
  /** The sealed content of a row, for the sender; undefined if it does not open. */
  open(row: Pick<OutboxRow, 'recipient' | 'sealed'>): RenderedMail | undefined;
  list(query: { status?: MailStatus; limit: number; withText: boolean }): Promise<OutboxEntry[]>;
  /** Failed messages back to pending; returns how many. */
  retry(target: { id: string } | { allFailed: true }): Promise<number>;
  pending(): Promise<number>;
  /** Deletes sent and failed messages past POSTERN_MAIL_RETENTION_DAYS (the sweeper calls it). */
  sweep(now: Date): Promise<number>;
}

const ADDRESS = /^[^\s@<>",;]+@[^\s@<>",;]+$/;

// AES-256-GCM with the recipient as additional data: the content cannot be moved to another
// address's row (keys/sealed-box.ts).
const binding = (recipient: string) => `mail_outbox:${recipient}`;

export function createMailOutbox(deps: {
  db: Kysely<Database>;
  settings: MailSettings;
  renderer: MailRenderer;
  sealKey: Buffer;
  clock: Clock;
  /** Called after a message is written: this instance's sender looks soon (after the commit). */
  nudge: () => void;
}): MailOutbox {
  const { db, settings, renderer, clock } = deps;
  const sealKey = Buffer.from(deps.sealKey);
  const open = (row: Pick<OutboxRow, 'recipient' | 'sealed'>): RenderedMail | undefined => {
    try {
      return JSON.parse(unseal(sealKey, binding(row.recipient), row.sealed).toString('utf8')) as RenderedMail;
    } catch {
      return undefined;
    }
  };
  return {
    mode: settings.mode,
    enabled: settings.enabled,
    link: (path, query) => renderer.link(path, query),
    async enqueue(tx, message) {
      if (!settings.enabled)
        throw new PosternError('ERR_MAIL_DISABLED', 'mail is off: POSTERN_SMTP_URL is not set in production');
      if (!ADDRESS.test(message.to)) throw new PosternError('ERR_INVALID_INPUT', 'not a single email address');
      const rendered = renderer.render(message.template, message.data);
      const now = clock.now();
      const deadline = now.getTime() + settings.giveUpSeconds * 1000;
      const id = await insertOutboxRow(tx, {
        recipient: message.to,
        template: message.template,
        sealed: seal(sealKey, binding(message.to), Buffer.from(JSON.stringify(rendered), 'utf8')),
        createdAt: now,
        giveUpAt: new Date(Math.min(deadline, message.notAfter?.getTime() ?? deadline)),
      });
      deps.nudge();
      return id;
    },
    rehearse(message) {
      if (!settings.enabled) return;
      const rendered = renderer.render(message.template, message.data);
      seal(sealKey, binding(message.to), Buffer.from(JSON.stringify(rendered), 'utf8'));
      deps.nudge();
    },
    open,
    async list(query) {
      const rows = await listOutbox(db, query.status ? { status: query.status, limit: query.limit } : query);
      return rows.map((row) => {
        const content = open(row);
        return {
          id: row.id,
          to: row.recipient,
          template: row.template,
          status: row.status,
          attempts: row.attempts,
          lastError: row.lastError,
          createdAt: row.createdAt,
          nextAttemptAt: row.nextAttemptAt,
          finishedAt: row.finishedAt,
          subject: content?.subject,
          ...(query.withText && content ? { text: content.text } : {}),
        };
      });
    },
    retry(target) {
      const now = clock.now();
      return requeueFailed(db, target, now, new Date(now.getTime() + settings.giveUpSeconds * 1000));
    },
    pending: () => countPending(db),
    sweep(now) {
      const before = new Date(now.getTime() - settings.retentionDays * 86400_000);
      return deleteInBatches((limit) => deleteFinishedBatch(db, before, limit));
    },
  };
}
