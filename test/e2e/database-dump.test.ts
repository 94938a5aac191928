import { decodeJwt } from 'jose';
import { sql } from 'kysely';
import * as oidc from 'openid-client';
import { Secret } from 'otpauth';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { findForm, type Browser } from '../support/browser.ts';
import { startServerOnOwnDatabase } from '../support/setup.ts';
import { discover, exchange, newBrowser, REDIRECT_URI, signIn, startAuthorization } from '../support/relying-party.ts';
import { freePort, type TestServer } from '../support/server.ts';
import { enrollOnAccountPage } from '../support/totp.ts';

// DESIGN §5: a database dump, a backup or a replica hands out no bearer credential. A real
// sign-in collects every code, token and cookie value the browser and the app ever held; then
// every row of every table is read and none of them may appear, in clear or encoded.

const USER = { username: 'dora', email: 'dora@example.com', password: 'dora has a long passphrase' };
let server: TestServer;
let app: oidc.Configuration;

beforeAll(async () => {
  server = await startServerOnOwnDatabase();
  await server.container.accounts.create(USER);
  const { secret } = await server.container.clients.create({
    clientId: 'dumpster',
    grantTypes: ['authorization_code', 'refresh_token'],
    redirectUris: [REDIRECT_URI],
    scope: 'openid profile email offline_access',
  });
  app = await discover(server.issuer, 'dumpster', secret);
});

afterAll(async () => {
  await server?.close();
});

/**
 * Every cookie value the browser was ever given (including those it was later told to drop),
 * and a full read of the database after every request: an interaction lives only mid-flow.
 */
function recordEverything(browser: Browser, cookies: Set<string>, rows: Set<string>): void {
  const request = browser.request.bind(browser);
  browser.request = async (...args) => {
    const page = await request(...args);
    for (const cookie of browser.cookies.values()) cookies.add(decodeURIComponent(cookie.value));
    for (const row of await everyRow()) rows.add(row);
    return page;
  };
}

