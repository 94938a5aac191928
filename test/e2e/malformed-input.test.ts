import http from 'node:http';
import net from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { findForm } from '../support/browser.ts';
import { discover, newBrowser, REDIRECT_URI, startAuthorization } from '../support/relying-party.ts';
import type { TestServer } from '../support/server.ts';
import { createAlice, createWebApp, startServerOnOwnDatabase } from '../support/setup.ts';

// Issue 10 §1: our own malformed-input run. Seeded (FUZZ_SEED to replay another run), bounded
// (FUZZ_REQUESTS, at least 2,000), over every endpoint discovery publishes, our interaction and
// demo pages, /jwks, /healthz, /readyz and /. Whatever arrives, Postern answers below 500,
// shows no stack trace or source path, logs no error with a stack, and keeps answering.

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed_2026);
const REQUESTS = Math.max(2000, Number(process.env.FUZZ_REQUESTS ?? 2400));
const CONCURRENCY = 12;
const LEAKS = [/^\s*at\s.+:\d+:\d+\)?\s*$/m, /\.ts:\d/, /\/src\//, /node_modules/];

let server: TestServer;
let secret: string;
/** Real interactions (uid, csrf, cookies), so forms reach their parsing, not just the cookie check. */
const interactions: { uid: string; csrf: string; cookie: string }[] = [];

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return { next, int, pick: <T>(list: readonly T[]): T => list[int(list.length)]! };
}
type Rng = ReturnType<typeof prng>;

beforeAll(async () => {
  // The demo routes and the demo client (seeded into the new database) are part of the surface.
  server = await startServerOnOwnDatabase({ POSTERN_DEMO: 'true', POSTERN_IP_FAILURE_LIMIT: '1000000' });
  await createAlice(server);
  secret = await createWebApp(server, ['authorization_code', 'refresh_token', 'client_credentials']);
  const config = await discover(server.issuer, 'webapp', secret);
  for (let i = 0; i < 3; i++) {
    const browser = newBrowser();
    const { page } = await startAuthorization(browser, config, { scope: 'openid' });
    const form = findForm(page.text, '/login');
    const uid = /\/interaction\/([^/]+)\//.exec(form.action)![1]!;
    interactions.push({
      uid,
      csrf: form.fields.csrf ?? '',
      cookie: [...browser.cookies].map(([n, c]) => `${n}=${c.value}`).join('; '),
    });
  }
});

afterAll(async () => {
  await server?.close();
});

const NAMES = [
  'client_id',
  'client_secret',
  'redirect_uri',
  'response_type',
  'response_mode',
  'scope',
  'state',
  'nonce',
  'prompt',
  'max_age',
  'login_hint',
  'ui_locales',
  'claims',
  'code_challenge',
  'code_challenge_method',
  'request_uri',
  'request',
  'resource',
  'grant_type',
  'code',
  'code_verifier',
  'refresh_token',
  'token',
  'token_type_hint',
  'id_token_hint',
  'post_logout_redirect_uri',
  'logout',
  'username',
  'password',
  'csrf',
  'remember',
  'error',
  'client_assertion',
  'client_assertion_type',
  'a[b]',
  '__proto__',
  'constructor',
];
const GOOD: Record<string, string[]> = {
  client_id: ['webapp', 'postern-demo'],
  redirect_uri: [REDIRECT_URI],
  response_type: ['code'],
  scope: ['openid', 'openid offline_access'],
  grant_type: ['authorization_code', 'refresh_token', 'client_credentials'],
  code_challenge_method: ['S256'],
  code_challenge: ['E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'],
  username: ['alice'],
  prompt: ['login', 'consent', 'none'],
};

