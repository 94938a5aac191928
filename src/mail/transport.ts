import { createTransport } from 'nodemailer';

import type { SmtpSettings } from '../config/config.ts';
import type { Logger } from '../shared/logger.ts';
import type { RenderedMail } from './templates.ts';

export interface Envelope extends RenderedMail {
  readonly id: string;
  readonly from: string;
  readonly to: string;
}

/** How a claimed message leaves: over SMTP, or into the log when there is no SMTP server. */
export interface MailTransport {
  send(envelope: Envelope): Promise<void>;
  close(): void;
}

// A stalled server must not hold a claimed message past its lease (sender.ts, 120 s).
const CONNECTION_TIMEOUT_MS = 10_000;
const GREETING_TIMEOUT_MS = 10_000;
const SOCKET_TIMEOUT_MS = 30_000;

/**
 * nodemailer over SMTP. The certificate is verified against Node's trust store (which
 * NODE_EXTRA_CA_CERTS extends); `starttls=required` refuses a server that does not offer
 * STARTTLS (RFC 3207) rather than send in clear, `opportunistic` upgrades when offered,
 * `never` stays in clear (a relay on localhost).
 */
export function createSmtpTransport(smtp: SmtpSettings): MailTransport {
  const transporter = createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    requireTLS: smtp.startTls === 'required',
    ignoreTLS: smtp.startTls === 'never',
    ...(smtp.user !== undefined ? { auth: { user: smtp.user, pass: smtp.password ?? '' } } : {}),
    tls: { rejectUnauthorized: true, minVersion: 'TLSv1.2', servername: smtp.host },
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    greetingTimeout: GREETING_TIMEOUT_MS,
    socketTimeout: SOCKET_TIMEOUT_MS,
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  return {
    async send(envelope) {
      await transporter.sendMail({
        from: envelope.from,
        to: envelope.to,
        subject: envelope.subject,
        text: envelope.text,
        html: envelope.html,
      });
    },
    close: () => transporter.close(),
  };
}

/**
 * No SMTP server outside production: the message goes to the log at info level, text part and
 * all. This is the one place a link is ever logged, so that a demo can be tried without a mail
 * server; production never gets here (config.ts: no SMTP there means mail is off).
 */
export function createLogTransport(logger: Logger): MailTransport {
  return {
    async send(envelope) {
      logger.info(
        { mail: { id: envelope.id, to: envelope.to, subject: envelope.subject, text: envelope.text } },
        'mail not sent (no POSTERN_SMTP_URL): here it is, also shown by "postern mail list"',
      );
    },
    close() {},
  };
}

/**
 * RFC 5321 §4.2.1: a 5yz reply is permanent. A refused recipient or message is not retried;
 * a refused login or sender address is the server's setup, which an operator may fix, so it is.
 */
export function isPermanentFailure(error: unknown): boolean {
  const { responseCode, command } = (error ?? {}) as { responseCode?: unknown; command?: unknown };
  return (
    typeof responseCode === 'number' &&
    responseCode >= 500 &&
    responseCode < 600 &&
    (command === 'RCPT TO' || command === 'DATA')
  );
}

/** One line for last_error and the log: the server's reply or the socket error, never credentials. */
export function describeFailure(error: unknown): string {
  const message =
    error instanceof Error ? error.message || (error as { code?: string }).code || error.name : String(error);
  return message.replace(/\s+/g, ' ').trim().slice(0, 500);
}
