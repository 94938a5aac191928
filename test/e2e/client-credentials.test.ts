import { randomUUID } from 'node:crypto';

import { createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { discover, exchange, newBrowser, REDIRECT_URI, signIn } from '../support/relying-party.ts';
import { freePort, startTestServer, type TestServer } from '../support/server.ts';

// Microservices and resource servers, as they live it: a service gets a token with the
// client-credentials grant (openid-client); an API verifies it offline with the JWKS from
// discovery (jose), checking typ, iss, aud, exp and scope.

const ORDERS = 'https://orders.example.com';
const BILLING = 'https://billing.example.com';
const LEDGER = 'https://ledger.example.com'; // opaque tokens, checked by introspection
let db: TestDatabase;
let server: TestServer;
let svcSecret: string;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db, { POSTERN_CACHE_SECONDS: '1' });
  const { resources, clients } = server.container;
  await resources.create({ identifier: ORDERS, scopes: ['orders:read', 'orders:write'] });
  await resources.create({ identifier: BILLING, scopes: ['billing:read'], accessTokenTtl: 300 });
  await resources.create({ identifier: LEDGER, scopes: ['ledger:read'], tokenFormat: 'opaque' });
  svcSecret = (
    await clients.create({
      clientId: 'svc',
      grantTypes: ['client_credentials'],
      resources: [ORDERS, BILLING],
      scope: 'orders:read billing:read',
    })
  ).secret!;
});

afterAll(async () => {
  await server?.close();
  await db?.drop();
});

const service = (id = 'svc', secret = svcSecret) => discover(server.issuer, id, secret);

/** What an API does with a bearer token: verify it against the published keys, as RFC 9068 says. */
async function verifyAsApi(token: string, audience: string) {
  const metadata = (await service()).serverMetadata();
  const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri!));
  return jwtVerify(token, jwks, {
    issuer: metadata.issuer,
    audience,
    typ: 'at+jwt',
    requiredClaims: ['exp', 'iat', 'jti', 'client_id', 'scope', 'sub'],
  });
}

describe('client credentials for an API', () => {
  it('issues an RFC 9068 JWT that the API verifies offline', async () => {
    const tokens = await oidc.clientCredentialsGrant(await service(), { scope: 'orders:read', resource: ORDERS });
    const { payload, protectedHeader } = await verifyAsApi(tokens.access_token, ORDERS);
    expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: 'at+jwt' });
    expect(payload).toMatchObject({
      iss: server.issuer,
      sub: 'svc',
      client_id: 'svc',
      aud: ORDERS,
      scope: 'orders:read',
    });
    expect(payload.exp! - payload.iat!).toBe(3600);
  });

  it('a client with one resource may leave it out, and gets a token for it', async () => {
    const { secret } = await server.container.clients.create({
      clientId: 'single',
      grantTypes: ['client_credentials'],
      resources: [BILLING],
      scope: 'billing:read',
    });
    const tokens = await oidc.clientCredentialsGrant(await service('single', secret), { scope: 'billing:read' });
    const { payload } = await verifyAsApi(tokens.access_token, BILLING);
    expect(payload.exp! - payload.iat!).toBe(300); // the resource's own lifetime
  });

  it('a token for one API is refused by another (audience)', async () => {
    const tokens = await oidc.clientCredentialsGrant(await service(), { scope: 'billing:read', resource: BILLING });
    await expect(verifyAsApi(tokens.access_token, ORDERS)).rejects.toMatchObject({
      code: 'ERR_JWT_CLAIM_VALIDATION_FAILED',
      claim: 'aud',
    });
  });

  it('a wrong secret gets 401 invalid_client', async () => {
    await expect(
      oidc.clientCredentialsGrant(await service('svc', 'x'.repeat(43)), { scope: 'orders:read', resource: ORDERS }),
    ).rejects.toMatchObject({ status: 401, cause: [{ parameters: { error: 'invalid_client' } }] });
  });

  it('a scope or resource the client was not given gets the right OAuth error, never a wider token', async () => {
    await expect(
      oidc.clientCredentialsGrant(await service(), { scope: 'orders:write', resource: ORDERS }),
    ).rejects.toMatchObject({ error: 'invalid_scope' });
    await expect(
      oidc.clientCredentialsGrant(await service(), { scope: 'ledger:read', resource: LEDGER }),
    ).rejects.toMatchObject({ error: 'invalid_target' });
    await expect(
      oidc.clientCredentialsGrant(await service(), { scope: 'orders:read', resource: 'https://unknown.example.com' }),
    ).rejects.toMatchObject({ error: 'invalid_target' });
    // Two resources and none named: the client must say which.
    await expect(oidc.clientCredentialsGrant(await service(), { scope: 'orders:read' })).rejects.toMatchObject({
      error: 'invalid_target',
    });
  });
});

