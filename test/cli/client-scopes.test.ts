import { expect, it } from 'vitest';

import { expectOk, run, useCliDatabase } from '../support/cli.ts';

// `postern client show` tells the truth about what a client may ask for (issue 10, point 2):
// the OpenID Connect scopes and the API scopes it was registered with, and nothing else.
const { env } = useCliDatabase();

it('shows a client registered with API scopes only as having no OpenID Connect scope', async () => {
  expectOk(
    await run(['resource', 'create', '--id', 'https://orders.example.com', '--scope', 'orders:read orders:write'], env),
  );
  const created = await run(
    [
      'client',
      'create',
      '--id',
      'orders-app',
      '--grant-types',
      'authorization_code,refresh_token',
      '--first-party',
      '--redirect-uri',
      'https://app.example.com/cb',
      '--resource',
      'https://orders.example.com',
      '--scope',
      'orders:read',
      '--json',
    ],
    env,
  );
  expectOk(created);
  expect(JSON.parse(created.stdout)).toMatchObject({
    scope: 'orders:read',
    oidcScopes: [],
    apiScopes: ['orders:read'],
  });

  const [text, json] = [
    await run(['client', 'show', 'orders-app'], env),
    await run(['client', 'show', 'orders-app', '--json'], env),
  ];
  expectOk(text);
  expect(text.stdout).toMatch(/^oidc scopes +none \(no openid, profile, email, roles or offline_access\)$/m);
  expect(text.stdout).toMatch(/^api scopes +orders:read$/m);
  expect(JSON.parse(json.stdout)).toMatchObject({ oidcScopes: [], apiScopes: ['orders:read'] });
});

it('shows the OpenID Connect scopes of a web app, and of a code-flow client given none (the default set)', async () => {
  expectOk(
    await run(
      [
        'client',
        'create',
        '--id',
        'web',
        '--grant-types',
        'authorization_code',
        '--redirect-uri',
        'https://web.example.com/cb',
        '--scope',
        'openid profile',
      ],
      env,
    ),
  );
  expectOk(
    await run(
      [
        'client',
        'create',
        '--id',
        'plain',
        '--grant-types',
        'authorization_code',
        '--redirect-uri',
        'https://plain.example.com/cb',
      ],
      env,
    ),
  );
  const [web, plain] = [
    await run(['client', 'show', 'web'], env),
    await run(['client', 'show', 'plain', '--json'], env),
  ];
  expect(web.stdout).toMatch(/^oidc scopes +openid profile$/m);
  expect(web.stdout).toMatch(/^api scopes +none$/m);
  expect(JSON.parse(plain.stdout)).toMatchObject({
    oidcScopes: ['openid', 'profile', 'email', 'offline_access'],
    apiScopes: [],
  });
});
