import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startServerOnOwnDatabase } from '../support/setup.ts';
import { discover, exchange, newBrowser, signIn } from '../support/relying-party.ts';
import type { TestServer } from '../support/server.ts';

// An API that authorizes by role from the access token alone (a FastAPI or Flask service with
// technician / engineer / manager checks): its resource server is created with --claims, and
// it verifies the RFC 9068 JWT against the JWKS, as PyJWT would, then reads `roles`.

const ORDERS = 'https://orders.example.com'; // --claims roles,email
const BILLING = 'https://billing.example.com'; // no --claims
const PASSWORD = 'tomas keeps a long passphrase';
const WEB_SECRET = 'web-secret-0123456789abcdefghijklmnopqrstuvwxyz';
let server: TestServer;
let svcSecret: string;

beforeAll(async () => {
  server = await startServerOnOwnDatabase();
  const { resources, clients, accounts } = server.container;
  await resources.create({ identifier: ORDERS, scopes: ['orders:read'], claims: ['roles', 'email'] });
  await resources.create({ identifier: BILLING, scopes: ['billing:read'] });
  await accounts.create({
    username: 'tomas',
    email: 'tomas@example.com',
    password: PASSWORD,
    roles: ['technician', 'manager'],
  });
  await clients.create({
    clientId: 'web',
    secret: WEB_SECRET,
    firstParty: true,
    grantTypes: ['authorization_code', 'refresh_token'],
    redirectUris: ['http://127.0.0.1:9/callback'],
    resources: [ORDERS, BILLING],
    scope: 'openid email orders:read billing:read',
  });
  svcSecret = (
    await clients.create({
      clientId: 'dispatcher',
      grantTypes: ['client_credentials'],
      resources: [ORDERS, BILLING],
      scope: 'orders:read billing:read',
      roles: ['engineer'],
    })
  ).secret!;
});

afterAll(async () => {
  await server?.close();
});

/** What the API does: verify against the published keys (RFC 9068), then look at the claims. */
async function verifyAsApi(token: string, audience: string) {
  const metadata = (await discover(server.issuer, 'web', WEB_SECRET)).serverMetadata();
  const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(metadata.jwks_uri!)), {
    issuer: server.issuer,
    audience,
    typ: 'at+jwt',
  });
  return payload;
}

async function userTokenFor(resource: string, scope: string) {
  const config = await discover(server.issuer, 'web', WEB_SECRET);
  const auth = await signIn(
    newBrowser(),
    config,
    { username: 'tomas', password: PASSWORD },
    { scope: `openid email ${scope}`, resource },
  );
  return (await exchange(config, auth)).access_token;
}

describe('access tokens for an API that authorizes by role', () => {
  it("carry the user's roles and email for an API created with --claims roles,email", async () => {
    const payload = await verifyAsApi(await userTokenFor(ORDERS, 'orders:read'), ORDERS);
    expect(payload.roles).toEqual(['technician', 'manager']);
    expect(payload.email).toBe('tomas@example.com');
    expect(payload.scope).toBe('orders:read');
  });

  it('carry neither for an API created without --claims', async () => {
    const payload = await verifyAsApi(await userTokenFor(BILLING, 'billing:read'), BILLING);
    expect(payload).not.toHaveProperty('roles');
    expect(payload).not.toHaveProperty('email');
    expect(payload.scope).toBe('billing:read');
  });

  it("a service's client-credentials token carries the service's own roles, and only where roles are asked for", async () => {
    const service = await discover(server.issuer, 'dispatcher', svcSecret);
    const orders = await oidc.clientCredentialsGrant(service, { scope: 'orders:read', resource: ORDERS });
    const forOrders = await verifyAsApi(orders.access_token, ORDERS);
    expect(forOrders).toMatchObject({ sub: 'dispatcher', roles: ['engineer'] });
    expect(forOrders).not.toHaveProperty('email');
    const billing = await oidc.clientCredentialsGrant(service, { scope: 'billing:read', resource: BILLING });
    expect(await verifyAsApi(billing.access_token, BILLING)).not.toHaveProperty('roles');
  });
});