describe('private_key_jwt', () => {
  it('authenticates with a signed assertion, and refuses the same assertion twice', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    await server.container.clients.create({
      clientId: 'keyed',
      grantTypes: ['client_credentials'],
      resources: [ORDERS],
      scope: 'orders:read',
      jwks: { keys: [jwk] },
    });
    const config = await oidc.discovery(
      new URL(server.issuer),
      'keyed',
      {},
      oidc.PrivateKeyJwt({ key: privateKey, kid: 'k1' }),
      { execute: [oidc.allowInsecureRequests] },
    );
    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'orders:read', resource: ORDERS });
    expect((await verifyAsApi(tokens.access_token, ORDERS)).payload.sub).toBe('keyed');

    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer('keyed')
      .setSubject('keyed')
      .setAudience(server.issuer)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(privateKey);
    const post = () =>
      fetch(`${server.issuer}/token`, {
        method: 'POST',
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          scope: 'orders:read',
          resource: ORDERS,
          client_id: 'keyed',
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: assertion,
        }),
      });
    expect((await post()).status).toBe(200);
    const replay = await post();
    expect(replay.status).toBe(401);
    expect(await replay.json()).toMatchObject({ error: 'invalid_client' });
  });
});

describe('one client assertion, many instances', () => {
  // The engine's replay check finds, then saves; the save is insert-only, so of concurrent uses
  // of one assertion exactly one wins, whichever instance each lands on (RFC 7523 §3, jti).
  it('10 parallel token requests with one assertion, spread over two instances, give exactly 1 token', async () => {
    // A second instance under the same issuer name, as behind a load balancer.
    const port = await freePort();
    const other = await startTestServer(
      db,
      { POSTERN_CACHE_SECONDS: '1', PORT: String(port), POSTERN_ISSUER: server.issuer },
      db.engine === 'pglite' ? { shareDatabaseOf: server } : {},
    );
    const otherUrl = `http://127.0.0.1:${port}`;
    try {
      const { privateKey, publicKey } = await generateKeyPair('ES256');
      const jwk = { ...(await exportJWK(publicKey)), kid: 'k2', alg: 'ES256', use: 'sig' };
      await server.container.clients.create({
        clientId: 'racer',
        grantTypes: ['client_credentials'],
        resources: [ORDERS],
        scope: 'orders:read',
        jwks: { keys: [jwk] },
      });
      const assertion = await new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: 'k2' })
        .setIssuer('racer')
        .setSubject('racer')
        .setAudience(server.issuer)
        .setJti(randomUUID())
        .setIssuedAt()
        .setExpirationTime('1m')
        .sign(privateKey);
      const post = (issuer: string) =>
        fetch(`${issuer}/token`, {
          method: 'POST',
          body: new URLSearchParams({
            grant_type: 'client_credentials',
            scope: 'orders:read',
            resource: ORDERS,
            client_id: 'racer',
            client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
            client_assertion: assertion,
          }),
        });
      const responses = await Promise.all(Array.from({ length: 10 }, (_, i) => post(i % 2 ? otherUrl : server.issuer)));
      const statuses = responses.map((r) => r.status);
      const bodies = await Promise.all(responses.map((r) => r.json() as Promise<{ error?: string }>));
      expect(statuses.filter((s) => s === 200)).toHaveLength(1);
      expect(bodies.filter((b) => b.error).every((b) => b.error === 'invalid_client')).toBe(true);
    } finally {
      await other.close();
    }
  });
});