/** Raw (already percent-encoded, or deliberately broken) values. */
function rawValue(rng: Rng, name: string): string {
  const enc = encodeURIComponent;
  switch (rng.int(14)) {
    case 0:
      return 'a%00b';
    case 1:
      return `${enc(rng.pick(GOOD[name] ?? ['x']))}%00`;
    case 2:
      return '%ED%A0%80'; // a surrogate, UTF-8-encoded: invalid UTF-8
    case 3:
      return rng.pick(['%ZZ', '%', '%E2%82', '%u0000', '%%00', '%0']);
    case 4:
      return 'x'.repeat(rng.pick([1000, 8000, 100_000]));
    case 5:
      return enc('\u{1F600}\u00e9\u202e\ufeff');
    case 6:
      return enc(String.fromCharCode(...Array.from({ length: 8 }, () => rng.int(32))));
    case 7:
      return '';
    case 8:
      return enc('{"id_token":{"acr":null}}');
    case 9:
      return enc('https://evil.example/cb?x=1#y');
    case 10:
      return enc('a'.repeat(rng.int(300)));
    default:
      return enc(rng.pick(GOOD[name] ?? ['x', 'abc', '1']));
  }
}

const AUTHORIZE = {
  client_id: 'webapp',
  response_type: 'code',
  scope: 'openid',
  redirect_uri: REDIRECT_URI,
  state: 's',
  nonce: 'n',
  code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
  code_challenge_method: 'S256',
};

/** Well-formed parameters for each path, so that mutations reach deep code, not just the first check. */
function baseParams(path: string): Record<string, string> {
  const clientAuth = { client_id: 'webapp', client_secret: secret };
  if (path.startsWith('/auth') || path === '/request') return AUTHORIZE;
  if (path === '/token')
    return {
      ...clientAuth,
      grant_type: 'authorization_code',
      code: 'c0de',
      redirect_uri: REDIRECT_URI,
      code_verifier: 'v'.repeat(43),
      refresh_token: 'r',
    };
  if (path.startsWith('/token/')) return { ...clientAuth, token: 't0ken', token_type_hint: 'access_token' };
  if (path.startsWith('/session/end')) return { client_id: 'webapp', state: 's', logout: 'yes', xsrf: 'x' };
  if (path.startsWith('/interaction/')) return { username: 'alice', password: 'not the password', remember: 'yes' };
  if (path.startsWith('/demo/callback')) return { code: 'c0de', state: 's' };
  return {};
}

/** The parameters of one probe: the path's own, some mutated, some added, some repeated. */
function params(rng: Rng, path: string): string {
  const pairs: string[] = [];
  const base = rng.int(5) === 0 ? {} : baseParams(path);
  for (const [name, value] of Object.entries(base)) {
    pairs.push(`${encodeURIComponent(name)}=${rng.int(4) === 0 ? rawValue(rng, name) : encodeURIComponent(value)}`);
  }
  for (let i = rng.int(4); i > 0; i--) {
    const name = rng.pick(NAMES);
    pairs.push(`${rng.int(20) === 0 ? '%00' : encodeURIComponent(name)}=${rawValue(rng, name)}`);
  }
  // Duplicate parameters (RFC 6749 §3.1: each at most once).
  if (pairs.length && rng.int(6) === 0) pairs.push(rng.pick(pairs));
  return pairs.join('&');
}

function jsonBody(rng: Rng): string {
  return rng.pick([
    '{"client_id":"a\\u0000b"}',
    '{"state":"\\ud800"}',
    '{"username":"\\udc00x","password":"y"}',
    '{"a":',
    '[1,2,3]',
    'null',
    JSON.stringify({ client_id: 'webapp', grant_type: 'client_credentials' }),
    `{"x":"${'y'.repeat(70_000)}"}`,
    '{"__proto__":{"a":1}}',
  ]);
}

function binaryBody(rng: Rng): Buffer {
  return Buffer.from(Array.from({ length: rng.pick([1, 64, 4096, 70_000]) }, () => rng.int(256)));
}

interface Target {
  path: string;
  methods: readonly string[];
}

