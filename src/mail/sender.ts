import { randomUUID } from 'node:crypto';

import type { Kysely } from 'kysely';

import type { Database } from '../db/tables.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import type { MailOutbox } from './mail-outbox.ts';
import { claimDueMessages, markFailed, markRetry, markSent, type OutboxRow } from './outbox.repository.ts';
import { describeFailure, isPermanentFailure, type MailTransport } from './transport.ts';

export interface MailSender {
  /** Look for due messages soon (a message was just written by this instance). */
  wake(): void;
  /** Stops polling and waits for the messages in hand. */
  stop(): Promise<void>;
}

/** Longer than a send can take (transport.ts timeouts), so no other instance claims it meanwhile. */
const LEASE_SECONDS = 120;
const BATCH = 10;
/** Other instances' messages: found within this. */
const POLL_MS = 1000;
/** enqueue runs inside the caller's transaction: look after it has had time to commit. */
const WAKE_DELAY_MS = 50;
const FIRST_RETRY_SECONDS = 2;

/** 2, 4, 8, ... seconds after the nth failed attempt, capped at POSTERN_MAIL_RETRY_MAX_SECONDS. */
export function retryDelaySeconds(attempts: number, maxSeconds: number): number {
  return Math.min(FIRST_RETRY_SECONDS * 2 ** Math.min(Math.max(attempts - 1, 0), 30), maxSeconds);
}

export interface MailSenderDeps {
  readonly db: Kysely<Database>;
  readonly outbox: Pick<MailOutbox, 'open'>;
  readonly transport: MailTransport;
  readonly from: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly retryMaxSeconds: number;
  readonly onSent?: () => void;
  readonly onFailed?: () => void;
}

async function deliver(deps: MailSenderDeps, row: OutboxRow, claim: string): Promise<void> {
  const log = { mailId: row.id, template: row.template, attempt: row.attempts };
  const content = deps.outbox.open(row);
  if (!content) {
    if (await markFailed(deps.db, row.id, claim, deps.clock.now(), 'sealed content does not open with this key'))
      deps.onFailed?.();
    deps.logger.error(log, 'mail given up: its sealed content does not open with this installation key');
    return;
  }
  try {
    await deps.transport.send({ ...content, id: row.id, from: deps.from, to: row.recipient });
  } catch (error) {
    await recordFailure(deps, row, claim, error);
    return;
  }
  await markSent(deps.db, row.id, claim, deps.clock.now());
  deps.onSent?.();
  deps.logger.info(log, 'mail sent');
}

async function recordFailure(deps: MailSenderDeps, row: OutboxRow, claim: string, error: unknown): Promise<void> {
  const now = deps.clock.now();
  const reason = describeFailure(error);
  const next = new Date(now.getTime() + retryDelaySeconds(row.attempts, deps.retryMaxSeconds) * 1000);
  const log = { mailId: row.id, template: row.template, attempt: row.attempts, err: reason };
  if (isPermanentFailure(error) || next > row.giveUpAt) {
    if (await markFailed(deps.db, row.id, claim, now, reason)) deps.onFailed?.();
    deps.logger.warn(
      log,
      'mail given up (see "postern mail list --status failed"; "postern mail retry" sends it again)',
    );
    return;
  }
  await markRetry(deps.db, row.id, claim, next, reason);
  deps.logger.warn({ ...log, retryAt: next.toISOString() }, 'mail not delivered; will retry');
}

/**
 * The sender job, one per instance: claims due messages (a lease, in one short statement),
 * sends them outside any transaction, then records the outcome under its claim token. Two
 * instances never hold the same row; one that dies mid-send leaves it to be claimed again
 * when its lease ends.
 */
export function startMailSender(deps: MailSenderDeps): MailSender {
  const instance = randomUUID();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  const drain = async () => {
    for (;;) {
      const claim = `${instance}:${randomUUID()}`;
      const rows = await claimDueMessages(deps.db, deps.clock.now(), LEASE_SECONDS, claim, BATCH);
      for (const row of rows) await deliver(deps, row, claim);
      if (rows.length < BATCH || stopped) return;
    }
  };
  const schedule = (ms: number) => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(run, ms);
    timer.unref();
  };
  const run = () => {
    if (running) {
      again = true;
      return;
    }
    running = drain()
      .catch((error: Error) => deps.logger.warn({ err: error.message }, 'mail sender: outbox unavailable; will retry'))
      .finally(() => {
        running = undefined;
        schedule(again ? 0 : POLL_MS);
        again = false;
      });
  };
  schedule(0);
  return {
    wake() {
      if (running) again = true;
      else schedule(WAKE_DELAY_MS);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
      deps.transport.close();
    },
  };
}
