import { Validator } from '@seriousme/openapi-schema-validator';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ADMIN_OPERATIONS, createAdminRouter } from '../../src/admin/admin-api.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { linkIn, mailEnv, nextMail } from '../support/mailbox.ts';
import { discover, exchange, newBrowser, REDIRECT_URI, signIn } from '../support/relying-party.ts';
import { freePort, startTestServer, type TestServer } from '../support/server.ts';
import { startTestSmtp, type TestSmtp } from '../support/smtp.ts';
import { totpCode } from '../support/totp.ts';

// The admin API as its callers use it: a service gets a token from Postern's /token for the
// resource <issuer>/admin (client credentials), a person through the code flow; then plain HTTP.

const ORDERS = 'https://orders.example.com';
const PASSWORD = 'a long passphrase for the admins';
const FAST_ARGON2 = { POSTERN_ARGON2_MEMORY_KIB: '1024', POSTERN_ARGON2_ITERATIONS: '1' };
let db: TestDatabase;
let server: TestServer;
let smtp: TestSmtp;
let admin: string;
const secrets: Record<string, string> = {};

beforeAll(async () => {
  db = await createTestDatabase();
  smtp = await startTestSmtp();
  server = await startTestServer(db, { ...FAST_ARGON2, ...mailEnv(smtp) });
  admin = `${server.issuer}/admin`;
  const { clients, resources, accounts } = server.container;
  await resources.create({ identifier: ORDERS, scopes: ['orders:read'] });
  for (const [id, scope] of [
    ['ops', 'admin:write'],
    ['auditor', 'admin:read'],
    ['people', 'admin:users'],
  ] as const) {
    secrets[id] = (
      await clients.create({ clientId: id, grantTypes: ['client_credentials'], resources: [admin], scope })
    ).secret!;
  }
  secrets.orders = (
    await clients.create({
      clientId: 'orders',
      grantTypes: ['client_credentials'],
      resources: [ORDERS],
      scope: 'orders:read',
    })
  ).secret!;
  await clients.create({
    clientId: 'console',
    secret: 'console-secret-0123456789abcdefghijklmnop',
    firstParty: true,
    grantTypes: ['authorization_code'],
    redirectUris: [REDIRECT_URI],
    resources: [admin],
    scope: 'openid admin:read admin:write',
  });
  await accounts.create({ username: 'ada', email: 'ada@example.com', password: PASSWORD, roles: ['postern:admin'] });
  await accounts.create({ username: 'bob', email: 'bob@example.com', password: PASSWORD, roles: ['viewer'] });
});

afterAll(async () => {
  await server?.close();
  await smtp?.stop();
  await db?.drop();
});

async function serviceToken(clientId: string, scope: string, resource = admin): Promise<string> {
  const config = await discover(server.issuer, clientId, secrets[clientId]);
  return (await oidc.clientCredentialsGrant(config, { scope, resource })).access_token;
}

