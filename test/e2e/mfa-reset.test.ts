import { afterEach, expect, it } from 'vitest';

import { baseEnv, expectOk, run } from '../support/cli.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { mailEnv, nextMail } from '../support/mailbox.ts';
import { discover, exchange, newBrowser, signIn, startAuthorization } from '../support/relying-party.ts';
import { createPublicApp } from '../support/setup.ts';
import { freePort, startTestServer, type TestServer } from '../support/server.ts';
import { startTestSmtp, type TestSmtp } from '../support/smtp.ts';
import { enrollOnAccountPage } from '../support/totp.ts';

// `postern user mfa reset` (issue 14 §1), as an administrator runs it for someone who lost their
// phone and their recovery codes: the real command between two runs of the server (an embedded
// database admits one process at a time), the mail over real SMTP, the sign-in at an app.

let database: TestDatabase | undefined;
let server: TestServer | undefined;
let smtp: TestSmtp | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
  await smtp?.stop();
  await database?.drop();
});

it('the command removes the authenticator app: audited, mailed, and the next sign-in asks for the password only', async () => {
  database = await createTestDatabase();
  smtp = await startTestSmtp();
  const port = await freePort();
  const env = { ...mailEnv(smtp), PORT: String(port), POSTERN_ISSUER: `http://127.0.0.1:${port}` };
  server = await startTestServer(database, env);
  const person = { username: 'lena', email: 'lena@example.com', password: 'lena lost her phone' };
  await server.container.accounts.create(person);
  await createPublicApp(server);
  await enrollOnAccountPage(server.issuer, newBrowser(), person, () => new Date());
  const before = newBrowser();
  const asked = await startAuthorization(before, await discover(server.issuer, 'app'));
  expect((await before.submit(asked.page, '/login', person)).text).toContain('/mfa"');
  await server.close();
  server = undefined;

  const reset = await run(['user', 'mfa', 'reset', 'lena', '--json'], baseEnv(database, env));
  expectOk(reset);
  expect(JSON.parse(reset.stdout)).toMatchObject({ account: { username: 'lena' }, removed: 11 });

  server = await startTestServer(database, env);
  await nextMail(smtp, person.email, 'Two-step verification was reset');
  const app = await discover(server.issuer, 'app');
  const tokens = await exchange(app, await signIn(newBrowser(), app, person));
  expect(tokens.claims()!.amr).toEqual(['pwd']);
  await server.container.audit.flush(); // audit events are written in the background
  expect(await server.container.audit.query({ type: 'mfa.reset' })).toMatchObject([
    { details: { by: 'cli', removed: 11 } },
  ]);
});