function targets(discovery: Record<string, unknown>): Target[] {
  const advertised = Object.entries(discovery)
    .filter(([key, value]) => (key.endsWith('_endpoint') || key === 'jwks_uri') && typeof value === 'string')
    .map(([, value]) => new URL(value as string).pathname);
  const uid = interactions[0]!.uid;
  const ours = [
    '/',
    '/jwks',
    '/healthz',
    '/readyz',
    '/.well-known/openid-configuration',
    '/assets/style.css',
    '/favicon.ico',
    `/interaction/${uid}`,
    `/interaction/${uid}/login`,
    `/interaction/${uid}/confirm`,
    `/interaction/${uid}/abort`,
    '/interaction/nope',
    '/interaction/nope/login',
    '/demo',
    '/demo/login',
    '/demo/callback',
    '/auth/nope',
    '/session/end/confirm',
    '/session/end/success',
    '/no/such/page',
    '/token/',
    '/TOKEN',
  ];
  return [...new Set([...advertised, ...ours])].map((path) => ({ path, methods: ['GET', 'POST'] }));
}

const ODD_METHODS = ['HEAD', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'PROPFIND', 'TRACE', 'MKCOL', 'SEARCH', 'PURGE'];

interface Probe {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer | string;
}

function makeProbe(rng: Rng, all: Target[]): Probe {
  const target = rng.pick(all);
  const method = rng.int(8) === 0 ? rng.pick(ODD_METHODS) : rng.pick(target.methods);
  const headers: Record<string, string> = {};
  let path = target.path;
  // Interaction pages with the cookies of a live interaction (and its CSRF token), most of the time.
  const interaction = rng.pick(interactions);
  if (path.startsWith('/interaction/') && rng.int(4) !== 0) {
    path = path.replace(interactions[0]!.uid, interaction.uid);
    headers.cookie = interaction.cookie;
  }
  if (rng.int(10) === 0) path += rng.pick(['%00', '/%ZZ', '/..%2f..%2fetc', `/${'a'.repeat(3000)}`]);
  const bare = path;
  if (method !== 'POST' || rng.int(6) === 0) path += `?${params(rng, bare)}`;
  if (rng.int(4) === 0)
    headers.accept = rng.pick(['text/html', 'application/json', '*/*', 'text/html;q=0.1, application/json', '???']);
  if (rng.int(12) === 0)
    headers.authorization = rng.pick([
      `Basic ${Buffer.from(`webapp:${secret}`).toString('base64')}`,
      'Basic %%%',
      'Bearer a\u00ffb',
      `Basic ${Buffer.from('a%00b:c').toString('base64')}`,
    ]);
  if (rng.int(20) === 0)
    headers.cookie = `${headers.cookie ?? ''}; _session=${'z'.repeat(rng.pick([100, 6000]))}; _session.sig=%ZZ`;
  if (rng.int(20) === 0) headers['x-forwarded-host'] = 'evil.example';
  if (method === 'GET' || method === 'HEAD' || method === 'TRACE' || rng.int(10) === 0)
    return { method, path, headers };
  switch (rng.int(6)) {
    case 0:
    case 1:
    case 2:
      headers['content-type'] = rng.pick([
        'application/x-www-form-urlencoded',
        'application/x-www-form-urlencoded; charset=utf-8',
        'application/x-www-form-urlencoded; charset=bogus',
      ]);
      return {
        method,
        path,
        headers,
        body:
          bare.startsWith('/interaction/') && rng.int(3) !== 0
            ? `csrf=${encodeURIComponent(interaction.csrf)}&${params(rng, bare)}`
            : params(rng, bare),
      };
    case 3:
      headers['content-type'] = 'application/json';
      return { method, path, headers, body: jsonBody(rng) };
    case 4:
      headers['content-type'] = rng.pick([
        'application/octet-stream',
        'text/plain',
        'multipart/form-data; boundary=x',
        'application/x-www-form-urlencoded',
        'image/png',
      ]);
      return { method, path, headers, body: binaryBody(rng) };
    default:
      return { method, path, headers, body: params(rng, bare) }; // a body without a content type
  }
}

interface Answer {
  status: number;
  body: string;
}

function send(agent: http.Agent, base: URL, probe: Probe): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        agent,
        host: base.hostname,
        port: base.port,
        method: probe.method,
        path: probe.path,
        headers: probe.headers,
        timeout: 10_000,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', reject);
    request.end(probe.body);
  });
}

