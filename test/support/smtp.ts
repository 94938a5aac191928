import { SMTPServer } from 'smtp-server';

import { freePort } from './net.ts';

// A real SMTP server in the test process (smtp-server, from nodemailer's authors): Postern talks
// SMTP to it over TCP, and the test reads what arrived. Never a mocked mailer.

export interface ReceivedMail {
  readonly to: readonly string[];
  /** The raw message with quoted-printable soft breaks and escapes undone, to search in. */
  readonly source: string;
  readonly subject: string;
}

export interface TestSmtp {
  readonly port: number;
  /** POSTERN_SMTP_URL for it: plain SMTP on loopback (it offers no STARTTLS). */
  readonly url: string;
  readonly received: ReceivedMail[];
  /** Stops listening (an outage); start() listens again on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** Undoes quoted-printable (RFC 2045 §6.7) well enough to find a link or a marker in a message. */
export function decodeQuotedPrintable(text: string): string {
  return text
    .replace(/=\r?\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_m, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

export async function startTestSmtp(
  options: { port?: number; rejectRecipient?: (address: string) => boolean } = {},
): Promise<TestSmtp> {
  const port = options.port ?? (await freePort());
  const received: ReceivedMail[] = [];
  let server: SMTPServer | undefined;
  const create = () =>
    new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onRcptTo(address, _session, callback) {
        if (options.rejectRecipient?.(address.address)) {
          callback(Object.assign(new Error('no such mailbox'), { responseCode: 550 }));
          return;
        }
        callback();
      },
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          const source = decodeQuotedPrintable(Buffer.concat(chunks).toString('utf8'));
          const subject = /^Subject: (.*(?:\r?\n[ \t].*)*)/m.exec(source)?.[1]?.replace(/\r?\n[ \t]/g, ' ') ?? '';
          received.push({ to: session.envelope.rcptTo.map((r) => r.address), source, subject });
          callback();
        });
      },
    });
  const start = () =>
    new Promise<void>((resolve, reject) => {
      server = create();
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
  await start();
  return {
    port,
    url: `smtp://127.0.0.1:${port}?starttls=never`,
    received,
    start,
    stop: () =>
      new Promise<void>((resolve) => {
        const s = server;
        server = undefined;
        if (!s) return resolve();
        s.close(() => resolve());
      }),
  };
}

/** Polls until `check` holds (real time: the sender and SMTP run for real). */
export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}
