import http from 'node:http';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startServerOnOwnDatabase } from '../support/setup.ts';
import { REDIRECT_URI } from '../support/relying-party.ts';
import type { TestServer } from '../support/server.ts';

// Issue 10 §7: discovery listed /request (PAR) while POST /request answered 404, because the
// routing to the engine was a hand-written path list. Whatever discovery advertises answers.

let server: TestServer;
let secret: string;
let discovery: Record<string, unknown>;
let firstAnswer: { headers: Headers; text: string };

beforeAll(async () => {
  server = await startServerOnOwnDatabase();
  secret = (
    await server.container.clients.create({
      clientId: 'webapp',
      grantTypes: ['authorization_code'],
      redirectUris: [REDIRECT_URI],
      scope: 'openid',
    })
  ).secret!;
  // The first request is the engine's answer: oidc/discovery-cache.ts keeps it for the next.
  const first = await fetch(`${server.issuer}/.well-known/openid-configuration`);
  firstAnswer = { headers: first.headers, text: await first.text() };
  discovery = JSON.parse(firstAnswer.text) as Record<string, unknown>;
});

afterAll(async () => {
  await server?.close();
});

const basic = () => `Basic ${Buffer.from(`webapp:${secret}`).toString('base64')}`;
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/** A sensible call for each kind of endpoint: the method it is specified with, minimal input. */
const CALLS: Record<string, { method: string; headers?: Record<string, string>; body?: string }> = {
  authorization_endpoint: { method: 'GET' },
  end_session_endpoint: { method: 'GET' },
  userinfo_endpoint: { method: 'GET' },
  jwks_uri: { method: 'GET' },
  token_endpoint: { method: 'POST', headers: FORM, body: 'grant_type=client_credentials' },
  pushed_authorization_request_endpoint: {
    method: 'POST',
    headers: { ...FORM, authorization: basic() },
    body: 'response_type=code',
  },
  introspection_endpoint: { method: 'POST', headers: { ...FORM, authorization: basic() }, body: 'token=x' },
  revocation_endpoint: { method: 'POST', headers: { ...FORM, authorization: basic() }, body: 'token=x' },
};

describe('every endpoint that discovery advertises', () => {
  it('answers its method, none with 404 or 405', async () => {
    const advertised = Object.keys(discovery).filter((key) => key.endsWith('_endpoint') || key === 'jwks_uri');
    expect(advertised).toContain('pushed_authorization_request_endpoint');
    const answers: Record<string, number> = {};
    for (const key of advertised) {
      const url = discovery[key] as string;
      expect(url.startsWith(`${server.issuer}/`)).toBe(true);
      // An endpoint discovery names but this test does not know how to call fails here, on purpose.
      const call = CALLS[key];
      expect(call, `no call for ${key}`).toBeDefined();
      const response = await fetch(url, { ...call, redirect: 'manual' });
      await response.arrayBuffer();
      answers[key] = response.status;
    }
    for (const [key, status] of Object.entries(answers)) {
      expect([404, 405], `${key} answered ${status}`).not.toContain(status);
      expect(status, `${key} answered ${status}`).toBeLessThan(500);
    }
  });

  it('a pushed authorization request (RFC 9126) is accepted and its request_uri starts a sign-in', async () => {
    const body = new URLSearchParams({
      client_id: 'webapp',
      response_type: 'code',
      scope: 'openid',
      redirect_uri: REDIRECT_URI,
      state: 's',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    });
    const pushed = await fetch(discovery.pushed_authorization_request_endpoint as string, {
      method: 'POST',
      headers: { ...FORM, authorization: basic() },
      body,
    });
    expect(pushed.status, await pushed.clone().text()).toBe(201);
    const { request_uri: requestUri } = (await pushed.json()) as { request_uri: string };
    expect(requestUri).toMatch(/^urn:ietf:params:oauth:request_uri:/);
    const started = await fetch(
      `${discovery.authorization_endpoint as string}?${new URLSearchParams({ client_id: 'webapp', request_uri: requestUri })}`,
      { redirect: 'manual' },
    );
    expect(started.status).toBe(303);
    expect(started.headers.get('location')).toMatch(/^\/interaction\//);
  });

  it('a path the engine serves, asked with another method, is 405 with Allow', async () => {
    const response = await fetch(discovery.token_endpoint as string);
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('POST');
  });
});

describe('discovery, kept after its first answer (oidc/discovery-cache.ts)', () => {
  const url = () => `${server.issuer}/.well-known/openid-configuration`;
  const comparable = (headers: Headers) =>
    [...headers].filter(([name]) => !['date', 'x-request-id', 'keep-alive', 'connection'].includes(name));

  it("is answered again with the engine's body and every one of its headers", async () => {
    for (let i = 0; i < 2; i++) {
      const again = await fetch(url());
      expect(again.status).toBe(200);
      expect(await again.text()).toBe(firstAnswer.text);
      expect(comparable(again.headers)).toEqual(comparable(firstAnswer.headers));
      expect(again.headers.get('x-request-id')).not.toBe(firstAnswer.headers.get('x-request-id'));
    }
    expect(firstAnswer.headers.get('access-control-allow-origin')).toBe('*');
    expect(firstAnswer.headers.get('vary')).toContain('Origin');
  });

  it('names the headers as the engine does', async () => {
    // fetch lower-cases header names; the raw answer shows how they were spelled.
    const rawNames = (headers: Record<string, string>) =>
      new Promise<string[]>((resolve, reject) => {
        http
          .get(url(), { headers }, (res) => {
            res.resume();
            resolve(res.rawHeaders.filter((_, i) => i % 2 === 0));
          })
          .on('error', reject);
      });
    const kept = await rawNames({});
    // A CORS request is the engine's own answer, with the same Vary.
    const engine = await rawNames({ origin: 'https://spa.example' });
    expect(kept).toContain('Vary');
    expect(kept).toContain('Access-Control-Allow-Origin');
    expect(engine).toContain('Vary');
  });

  it('a CORS request is still answered by the engine, which echoes its Origin', async () => {
    const cors = await fetch(url(), { headers: { origin: 'https://spa.example' } });
    expect(cors.headers.get('access-control-allow-origin')).toBe('https://spa.example');
    expect(await cors.text()).toBe(firstAnswer.text);
  });

  it("a request with a query still passes the engine's input guard", async () => {
    const refused = await fetch(`${url()}?x=%00`);
    expect(refused.status).toBe(400);
  });
});
