import { expect, it } from 'vitest';

import { expectOk, expectOneLineError, run, useCliDatabase } from '../support/cli.ts';

// The options that let existing apps and APIs connect, as an operator types them:
// resource create --claims, client create --role, --pkce, --response-types.
const { env } = useCliDatabase();

// Each step spawns the real command on the embedded database (seconds apiece on a busy machine).
const STEPS_TIMEOUT = 240_000;
const web = ['--grant-types', 'authorization_code', '--redirect-uri', 'https://app.example.com/cb'];

it(
  'records which claims an API wants and which roles a service has, and shows them',
  async () => {
    expectOk(
      await run(
        [
          'resource',
          'create',
          '--id',
          'https://orders.example.com',
          '--scope',
          'orders:read',
          '--claims',
          'roles,email',
        ],
        env,
      ),
    );
    const shown = await run(['resource', 'show', 'https://orders.example.com'], env);
    expectOk(shown);
    expect(shown.stdout).toMatch(/token claims\s+roles, email/);
    expectOneLineError(
      await run(['resource', 'create', '--id', 'https://x.example.com', '--scope', 'x', '--claims', 'password'], env),
      /"password" is not a claim access tokens can carry/,
    );

    expectOk(
      await run(
        [
          'client',
          'create',
          '--id',
          'svc',
          '--grant-types',
          'client_credentials',
          '--resource',
          'https://orders.example.com',
          '--scope',
          'orders:read',
          '--role',
          'engineer,technician',
          '--role',
          'manager',
        ],
        env,
      ),
    );
    const svc = await run(['client', 'show', 'svc', '--json'], env);
    expectOk(svc);
    expect(JSON.parse(svc.stdout)).toMatchObject({ roles: ['engineer', 'technician', 'manager'], pkce: 'required' });
    expect((await run(['client', 'show', 'svc'], env)).stdout).toMatch(/roles\s+engineer, technician, manager/);
    expectOneLineError(
      await run(['client', 'create', '--id', 'web-role', ...web, '--role', 'admin'], env),
      /--role is for services/,
    );
  },
  STEPS_TIMEOUT,
);

it(
  'lets a confidential client go without PKCE, never a public one',
  async () => {
    const created = await run(['client', 'create', '--id', 'legacy', ...web, '--pkce', 'optional', '--json'], env);
    expectOk(created);
    expect(JSON.parse(created.stdout)).toMatchObject({ pkce: 'optional', type: 'confidential' });
    expectOneLineError(
      await run(['client', 'create', '--id', 'spa', '--public', ...web, '--pkce', 'optional'], env),
      /--pkce optional is for confidential clients only/,
    );
    expectOneLineError(
      await run(['client', 'create', '--id', 'odd', ...web, '--pkce', 'sometimes'], env),
      /--pkce must be required or optional/,
      2,
    );
  },
  STEPS_TIMEOUT,
);

it(
  'registers the id_token response type only on request, with https redirect URIs',
  async () => {
    const created = await run(
      ['client', 'create', '--id', 'classic', ...web, '--response-types', 'code,id_token', '--json'],
      env,
    );
    expectOk(created);
    expect(JSON.parse(created.stdout)).toMatchObject({ responseTypes: ['code', 'id_token'] });
    const plain = await run(['client', 'create', '--id', 'plain', ...web, '--json'], env);
    expect(JSON.parse(plain.stdout)).toMatchObject({ responseTypes: ['code'] });
    expectOneLineError(
      await run(['client', 'create', '--id', 'bad', ...web, '--response-types', 'token'], env),
      /unknown response type "token"/,
    );
    expectOneLineError(
      await run(
        [
          'client',
          'create',
          '--id',
          'http',
          '--grant-types',
          'authorization_code',
          '--redirect-uri',
          'http://app.example.com/cb',
          '--response-types',
          'code,id_token',
        ],
        env,
      ),
      /https/,
    );
  },
  STEPS_TIMEOUT,
);
