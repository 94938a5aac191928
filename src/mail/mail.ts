import type { Kysely } from 'kysely';

import { describeSmtp, type Config } from '../config/config.ts';
import type { Database } from '../db/tables.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import { createMailOutbox, type MailOutbox } from './mail-outbox.ts';
import { startMailSender, type MailSender } from './sender.ts';
import { createMailRenderer } from './templates.ts';
import { createLogTransport, createSmtpTransport } from './transport.ts';

export interface Mail {
  readonly outbox: MailOutbox;
  /** The sender job of this instance (servers only); undefined when mail is off. */
  startSender(): MailSender | undefined;
}

/** Everything mail, built from the settings: the outbox any part may write to, and its sender. */
export function createMail(deps: {
  config: Config;
  db: Kysely<Database>;
  clock: Clock;
  logger: Logger;
  sealKey: Buffer;
  onSent?: () => void;
  onFailed?: () => void;
}): Mail {
  const { config, logger } = deps;
  const settings = config.mail;
  let sender: MailSender | undefined;
  const outbox = createMailOutbox({
    db: deps.db,
    settings,
    renderer: createMailRenderer({ issuer: config.issuer, publicName: config.publicName }),
    sealKey: deps.sealKey,
    clock: deps.clock,
    nudge: () => sender?.wake(),
  });
  return {
    outbox,
    startSender() {
      if (settings.mode === 'off') {
        logger.warn(
          'email is off: POSTERN_SMTP_URL is not set, so registration, password reset, unlock by email and invitations are disabled',
        );
        return undefined;
      }
      if (settings.smtp)
        logger.info({ smtp: describeSmtp(settings.smtp), from: settings.from }, 'mail goes out over SMTP');
      else
        logger.info(
          'no SMTP server (POSTERN_SMTP_URL): mail is written to this log, links included, and kept for "postern mail list"',
        );
      sender = startMailSender({
        db: deps.db,
        outbox,
        transport: settings.smtp ? createSmtpTransport(settings.smtp) : createLogTransport(logger),
        from: settings.from,
        clock: deps.clock,
        logger,
        retryMaxSeconds: settings.retryMaxSeconds,
        ...(deps.onSent ? { onSent: deps.onSent } : {}),
        ...(deps.onFailed ? { onFailed: deps.onFailed } : {}),
      });
      return sender;
    },
  };
}
