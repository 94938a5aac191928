import { expect, it } from 'vitest';

import { expectOk, expectOneLineError, run, useCliDatabase } from '../support/cli.ts';

// `postern resource` and the resource options of `postern client create`, as an operator runs them.
const { env } = useCliDatabase();

it('registers an API and a service allowed to call it, refusing what does not fit', async () => {
  const created = await run(
    [
      'resource',
      'create',
      '--id',
      'https://api.example.com',
      '--scope',
      'orders:read orders:write',
      '--token-ttl',
      '600',
      '--json',
    ],
    env,
  );
  expectOk(created);
  expect(JSON.parse(created.stdout)).toMatchObject({
    identifier: 'https://api.example.com',
    scopes: ['orders:read', 'orders:write'],
    accessTokenTtl: 600,
    tokenFormat: 'jwt',
    signingAlg: 'ES256',
  });
  expectOneLineError(
    await run(['resource', 'create', '--id', 'https://api.example.com', '--scope', 'x'], env),
    /already exists/,
  );
  expectOneLineError(await run(['resource', 'create', '--id', 'not a uri', '--scope', 'x'], env), /absolute URI/);
  expectOneLineError(
    await run(['resource', 'create', '--id', 'https://b.example.com', '--scope', 'x', '--format', 'xml'], env),
    /--format must be jwt or opaque/,
    2,
  );
  expectOneLineError(
    await run(['resource', 'create', '--id', 'https://b.example.com', '--scope', 'x', '--alg', 'HS256'], env),
    /--alg must be one of/,
  );

  const svc = await run(
    [
      'client',
      'create',
      '--id',
      'svc',
      '--grant-types',
      'client_credentials',
      '--resource',
      'https://api.example.com',
      '--scope',
      'orders:read',
      '--json',
    ],
    env,
  );
  expectOk(svc);
  expect(JSON.parse(svc.stdout)).toMatchObject({ resources: ['https://api.example.com'], scope: 'orders:read' });
  expectOneLineError(
    await run(
      [
        'client',
        'create',
        '--id',
        'svc2',
        '--grant-types',
        'client_credentials',
        '--resource',
        'https://nowhere.example.com',
        '--scope',
        'orders:read',
      ],
      env,
    ),
    /no resource server "https:\/\/nowhere.example.com"/,
  );
  expectOneLineError(
    await run(
      [
        'client',
        'create',
        '--id',
        'svc3',
        '--grant-types',
        'client_credentials',
        '--resource',
        'https://api.example.com',
        '--scope',
        'billing:read',
      ],
      env,
    ),
    /scope "billing:read" belongs to none of this client's resources/,
  );

  const list = await run(['resource', 'list'], env);
  expectOk(list);
  expect(list.stdout).toMatch(/https:\/\/api\.example\.com\s+jwt\s+600\s+orders:read orders:write/);
  expectOk(await run(['resource', 'delete', 'https://api.example.com'], env));
  expectOneLineError(await run(['resource', 'show', 'https://api.example.com'], env), /no resource server/);
});
