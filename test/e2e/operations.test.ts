import { spawn } from 'node:child_process';
import net from 'node:net';

import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { baseEnv, ROOT, waitForHealth } from '../support/cli.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { discover, exchange, newBrowser, REDIRECT_URI, signIn, startAuthorization } from '../support/relying-party.ts';
import { freePort, startTestServer, type TestServer } from '../support/server.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

// What operators rely on: health, readiness, metrics, request ids, clean logs, graceful
// shutdown, and riding out a database outage.

const METRICS_TOKEN = 'metrics-token-0123456789';
const API = 'https://api.ops.example.com';
let db: TestDatabase;
let server: TestServer;
let svcSecret: string;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db, { POSTERN_METRICS_TOKEN: METRICS_TOKEN });
  await server.container.resources.create({ identifier: API, scopes: ['ops:read'] });
  svcSecret = (
    await server.container.clients.create({
      clientId: 'svc',
      grantTypes: ['client_credentials'],
      resources: [API],
      scope: 'ops:read',
    })
  ).secret!;
});

afterAll(async () => {
  await server?.close();
  await db?.drop();
});

const metricValue = (text: string, series: string) =>
  Number(
    text
      .split('\n')
      .find((l) => l.startsWith(series))
      ?.split(' ')
      .at(-1) ?? 0,
  );

