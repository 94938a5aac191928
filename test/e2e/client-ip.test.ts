import { sql, type Kysely } from 'kysely';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Database } from '../../src/db/tables.ts';
import { startServerOnOwnDatabase } from '../support/setup.ts';
import { discover, exchange, newBrowser, REDIRECT_URI, signIn } from '../support/relying-party.ts';
import { createTestClock, type TestServer } from '../support/server.ts';

// Behind a proxy (POSTERN_TRUST_PROXY=true) the client IP is the X-Forwarded-For entry the
// proxy appended, the last one; the entries before it are whatever the client wrote. That
// holds for what the protocol engine records too (grant activity, refresh-token reuse), not
// only for our own pages.

const PASSWORD = 'ivy keeps a long passphrase';
const SPOOFED = '6.6.6.6';
const REAL = '203.0.113.7';
const FORWARDED = `${SPOOFED}, ${REAL}`;
const clock = createTestClock();
let server: TestServer;
let app: oidc.Configuration;
let userId: string;

beforeAll(async () => {
  server = await startServerOnOwnDatabase({ POSTERN_TRUST_PROXY: 'true' }, { clock });
  const { clients, accounts } = server.container;
  userId = (await accounts.create({ username: 'ivy', email: 'ivy@example.com', password: PASSWORD })).id;
  const { secret } = await clients.create({
    clientId: 'app',
    grantTypes: ['authorization_code', 'refresh_token'],
    redirectUris: [REDIRECT_URI],
    scope: 'openid offline_access',
    firstParty: true,
  });
  app = await discover(server.issuer, 'app', secret);
  // The app's back-end calls (token endpoint) come through the same proxy.
  app[oidc.customFetch] = (url, options) =>
    fetch(url, {
      ...options,
      body: options.body ?? null,
      headers: { ...(options.headers as Record<string, string>), 'x-forwarded-for': FORWARDED },
    });
});

afterAll(async () => {
  await server?.close();
});

const rows = () => server.container.db.db as Kysely<Database>;

async function auditEvents() {
  await server.container.audit.flush();
  return server.container.audit.query({ accountId: userId, limit: 1000 });
}

describe('a client cannot choose the address recorded for it', () => {
  it('sign-in, grant activity and refresh-token reuse all record the last hop, never a spoofed first entry', async () => {
    const browser = newBrowser();
    browser.headers['x-forwarded-for'] = FORWARDED;
    const tokens = await exchange(
      app,
      await signIn(
        browser,
        app,
        { username: 'ivy', password: PASSWORD },
        { scope: 'openid offline_access', prompt: 'consent' },
      ),
    );

    // RFC 9700 §4.14.2: a rotated refresh token presented after the grace window is reuse.
    const rotated = await oidc.refreshTokenGrant(app, tokens.refresh_token!);
    expect(rotated.refresh_token).toBeTruthy();
    clock.advance(11);
    await expect(oidc.refreshTokenGrant(app, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });

    const events = await auditEvents();
    const signedIn = events.find((e) => e.type === 'login.succeeded');
    const reused = events.find((e) => e.type === 'refresh_token.reused');
    expect(signedIn?.ip).toBe(REAL);
    expect(reused?.ip).toBe(REAL);

    // Where the grant was signed in from (`postern user sessions` reads it): the reuse revoked
    // the grant, so read its grant_activity row directly.
    const activity = await rows()
      .selectFrom('grant_activity')
      .select(['ip'])
      .where('account_id', '=', userId)
      .execute();
    expect(activity.map((a) => a.ip)).toEqual([REAL]);
  });

  it('postern user sessions shows the last hop for a live grant', async () => {
    const browser = newBrowser();
    browser.headers['x-forwarded-for'] = FORWARDED;
    await exchange(
      app,
      await signIn(
        browser,
        app,
        { username: 'ivy', password: PASSWORD },
        { scope: 'openid offline_access', prompt: 'consent' },
      ),
    );
    const { grants } = await server.container.sessions.list(userId);
    expect(grants.length).toBeGreaterThan(0);
    for (const grant of grants) expect(grant.ip).toBe(REAL);
  });

  it('the spoofed address appears nowhere in the audit log or the grant activity', async () => {
    await server.container.audit.flush();
    const { rows: found } = await sql<{ n: number }>`
      select (select count(*) from audit_events where ip = ${SPOOFED} or details::text like ${`%${SPOOFED}%`})::int
           + (select count(*) from grant_activity where ip = ${SPOOFED})::int as n`.execute(rows());
    expect(found[0]!.n).toBe(0);
    expect((await auditEvents()).length).toBeGreaterThan(0);
  });
});