async function api(
  method: string,
  path: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string>; base?: TestServer } = {},
) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${(options.base ?? server).issuer}/admin/v1${path}`, {
    method,
    headers,
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
  });
  const text = await response.text();
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers, read by the assertions
  return { status: response.status, headers: response.headers, body: (text ? JSON.parse(text) : undefined) as any };
}

describe('a service client with admin:write', () => {
  it('creates a user with roles, a client and a resource server, rotates a key and reads the audit log', async () => {
    const token = await serviceToken('ops', 'admin:write');
    const user = await api('POST', '/users', {
      token,
      body: { username: 'carol', email: 'carol@example.com', password: PASSWORD, roles: ['billing', 'postern:admin'] },
    });
    expect(user.status).toBe(201);
    expect(user.body).toMatchObject({ username: 'carol', roles: ['billing', 'postern:admin'], disabled: false });
    expect(user.body).not.toHaveProperty('passwordHash');

    const client = await api('POST', '/clients', {
      token,
      body: { clientId: 'reports', grantTypes: ['client_credentials'], resources: [ORDERS], scope: 'orders:read' },
    });
    expect(client.status).toBe(201);
    expect(client.body).toMatchObject({ clientId: 'reports', type: 'confidential', apiScopes: ['orders:read'] });
    // The generated secret works at /token.
    const reports = await discover(server.issuer, 'reports', client.body.clientSecret);
    await expect(
      oidc.clientCredentialsGrant(reports, { scope: 'orders:read', resource: ORDERS }),
    ).resolves.toBeTruthy();

    const rs = await api('POST', '/resource-servers', {
      token,
      body: { identifier: 'https://ledger.example.com', scopes: ['ledger:read'], claims: ['roles'] },
    });
    expect(rs.status).toBe(201);
    expect(rs.body).toMatchObject({ identifier: 'https://ledger.example.com', tokenFormat: 'jwt', claims: ['roles'] });

    const before = (await api('GET', '/signing-keys', { token })).body.items;
    const rotated = await api('POST', '/signing-keys/rotate', { token, body: { alg: 'ES256', force: true } });
    expect(rotated.status).toBe(200);
    const [{ activated, retired }] = rotated.body.items;
    const after = (await api('GET', '/signing-keys', { token })).body.items;
    expect(before.find((k: { kid: string }) => k.kid === activated).state).toBe('next');
    expect(after.find((k: { kid: string }) => k.kid === activated).state).toBe('current');
    expect(after.find((k: { kid: string }) => k.kid === retired).state).toBe('retired');

    await server.container.audit.flush();
    const audit = await api('GET', '/audit-events?client=reports', { token });
    expect(audit.status).toBe(200);
    expect(audit.body.items.map((e: { type: string }) => e.type)).toContain('client.created');
    const created = await api('GET', `/audit-events?account=carol&type=account.created`, { token });
    expect(created.body.items).toHaveLength(1);
    // Every change says who made it.
    expect(created.body.items[0].details.actor).toEqual({ clientId: 'ops' });
  });

  it('updates a client, rotates its secret (the old one stops working) and deletes it', async () => {
    const token = await serviceToken('ops', 'admin:write');
    const { body } = await api('POST', '/clients', {
      token,
      body: { clientId: 'batch', grantTypes: ['client_credentials'], resources: [ORDERS], scope: 'orders:read' },
    });
    const updated = await api('PATCH', '/clients/batch', { token, body: { name: 'Nightly batch' } });
    expect(updated.body).toMatchObject({ name: 'Nightly batch', apiScopes: ['orders:read'], resources: [ORDERS] });
    const rotated = await api('POST', '/clients/batch/secret', { token });
    expect(rotated.body.clientSecret).not.toBe(body.clientSecret);
    const old = await discover(server.issuer, 'batch', body.clientSecret);
    await expect(oidc.clientCredentialsGrant(old, { scope: 'orders:read', resource: ORDERS })).rejects.toThrow();
    const fresh = await discover(server.issuer, 'batch', rotated.body.clientSecret);
    await expect(oidc.clientCredentialsGrant(fresh, { scope: 'orders:read', resource: ORDERS })).resolves.toBeTruthy();
    expect((await api('DELETE', '/clients/batch', { token })).status).toBe(204);
    expect((await api('GET', '/clients/batch', { token })).status).toBe(404);
  });
});

describe('invitations', () => {
  it('invites a user: the mail arrives over SMTP and its link sets a password that signs in', async () => {
    const token = await serviceToken('people', 'admin:users');
    const body = { email: 'Iris@example.com', name: 'Iris West', roles: ['engineer'] };
    const headers = { 'idempotency-key': 'invite-iris-1' };
    const invited = await api('POST', '/users/invite', { token, body, headers });
    expect(invited.status, JSON.stringify(invited.body)).toBe(201);
    expect(invited.body.user).toMatchObject({ username: 'Iris', emailVerified: false, roles: ['engineer'] });
    expect(Date.parse(invited.body.linkExpiresAt) - Date.now()).toBeGreaterThan(7 * 86400_000 - 120_000);
    // A retry with the key gets the first answer and sends no second mail; without it, a duplicate.
    const retry = await api('POST', '/users/invite', { token, body, headers });
    expect(retry.status).toBe(201);
    expect(retry.body).toEqual(invited.body);
    expect((await api('POST', '/users/invite', { token, body })).status).toBe(409);

    const mail = await nextMail(smtp, 'Iris@example.com', 'You are invited to Postern');
    expect(mail.source).toContain('Your username: Iris');
    const browser = newBrowser();
    const form = await browser.get(linkIn(mail, '/set-password'));
    expect(form.status).toBe(200);
    const password = 'iris picks a long passphrase';
    const done = await browser.submit(form, '/set-password', { password, confirm: password });
    expect(done.status, done.text).toBe(200);
    expect(done.text).toContain('Your account is ready');
    await server.container.clients.create({
      clientId: 'invited-app',
      public: true,
      grantTypes: ['authorization_code'],
      redirectUris: [REDIRECT_URI],
      firstParty: true,
    });
    const app = await discover(server.issuer, 'invited-app');
    const tokens = await exchange(app, await signIn(newBrowser(), app, { username: 'iris', password }));
    expect(tokens.claims()).toMatchObject({ email: 'Iris@example.com', email_verified: true, name: 'Iris West' });
    expect(smtp.received.filter((m) => m.subject.includes('You are invited'))).toHaveLength(1);
  });

  it('answers 503 mail-disabled in production without SMTP, and creates no account', async () => {
    const port = await freePort();
    const production = await startTestServer(
      db,
      {
        ...FAST_ARGON2,
        NODE_ENV: 'production',
        PORT: String(port),
        POSTERN_ISSUER: `https://127.0.0.1:${port}`,
        POSTERN_TRUST_PROXY: 'true',
      },
      { shareDatabaseOf: server },
    );
    const secret = 'mailless-secret-0123456789abcdefghijklmnop';
    await production.container.clients.create({
      clientId: 'mailless',
      secret,
      grantTypes: ['client_credentials'],
      resources: [`${production.issuer}/admin`],
      scope: 'admin:users',
    });
    try {
      // Behind a TLS-terminating proxy: plain HTTP on loopback, X-Forwarded-Proto says https.
      const http = `http://127.0.0.1:${port}`;
      const proto = { 'x-forwarded-proto': 'https' };
      const { access_token: token } = (await (
        await fetch(`${http}/token`, {
          method: 'POST',
          headers: {
            ...proto,
            authorization: `Basic ${Buffer.from(`mailless:${secret}`).toString('base64')}`,
            'content-type': 'application/x-www-form-urlencoded',
          },
          body: new URLSearchParams({
            grant_type: 'client_credentials',
            scope: 'admin:users',
            resource: `${production.issuer}/admin`,
          }),
        })
      ).json()) as { access_token: string };
      const response = await fetch(`${http}/admin/v1/users/invite`, {
        method: 'POST',
        headers: { ...proto, authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'nomail@example.com' }),
      });
      expect(response.status).toBe(503);
      expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(((await response.json()) as { type: string }).type).toBe(`${production.issuer}/problems/mail-disabled`);
      await expect(server.container.accounts.get('nomail@example.com')).rejects.toThrow();
    } finally {
      await production.close();
    }
  });
});

