import { randomBytes } from 'node:crypto';

import { afterEach } from 'vitest';

import { createPasskeys, type Passkeys, type UserVerification } from '../../src/accounts/passkeys.ts';
import { createPasswordHasher } from '../../src/accounts/password-hasher.ts';
import type { Clock } from '../../src/shared/clock.ts';

import { createTestDatabase, type TestDatabase } from './database.ts';
import { REDIRECT_URI } from './relying-party.ts';
import { startTestServer, type TestServer, type TestServerOptions } from './server.ts';

// The setup most end-to-end tests share: a server on a database of its own, the public
// first-party app they sign in through, and cleanup of what a test started.

/** A server on a fresh database of its own; closing it also drops the database. */
export async function startServerOnOwnDatabase(
  env: Record<string, string> = {},
  options: TestServerOptions = {},
): Promise<TestServer> {
  const database = await createTestDatabase();
  try {
    const server = await startTestServer(database, env, options);
    const close = server.close.bind(server);
    return Object.assign(server, {
      close: async () => {
        try {
          await close();
        } finally {
          await database.drop();
        }
      },
    });
  } catch (error) {
    await database.drop();
    throw error;
  }
}

export interface PerTestServers {
  readonly servers: TestServer[];
  readonly databases: TestDatabase[];
  /** A server on a new database, both closed and dropped after the test. */
  start(env?: Record<string, string>, options?: TestServerOptions): Promise<{ db: TestDatabase; server: TestServer }>;
}

/** What a test starts: servers closed (newest first), then databases dropped, after each test. */
export function serversPerTest(): PerTestServers {
  const servers: TestServer[] = [];
  const databases: TestDatabase[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0).reverse()) await s.close();
    for (const d of databases.splice(0)) await d.drop();
  });
  return {
    servers,
    databases,
    async start(env = {}, options = {}) {
      const db = await createTestDatabase();
      databases.push(db);
      const server = await startTestServer(db, env, options);
      servers.push(server);
      return { db, server };
    },
  };
}

/** The public, first-party code-flow app (PKCE, no secret) a test signs in through. */
export function createPublicApp(server: TestServer, clientId = 'app') {
  return server.container.clients.create({
    clientId,
    public: true,
    grantTypes: ['authorization_code'],
    redirectUris: [REDIRECT_URI],
    firstParty: true,
  });
}

/** A confidential first-party app "payroll" that requires MFA (`client create --require-mfa`); returns its secret. */
export async function createMfaRequiredApp(server: TestServer): Promise<string> {
  const { secret } = await server.container.clients.create({
    clientId: 'payroll',
    grantTypes: ['authorization_code'],
    redirectUris: [REDIRECT_URI],
    scope: 'openid profile email',
    firstParty: true,
    requireMfa: true,
  });
  return secret!;
}

/** Daily key rotation, a JWKS cache of five minutes, and key polling every second. */
export const DAILY_KEY_ROTATION_ENV = {
  POSTERN_KEY_ROTATION_SECONDS: String(86400),
  POSTERN_JWKS_CACHE_SECONDS: '300',
  POSTERN_KEY_POLL_SECONDS: '1',
};

/**
 * People made one per call, `${prefix}1`, `${prefix}2`, … with their own passwords, so that tests
 * do not share sessions or grants. `server` is read at each call (a test may swap it).
 */
export function peopleOn(server: () => TestServer, prefix: string) {
  let counter = 0;
  return async (roles: string[] = []) => {
    counter += 1;
    const person = {
      username: `${prefix}${counter}`,
      email: `${prefix}${counter}@example.com`,
      password: `${prefix} passphrase ${counter}`,
    };
    const account = await server().container.accounts.create({ ...person, roles });
    return { ...person, id: account.id };
  };
}

/** The person most tests sign in as. */
export const ALICE = { username: 'alice', email: 'alice@example.com', password: 'correct horse battery staple' };

export function createAlice(server: TestServer) {
  return server.container.accounts.create(ALICE);
}

/** A confidential web app "webapp" at REDIRECT_URI with these grants; returns its generated secret. */
export async function createWebApp(server: TestServer, grantTypes: string[]): Promise<string> {
  const { secret } = await server.container.clients.create({
    clientId: 'webapp',
    grantTypes,
    redirectUris: [REDIRECT_URI],
    scope: 'openid offline_access',
  });
  return secret!;
}

/** The passkey service over a test server's database, as the container builds it, for relying party `issuer`. */
export function passkeyServiceOn(
  server: TestServer,
  clock: Clock,
  issuer: string,
  userVerification: UserVerification = 'required',
): Passkeys {
  const { container } = server;
  return createPasskeys({
    db: container.db.db,
    clock,
    audit: container.audit,
    outbox: container.mail,
    hasher: createPasswordHasher(container.config.argon2),
    policy: container.config.lockout,
    issuer,
    publicName: 'Postern',
    challengeKey: randomBytes(32),
    userVerification,
  });
}
