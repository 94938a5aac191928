import type { MailMessage } from '../../src/mail/mail-outbox.ts';
import type { TestDatabase } from '../support/database.ts';
import type { TestServer } from '../support/server.ts';
import type { TestSmtp } from '../support/smtp.ts';

/** Writes messages the way a feature does: each in a transaction of its own. */
export async function enqueue(server: TestServer, ...messages: MailMessage[]): Promise<string[]> {
  const ids: string[] = [];
  for (const message of messages) {
    ids.push(await server.container.db.db.transaction().execute((tx) => server.container.mail.enqueue(tx, message)));
  }
  return ids;
}

/** An invitation whose username is a marker the test finds in the delivered message. */
export function invitation(server: TestServer, marker: string, to = `${marker}@example.com`): MailMessage<'invite'> {
  const link = server.container.mail.link('/set-password', { token: `token-${marker}` });
  return { to, template: 'invite', data: { name: marker, username: marker, link, days: 7 } };
}

export async function outboxRows(server: TestServer) {
  return server.container.db.db.selectFrom('mail_outbox').selectAll().orderBy('id').execute();
}

/** Stops what a mail test started: the server first (it delivers), then the SMTP server, then drops the database. */
export async function stopMailTest(started: {
  server: TestServer | undefined;
  smtp: TestSmtp | undefined;
  database: TestDatabase | undefined;
}): Promise<void> {
  await started.server?.close();
  await started.smtp?.stop();
  await started.database?.drop();
}