describe('malformed input', () => {
  it(`${REQUESTS} seeded requests get no 5xx, no stack trace, and the server keeps answering`, async () => {
    const rng = prng(SEED);
    const discovery = (await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json()) as Record<
      string,
      unknown
    >;
    const all = targets(discovery);
    expect(all.map((t) => t.path)).toContain('/request');
    const probes = Array.from({ length: REQUESTS }, () => makeProbe(rng, all));
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const base = new URL(server.issuer);
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    let next = 0;
    const worker = async () => {
      while (next < probes.length) {
        const probe = probes[next++]!;
        let answer: Answer;
        try {
          answer = await send(agent, base, probe);
        } catch (error) {
          // The server may close a connection on a body it will not read: that is an answer too.
          if (!/socket hang up|ECONNRESET|EPIPE/.test(String(error)))
            failures.push(
              `${probe.method} ${probe.path.slice(0, 120)} ${JSON.stringify(probe.headers).slice(0, 300)} ${String(probe.body ?? '').length}: ${String(error)}`,
            );
          continue;
        }
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        if (answer.status >= 500)
          failures.push(`${probe.method} ${probe.path.slice(0, 120)} -> ${answer.status} ${answer.body.slice(0, 200)}`);
        const leak = LEAKS.find((pattern) => pattern.test(answer.body));
        if (leak)
          failures.push(`${probe.method} ${probe.path.slice(0, 120)} leaks ${leak}: ${answer.body.slice(0, 300)}`);
      }
    };
    // Koa prints what reaches an app's 'error' event without a listener to stderr, stack and all.
    const printed: string[] = [];
    const print = console.error;
    console.error = (...args: unknown[]) => printed.push(args.map(String).join(' ').slice(0, 300));
    try {
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    } finally {
      console.error = print;
    }
    agent.destroy();

    expect(failures, `seed ${SEED}`).toEqual([]);
    expect(printed).toEqual([]);
    expect([...statuses.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(REQUESTS * 0.95);
    const errors = server.logs.filter(
      (line) => (JSON.parse(line) as { level: number }).level >= 50 || line.includes('"stack"'),
    );
    expect(errors.map((line) => line.slice(0, 500))).toEqual([]);
    expect((await fetch(`${server.issuer}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.issuer}/.well-known/openid-configuration`)).status).toBe(200);
    expect((await fetch(`${server.issuer}/readyz`)).status).toBe(200);
  }, 120_000);

  it('a client that hangs up in the middle of its body leaves no stack trace and no warning', async () => {
    const base = new URL(server.issuer);
    const signIn = interactions[0]!;
    // The engine's paths, and one of our forms with what it needs to get as far as reading the
    // body (the interaction's cookie; the CSRF token is in the part of the body that is sent).
    const posts = [
      { path: '/token', cookie: undefined, sent: 'grant_type=' },
      { path: '/token/introspection', cookie: undefined, sent: 'token=' },
      { path: `/interaction/${signIn.uid}/login`, cookie: signIn.cookie, sent: `csrf=${signIn.csrf}&username=alice` },
    ];
    const printed: unknown[] = [];
    const print = console.error;
    console.error = (...args: unknown[]) => printed.push(args);
    const before = server.logs.length;
    try {
      for (const post of posts) {
        await new Promise<void>((resolve, reject) => {
          const socket = net.connect(Number(base.port), base.hostname, () => {
            const cookie = post.cookie ? `Cookie: ${post.cookie}\r\n` : '';
            socket.write(
              `POST ${post.path} HTTP/1.1\r\nHost: ${base.host}\r\n${cookie}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n${post.sent}`,
            );
            // Long enough for the server to start reading the body; then hang up.
            setTimeout(() => socket.destroy(), 100);
          });
          socket.on('close', () => resolve());
          socket.on('error', reject);
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
    } finally {
      console.error = print;
    }
    expect(printed).toEqual([]);
    // Not an error, and not "database unavailable" either: the read fails with ECONNRESET,
    // which is also how a lost database connection fails.
    const warnings = server.logs
      .slice(before)
      .filter((line) => (JSON.parse(line) as { level: number }).level >= 40 || line.includes('"stack"'));
    expect(warnings).toEqual([]);
    expect((await fetch(`${server.issuer}/.well-known/openid-configuration`)).status).toBe(200);
  });
});