function encodings(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8');
  return [value, bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex')];
}

async function everyRow(of: TestServer = server): Promise<string[]> {
  const { rows: tables } = await sql<{ table_name: string }>`
    select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'`.execute(
    of.container.db.db,
  );
  const rows: string[] = [];
  for (const { table_name: table } of tables) {
    const result = await sql<{ row: string }>`select row_to_json(t)::text as row from ${sql.table(table)} t`.execute(
      of.container.db.db,
    );
    rows.push(...result.rows.map((r) => `${table}: ${r.row}`));
  }
  return rows;
}

it('after a sign-in and a refresh, no code, token, session id or cookie value is in any row of any table', async () => {
  const browser = newBrowser();
  const cookies = new Set<string>();
  const seenRows = new Set<string>();
  recordEverything(browser, cookies, seenRows);
  const auth = await signIn(browser, app, USER, { scope: 'openid profile email offline_access', prompt: 'consent' });
  const code = auth.callbackUrl.searchParams.get('code')!;
  const tokens = await exchange(app, auth);
  const refreshed = await oidc.refreshTokenGrant(app, tokens.refresh_token!);
  // The browser stays signed in (its session cookie is live): a second, silent authorization.
  const silent = await signIn(browser, app, USER, { scope: 'openid', prompt: 'none' });
  const secrets = new Map<string, string>([
    ['authorization code', code],
    ['second authorization code', silent.callbackUrl.searchParams.get('code')!],
    ['access token', tokens.access_token],
    ['refresh token', tokens.refresh_token!],
    ['rotated access token', refreshed.access_token],
    ['rotated refresh token', refreshed.refresh_token!],
    ['id token jti', String(decodeJwt(tokens.id_token!).jti)],
    ...[...cookies].filter((v) => v.length >= 16).map((v, i) => [`cookie value ${i}`, v] as [string, string]),
  ]);
  expect(cookies.size).toBeGreaterThanOrEqual(3); // session, interaction, resume at least
  expect(await oidc.fetchUserInfo(app, refreshed.access_token, oidc.skipSubjectCheck)).toMatchObject({
    sub: tokens.claims()!.sub,
  });

  const rows = [...seenRows, ...(await everyRow())];
  expect(rows.some((r) => r.startsWith('oidc_payloads: {"kind":"Interaction"'))).toBe(true);
  expect(rows.some((r) => r.startsWith('oidc_payloads: {"kind":"Session"'))).toBe(true);
  const found: string[] = [];
  for (const [what, value] of secrets) {
    for (const encoded of encodings(value)) {
      const row = rows.find((r) => r.includes(encoded));
      if (row) found.push(`${what} (${encoded.slice(0, 12)}…) in ${row.slice(0, 300)}`);
    }
  }
  expect(found).toEqual([]);
});

it('after TOTP is set up and a recovery code is used, no TOTP secret or recovery code is in any row of any table', async () => {
  // Issue 14: the secret is sealed, recovery codes are keyed hashes (DESIGN §5).
  const person = { username: 'totp-dora', email: 'totp-dora@example.com', password: 'dora keeps an authenticator' };
  await server.container.accounts.create(person);
  const { secret, codes } = await enrollOnAccountPage(server.issuer, newBrowser(), person, () => new Date());
  const browser = newBrowser();
  const started = await startAuthorization(browser, app);
  const second = await browser.submit(started.page, '/login', person);
  let page = await browser.submit(second, '/mfa', { code: codes[0]! });
  if (page.text.includes('/confirm')) page = await browser.submit(page, '/confirm');
  expect(page.url.startsWith(REDIRECT_URI)).toBe(true);

  const raw = Buffer.from(Secret.fromBase32(secret).buffer);
  const secrets: [string, string][] = [
    ['TOTP secret (base32)', secret],
    ['TOTP secret (hex)', raw.toString('hex')],
    ['TOTP secret (base64)', raw.toString('base64')],
    ['TOTP secret (base64url)', raw.toString('base64url')],
    ...codes.flatMap((c, i): [string, string][] => [
      [`recovery code ${i}`, c],
      [`recovery code ${i} without its dash`, c.replace('-', '')],
    ]),
  ];
  const rows = await everyRow();
  expect(rows.some((r) => r.startsWith('totp_factors: '))).toBe(true);
  expect(rows.filter((r) => r.startsWith('recovery_codes: '))).toHaveLength(10);
  const found: string[] = [];
  for (const [what, value] of secrets) {
    for (const encoded of [...new Set([...encodings(value), value.toLowerCase()])]) {
      const row = rows.find((r) => r.includes(encoded));
      if (row) found.push(`${what} (${encoded.slice(0, 12)}…) in ${row.slice(0, 300)}`);
    }
  }
  expect(found).toEqual([]);
});

/** The challenge of a WebAuthn ceremony's options, asked for the way the page's script asks. */
async function passkeyChallenge(browser: Browser, optionsUrl: string, form: Record<string, string>): Promise<string> {
  const answer = await browser.request(optionsUrl, { form });
  expect(answer.status).toBe(200);
  return (JSON.parse(answer.text) as { challenge: string }).challenge;
}

/** A browser for an issuer at http://localhost:PORT, reaching the server where it listens (127.0.0.1). */
function browserForLocalhost(): Browser {
  const browser = newBrowser();
  browser.transport = (url) => {
    const target = new URL(url);
    if (target.hostname === 'localhost') target.hostname = '127.0.0.1';
    return target;
  };
  return browser;
}

it('while passkey ceremonies are under way, no challenge is in any row of any table', async () => {
  // Passkeys need a domain name as the issuer's host (WebAuthn takes no IP address as RP ID).
  const port = await freePort();
  const issuer = `http://localhost:${port}`;
  const passkeyServer = await startServerOnOwnDatabase({ PORT: String(port), POSTERN_ISSUER: issuer });
  try {
    await passkeyServer.container.accounts.create(USER);
    // Adding a passkey on the account page: the challenge is bound to this session.
    const person = browserForLocalhost();
    const login = await person.get(`${issuer}/account`);
    const accountPage = await person.submit(login, '/login', { username: USER.username, password: USER.password });
    const add = findForm(accountPage.text, '/account/passkeys');
    const addChallenge = await passkeyChallenge(person, `${issuer}/account/passkeys/options`, {
      ...add.fields,
      passkey_name: 'Laptop',
      passkey_password: USER.password,
    });
    // Signing in with a passkey: the challenge is bound to the interaction.
    const stranger = browserForLocalhost();
    const loginPage = await stranger.get(`${issuer}/account`);
    const button = findForm(loginPage.text, '/passkey');
    const signInChallenge = await passkeyChallenge(
      stranger,
      new URL(`${button.action}/options`, loginPage.url).href,
      button.fields,
    );

    const rows = await everyRow(passkeyServer);
    expect(rows.filter((r) => r.startsWith('webauthn_challenges: '))).toHaveLength(2);
    const found: string[] = [];
    for (const [what, challenge] of [
      ['registration challenge', addChallenge],
      ['sign-in challenge', signInChallenge],
    ] as const) {
      const bytes = Buffer.from(challenge, 'base64url');
      expect(bytes).toHaveLength(32);
      for (const encoded of [...encodings(challenge), bytes.toString('hex'), bytes.toString('base64')]) {
        const row = rows.find((r) => r.includes(encoded));
        if (row) found.push(`${what} (${encoded.slice(0, 12)}…) in ${row.slice(0, 300)}`);
      }
    }
    expect(found).toEqual([]);
  } finally {
    await passkeyServer.close();
  }
});
