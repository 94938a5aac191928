import { spawn } from 'node:child_process';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { findAccountForLogin } from '../../src/accounts/account.repository.ts';
import { createPasswordHasher } from '../../src/accounts/password-hasher.ts';
import { loadConfig } from '../../src/config/config.ts';
import { createCommandContainer } from '../../src/container/command.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { baseEnv, expectOk, expectOneLineError, ROOT, run, runBinary, waitForHealth } from '../support/cli.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { freePort } from '../support/server.ts';

describe('postern CLI', () => {
  let database: TestDatabase;
  let env: Record<string, string>;
  let serviceSecret = '';
  const newAlicePassword = 'a brand new passphrase for alice';
  const bobPassword = 'bob types a long passphrase';

  beforeAll(async () => {
    database = await createTestDatabase();
    env = baseEnv(database);
  });
  afterAll(async () => {
    await database?.drop();
  });

  // The real binary: its exit status, stdout and stderr as a shell sees them.
  it('prints usage, and refuses bad input with one line before touching the database', async () => {
    const [bare, help, commandHelp, unknown, unknownFlag, missingFlag, noPassword, config] = await Promise.all([
      runBinary([], env),
      runBinary(['--help'], env),
      runBinary(['client', 'create', '--help'], env),
      runBinary(['frobnicate'], env),
      runBinary(['user', 'list', '--bogus'], env),
      runBinary(['client', 'create', '--grant-types', 'authorization_code'], env),
      runBinary(['user', 'create', '--username', 'x', '--email', 'x@example.com'], env),
      runBinary(['user', 'list'], { ...env, POSTERN_SECRET: 'too-short', PORT: 'eighty' }),
    ]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/^Usage: postern <command>/);
    expectOk(help);
    expect(help.stdout).toMatch(/user set-password/);
    expectOk(commandHelp);
    expect(commandHelp.stdout).toMatch(/--post-logout-redirect-uri/);
    expectOneLineError(unknown, /unknown command "frobnicate".*postern help/, 2);
    expectOneLineError(unknownFlag, /unknown option --bogus/, 2);
    expectOneLineError(missingFlag, /missing required option --id/, 2);
    expectOneLineError(noPassword, /--password or --password-stdin/, 2);
    expectOneLineError(config, /invalid configuration: PORT must be .*; POSTERN_SECRET must be at least/, 1);
  });

  it('migrates, then finds nothing left to do', async () => {
    const first = await run(['migrate'], env);
    expectOk(first);
    expect(first.stdout).toMatch(/^applied \d+ migration\(s\): \d{12}_create_core_tables(, \d{12}_\w+)*$/m);
    const again = await run(['migrate', '--json'], env);
    expectOk(again);
    expect(JSON.parse(again.stdout)).toEqual({ applied: [] });
  });

  it('creates confidential clients, showing a generated secret once and never again', async () => {
    const web = await run(
      [
        'client',
        'create',
        '--id',
        'web',
        '--grant-types',
        'authorization_code,refresh_token',
        '--redirect-uri',
        'https://app.example.com/callback',
        '--redirect-uri',
        'https://app.example.com/cb2',
        '--post-logout-redirect-uri',
        'https://app.example.com/',
        '--first-party',
        '--name',
        'Web App',
      ],
      env,
    );
    expectOk(web);
    const secret = /^client secret: (\S+)$/m.exec(web.stdout)?.[1];
    expect(secret).toMatch(/^[\w-]{43}$/);
    expect(web.stdout).toMatch(/not be shown again/);

    const svc = await run(['client', 'create', '--id', 'svc', '--grant-types', 'client_credentials', '--json'], env);
    expectOk(svc);
    const created = JSON.parse(svc.stdout) as Record<string, unknown>;
    expect(created).toMatchObject({ clientId: 'svc', type: 'confidential', grantTypes: ['client_credentials'] });
    expect(created.clientSecret).toMatch(/^[\w-]{43}$/);
    serviceSecret = created.clientSecret as string;

    const [showJson, showText, list] = [
      await run(['client', 'show', 'web', '--json'], env),
      await run(['client', 'show', 'web'], env),
      await run(['client', 'list', '--json'], env),
    ];
    for (const outcome of [showJson, showText, list]) {
      expectOk(outcome);
      expect(outcome.stdout).not.toContain(secret);
      expect(outcome.stdout).not.toContain(serviceSecret);
      expect(outcome.stdout).not.toMatch(/hmac|secret_hash|client_secret"/i);
    }
    expect(JSON.parse(showJson.stdout)).toMatchObject({
      clientId: 'web',
      name: 'Web App',
      firstParty: true,
      tokenEndpointAuthMethod: 'client_secret_basic',
      redirectUris: ['https://app.example.com/callback', 'https://app.example.com/cb2'],
      postLogoutRedirectUris: ['https://app.example.com/'],
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/),
    });
    expect(showText.stdout).toMatch(
      /^redirect uris +https:\/\/app\.example\.com\/callback, https:\/\/app\.example\.com\/cb2$/m,
    );
    expect((JSON.parse(list.stdout) as { clientId: string }[]).map((c) => c.clientId)).toEqual(['web', 'svc']);
  });

  it('creates a public client; refuses duplicates and bad redirect URIs with one line; deletes', async () => {
    const spa = await run(
      [
        'client',
        'create',
        '--id',
        'spa',
        '--public',
        '--grant-types',
        'authorization_code',
        '--redirect-uri',
        'http://localhost:5173/callback',
        '--scope',
        'openid profile',
        '--json',
      ],
      env,
    );
    expectOk(spa);
    const view = JSON.parse(spa.stdout) as Record<string, unknown>;
    expect(view).toMatchObject({
      type: 'public',
      tokenEndpointAuthMethod: 'none',
      scope: 'openid profile',
      redirectUris: ['http://localhost:5173/callback'],
    });
    expect(view).not.toHaveProperty('clientSecret');

    expectOneLineError(
      await run(
        [
          'client',
          'create',
          '--id',
          'spa',
          '--public',
          '--grant-types',
          'authorization_code',
          '--redirect-uri',
          'http://localhost:5173/x',
        ],
        env,
      ),
      /"spa" already exists/,
    );
    expectOneLineError(
      await run(
        ['client', 'create', '--id', 'bad', '--grant-types', 'authorization_code', '--redirect-uri', 'not a uri'],
        env,
      ),
      /redirect URI "not a uri"/,
    );
    expectOneLineError(
      await run(
        [
          'client',
          'create',
          '--id',
          'bad',
          '--public',
          '--secret',
          'x'.repeat(40),
          '--grant-types',
          'authorization_code',
        ],
        env,
      ),
      /--secret or --public, not both/,
      2,
    );

    expectOk(await run(['client', 'delete', 'spa'], env));
    expectOneLineError(await run(['client', 'show', 'spa'], env), /no client "spa"/);
  });

  it('creates users from --password and --password-stdin; refuses weak passwords and duplicates', async () => {
    const alice = await run(
      [
        'user',
        'create',
        '--username',
        'alice',
        '--email',
        'alice@example.com',
        '--password',
        'correct horse battery staple',
        '--name',
        'Alice Liddell',
        '--email-verified',
        '--role',
        'admin,staff',
        '--role',
        'ops',
      ],
      env,
    );
    expectOk(alice);
    expect(alice.stdout).toMatch(/^created user "alice" \(id [0-9a-f-]{36}\)$/m);

    const bob = await run(
      [
        'user',
        'create',
        '--username',
        'bob',
        '--email',
        'bob@example.com',
        '--password-stdin',
        '--given-name',
        'Bob',
        '--json',
      ],
      env,
      `${bobPassword}\n`,
    );
    expectOk(bob);
    expect(JSON.parse(bob.stdout)).toMatchObject({
      username: 'bob',
      emailVerified: false,
      profile: { givenName: 'Bob' },
      roles: [],
      disabled: false,
    });
    expect(bob.stdout).not.toMatch(/argon|hash|password/i);

    expectOneLineError(
      await run(
        ['user', 'create', '--username', 'carol', '--email', 'carol@example.com', '--password', 'password'],
        env,
      ),
      /password rejected: .*commonly used/,
    );
    expectOneLineError(
      await run(['user', 'create', '--username', 'carol', '--email', 'carol@example.com', '--password', 'short'], env),
      /password rejected: .*at least 8/,
    );
    expectOneLineError(
      await run(
        [
          'user',
          'create',
          '--username',
          'ALICE',
          '--email',
          'other@example.com',
          '--password',
          'another fine passphrase',
        ],
        env,
      ),
      /already exists/,
    );
  });

  it('lists, shows, disables, enables and sets passwords, never printing a hash', async () => {
    const list = await run(['user', 'list', '--json'], env);
    expectOk(list);
    const users = JSON.parse(list.stdout) as { username: string; roles: string[] }[];
    expect(users.map((u) => u.username)).toEqual(['alice', 'bob']);
    expect(users[0]!.roles).toEqual(['admin', 'staff', 'ops']);
    expect(list.stdout).not.toMatch(/argon|hash/i);

    const byEmail = await run(['user', 'show', 'ALICE@example.com'], env);
    expectOk(byEmail);
    expect(byEmail.stdout).toMatch(/^name +Alice Liddell$/m);
    expect(byEmail.stdout).toMatch(/^status +active$/m);

    expectOk(await run(['user', 'disable', 'alice'], env));
    const disabled = JSON.parse((await run(['user', 'show', 'alice', '--json'], env)).stdout) as {
      id: string;
      disabled: boolean;
    };
    expect(disabled.disabled).toBe(true);
    expectOk(await run(['user', 'enable', disabled.id], env));
    expect(JSON.parse((await run(['user', 'show', 'alice', '--json'], env)).stdout)).toMatchObject({ disabled: false });

    expectOneLineError(await run(['user', 'set-password', 'alice', '--password', 'alice'], env), /password rejected/);
    expectOneLineError(
      await run(['user', 'set-password', 'nobody', '--password', newAlicePassword], env),
      /no account "nobody"/,
    );
    const changed = await run(['user', 'set-password', 'alice', '--password-stdin'], env, `${newAlicePassword}\n`);
    expectOk(changed);
    expect(changed.stdout).toMatch(/password changed for user "alice"/);
    const unlocked = await run(['user', 'unlock', 'alice'], env);
    expectOk(unlocked);
    expect(unlocked.stdout).toMatch(/^unlocked user "alice" \(0 lock\(s\) or counter\(s\) cleared\)$/m);

    // What was stored is exactly what was given (the trailing newline from stdin is not part of it).
    const config = loadConfig(env);
    const container = await createCommandContainer(config, {
      logger: createLogger({ level: 'silent', destination: { write() {} } }),
      engine: 'on-demand',
    });
    try {
      const hasher = createPasswordHasher(config.argon2);
      const check = async (login: string, password: string) => {
        const found = await findAccountForLogin(container.db.db, login);
        return (await hasher.verify(found!.passwordHash!, password)).ok;
      };
      expect(await check('alice', newAlicePassword)).toBe(true);
      expect(await check('bob', bobPassword)).toBe(true);
      expect(await check('bob', `${bobPassword}\n`)).toBe(false);
    } finally {
      await container.close();
    }
  });

  it.runIf(process.env.DATABASE_URL)(
    'with PostgreSQL, refuses a schema that is behind until `postern migrate` runs',
    async () => {
      const empty = await createTestDatabase();
      try {
        const behindEnv = baseEnv(empty, {
          POSTERN_MIGRATE_ON_START: 'false',
          PORT: String(await freePort()),
          HOST: '127.0.0.1',
        });
        expectOneLineError(await run(['user', 'list'], behindEnv), /schema is behind.*run "postern migrate"/);
        const serve = await runBinary(['serve'], behindEnv);
        expect(serve.code).not.toBe(0);
        expect(serve.stderr.trim()).toMatch(/^postern: the database schema is behind.*"postern migrate"/);
        const status = await run(['migrate', '--status', '--json'], behindEnv);
        expect(JSON.parse(status.stdout).pending).toContainEqual(expect.stringMatching(/_create_core_tables$/));
        expectOk(await run(['migrate'], behindEnv));
        expectOk(await run(['user', 'list'], behindEnv));
      } finally {
        await empty.drop();
      }
    },
  );

  it('serves until SIGTERM, honouring the secret the CLI printed; in embedded mode other commands are refused meanwhile', async () => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const server = spawn(process.execPath, ['src/cli.ts', 'serve'], {
      cwd: ROOT,
      env: { ...env, PORT: String(port), HOST: '127.0.0.1', POSTERN_ISSUER: issuer },
      stdio: 'pipe',
    });
    let output = '';
    server.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    server.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
    try {
      await waitForHealth(issuer, server, () => output);
      expect(output).toMatch(/Postern is ready/);

      const token = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`svc:${serviceSecret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: 'grant_type=client_credentials',
      });
      expect(token.status).toBe(200);

      const concurrent = await run(['user', 'list'], env);
      if (database.engine === 'pglite') {
        expectOneLineError(concurrent, /in use by another Postern process \(pid \d+, postern serve\); stop it first/);
      } else {
        expectOk(concurrent);
      }
    } finally {
      server.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(output).toMatch(/"msg":"stopped"/);
  });
});
