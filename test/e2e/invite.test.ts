import { afterEach, expect, it } from 'vitest';

import { baseEnv, expectOk, expectOneLineError, run } from '../support/cli.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { linkIn, mailEnv, nextMail } from '../support/mailbox.ts';
import { discover, exchange, newBrowser, REDIRECT_URI, signIn } from '../support/relying-party.ts';
import { createPublicApp } from '../support/setup.ts';
import { freePort, startTestServer, type TestServer } from '../support/server.ts';
import { startTestSmtp, type TestSmtp } from '../support/smtp.ts';

// `postern user invite`, as an administrator runs it (the real command, a child process), then
// the invited person: the mail arrives over real SMTP, the link sets a password, and they sign
// in at a relying party (openid-client).

let database: TestDatabase | undefined;
let server: TestServer | undefined;
let smtp: TestSmtp | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
  await smtp?.stop();
  await database?.drop();
});

it('the command invites, the mail arrives, the link sets a password, and the person signs in with a verified email', async () => {
  database = await createTestDatabase();
  smtp = await startTestSmtp();
  const port = await freePort();
  const env = { ...mailEnv(smtp), PORT: String(port), POSTERN_ISSUER: `http://127.0.0.1:${port}` };

  // The command writes the account, its link and the mail in one transaction; the server's
  // sender delivers it (an embedded database admits one process at a time).
  const invited = await run(
    ['user', 'invite', '--email', 'Vera.Lind@example.com', '--name', 'Vera Lind', '--role', 'engineer', '--json'],
    baseEnv(database, env),
  );
  expectOk(invited);
  const { account, linkExpiresAt } = JSON.parse(invited.stdout) as {
    account: { username: string; emailVerified: boolean; roles: string[] };
    linkExpiresAt: string;
  };
  expect(account).toMatchObject({ username: 'Vera.Lind', emailVerified: false, roles: ['engineer'] });
  expect(Date.parse(linkExpiresAt) - Date.now()).toBeGreaterThan(7 * 86400_000 - 120_000);
  const again = await run(['user', 'invite', '--email', 'vera.lind@example.com'], baseEnv(database, env));
  expectOneLineError(again, /already exists/);

  server = await startTestServer(database, env);
  const mail = await nextMail(smtp, 'Vera.Lind@example.com', 'You are invited to Postern');
  expect(mail.source).toContain('Your username: Vera.Lind');
  expect(mail.source).toContain('expires in 7 days');

  // No password yet: nothing signs in.
  await createPublicApp(server);
  const app = await discover(server.issuer, 'app');
  await expect(signIn(newBrowser(), app, { username: 'Vera.Lind', password: '' })).rejects.toThrow();

  const browser = newBrowser();
  const form = await browser.get(linkIn(mail, '/set-password'));
  expect(form.status).toBe(200);
  expect(form.text).toContain('Choose your password');
  const PASSWORD = 'vera picks a long passphrase';
  const done = await browser.submit(form, '/set-password', { password: PASSWORD, confirm: PASSWORD });
  expect(done.status, done.text).toBe(200);
  expect(done.text).toContain('Your account is ready');

  const tokens = await exchange(app, await signIn(newBrowser(), app, { username: 'vera.lind', password: PASSWORD }));
  expect(tokens.claims()).toMatchObject({ email: 'Vera.Lind@example.com', email_verified: true, name: 'Vera Lind' });
  expect((await browser.get(linkIn(mail, '/set-password'))).status).toBe(410);
});

it('in production without SMTP, the command refuses in one line and the pages and links are not there', async () => {
  database = await createTestDatabase();
  const port = await freePort();
  const production = {
    NODE_ENV: 'production',
    PORT: String(port),
    POSTERN_ISSUER: `https://127.0.0.1:${port}`,
    POSTERN_TRUST_PROXY: 'true',
  };
  const refused = await run(['user', 'invite', '--email', 'x@example.com'], baseEnv(database, production));
  expectOneLineError(refused, /invitations need email: set POSTERN_SMTP_URL/);

  server = await startTestServer(database, production);
  await createPublicApp(server);
  const http = `http://127.0.0.1:${port}`;
  for (const path of ['/forgot-password', '/reset-password?token=x', '/set-password?token=x', '/unlock?token=x']) {
    expect((await fetch(`${http}${path}`, { headers: { 'x-forwarded-proto': 'https' } })).status, path).toBe(404);
  }
  expect(await server.container.accounts.list()).toEqual([]);

  // The login page offers no link to a page that is not there.
  const browser = newBrowser();
  browser.headers['x-forwarded-proto'] = 'https';
  browser.transport = (url) => new URL(url.href.replace(/^https:/, 'http:'));
  const login = await browser.get(
    `${server.issuer}/auth?client_id=app&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT_URI)}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`,
  );
  expect(login.text).toContain('name="password"');
  expect(login.text).not.toContain('forgot-password');
});
