import { afterEach, expect, it } from 'vitest';

import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { startTestSmtp, waitUntil, type TestSmtp } from '../support/smtp.ts';
import { enqueue, invitation, outboxRows, stopMailTest } from './support.ts';

let database: TestDatabase | undefined;
let server: TestServer | undefined;
let smtp: TestSmtp | undefined;

afterEach(() => stopMailTest({ server, smtp, database }));

it('keeps messages through a 10 s SMTP outage and sends each once when the server is back', async () => {
  database = await createTestDatabase();
  smtp = await startTestSmtp();
  server = await startTestServer(database, {
    POSTERN_SMTP_URL: smtp.url,
    POSTERN_MAIL_FROM: 'no-reply@example.com',
    // Back-off 2, 4, 4, ... s: the default caps at 60 s, which a 10 s outage never reaches anyway.
    POSTERN_MAIL_RETRY_MAX_SECONDS: '4',
  });
  const markers = ['o1x', 'o2x', 'o3x', 'o4x', 'o5x'];

  await smtp.stop();
  await enqueue(server, ...markers.map((m) => invitation(server!, m)));
  await waitUntil(
    async () => (await outboxRows(server!)).every((r) => r.attempts >= 2),
    15_000,
    'two failed attempts each',
  );
  await new Promise((r) => setTimeout(r, 8_000));
  const waiting = await outboxRows(server);
  expect(smtp.received).toHaveLength(0);
  expect(waiting.map((r) => r.status)).toEqual(markers.map(() => 'pending'));
  expect(waiting[0]!.last_error).toMatch(/ECONNREFUSED/);

  await smtp.start();
  await waitUntil(() => smtp!.received.length >= markers.length, 15_000, 'every message after the outage');
  await new Promise((r) => setTimeout(r, 3000));

  const counts = markers.map(
    (m) => smtp!.received.filter((mail) => mail.source.includes(`Your username: ${m}`)).length,
  );
  expect(counts).toEqual([1, 1, 1, 1, 1]);
  expect((await outboxRows(server)).map((r) => r.status)).toEqual(markers.map(() => 'sent'));
});
