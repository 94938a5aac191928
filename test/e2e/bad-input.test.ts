import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { findForm } from '../support/browser.ts';
import { createAlice, createWebApp, startServerOnOwnDatabase } from '../support/setup.ts';
import { discover, newBrowser, REDIRECT_URI, startAuthorization } from '../support/relying-party.ts';
import type { TestServer } from '../support/server.ts';

// Issue 10 §1, case by case: text PostgreSQL cannot store (NUL, lone surrogates) reached the
// database and came back as 500 server_error with an error-level stack trace in the log. It is
// invalid input: 400 invalid_request (a readable page for people), one warn line, no stack.

let server: TestServer;
let secret: string;

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const authorize = (params: Record<string, string>) =>
  `${server.issuer}/auth?${new URLSearchParams({
    client_id: 'webapp',
    response_type: 'code',
    scope: 'openid',
    redirect_uri: REDIRECT_URI,
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
    ...params,
  })}`;
const basic = (id: string, password: string) => `Basic ${Buffer.from(`${id}:${password}`).toString('base64')}`;

beforeAll(async () => {
  server = await startServerOnOwnDatabase();
  await createAlice(server);
  secret = await createWebApp(server, ['authorization_code', 'refresh_token']);
});

afterAll(async () => {
  await server?.close();
});

/** What the log says about one request: its lines, found by the request id we sent. */
function logOf(requestId: string) {
  const lines = server.logs.filter((line) => line.includes(requestId));
  return {
    warnings: lines.filter((line) => (JSON.parse(line) as { level: number }).level === 40),
    errors: lines.filter((line) => (JSON.parse(line) as { level: number }).level >= 50),
    stacks: lines.filter((line) => line.includes('"stack"')),
  };
}

async function expectRefused(response: Response, requestId: string, param: string) {
  expect(response.status).toBe(400);
  const body = (await response.json()) as { error: string; error_description: string };
  expect(body.error).toBe('invalid_request');
  expect(body.error_description).toContain(param);
  const log = logOf(requestId);
  expect(log.warnings).toHaveLength(1);
  expect(log.errors).toEqual([]);
  expect(log.stacks).toEqual([]);
}

let seq = 0;
const requestId = () => `bad-input-${++seq}`;

describe('the engine endpoints answer invalid_request to text the database cannot store', () => {
  it('GET /auth?client_id=a%00b', async () => {
    const id = requestId();
    await expectRefused(
      await fetch(`${server.issuer}/auth?client_id=a%00b`, { headers: { 'x-request-id': id } }),
      id,
      'client_id',
    );
  });

  for (const param of ['state', 'nonce', 'login_hint', 'ui_locales']) {
    it(`GET /auth with ${param} holding %00, for a valid client`, async () => {
      const id = requestId();
      await expectRefused(
        await fetch(authorize({ [param]: 'a\u0000b' }), { headers: { 'x-request-id': id }, redirect: 'manual' }),
        id,
        param,
      );
    });
  }

  it('a browser gets a readable 400 page, not JSON', async () => {
    const response = await fetch(authorize({ state: '\u0000' }), {
      headers: { accept: 'text/html' },
      redirect: 'manual',
    });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toContain('text/html');
    expect(await response.text()).toContain('This request is not valid');
  });

  for (const param of ['client_id', 'code', 'refresh_token']) {
    it(`POST /token with ${param}=a%00b`, async () => {
      const id = requestId();
      const grant = param === 'refresh_token' ? 'refresh_token' : 'authorization_code';
      const body = new URLSearchParams({
        grant_type: grant,
        client_id: 'webapp',
        client_secret: secret,
        redirect_uri: REDIRECT_URI,
        code_verifier: 'x'.repeat(43),
        [param]: 'a\u0000b',
      });
      await expectRefused(
        await fetch(`${server.issuer}/token`, { method: 'POST', headers: { ...FORM, 'x-request-id': id }, body }),
        id,
        param,
      );
    });
  }

  it('POST /token/introspection with token=a%00b', async () => {
    const id = requestId();
    const response = await fetch(`${server.issuer}/token/introspection`, {
      method: 'POST',
      headers: { ...FORM, authorization: basic('webapp', secret), 'x-request-id': id },
      body: 'token=a%00b',
    });
    await expectRefused(response, id, 'token');
  });
});

describe('our pages and repositories', () => {
  it('a login form whose username holds a NUL gets a readable 400 page', async () => {
    const browser = newBrowser();
    const { page } = await startAuthorization(browser, await discover(server.issuer, 'webapp', secret), {
      scope: 'openid',
    });
    const form = findForm(page.text, '/login');
    const id = requestId();
    const answer = await browser.request(new URL(form.action, page.url).href, {
      form: { ...form.fields, username: 'ali\u0000ce', password: 'correct horse battery staple' },
      headers: { 'x-request-id': id },
    });
    expect(answer.status).toBe(400);
    expect(answer.text).toContain('This request is not valid');
    expect(answer.text).not.toMatch(/\.ts:|node_modules|\n\s+at /);
    const log = logOf(id);
    expect(log.errors).toEqual([]);
    expect(log.stacks).toEqual([]);
  });

  it('a client assertion whose subject is unstorable text (encoded, past the parameter check) is invalid_client', async () => {
    const part = (json: object) => Buffer.from(JSON.stringify(json)).toString('base64url');
    const subject = 'web\u0000app';
    const assertion = `${part({ alg: 'RS256' })}.${part({ iss: subject, sub: subject, aud: `${server.issuer}/token`, jti: 'j', exp: 9_999_999_999 })}.c2ln`;
    const body = new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: 'x',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
    });
    const response = await fetch(`${server.issuer}/token`, { method: 'POST', headers: FORM, body });
    expect(response.status).toBe(401);
    expect(((await response.json()) as { error: string }).error).toBe('invalid_client');
  });

  it('lookups of accounts, clients and resource servers by unstorable text find nothing', async () => {
    const { accounts, clients, resources } = server.container;
    for (const text of ['a\u0000b', 'a\ud800b', '\udc00']) {
      await expect(accounts.findByLogin(text)).resolves.toBeUndefined();
      await expect(clients.find(text)).resolves.toBeUndefined();
      await expect(resources.find(text)).resolves.toBeUndefined();
    }
  });
});