describe('authorization', () => {
  it('lets admin:read read, and answers 403 with the scope needed on writes', async () => {
    const token = await serviceToken('auditor', 'admin:read');
    expect((await api('GET', '/users', { token })).status).toBe(200);
    const refused = await api('POST', '/users', {
      token,
      body: { username: 'mallory', email: 'mallory@example.com', password: PASSWORD },
    });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused.body.type).toBe(`${server.issuer}/problems/forbidden`);
    expect(refused.headers.get('www-authenticate')).toBe(
      'Bearer error="insufficient_scope", scope="admin:write admin:users"',
    );
  });

  it('lets admin:users manage users but not clients or keys', async () => {
    const token = await serviceToken('people', 'admin:users');
    expect((await api('GET', '/users/ada', { token })).status).toBe(200);
    expect((await api('GET', '/clients', { token })).status).toBe(403);
    expect((await api('GET', '/signing-keys', { token })).status).toBe(403);
  });

  it('answers 401 to no token, a forged one, and a token for another audience', async () => {
    const none = await api('GET', '/users');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="/admin/v1"');
    expect(none.body).toMatchObject({ type: `${server.issuer}/problems/unauthorized`, status: 401 });
    const orders = await serviceToken('orders', 'orders:read', ORDERS);
    const other = await api('GET', '/users', { token: orders });
    expect(other.status).toBe(401);
    expect(other.body.detail).toMatch(/not meant for this API/);
    const genuine = await serviceToken('ops', 'admin:write');
    const [header, payload] = genuine.split('.');
    const forged = `${header}.${payload}.${'A'.repeat(86)}`;
    expect((await api('GET', '/users', { token: forged })).status).toBe(401);
  });

  it('lets a person with the postern:admin role call it with their code-flow token, and refuses one without', async () => {
    const config = await discover(server.issuer, 'console', 'console-secret-0123456789abcdefghijklmnop');
    const tokenOf = async (username: string) => {
      const auth = await signIn(
        newBrowser(),
        config,
        { username, password: PASSWORD },
        {
          scope: 'openid admin:read',
          resource: admin,
        },
      );
      return (await exchange(config, auth)).access_token;
    };
    const ada = await api('GET', '/users?search=ada', { token: await tokenOf('ada') });
    expect(ada.status).toBe(200);
    expect(ada.body.items.map((u: { username: string }) => u.username)).toEqual(['ada']);
    const bob = await api('GET', '/users', { token: await tokenOf('bob') });
    expect(bob.status).toBe(403);
    expect(bob.body.detail).toMatch(/postern:admin/);
  });
});

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const response = await fetch(`${server.issuer}/admin/v1/openapi.json`);
    const document = (await response.json()) as Record<string, unknown>;
    expect(document.openapi).toBe('3.1.0');
    const result = await new Validator().validate(document);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
  });

  it('holds every route the router serves, and the router serves nothing else', async () => {
    const document = (await (await fetch(`${server.issuer}/admin/v1/openapi.json`)).json()) as { paths: object };
    const documented = Object.entries(document.paths as Record<string, object>).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method.toUpperCase()} /admin/v1${path}`),
    );
    const router = createAdminRouter({ deps: { issuer: server.issuer } } as never);
    const served = router.stack
      .flatMap((layer) => layer.methods.filter((m) => m !== 'HEAD').map((m) => `${m} ${layer.path}`))
      .map((route) => route.replace(/:(\w+)/g, '{$1}'))
      .filter((route) => route !== 'GET /admin/v1/openapi.json');
    expect(served.sort()).toEqual(documented.sort());
    expect(documented).toHaveLength(ADMIN_OPERATIONS.length);
  });

  it('answers at every path it lists (reads with admin:read, writes refused for scope, so none is missing)', async () => {
    const document = (await (await fetch(`${server.issuer}/admin/v1/openapi.json`)).json()) as { paths: object };
    const token = await serviceToken('auditor', 'admin:read');
    const kid = (await api('GET', '/signing-keys', { token })).body.items[0].kid;
    const values: Record<string, string> = { user: 'ada', clientId: 'ops', identifier: encodeURIComponent(admin), kid };
    for (const [template, ops] of Object.entries(document.paths as Record<string, object>)) {
      const path = template.replace(/\{(\w+)\}/g, (_, name: string) => values[name]!);
      for (const method of Object.keys(ops)) {
        const { status } = await api(method.toUpperCase(), path, { token, ...(method === 'get' ? {} : { body: {} }) });
        expect(`${method} ${template}: ${status}`).toBe(`${method} ${template}: ${method === 'get' ? 200 : 403}`);
      }
    }
  });
});

describe('requests', () => {
  it('answers invalid input with problem details naming each field', async () => {
    const token = await serviceToken('ops', 'admin:write');
    const { status, body } = await api('POST', '/users', {
      token,
      body: { username: 5, roles: ['ok', 'not a role'], extra: true },
    });
    expect(status).toBe(400);
    expect(body.type).toBe(`${server.issuer}/problems/invalid-input`);
    expect(body.errors.map((e: { field: string }) => e.field).sort()).toEqual(
      ['email', 'extra', 'password', 'roles[1]', 'username'].sort(),
    );
  });

  it("refuses to create a client under the built-in account page's id, as a problem naming the field", async () => {
    const token = await serviceToken('ops', 'admin:write');
    const { status, body } = await api('POST', '/clients', {
      token,
      body: {
        clientId: 'postern-account',
        public: true,
        grantTypes: ['authorization_code'],
        redirectUris: ['https://app.example.com/cb'],
      },
    });
    expect(status).toBe(400);
    expect(body.type).toBe(`${server.issuer}/problems/invalid-input`);
    expect(body.detail).toMatch(/"postern-account" is reserved for Postern's built-in account page/);
    expect(body.errors).toEqual([{ field: 'clientId', detail: body.detail }]);
  });

  it('gives a retried create with the same Idempotency-Key the first answer, and refuses the key for another body', async () => {
    const token = await serviceToken('ops', 'admin:write');
    const body = { username: 'dave', email: 'dave@example.com', password: PASSWORD };
    const headers = { 'idempotency-key': 'create-dave-1' };
    const first = await api('POST', '/users', { token, body, headers });
    const retry = await api('POST', '/users', { token, body, headers });
    expect(first.status).toBe(201);
    expect(retry.status).toBe(201);
    expect(retry.body).toEqual(first.body);
    expect(retry.headers.get('idempotency-replayed')).toBe('true');
    const other = await api('POST', '/users', { token, body: { ...body, username: 'dave2' }, headers });
    expect(other.status).toBe(422);
    // Without the key, the same create is a duplicate.
    expect((await api('POST', '/users', { token, body })).status).toBe(409);
  });

  it('walks 250 users in pages of 100 with no duplicates and no gaps', async () => {
    const { accounts } = server.container;
    const names = Array.from({ length: 250 }, (_, i) => `paged-${String(i).padStart(3, '0')}`);
    for (let i = 0; i < names.length; i += 25)
      await Promise.all(
        names
          .slice(i, i + 25)
          .map((username) => accounts.create({ username, email: `${username}@example.com`, password: PASSWORD })),
      );
    const token = await serviceToken('auditor', 'admin:read');
    const seen: string[] = [];
    const sizes: number[] = [];
    let cursor: string | null = null;
    do {
      const query: string = `/users?search=paged-&limit=100${cursor ? `&cursor=${cursor}` : ''}`;
      const { body } = await api('GET', query, { token });
      sizes.push(body.items.length);
      seen.push(...body.items.map((u: { username: string }) => u.username));
      cursor = body.nextCursor;
    } while (cursor);
    expect(sizes).toEqual([100, 100, 50]);
    expect(seen).toEqual(names);
  });
});

describe('limits and origins', () => {
  let limited: TestServer;
  beforeAll(async () => {
    limited = await startTestServer(
      db,
      {
        ...FAST_ARGON2,
        POSTERN_ADMIN_RATE_LIMIT: '3',
        POSTERN_ADMIN_RATE_WINDOW_SECONDS: '3600',
        POSTERN_ADMIN_CORS_ORIGINS: 'https://console.example.com',
      },
      { shareDatabaseOf: server },
    );
    await limited.container.clients.create({
      clientId: 'busy',
      secret: 'busy-secret-0123456789abcdefghijklmnopqrst',
      grantTypes: ['client_credentials'],
      resources: [`${limited.issuer}/admin`],
      scope: 'admin:read',
    });
  });
  afterAll(() => limited?.close());

  it('answers 429 with Retry-After once a client is over its limit', async () => {
    const config = await discover(limited.issuer, 'busy', 'busy-secret-0123456789abcdefghijklmnopqrst');
    const { access_token: token } = await oidc.clientCredentialsGrant(config, {
      scope: 'admin:read',
      resource: `${limited.issuer}/admin`,
    });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await api('GET', '/signing-keys', { token, base: limited })).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const refused = await api('GET', '/signing-keys', { token, base: limited });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(3000);
    expect(refused.body.type).toBe(`${limited.issuer}/problems/rate-limited`);
  });

  it('allows only the configured origins, and none by default', async () => {
    const preflight = (base: TestServer) =>
      fetch(`${base.issuer}/admin/v1/users`, {
        method: 'OPTIONS',
        headers: { origin: 'https://console.example.com', 'access-control-request-method': 'GET' },
      });
    const allowed = await preflight(limited);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://console.example.com');
    expect(allowed.headers.get('access-control-allow-headers')).toMatch(/Authorization/);
    expect((await preflight(server)).headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('multi-factor sign-in', () => {
  it("resets a user's authenticator app (postern user mfa reset): the factor goes, the owner is mailed, the caller is audited", async () => {
    const { accounts, mfa, audit } = server.container;
    const dan = await accounts.create({ username: 'dan', email: 'dan@example.com', password: PASSWORD });
    const { secret } = await mfa.startTotp(dan.id);
    const confirmed = await mfa.confirmTotp(dan.id, { code: totpCode(secret, new Date()) }, {});
    expect(confirmed.ok).toBe(true);
    const reset = await api('POST', '/users/dan/mfa/reset', { token: await serviceToken('people', 'admin:users') });
    expect(reset.status).toBe(200);
    expect(reset.body).toMatchObject({ user: { username: 'dan' }, removed: 11 });
    expect(await mfa.status(dan.id)).toEqual({ totp: false, recoveryCodesLeft: 0 });
    await nextMail(smtp, 'dan@example.com', 'Two-step verification was reset');
    expect(await audit.query({ type: 'mfa.reset', accountId: dan.id })).toMatchObject([{ details: { by: 'people' } }]);
  });

  it('registers a client that requires MFA (requireMfa), and shows it', async () => {
    const created = await api('POST', '/clients', {
      token: await serviceToken('ops', 'admin:write'),
      body: {
        clientId: 'vault',
        grantTypes: ['authorization_code'],
        redirectUris: [REDIRECT_URI],
        scope: 'openid',
        requireMfa: true,
      },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ clientId: 'vault', requireMfa: true });
  });
});
