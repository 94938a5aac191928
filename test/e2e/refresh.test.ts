import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { discover, exchange, newBrowser, POST_LOGOUT_URI, REDIRECT_URI, signIn } from '../support/relying-party.ts';
import { createTestClock, startTestServer, type TestServer } from '../support/server.ts';

// Refresh tokens as web and native apps use them, over HTTP with openid-client: rotation,
// reuse detection with a grace window for races, idle and absolute lifetimes (our clock moves),
// sessions under an operator's control, and back-channel logout.

const PASSWORD = 'rita keeps a long passphrase';
const clock = createTestClock();
let db: TestDatabase;
let server: TestServer;
let app: oidc.Configuration;
let appSecret: string;
let receiver: http.Server;
const logoutTokens: string[] = [];
/** How many logout tokens the receiver still refuses (503) before it accepts again. */
let refuseLogoutTokens = 0;
let userId: string;

beforeAll(async () => {
  db = await createTestDatabase();
  // The test receiver listens on loopback, which outbound requests may not reach by default.
  // The sweeper runs every second, so a test can watch what it keeps and what it drops.
  server = await startTestServer(
    db,
    { POSTERN_OUTBOUND_PRIVATE_NETWORK: 'true', POSTERN_SWEEP_INTERVAL_SECONDS: '1' },
    { clock },
  );
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString();
    });
    req.on('end', () => {
      logoutTokens.push(new URLSearchParams(body).get('logout_token') ?? '');
      res.writeHead(refuseLogoutTokens-- > 0 ? 503 : 200).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const { clients, accounts } = server.container;
  userId = (await accounts.create({ username: 'rita', email: 'rita@example.com', password: PASSWORD })).id;
  const { secret } = await clients.create({
    clientId: 'app',
    grantTypes: ['authorization_code', 'refresh_token'],
    redirectUris: [REDIRECT_URI],
    postLogoutRedirectUris: [POST_LOGOUT_URI],
    scope: 'openid offline_access',
    firstParty: true,
    backchannelLogoutUri: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/backchannel`,
  });
  appSecret = secret!;
  app = await discover(server.issuer, 'app', secret);
});

afterAll(async () => {
  receiver?.close();
  await server?.close();
  await db?.drop();
});

async function login(config = app, scope = 'openid offline_access') {
  const browser = newBrowser();
  const tokens = await exchange(
    config,
    await signIn(browser, config, { username: 'rita', password: PASSWORD }, { scope, prompt: 'consent' }),
  );
  return { browser, tokens };
}

const refresh = (token: string, config = app) => oidc.refreshTokenGrant(config, token);
const works = (token: string, config = app) =>
  refresh(token, config).then(
    () => true,
    () => false,
  );
const active = async (accessToken: string) => (await oidc.tokenIntrospection(app, accessToken)).active;
const reuseEvents = async () => {
  await server.container.audit.flush();
  return server.container.audit.query({ type: 'refresh_token.reused' });
};
const GRACE_SECONDS = 10;
const GRACE_MAX = 10;

async function loginAsNewUser(username: string) {
  const accountId = (
    await server.container.accounts.create({ username, email: `${username}@example.com`, password: PASSWORD })
  ).id;
  const tokens = await exchange(
    app,
    await signIn(
      newBrowser(),
      app,
      { username, password: PASSWORD },
      { scope: 'openid offline_access', prompt: 'consent' },
    ),
  );
  return { tokens, accountId };
}

/** Refresh tokens of the account that could still be used: neither consumed nor expired. */
async function liveRefreshTokens(accountId: string): Promise<number> {
  const rows = await server.container.db.db
    .selectFrom('oidc_payloads')
    .select('id')
    .where('kind', '=', 'RefreshToken')
    .where(sql`payload->>'accountId'`, '=', accountId)
    .where('consumed_at', 'is', null)
    .where('expires_at', '>', clock.now())
    .execute();
  return rows.length;
}

async function grantBoundRows(accountId: string): Promise<number> {
  const rows = await server.container.db.db
    .selectFrom('oidc_payloads')
    .select('id')
    .where('kind', 'in', ['AccessToken', 'RefreshToken', 'AuthorizationCode'])
    .where(sql`payload->>'accountId'`, '=', accountId)
    .execute();
  return rows.length;
}

/** The sealed successor kept on the account's one rotated refresh token (undefined: no such row). */
async function sealedSuccessor(accountId: string): Promise<string | null | undefined> {
  const rows = await server.container.db.db
    .selectFrom('oidc_payloads')
    .select('successor_sealed')
    .where('kind', '=', 'RefreshToken')
    .where(sql`payload->>'accountId'`, '=', accountId)
    .where('consumed_at', 'is not', null)
    .execute();
  expect(rows.length).toBeLessThanOrEqual(1);
  return rows[0]?.successor_sealed;
}

/**
 * Runs `step` while PostgreSQL refuses (as a server shutting down does: 57P01) every update of a
 * refresh-token row that matches `when`: the database going away at that very statement.
 */
async function whileUpdatesFail(when: string, step: () => Promise<void>): Promise<void> {
  const { db } = server.container.db;
  await sql
    .raw(`create function refuse_update() returns trigger language plpgsql as $$ begin
    if ${when} then raise exception 'the database went away' using errcode = '57P01'; end if;
    return new; end $$`)
    .execute(db);
  await sql
    .raw(`create trigger refuse_update before update on oidc_payloads for each row
    when (old.kind = 'RefreshToken') execute function refuse_update()`)
    .execute(db);
  try {
    await step();
  } finally {
    await sql.raw('drop trigger refuse_update on oidc_payloads').execute(db);
    await sql.raw('drop function refuse_update()').execute(db);
  }
}

async function refreshesIssued(): Promise<number> {
  const text = await server.container.metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith('postern_tokens_issued_total{grant_type="refresh_token"'));
  return Number(line?.split(' ').at(-1) ?? 0);
}

async function reuseMetric(): Promise<number> {
  const text = await server.container.metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith('postern_refresh_token_reuse'));
  return Number(line?.split(' ').at(-1) ?? 0);
}

describe('rotation and reuse', () => {
  it('rotates on every use; the old token still answers inside the grace window, and is reuse after it', async () => {
    const { tokens } = await login();
    const first = await refresh(tokens.refresh_token!);
    expect(first.refresh_token).toBeTruthy();
    expect(first.refresh_token).not.toBe(tokens.refresh_token);

    // A retry of the same old token 5 s later (a timeout, a second tab): answered, nothing revoked.
    clock.advance(5);
    const retry = await refresh(tokens.refresh_token!);
    expect(await works(retry.refresh_token!)).toBe(true);
    expect(await active(first.access_token)).toBe(true);
    const before = (await reuseEvents()).length;

    // 11 s after the rotation: reuse. The whole grant goes, every token issued from it.
    clock.advance(6);
    await expect(refresh(tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await active(first.access_token)).toBe(false);
    await expect(oidc.fetchUserInfo(app, first.access_token, oidc.skipSubjectCheck)).rejects.toMatchObject({
      status: 401,
    });
    expect(await works(first.refresh_token!)).toBe(false);
    const events = await reuseEvents();
    expect(events.length).toBe(before + 1);
    expect(events[0]).toMatchObject({ accountId: userId, clientId: 'app' });
  });

  it('20 concurrent refreshes with one token leave the client with working tokens and revoke nothing', async () => {
    const { tokens } = await login();
    const before = (await reuseEvents()).length;
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => refresh(tokens.refresh_token!)));
    const ok = results.filter(
      (r): r is PromiseFulfilledResult<Awaited<ReturnType<typeof refresh>>> => r.status === 'fulfilled',
    );
    const refused = results
      .filter((r) => r.status === 'rejected')
      .map((r) => (r as PromiseRejectedResult).reason as { error?: string });
    expect(ok.length).toBeGreaterThanOrEqual(1);
    for (const r of refused) expect(r.error).toBe('invalid_grant');
    // Every token handed out still works: nothing was revoked.
    for (const r of ok) expect(await active(r.value.access_token)).toBe(true);
    expect(await works(ok.at(-1)!.value.refresh_token!)).toBe(true);
    expect((await reuseEvents()).length).toBe(before);
  });

  // RFC 9700 §4.14.2 without a second branch: a repeat inside the window gets the very answer the
  // first use got, so however many requests race, the family keeps exactly one live token.
  it('30 truly parallel refreshes of one token leave exactly one live refresh token, and every answer carries it', async () => {
    const { tokens, accountId } = await loginAsNewUser('parallel');
    const issuedBefore = await refreshesIssued();
    const results = await Promise.allSettled(Array.from({ length: 30 }, () => refresh(tokens.refresh_token!)));
    const ok = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
    const refused = results.filter((r) => r.status === 'rejected').map((r) => (r.reason as { error?: string }).error);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    expect(ok.length).toBeLessThanOrEqual(1 + GRACE_MAX);
    expect(refused.every((e) => e === 'invalid_grant')).toBe(true);
    expect(new Set(ok.map((r) => r.refresh_token)).size).toBe(1);
    expect(new Set(ok.map((r) => r.access_token)).size).toBe(1);
    expect(await liveRefreshTokens(accountId)).toBe(1);
    // One issue; the other answers are repeats of it (README "Refresh tokens and sessions").
    expect((await refreshesIssued()) - issuedBefore).toBe(1);
    expect(await works(ok[0]!.refresh_token!)).toBe(true);
  });

  it('a repeat inside the window is answered at most POSTERN_REFRESH_REUSE_GRACE_MAX times, then refused without revoking', async () => {
    const { tokens, accountId } = await loginAsNewUser('repeater');
    const first = await refresh(tokens.refresh_token!);
    for (let i = 0; i < GRACE_MAX; i++) {
      const again = await refresh(tokens.refresh_token!);
      expect(again.refresh_token).toBe(first.refresh_token);
      expect(again.access_token).toBe(first.access_token);
    }
    await expect(refresh(tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await liveRefreshTokens(accountId)).toBe(1);
    expect(await active(first.access_token)).toBe(true);
    expect(await works(first.refresh_token!)).toBe(true);
  });

  it('a replay after the window revokes every token of the grant, with an audit event and a metric', async () => {
    const { tokens, accountId } = await loginAsNewUser('replayed');
    const first = await refresh(tokens.refresh_token!);
    const before = (await reuseEvents()).length;
    const metricBefore = await reuseMetric();
    clock.advance(GRACE_SECONDS + 1);
    await expect(refresh(tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await grantBoundRows(accountId)).toBe(0);
    expect(await active(first.access_token)).toBe(false);
    expect(await works(first.refresh_token!)).toBe(false);
    expect((await reuseEvents()).length).toBe(before + 1);
    expect(await reuseMetric()).toBe(metricBefore + 1);
  });

  // DESIGN §5: the successor is a bearer credential; it is kept (sealed) for the window only.
  it('the sealed successor is kept through sweeps inside the window and dropped by the sweeper once it has passed', async () => {
    const { tokens, accountId } = await loginAsNewUser('swept');
    const first = await refresh(tokens.refresh_token!);
    const sealed = await sealedSuccessor(accountId);
    expect(sealed).toMatch(/^v1\./);
    expect(sealed).not.toContain(first.refresh_token!);

    // Sweeps inside the window (one a second; this clock also moves with real time) leave it: a
    // repeat is still answered with it.
    await sleep(2500);
    expect(await sealedSuccessor(accountId)).toBe(sealed);
    expect((await refresh(tokens.refresh_token!)).refresh_token).toBe(first.refresh_token);

    // Once the window has passed, the next sweep drops it, and keeps the consumed row itself:
    // that row is what still tells a later replay from an unknown token.
    clock.advance(GRACE_SECONDS);
    await expect.poll(() => sealedSuccessor(accountId), { timeout: 15_000, interval: 250 }).toBeNull();
    await expect(refresh(tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await grantBoundRows(accountId)).toBe(0);
  });

  // The claim, its sealed answer and the new tokens are stored by one statement: when it cannot
  // run, nothing was issued, and the client's retry with the same token is answered.
  it('a refresh that cannot be stored with its answer (the database just went away) is answered 503, and the same token works once it is back', async () => {
    const { tokens, accountId } = await loginAsNewUser('unkept');
    await whileUpdatesFail('new.successor_sealed is not null', async () => {
      const response = await fetch(`${server.issuer}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`app:${appSecret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }),
      });
      expect(response.status).toBe(503);
      expect(await response.json()).toMatchObject({ error: 'temporarily_unavailable' });
    });
    expect(await liveRefreshTokens(accountId)).toBe(1);
    const answer = await refresh(tokens.refresh_token!);
    expect(answer.refresh_token).toBeTruthy();
    expect(await liveRefreshTokens(accountId)).toBe(1);
    expect(await works(answer.refresh_token!)).toBe(true);
  });

  it('a repeat that cannot be counted (the database just went away) is answered 503, and answered with the successor once it is back', async () => {
    const { tokens } = await loginAsNewUser('recounted');
    const first = await refresh(tokens.refresh_token!);
    await whileUpdatesFail('new.grace_uses > old.grace_uses', async () => {
      const response = await fetch(`${server.issuer}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`app:${appSecret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }),
      });
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBeTruthy();
      expect(await response.json()).toMatchObject({ error: 'temporarily_unavailable' });
    });
    expect((await refresh(tokens.refresh_token!)).refresh_token).toBe(first.refresh_token);
  });

  it('a refresh token of one client is refused for another', async () => {
    const { tokens } = await login();
    const { secret } = await server.container.clients.create({
      clientId: 'other',
      grantTypes: ['authorization_code', 'refresh_token'],
      redirectUris: [REDIRECT_URI],
    });
    const other = await discover(server.issuer, 'other', secret);
    await expect(refresh(tokens.refresh_token!, other)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await works(tokens.refresh_token!)).toBe(true); // and it was not harmed
  });

  it('a client registered with --refresh-rotation never keeps its refresh token', async () => {
    const { secret } = await server.container.clients.create({
      clientId: 'steady',
      grantTypes: ['authorization_code', 'refresh_token'],
      redirectUris: [REDIRECT_URI],
      scope: 'openid offline_access',
      refreshRotation: 'never',
      firstParty: true,
    });
    const steady = await discover(server.issuer, 'steady', secret);
    const { tokens } = await login(steady);
    const again = await refresh(tokens.refresh_token!, steady);
    expect(again.refresh_token ?? tokens.refresh_token).toBe(tokens.refresh_token);
    expect(await works(tokens.refresh_token!, steady)).toBe(true);
  });
});

describe('sessions and offline_access', () => {
  it('without offline_access a refresh token ends with the browser session', async () => {
    const { browser, tokens } = await login(app, 'openid');
    expect(tokens.refresh_token).toBeTruthy();
    const end = await browser.get(
      oidc.buildEndSessionUrl(app, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: POST_LOGOUT_URI }).href,
    );
    await browser.submit(end, '', { logout: 'yes' });
    expect(await works(tokens.refresh_token!)).toBe(false);
  });

  it('with offline_access it outlives the browser session', async () => {
    const { browser, tokens } = await login();
    const end = await browser.get(
      oidc.buildEndSessionUrl(app, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: POST_LOGOUT_URI }).href,
    );
    await browser.submit(end, '', { logout: 'yes' });
    expect(await works(tokens.refresh_token!)).toBe(true);
  });
});

describe('sessions under control', () => {
  it('lists sessions and grants, and an admin logout ends them and revokes their tokens', async () => {
    const { tokens } = await login();
    const { sessions, grants } = await server.container.sessions.list(userId);
    expect(sessions.length).toBeGreaterThanOrEqual(1);
    expect(grants.some((g) => g.clientId === 'app' && g.ip === '127.0.0.1')).toBe(true);
    const result = await server.container.sessions.logout(userId);
    expect(result.grants).toBeGreaterThanOrEqual(1);
    expect(await works(tokens.refresh_token!)).toBe(false);
    expect(await active(tokens.access_token)).toBe(false);
    expect((await server.container.sessions.list(userId)).grants).toEqual([]);
  });

  it('a password change revokes every grant', async () => {
    const { tokens } = await login();
    await server.container.accounts.setPassword('rita', 'rita chose a new passphrase');
    expect(await works(tokens.refresh_token!)).toBe(false);
    await server.container.accounts.setPassword('rita', PASSWORD);
  });
});

describe('back-channel logout', () => {
  const verifyLogoutToken = async (token: string) => {
    const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(`${server.issuer}/jwks`)), {
      issuer: server.issuer,
      audience: 'app',
      typ: 'logout+jwt',
    });
    return payload;
  };

  it('sends a signed logout token when the user signs out at Postern, and on an admin logout', async () => {
    logoutTokens.length = 0;
    const { browser, tokens } = await login();
    const end = await browser.get(
      oidc.buildEndSessionUrl(app, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: POST_LOGOUT_URI }).href,
    );
    await browser.submit(end, '', { logout: 'yes' });
    await expect.poll(() => logoutTokens.length, { timeout: 5000 }).toBe(1);
    const payload = await verifyLogoutToken(logoutTokens[0]!);
    expect(payload.events).toEqual({ 'http://schemas.openid.net/event/backchannel-logout': {} });
    expect(payload.sid ?? payload.sub).toBeTruthy();
    expect(payload.nonce).toBeUndefined();

    await login();
    await server.container.sessions.logout(userId);
    await expect.poll(() => logoutTokens.length, { timeout: 5000 }).toBe(2);
    expect((await verifyLogoutToken(logoutTokens[1]!)).sid).toBeTruthy();
  });

  it("sends the logout token again when the app refused it, on the engine's backchannel.error event", async () => {
    logoutTokens.length = 0;
    const { browser, tokens } = await login();
    const end = await browser.get(
      oidc.buildEndSessionUrl(app, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: POST_LOGOUT_URI }).href,
    );
    refuseLogoutTokens = 1;
    await browser.submit(end, '', { logout: 'yes' });
    // The engine's one attempt is refused (503); the retry follows a second later.
    await expect.poll(() => logoutTokens.length, { timeout: 5000 }).toBe(2);
    const [first, second] = await Promise.all(logoutTokens.map(verifyLogoutToken));
    expect(second!.sid).toBe(first!.sid);
    expect(refuseLogoutTokens).toBeLessThan(0); // the second was accepted
  });
});
