import { spawn, type ChildProcess } from 'node:child_process';

import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { baseEnv, expectOk, ROOT, runBinary, waitForHealth } from '../support/cli.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import {
  discover,
  exchange,
  newBrowser,
  POST_LOGOUT_URI,
  REDIRECT_URI,
  signIn,
  startAuthorization,
} from '../support/relying-party.ts';
import { freePort } from '../support/server.ts';

// An operator's whole journey: Postern set up only with `postern` commands, served by
// `postern serve` in its own process, used by an independent client library; then an
// account locked by guessing and unlocked from the command line. The real binary throughout.

const PASSWORD = 'alice has a long passphrase';
let db: TestDatabase;
let env: Record<string, string>;
let issuer: string;
let server: ChildProcess | undefined;
let output = '';

beforeAll(async () => {
  db = await createTestDatabase();
  const port = await freePort();
  issuer = `http://127.0.0.1:${port}`;
  env = baseEnv(db, {
    POSTERN_MIGRATE_ON_START: 'false',
    PORT: String(port),
    HOST: '127.0.0.1',
    POSTERN_ISSUER: issuer,
  });
});

afterAll(async () => {
  await stop();
  await db?.drop();
});

async function serve(): Promise<void> {
  output = '';
  server = spawn(process.execPath, ['src/cli.ts', 'serve'], {
    cwd: ROOT,
    env: { ...env, LOG_LEVEL: 'info' },
    stdio: 'pipe',
  });
  server.stdout!.on('data', (d: Buffer) => {
    output += d.toString();
  });
  server.stderr!.on('data', (d: Buffer) => {
    output += d.toString();
  });
  await waitForHealth(issuer, server, () => output);
}

async function stop(): Promise<number | null> {
  const child = server;
  server = undefined;
  if (!child || child.exitCode !== null) return child?.exitCode ?? null;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return exited;
}

it('set up with postern commands, served by postern serve, used by openid-client; unlocked with postern user unlock', async () => {
  expectOk(await runBinary(['migrate'], env));
  const created = await runBinary(
    [
      'client',
      'create',
      '--id',
      'shop',
      '--grant-types',
      'authorization_code,refresh_token',
      '--redirect-uri',
      REDIRECT_URI,
      '--post-logout-redirect-uri',
      POST_LOGOUT_URI,
      '--scope',
      'openid profile email offline_access',
      '--json',
    ],
    env,
  );
  expectOk(created);
  const { clientSecret: secret } = JSON.parse(created.stdout) as { clientSecret: string };
  expectOk(
    await runBinary(
      [
        'user',
        'create',
        '--username',
        'alice',
        '--email',
        'alice@example.com',
        '--password-stdin',
        '--name',
        'Alice Liddell',
      ],
      env,
      `${PASSWORD}\n`,
    ),
  );

  await serve();
  const config = await discover(issuer, 'shop', secret);
  const browser = newBrowser();
  const auth = await signIn(
    browser,
    config,
    { username: 'alice', password: PASSWORD },
    { scope: 'openid profile email offline_access', prompt: 'consent' },
  );
  const tokens = await exchange(config, auth);
  const { protectedHeader } = await jwtVerify(tokens.id_token!, createRemoteJWKSet(new URL(`${issuer}/jwks`)), {
    issuer,
    audience: 'shop',
  });
  expect(protectedHeader.alg).toBe('RS256');
  const sub = tokens.claims()!.sub;
  expect((await oidc.fetchUserInfo(config, tokens.access_token, sub)).name).toBe('Alice Liddell');
  const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
  expect((await oidc.fetchUserInfo(config, refreshed.access_token, sub)).sub).toBe(sub);
  const logout = await browser.get(
    oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: POST_LOGOUT_URI })
      .href,
  );
  expect((await browser.submit(logout, '', { logout: 'yes' })).url).toBe(POST_LOGOUT_URI);

  // Someone guesses: five failures lock the account for that address.
  const guesser = newBrowser();
  let page = (await startAuthorization(guesser, config)).page;
  for (let i = 0; i < 5; i++)
    page = await guesser.submit(page, '/login', { username: 'alice', password: `guess ${i}` });
  const locked = await guesser.submit(page, '/login', { username: 'alice', password: PASSWORD });
  expect(locked.url.startsWith(REDIRECT_URI)).toBe(false);

  expect(await stop()).toBe(0); // SIGTERM: a clean exit
  // No development default of the engine is left: it printed no notice or warning.
  expect(output).not.toMatch(/oidc-provider (WARNING|NOTICE)/);
  expect(output).not.toContain(PASSWORD);

  const audit = await runBinary(['audit', '--account', 'alice', '--json'], env);
  expectOk(audit);
  const types = (JSON.parse(audit.stdout) as { type: string }[]).map((e) => e.type);
  expect(types).toContain('lockout.started');
  expect(types).toContain('login.succeeded');
  const unlocked = await runBinary(['user', 'unlock', 'alice'], env);
  expectOk(unlocked);
  expect(unlocked.stdout).toMatch(/unlocked user "alice"/);

  await serve();
  const again = await signIn(guesser, config, { username: 'alice', password: PASSWORD });
  expect(again.callbackUrl.searchParams.get('code')).toBeTruthy();
});
