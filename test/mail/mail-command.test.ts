import { afterEach, expect, it } from 'vitest';

import { baseEnv, expectOk, run } from '../support/cli.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { freePort, startTestServer, type TestServer } from '../support/server.ts';
import { startTestSmtp, waitUntil, type TestSmtp } from '../support/smtp.ts';
import { enqueue, invitation, outboxRows, stopMailTest } from './support.ts';

let database: TestDatabase | undefined;
let server: TestServer | undefined;
let smtp: TestSmtp | undefined;

afterEach(() => stopMailTest({ server, smtp, database }));

it('marks a message failed when delivery keeps failing past the give-up time, and "mail retry" sends it again', async () => {
  database = await createTestDatabase();
  const port = await freePort();
  const mailEnv = {
    POSTERN_SMTP_URL: `smtp://127.0.0.1:${port}?starttls=never`,
    POSTERN_MAIL_FROM: 'no-reply@example.com',
    POSTERN_MAIL_GIVE_UP_SECONDS: '5',
    POSTERN_MAIL_RETRY_MAX_SECONDS: '2',
  };
  server = await startTestServer(database, mailEnv);
  await enqueue(server, invitation(server, 'dave'));

  await waitUntil(async () => (await outboxRows(server!))[0]?.status === 'failed', 20_000, 'the message to fail');
  const [failed] = await outboxRows(server);
  expect(failed!.attempts).toBeGreaterThanOrEqual(2);
  expect(failed!.last_error).toMatch(/ECONNREFUSED/);
  expect(await server.container.metrics.registry.getSingleMetricAsString('postern_mail_failed_total')).toMatch(
    /^postern_mail_failed_total 1$/m,
  );
  await server.close();
  server = undefined;

  const env = baseEnv(database, mailEnv);
  const listed = await run(['mail', 'list', '--status', 'failed', '--json'], env);
  expectOk(listed);
  const entries = JSON.parse(listed.stdout) as {
    id: string;
    to: string;
    status: string;
    subject: string;
    lastError: string;
  }[];
  expect(entries).toMatchObject([{ to: 'dave@example.com', status: 'failed', subject: 'You are invited to Postern' }]);
  expect(entries[0]!.lastError).toMatch(/ECONNREFUSED/);
  // With an SMTP server configured, the list shows no message text (and so no link).
  expect(listed.stdout).not.toContain('token-dave');

  const retried = await run(['mail', 'retry', '--all-failed'], env);
  expectOk(retried);
  expect(retried.stdout.trim()).toBe('1 message(s) queued again');

  smtp = await startTestSmtp({ port });
  server = await startTestServer(database, mailEnv);
  await waitUntil(() => smtp!.received.length === 1, 15_000, 'the retried message');
  expect(smtp.received[0]!.source).toContain('Your username: dave');
  // The SMTP server has the message before the sender has its 250 answer and marks the row.
  await waitUntil(async () => (await outboxRows(server!))[0]?.status === 'sent', 15_000, 'the row marked sent');
});

it('gives up at once when the SMTP server refuses the recipient (a 5xx reply)', async () => {
  database = await createTestDatabase();
  smtp = await startTestSmtp({ rejectRecipient: (address) => address.startsWith('nobody@') });
  server = await startTestServer(database, { POSTERN_SMTP_URL: smtp.url, POSTERN_MAIL_FROM: 'no-reply@example.com' });

  await enqueue(server, invitation(server, 'nobody'), invitation(server, 'erin'));

  await waitUntil(
    async () => (await outboxRows(server!)).every((r) => r.status !== 'pending'),
    15_000,
    'both outcomes',
  );
  const rows = await outboxRows(server);
  expect(rows.map((r) => [r.recipient, r.status, r.attempts])).toEqual([
    ['nobody@example.com', 'failed', 1],
    ['erin@example.com', 'sent', 1],
  ]);
  expect(rows[0]!.last_error).toMatch(/550/);
});

it('without SMTP (the demo), logs each message with its link and shows it in "mail list"', async () => {
  database = await createTestDatabase();
  server = await startTestServer(database);
  const link = server.container.mail.link('/verify-email', { token: 'demo-token-123' });

  await enqueue(server, {
    to: 'frank@example.com',
    template: 'verify-email',
    data: { name: 'Frank', link, code: '042517', hours: 24 },
  });

  await waitUntil(async () => (await outboxRows(server!))[0]?.status === 'sent', 15_000, 'the message to be logged');
  const logged = server.logs.map((line) => JSON.parse(line) as { level: number; msg: string; mail?: { text: string } });
  const entry = logged.find((l) => l.mail);
  expect(entry!.level).toBe(30);
  expect(entry!.mail!.text).toContain(link);
  expect(entry!.mail!.text).toContain('042517');
  expect(logged.some((l) => /no SMTP server \(POSTERN_SMTP_URL\)/.test(l.msg))).toBe(true);
  await server.close();
  server = undefined;

  const listed = await run(['mail', 'list'], baseEnv(database));
  expectOk(listed);
  expect(listed.stdout).toMatch(/frank@example\.com\s+sent/);
  expect(listed.stdout).toContain(link);
  expect(listed.stdout).toContain('Or enter this code on the confirmation page: 042517');
});

it('deletes sent messages after POSTERN_MAIL_RETENTION_DAYS, and keeps waiting ones', async () => {
  database = await createTestDatabase();
  server = await startTestServer(database, { POSTERN_MAIL_RETENTION_DAYS: '2' });
  await enqueue(server, invitation(server, 'gina'));
  await waitUntil(async () => (await outboxRows(server!))[0]?.status === 'sent', 15_000, 'the message to be logged');
  await server.close();
  // An SMTP server nobody listens at: the next message stays pending.
  server = await startTestServer(database, {
    POSTERN_MAIL_RETENTION_DAYS: '2',
    POSTERN_SMTP_URL: 'smtp://127.0.0.1:9?starttls=never',
    POSTERN_MAIL_FROM: 'a@example.com',
  });
  await enqueue(server, invitation(server, 'hank'));
  const day = 86_400_000;

  expect(await server.container.mail.sweep(new Date(Date.now() + day))).toBe(0);
  expect(await server.container.mail.sweep(new Date(Date.now() + 2 * day + 60_000))).toBe(1);
  expect((await outboxRows(server)).map((r) => r.recipient)).toEqual(['hank@example.com']);
});

it('in production without POSTERN_SMTP_URL, turns mail off with one warning at start and refuses to write', async () => {
  database = await createTestDatabase();
  const port = await freePort();
  server = await startTestServer(database, {
    NODE_ENV: 'production',
    PORT: String(port),
    POSTERN_ISSUER: `https://127.0.0.1:${port}`,
    POSTERN_TRUST_PROXY: 'true',
  });

  expect(server.container.mail.enabled).toBe(false);
  const warnings = server.logs
    .map((line) => JSON.parse(line) as { level: number; msg: string })
    .filter((l) => /^email is off/.test(l.msg));
  expect(warnings).toEqual([
    expect.objectContaining({ level: 40, msg: expect.stringContaining('registration, password reset') }),
  ]);
  await expect(enqueue(server, invitation(server, 'ivan'))).rejects.toMatchObject({ code: 'ERR_MAIL_DISABLED' });
  expect(await outboxRows(server)).toEqual([]);
});
