import { afterEach, describe, expect, it } from 'vitest';

import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { startTestSmtp, waitUntil, type TestSmtp } from '../support/smtp.ts';
import { enqueue, invitation, outboxRows } from './support.ts';

let database: TestDatabase | undefined;
let servers: TestServer[] = [];
let smtp: TestSmtp | undefined;

afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
  await smtp?.stop();
  await database?.drop();
});

function mailEnv(smtpUrl: string) {
  return { POSTERN_SMTP_URL: smtpUrl, POSTERN_MAIL_FROM: 'Postern <no-reply@example.com>' };
}

function metric(text: string, name: string): number {
  return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? 'NaN');
}

describe('the mail outbox', () => {
  it('delivers each message exactly once when two instances share one outbox', async () => {
    database = await createTestDatabase();
    smtp = await startTestSmtp();
    const a = await startTestServer(database, mailEnv(smtp.url));
    servers.push(a);
    // PGlite is one connection, which the two instances share; on PostgreSQL each has its own pool.
    const b = await startTestServer(
      database,
      mailEnv(smtp.url),
      database.engine === 'pglite' ? { shareDatabaseOf: a } : {},
    );
    servers.push(b);
    const markers = Array.from({ length: 40 }, (_, i) => `m${String(i).padStart(2, '0')}x`);

    // Both write, both send: each instance wakes its own sender and polls for the other's messages.
    await Promise.all([
      enqueue(a, ...markers.filter((_, i) => i % 2 === 0).map((m) => invitation(a, m))),
      enqueue(b, ...markers.filter((_, i) => i % 2 === 1).map((m) => invitation(b, m))),
    ]);
    await waitUntil(() => smtp!.received.length >= markers.length, 30_000, 'every message');
    // A late duplicate would arrive within a poll or two.
    await new Promise((r) => setTimeout(r, 3000));

    const counts = markers.map(
      (m) => smtp!.received.filter((mail) => mail.source.includes(`Your username: ${m}`)).length,
    );
    expect(counts).toEqual(markers.map(() => 1));
    expect(smtp.received).toHaveLength(markers.length);
    const rows = await outboxRows(a);
    expect(rows.map((r) => r.status)).toEqual(markers.map(() => 'sent'));
    const [metricsA, metricsB] = await Promise.all([a, b].map((s) => s.container.metrics.registry.metrics()));
    expect(metric(metricsA!, 'postern_mail_sent_total') + metric(metricsB!, 'postern_mail_sent_total')).toBe(40);
    expect(metric(metricsA!, 'postern_mail_outbox_pending')).toBe(0);
  });

  it('sends a text and an HTML part, from POSTERN_MAIL_FROM, with the link under the issuer and no remote image', async () => {
    database = await createTestDatabase();
    smtp = await startTestSmtp();
    const server = await startTestServer(database, { ...mailEnv(smtp.url), POSTERN_PUBLIC_NAME: 'Acme ID' });
    servers.push(server);

    await enqueue(server, invitation(server, 'alice'));
    await waitUntil(() => smtp!.received.length === 1, 15_000, 'the message');

    const [mail] = smtp.received;
    expect(mail!.to).toEqual(['alice@example.com']);
    expect(mail!.subject).toBe('You are invited to Acme ID');
    expect(mail!.source).toMatch(/^From: Postern <no-reply@example\.com>/m);
    expect(mail!.source).toMatch(/Content-Type: text\/plain/);
    expect(mail!.source).toMatch(/Content-Type: text\/html/);
    expect(mail!.source).toContain(`${server.issuer}/set-password?token=token-alice`);
    expect(mail!.source).not.toMatch(/<img|src=["']?https?:/i);
  });

  it('keeps the rendered message sealed in the database: a raw row shows no link and no text', async () => {
    database = await createTestDatabase();
    // No SMTP server listening: the message stays in the outbox to be read.
    const server = await startTestServer(database, mailEnv('smtp://127.0.0.1:9?starttls=never'));
    servers.push(server);
    const token = 'Zm9vYmFyYmF6cXV4LXNlY3JldC1saW5rLXRva2VuLTQy';
    const link = server.container.mail.link('/reset-password', { token });

    await enqueue(server, {
      to: 'carol@example.com',
      template: 'reset-password',
      data: { name: 'Carol', link, minutes: 30 },
    });

    const [row] = await outboxRows(server);
    const raw = JSON.stringify(row);
    expect(raw).not.toContain(token);
    expect(raw).not.toContain('reset-password?');
    expect(raw).not.toContain('Carol');
    expect(raw).not.toContain('Reset your');
    expect(row!.sealed).toMatch(/^v1\./);
    expect(row!.recipient).toBe('carol@example.com');
    // ... and the installation key opens it again.
    expect(server.container.mail.open(row!)?.text).toContain(link);
  });
});
