import type { ReceivedMail, TestSmtp } from './smtp.ts';
import { waitUntil } from './smtp.ts';

// Reading what the in-process SMTP server received, the way a person reads their inbox.

/** POSTERN_SMTP_URL and POSTERN_MAIL_FROM for a test SMTP server. */
export function mailEnv(smtp: TestSmtp): Record<string, string> {
  return { POSTERN_SMTP_URL: smtp.url, POSTERN_MAIL_FROM: 'postern@example.com' };
}

export function mailsTo(smtp: TestSmtp, address: string): ReceivedMail[] {
  return smtp.received.filter((m) => m.to.includes(address));
}

/** Waits for the `count`-th message to `address` whose subject contains `subject`. */
export async function nextMail(
  smtp: TestSmtp,
  address: string,
  subject: string,
  count = 1,
  timeoutMs = 15_000,
): Promise<ReceivedMail> {
  const matching = () => mailsTo(smtp, address).filter((m) => m.subject.includes(subject));
  await waitUntil(() => matching().length >= count, timeoutMs, `mail "${subject}" #${count} to ${address}`);
  return matching()[count - 1]!;
}

/** The link to `path` in a message (its text part: no HTML escaping). */
export function linkIn(mail: ReceivedMail, path: string): string {
  const match = new RegExp(`https?://[^\\s"<>]*${path.replace(/[/?]/g, '\\$&')}\\?token=[A-Za-z0-9_-]{43}`).exec(
    mail.source,
  );
  if (!match) throw new Error(`no ${path} link in:\n${mail.source.slice(0, 3000)}`);
  return match[0];
}