describe('introspection and revocation', () => {
  it('are advertised by discovery', async () => {
    const metadata = (await service()).serverMetadata();
    expect(metadata.introspection_endpoint).toBe(`${server.issuer}/token/introspection`);
    expect(metadata.revocation_endpoint).toBe(`${server.issuer}/token/revocation`);
  });

  it('an opaque token is active, then inactive once revoked; only its client and its API may ask', async () => {
    const { clients } = server.container;
    const { secret } = await clients.create({
      clientId: 'ledger-writer',
      grantTypes: ['client_credentials'],
      resources: [LEDGER],
      scope: 'ledger:read',
    });
    const { secret: apiSecret } = await clients.create({
      clientId: 'ledger-api',
      grantTypes: ['client_credentials'],
      resourceServerFor: [LEDGER],
    });
    const writer = await service('ledger-writer', secret);
    const api = await service('ledger-api', apiSecret);
    const stranger = await service();
    const { access_token: token } = await oidc.clientCredentialsGrant(writer, { scope: 'ledger:read' });
    expect(token.split('.')).toHaveLength(1); // opaque

    expect(await oidc.tokenIntrospection(writer, token)).toMatchObject({
      active: true,
      client_id: 'ledger-writer',
      aud: LEDGER,
      scope: 'ledger:read',
    });
    expect(await oidc.tokenIntrospection(api, token)).toMatchObject({ active: true, aud: LEDGER });
    expect((await oidc.tokenIntrospection(stranger, token)).active).toBe(false);

    await oidc.tokenRevocation(writer, token);
    expect((await oidc.tokenIntrospection(writer, token)).active).toBe(false);
    expect((await oidc.tokenIntrospection(api, token)).active).toBe(false);
  });

  it('introspection needs an authenticated client', async () => {
    const response = await fetch(`${server.issuer}/token/introspection`, {
      method: 'POST',
      body: new URLSearchParams({ token: 'x' }),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toBe('invalid_request');
  });
});

describe('a web app asking for an API', () => {
  it('gets a JWT for the API with the user as sub', async () => {
    const { accounts, clients } = server.container;
    const user = await accounts.create({
      username: 'wen',
      email: 'wen@example.com',
      password: 'wen has a long passphrase',
    });
    const { secret } = await clients.create({
      clientId: 'portal',
      grantTypes: ['authorization_code'],
      redirectUris: [REDIRECT_URI],
      resources: [ORDERS],
      scope: 'openid orders:read',
      firstParty: true,
    });
    const config = await discover(server.issuer, 'portal', secret);
    const auth = await signIn(
      newBrowser(),
      config,
      { username: 'wen', password: 'wen has a long passphrase' },
      { scope: 'openid orders:read', resource: ORDERS },
    );
    const tokens = await exchange(config, auth);
    const { payload } = await verifyAsApi(tokens.access_token, ORDERS);
    expect(payload).toMatchObject({ sub: user.id, client_id: 'portal', aud: ORDERS, scope: 'orders:read' });
  });
});

describe('several instances', () => {
  it('a deleted client stops working on another instance within the cache interval', async () => {
    const other = await startTestServer(
      db,
      { POSTERN_CACHE_SECONDS: '1' },
      db.engine === 'pglite' ? { shareDatabaseOf: server } : {},
    );
    try {
      const { secret } = await server.container.clients.create({
        clientId: 'doomed',
        grantTypes: ['client_credentials'],
        resources: [ORDERS],
        scope: 'orders:read',
      });
      const viaOther = await discover(other.issuer, 'doomed', secret);
      await oidc.clientCredentialsGrant(viaOther, { scope: 'orders:read' }); // now cached there
      await server.container.clients.delete('doomed');
      const started = Date.now();
      await expect
        .poll(
          async () =>
            oidc.clientCredentialsGrant(viaOther, { scope: 'orders:read' }).then(
              () => 'works',
              () => 'refused',
            ),
          { timeout: 5000, interval: 200 },
        )
        .toBe('refused');
      expect(Date.now() - started).toBeLessThan(3000); // documented: within POSTERN_CACHE_SECONDS (1 s here)
    } finally {
      await other.close();
    }
  });
});
