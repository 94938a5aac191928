import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { insertClient } from '../../src/clients/client.repository.ts';
import { startServerOnOwnDatabase } from '../support/setup.ts';
import { discover, exchange, newBrowser, REDIRECT_URI, signIn } from '../support/relying-party.ts';
import type { TestServer } from '../support/server.ts';

// A client gets only the scopes it was registered for (issue 10, point 2). A client registered
// with API scopes only (`--resource ... --scope orders:read`) has no OpenID Connect scope: it
// may not sign anyone in for an ID token, read their profile, or keep a refresh token with
// offline_access, whether it is first-party (no consent page) or not.

const ORDERS = 'https://orders.example.com';
const PASSWORD = 'olga keeps a long passphrase';
const EVERYTHING = 'openid profile email roles offline_access';
let server: TestServer;
const secrets: Record<string, string> = {};

beforeAll(async () => {
  server = await startServerOnOwnDatabase();
  const { resources, clients, accounts } = server.container;
  await resources.create({ identifier: ORDERS, scopes: ['orders:read', 'orders:write'] });
  await accounts.create({ username: 'olga', email: 'olga@example.com', password: PASSWORD, emailVerified: true });
  const api = {
    grantTypes: ['authorization_code', 'refresh_token'],
    redirectUris: [REDIRECT_URI],
    resources: [ORDERS],
    scope: 'orders:read',
  };
  secrets['api-first'] = (await clients.create({ clientId: 'api-first', ...api, firstParty: true })).secret!;
  secrets['api-third'] = (await clients.create({ clientId: 'api-third', ...api })).secret!;
  secrets['profile-app'] = (
    await clients.create({
      clientId: 'profile-app',
      grantTypes: ['authorization_code'],
      redirectUris: [REDIRECT_URI],
      scope: 'openid profile',
      firstParty: true,
    })
  ).secret!;
  // A row as Postern wrote it before this fix (`--public --grant-types authorization_code,refresh_token
  // --resource ... --scope orders:read`): no `scope`, which the engine alone reads as "every scope".
  await insertClient(server.container.db.db, {
    clientId: 'legacy-spa',
    secretHash: null,
    firstParty: true,
    metadata: {
      client_id: 'legacy-spa',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [REDIRECT_URI],
      post_logout_redirect_uris: [],
      token_endpoint_auth_method: 'none',
      allowed_resources: [ORDERS],
      api_scopes: ['orders:read'],
    },
  });
  secrets.bare = (await clients.create({ clientId: 'bare', grantTypes: ['client_credentials'] })).secret!;
  secrets.svc = (
    await clients.create({
      clientId: 'svc',
      grantTypes: ['client_credentials'],
      resources: [ORDERS],
      scope: 'orders:read',
    })
  ).secret!;
});

afterAll(async () => {
  await server?.close();
});

const app = (id: string) => discover(server.issuer, id, secrets[id]);

/** Where the authorization endpoint sends the browser for this request, before anyone signs in. */
async function authorizationAnswer(clientId: string, scope: string, extra: Record<string, string> = {}) {
  const url = oidc.buildAuthorizationUrl(await app(clientId), {
    redirect_uri: REDIRECT_URI,
    scope,
    state: 'st',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
    ...extra,
  });
  return new URL((await newBrowser().get(url.href)).url);
}

describe('a client registered with API scopes only', () => {
  it.each(['api-first', 'api-third', 'legacy-spa'])(
    '%s asking for openid (and more) gets invalid_scope at the authorization endpoint',
    async (clientId) => {
      for (const scope of [EVERYTHING, 'openid', 'openid orders:read', 'offline_access orders:read']) {
        const answer = await authorizationAnswer(clientId, scope, { resource: ORDERS, prompt: 'consent' });
        expect(answer.origin + answer.pathname, scope).toBe(REDIRECT_URI);
        expect(answer.searchParams.get('error'), scope).toBe('invalid_scope');
        expect(answer.searchParams.get('code'), scope).toBeNull();
      }
    },
  );

  it('still gets what it was registered for: an access token for its API, and no ID token', async () => {
    // Plain OAuth 2.0 (no openid, so no nonce): sign in through the real pages, then exchange the code.
    const config = await app('api-first');
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'orders:read',
      resource: ORDERS,
      state: 'st',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const browser = newBrowser();
    const page = await browser.submit(await browser.get(url.href), '/login', { username: 'olga', password: PASSWORD });
    expect(page.url.startsWith(REDIRECT_URI), page.url).toBe(true);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(page.url), {
      pkceCodeVerifier: verifier,
      expectedState: 'st',
      idTokenExpected: false,
    });
    expect(tokens.id_token).toBeUndefined();
    expect(tokens.scope).toBe('orders:read');
  });

  it('asking for openid with the client-credentials grant gets invalid_scope', async () => {
    const svc = await app('svc');
    await expect(
      oidc.clientCredentialsGrant(svc, { scope: 'openid orders:read', resource: ORDERS }),
    ).rejects.toMatchObject({ error: 'invalid_scope' });
    await expect(oidc.clientCredentialsGrant(svc, { scope: 'openid orders:read' })).rejects.toMatchObject({
      error: 'invalid_scope',
    });
    expect((await oidc.clientCredentialsGrant(svc, { scope: 'orders:read' })).scope).toBe('orders:read');
    // A client with no resource at all takes another path through the engine.
    await expect(oidc.clientCredentialsGrant(await app('bare'), { scope: 'openid' })).rejects.toMatchObject({
      error: 'invalid_scope',
    });
  });
});

describe('a client registered with some OpenID Connect scopes', () => {
  it('gets those, and invalid_scope for any other', async () => {
    const answer = await authorizationAnswer('profile-app', 'openid profile email');
    expect(answer.searchParams.get('error')).toBe('invalid_scope');
    const config = await app('profile-app');
    const tokens = await exchange(
      config,
      await signIn(newBrowser(), config, { username: 'olga', password: PASSWORD }, { scope: 'openid profile' }),
    );
    expect(tokens.scope).toBe('openid profile');
    expect(tokens.claims()?.sub).toBeTruthy();
  });
});