describe('health', () => {
  it('/healthz says the process serves, /readyz that it can do its work, revealing nothing else', async () => {
    const health = await fetch(`${server.issuer}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${server.issuer}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { database: true, schema: true, keys: true } });
  });
});

describe('metrics', () => {
  it('are not public: the main port wants the token', async () => {
    expect((await fetch(`${server.issuer}/metrics`)).status).toBe(401);
    expect(
      (await fetch(`${server.issuer}/metrics`, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status,
    ).toBe(401);
  });

  it('expose the series and move when tokens are issued', async () => {
    const read = async () =>
      (await fetch(`${server.issuer}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
    const before = await read();
    for (const series of [
      'postern_http_requests_total',
      'postern_http_request_duration_seconds_bucket',
      'postern_signing_key_age_seconds{alg="RS256"}',
      'postern_signing_key_age_seconds{alg="ES256"}',
      'postern_process_resident_memory_bytes',
      'postern_nodejs_eventloop_lag_seconds',
    ]) {
      expect(before).toContain(series);
    }
    const config = await discover(server.issuer, 'svc', svcSecret);
    await oidc.clientCredentialsGrant(config, { scope: 'ops:read' });
    await oidc.clientCredentialsGrant(config, { scope: 'ops:read' });
    const after = await read();
    const issued = 'postern_tokens_issued_total{grant_type="client_credentials",client_id=""}';
    expect(metricValue(after, issued) - metricValue(before, issued)).toBe(2);
    expect(after).toMatch(/postern_http_requests_total\{method="POST",route="\/token",status="200"\} \d+/);
    expect(after).not.toContain('client_id="svc"'); // bounded labels unless POSTERN_METRICS_PER_CLIENT
  });

  it("label requests by route template: our routers' own, the engine's by the route it answered on, 'other' for the rest", async () => {
    const read = async () =>
      (await fetch(`${server.issuer}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
    await fetch(`${server.issuer}/.well-known/openid-configuration`);
    await fetch(`${server.issuer}/auth/some-interaction-id`); // the engine's resume route
    await fetch(`${server.issuer}/token`, {
      method: 'OPTIONS',
      headers: { origin: 'https://spa.example', 'access-control-request-method': 'POST' },
    });
    await fetch(`${server.issuer}/token`); // the engine's path, the wrong method: 405
    await fetch(`${server.issuer}/interaction/some-uid`); // ours: the sign-in page, expired
    await fetch(`${server.issuer}/no/such/page`);
    const text = await read();
    const label = (method: string, route: string, status: number) =>
      `postern_http_requests_total{method="${method}",route="${route}",status="${status}"}`;
    expect(text).toContain(label('GET', '/.well-known/openid-configuration', 200));
    expect(text).toContain(label('GET', '/auth/:uid', 400));
    expect(text).toContain(label('OPTIONS', '/token', 204));
    expect(text).toContain(label('GET', '/token', 405));
    expect(text).toContain(label('GET', '/interaction/:uid', 400));
    expect(text).toContain(label('GET', 'other', 404));
    expect(text).not.toMatch(/some-interaction-id|some-uid|no\/such/);
  });

  it('can live on a port of their own, and are then absent from the public one', async () => {
    const port = await freePort();
    const other = await startTestServer(
      db,
      { POSTERN_METRICS_PORT: String(port) },
      db.engine === 'pglite' ? { shareDatabaseOf: server } : {},
    );
    try {
      const response = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(response.status).toBe(200);
      expect(await response.text()).toContain('postern_sign_ins_total');
      expect((await fetch(`${other.issuer}/metrics`)).status).toBe(404);
    } finally {
      await other.close();
    }
  });
});

describe('published URLs', () => {
  it('follow the issuer, never a Host or X-Forwarded-Host header', async () => {
    const response = await fetch(`${server.issuer}/.well-known/openid-configuration`, {
      headers: { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' },
    });
    const discovery = (await response.json()) as Record<string, string>;
    for (const key of ['issuer', 'token_endpoint', 'authorization_endpoint', 'jwks_uri', 'userinfo_endpoint']) {
      expect(discovery[key]!.startsWith(server.issuer)).toBe(true);
    }
  });
});

describe('logs', () => {
  it("every response carries a request id, the caller's when it sent a sane one", async () => {
    for (const path of ['/', '/.well-known/openid-configuration', '/jwks']) {
      const mine = await fetch(`${server.issuer}${path}`, { headers: { 'x-request-id': 'trace-abc.123' } });
      expect(mine.headers.get('x-request-id')).toBe('trace-abc.123');
      const odd = await fetch(`${server.issuer}${path}`, { headers: { 'x-request-id': 'no spaces <please>' } });
      expect(odd.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    }
    expect(server.logs.some((l) => l.includes('"requestId":"trace-abc.123"') && l.includes('"msg":"request"'))).toBe(
      true,
    );
  });

  it('a hot protocol path logs its successes at debug only (the metrics count them), and its failures at info', async () => {
    const accessLine = (id: string) =>
      server.logs.find((l) => l.includes(`"requestId":"${id}"`) && l.includes('"msg":"request"'));
    await fetch(`${server.issuer}/.well-known/openid-configuration`, { headers: { 'x-request-id': 'hot-ok' } });
    const refused = await fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: { 'x-request-id': 'hot-refused', 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    expect(refused.status).toBeGreaterThanOrEqual(400);
    await fetch(`${server.issuer}/`, { headers: { 'x-request-id': 'page-ok' } });
    // This server logs at debug (test/support/server.ts), so the hot success is there, at debug.
    await expect.poll(() => accessLine('page-ok')).toMatch(/"level":30/);
    await expect.poll(() => accessLine('hot-refused')).toMatch(/"level":30/);
    expect(accessLine('hot-ok')).toMatch(/"level":20/);
  });

  it('no secret of a full sign-in appears in the logs', async () => {
    const password = 'a long secret passphrase for logs';
    await server.container.accounts.create({ username: 'logan', email: 'logan@example.com', password });
    const { secret } = await server.container.clients.create({
      clientId: 'web',
      grantTypes: ['authorization_code', 'refresh_token'],
      redirectUris: [REDIRECT_URI],
      scope: 'openid offline_access',
      firstParty: true,
    });
    const config = await discover(server.issuer, 'web', secret);
    const browser = newBrowser();
    const auth = await signIn(
      browser,
      config,
      { username: 'logan', password },
      { scope: 'openid offline_access', prompt: 'consent' },
    );
    const tokens = await exchange(config, auth);
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    await oidc.fetchUserInfo(config, refreshed.access_token, oidc.skipSubjectCheck);
    await server.container.audit.flush();
    const secrets = [
      password,
      secret!,
      svcSecret,
      tokens.access_token,
      tokens.refresh_token!,
      tokens.id_token!,
      refreshed.access_token,
      refreshed.refresh_token!,
      auth.callbackUrl.searchParams.get('code')!,
      auth.verifier,
      // Cookie values, but not the interaction's: it is the interaction id, in the URL path by design
      // (and worthless without its signature cookie, which is checked here).
      ...[...browser.cookies.entries()]
        .filter(([name]) => !['_interaction', '_interaction_resume'].includes(name))
        .map(([, c]) => c.value),
    ];
    const logs = server.logs.join('\n');
    expect(logs.length).toBeGreaterThan(1000);
    for (const value of secrets.filter((v) => v && v.length >= 16))
      expect(server.logs.filter((l) => l.includes(value))).toEqual([]);
  });
});

describe('shutdown', () => {
  it('SIGTERM finishes requests in flight, then exits 0', async () => {
    const port = await freePort();
    const env = baseEnv(db, { PORT: String(port), HOST: '127.0.0.1', POSTERN_ISSUER: `http://127.0.0.1:${port}` });
    if (db.engine === 'pglite') {
      // The embedded database belongs to one process: this test's own server must let go of it.
      await server.close();
    }
    const child = spawn(process.execPath, ['src/cli.ts', 'serve'], { cwd: ROOT, env, stdio: 'pipe' });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    await waitForHealth(`http://127.0.0.1:${port}`, child, () => output);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

    // A request in flight: headers sent, body not yet complete when SIGTERM arrives.
    const body = new URLSearchParams({ grant_type: 'client_credentials', scope: 'ops:read' }).toString();
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    let answer = '';
    socket.on('data', (d: Buffer) => {
      answer += d.toString();
    });
    const basic = Buffer.from(`svc:${svcSecret}`).toString('base64');
    socket.write(
      `POST /token HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Basic ${basic}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.slice(0, 10)}`,
    );
    await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    // New connections are refused by now ...
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    // ... but the request in flight completes.
    socket.write(body.slice(10));
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    expect(answer).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(answer).toContain('"access_token"');
    expect(await exited).toBe(0);
    expect(output).toContain('shutting down');
  });
});

describe('database outage', () => {
  it.runIf(process.env.DATABASE_URL)(
    'answers 503 with Retry-After while PostgreSQL is away, is not ready, and recovers by itself',
    async () => {
      const target = new URL(db.env.DATABASE_URL!);
      const proxy: TcpProxy = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
      const viaProxy = new URL(target);
      viaProxy.port = String(proxy.port);
      const outage = await startTestServer(
        { ...db, env: { DATABASE_URL: viaProxy.href } },
        { POSTERN_CACHE_SECONDS: '0' },
      );
      try {
        const config = await discover(outage.issuer, 'svc', svcSecret);
        await oidc.clientCredentialsGrant(config, { scope: 'ops:read' });
        await server.container.clients.create({
          clientId: 'outage-web',
          public: true,
          grantTypes: ['authorization_code'],
          redirectUris: [REDIRECT_URI],
        });
        const browser = newBrowser();
        const { page: login } = await startAuthorization(browser, await discover(outage.issuer, 'outage-web'));

        await proxy.cut();
        // Our own pages too: the login form posted while the database is away.
        const posted = await browser.submit(login, '/login', { username: 'nobody', password: 'irrelevant' });
        expect(posted.status).toBe(503);
        expect(posted.headers.get('retry-after')).toBe('5');
        expect(posted.text).toContain('Temporarily unavailable');
        const token = await fetch(`${outage.issuer}/token`, {
          method: 'POST',
          headers: { authorization: `Basic ${Buffer.from(`svc:${svcSecret}`).toString('base64')}` },
          body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'ops:read' }),
        });
        expect(token.status).toBe(503);
        expect(token.headers.get('retry-after')).toBe('5');
        expect(await token.json()).toMatchObject({ error: 'temporarily_unavailable' });
        const page = await fetch(`${outage.issuer}/auth?client_id=svc&response_type=code&scope=openid`, {
          headers: { accept: 'text/html' },
        });
        expect(page.status).toBe(503);
        expect(page.headers.get('retry-after')).toBe('5');
        expect(await page.text()).toContain('Temporarily unavailable');
        const ready = await fetch(`${outage.issuer}/readyz`);
        expect(ready.status).toBe(503);
        expect(((await ready.json()) as { checks: { database: boolean } }).checks.database).toBe(false);
        expect((await fetch(`${outage.issuer}/healthz`)).status).toBe(200); // alive, just not ready

        await proxy.restore();
        const back = Date.now();
        await expect
          .poll(
            () =>
              oidc.clientCredentialsGrant(config, { scope: 'ops:read' }).then(
                () => 'ok',
                () => 'down',
              ),
            { timeout: 10_000, interval: 100 },
          )
          .toBe('ok');
        expect(Date.now() - back).toBeLessThan(5000);
        expect((await fetch(`${outage.issuer}/readyz`)).status).toBe(200);
        expect(outage.logs.filter((l) => /unhandled rejection|provider server error/.test(l))).toEqual([]);
      } finally {
        await outage.close();
        await proxy.close();
      }
    },
  );
});
