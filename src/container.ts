import { randomBytes } from 'node:crypto';

import type Koa from 'koa';
import type Provider from 'oidc-provider';

import { createAccountService, type AccountService } from './accounts/account.service.ts';
import { createPasswordHasher } from './accounts/password-hasher.ts';
import { createSignInService } from './accounts/sign-in.service.ts';
import { createAuditLog, type AuditLog } from './audit/audit-log.ts';
import { sweepAuditEvents } from './audit/audit-retention.ts';
import type { ClientRecord } from './clients/client.ts';
import { createClientService, type ClientService } from './clients/client.service.ts';
import type { ResourceServer } from './clients/resource-server.ts';
import {
  createResourceServerService,
  MAX_RESOURCE_TOKEN_TTL,
  type ResourceServerService,
} from './clients/resource-server.service.ts';
import { issuerBasePath, type Config } from './config/config.ts';
import { deriveKeyEncryptionKey, deriveKeys, resolveSecret } from './config/secrets.ts';
import { connectDatabase, type DatabaseHandle } from './db/connect.ts';
import { assertSchemaCurrent, latestKnownMigration, migrateToLatest, schemaIsCurrent } from './db/migrator.ts';
import { createHttpApp } from './http/app.ts';
import { DEMO_CLIENT_ID, demoRedirectUris } from './http/demo.routes.ts';
import { createProviderPages } from './http/provider-pages.ts';
import { createViews } from './http/views.ts';
import { loadInstallationKey } from './keys/installation-key.ts';
import type { KeyPolicy } from './keys/key-lifecycle.ts';
import { createKeyService, type KeyService } from './keys/key.service.ts';
import { createAdapterClass } from './oidc/adapter.ts';
import { hashLegacyRecords } from './oidc/legacy-records.ts';
import { createRecordProtection } from './oidc/record-protection.ts';
import { createRefreshRotation } from './oidc/refresh-rotation.ts';
import { createKeyRing, type KeyRing } from './oidc/key-ring.ts';
import { createProvider } from './oidc/provider.ts';
import { createSessionAdmin, type LogoutResult, type SessionAdmin } from './oidc/session-admin.ts';
import { startSweeper, type Sweeper } from './oidc/sweeper.ts';
import { systemClock, type Clock } from './shared/clock.ts';
import { isPosternError } from './shared/errors.ts';
import type { Logger } from './shared/logger.ts';
import { createMetrics, observeAuditEvent, type Metrics } from './shared/metrics.ts';
import { createTtlCache } from './shared/ttl-cache.ts';

export interface ContainerOptions {
  readonly logger: Logger;
  /** 'server' runs background jobs and may seed the demo; 'cli' only wires the services. */
  readonly role: 'server' | 'cli';
  readonly clock?: Clock;
  /**
   * An open database to share instead of opening one (two instances in one process over one
   * embedded database, as tests do); the container then leaves closing it to its owner.
   */
  readonly database?: DatabaseHandle;
}

export interface DemoSeed {
  readonly username: string;
  readonly password: string;
  readonly clientId: string;
}

export interface Container {
  readonly config: Config;
  readonly app: Koa;
  readonly db: DatabaseHandle;
  readonly accounts: AccountService<LogoutResult>;
  readonly clients: ClientService;
  readonly resources: ResourceServerService;
  readonly keys: KeyService;
  readonly keyRing: KeyRing;
  readonly audit: AuditLog;
  readonly metrics: Metrics;
  readonly sessions: SessionAdmin;
  readonly provider: () => Provider;
  /** Set when this start created the demo user; its password is shown once, by the caller. */
  readonly demoSeed: DemoSeed | undefined;
  readonly secretGenerated: string | undefined;
  close(): Promise<void>;
}

async function prepareSchema(config: Config, db: DatabaseHandle, logger: Logger): Promise<void> {
  if (db.engine === 'pglite' || config.migrateOnStart) {
    const { applied } = await migrateToLatest(db.db);
    if (applied.length) logger.info({ applied }, 'database migrated');
    return;
  }
  await assertSchemaCurrent(db.db);
}

/** New for the demo's purposes: nobody has added an account or a client yet. */
async function isEmpty(db: DatabaseHandle): Promise<boolean> {
  const [accounts, clients] = await Promise.all([
    db.db.selectFrom('accounts').select('id').limit(1).execute(),
    db.db.selectFrom('clients').select('client_id').limit(1).execute(),
  ]);
  return accounts.length === 0 && clients.length === 0;
}

async function seedDemo(config: Config, accounts: AccountService, clients: ClientService): Promise<DemoSeed> {
  const { redirectUri, postLogoutRedirectUri } = demoRedirectUris(config.issuer);
  await clients.create({
    clientId: DEMO_CLIENT_ID,
    name: 'Postern demo app',
    public: true,
    grantTypes: ['authorization_code'],
    redirectUris: [redirectUri],
    postLogoutRedirectUris: [postLogoutRedirectUri],
    scope: 'openid profile email roles',
    firstParty: true,
  });
  const password = randomBytes(12).toString('base64url');
  await accounts.create({
    username: 'demo',
    email: 'demo@example.com',
    emailVerified: true,
    password,
    profile: { name: 'Demo User', givenName: 'Demo', familyName: 'User' },
    roles: ['demo'],
  });
  return { username: 'demo', password, clientId: DEMO_CLIENT_ID };
}

/** /readyz: answers within 2 s whatever the database does. */
async function readiness(db: DatabaseHandle, latestMigration: string | undefined, keysLoaded: () => boolean) {
  const timeout = new Promise<'down'>((resolve) => setTimeout(() => resolve('down'), 2000).unref());
  const check = schemaIsCurrent(db.db, latestMigration).then(
    (current) => (current ? 'current' : 'behind'),
    () => 'down' as const,
  );
  const schema = await Promise.race([check, timeout]);
  const checks = { database: schema !== 'down', schema: schema === 'current', keys: keysLoaded() };
  return { ok: checks.database && checks.schema && checks.keys, checks };
}

/** A retired key stays published until the longest-lived token it signed has expired. */
const CLOCK_TOLERANCE_SECONDS = 60;

function keyPolicy(config: Config): KeyPolicy {
  // ID tokens, access tokens, and the JWTs of resource servers, whose lifetime is theirs to set.
  const longest = Math.max(config.ttl.idToken, config.ttl.accessToken, MAX_RESOURCE_TOKEN_TTL);
  return { ...config.keys, retireSeconds: longest + CLOCK_TOLERANCE_SECONDS };
}

/** The composition root: every part is built here, by plain construction, and nowhere else. */
export async function createContainer(config: Config, options: ContainerOptions): Promise<Container> {
  const { logger, role } = options;
  const clock = options.clock ?? systemClock;
  const secret = resolveSecret(config);
  const keyEncryptionKey = deriveKeyEncryptionKey(secret.secret);
  const db = options.database
    ? { ...options.database, close: async () => {} }
    : await connectDatabase({
        databaseUrl: config.databaseUrl,
        dataDir: config.dataDir,
        logger,
        purpose: role === 'server' ? 'postern serve' : 'postern command',
      });
  try {
    await prepareSchema(config, db, logger);
    const latestMigration = await latestKnownMigration(db.db);
    const derived = deriveKeys(await loadInstallationKey(db.db, keyEncryptionKey));
    const hasher = createPasswordHasher(config.argon2);
    const metrics = createMetrics({
      perClient: config.metrics.perClient,
      sources: {
        keyAges: () =>
          keyRing
            .keySet()
            .rows.filter((k) => k.state === 'current')
            .map((k) => ({
              alg: k.alg,
              seconds: (clock.now().getTime() - (k.activated_at ?? k.created_at).getTime()) / 1000,
            })),
        pool: () => db.pool && { total: db.pool.totalCount, idle: db.pool.idleCount, waiting: db.pool.waitingCount },
      },
    });
    const audit = createAuditLog({ db: db.db, clock, logger, observe: (event) => observeAuditEvent(metrics, event) });
    // A changed password or a disabled account ends every session and grant (sessions is built below).
    const accounts = createAccountService({
      db: db.db,
      hasher,
      audit,
      revokeAccess: (id, reason) => sessions.logout(id, { reason }),
    });
    const signIn = createSignInService({
      db: db.db,
      hasher,
      clock,
      audit,
      policy: config.lockout,
      throttleKey: derived.throttleKey,
    });
    const keys = createKeyService({ db: db.db, keyEncryptionKey, clock, audit, policy: keyPolicy(config), logger });
    const views = createViews(undefined, issuerBasePath(config.issuer));
    const cacheOptions = { ttlMs: config.cacheSeconds * 1000, max: 10_000, clock };
    const clientCache = createTtlCache<ClientRecord | undefined>(cacheOptions);
    const resources = createResourceServerService({
      db: db.db,
      audit,
      cache: createTtlCache<ResourceServer | undefined>(cacheOptions),
      signingAlgs: config.keys.algs,
    });
    const protect = createRecordProtection({ hmacKey: derived.recordIdKey, sealKey: derived.recordSealKey });
    const rotation = createRefreshRotation({
      db: db.db,
      clock,
      protect,
      logger,
      grace: { seconds: config.refresh.graceSeconds, maxRepeats: config.refresh.graceMaxRepeats },
    });
    const adapter = createAdapterClass({ db: db.db, clock, findClient: (id) => clients.find(id), protect, rotation });
    // Rows from before ids were hashed: converted before this server answers (oidc/legacy-records.ts).
    if (role === 'server') {
      const converted = await hashLegacyRecords(db.db, protect, { maxBatches: Number.MAX_SAFE_INTEGER });
      if (converted) logger.info({ converted }, 'stored engine records converted to hashed ids');
    }
    const pages = createProviderPages(views);
    const keyRing = await createKeyRing({
      keys,
      logger,
      watch: role === 'server',
      buildProvider: (set) =>
        createProvider({
          config,
          adapter,
          accounts,
          resources,
          pages,
          logger,
          audit,
          clock,
          metrics,
          db: db.db,
          protect,
          rotation,
          jwks: set.providerKeys,
          cookieKeys: derived.cookieKeys,
          clientSecretKey: derived.clientSecretKey,
        }),
    });
    const provider = () => keyRing.provider();
    const sessions = createSessionAdmin({
      db: db.db,
      provider,
      audit,
      clock,
      logger,
      waitForBackchannelLogout: role === 'cli',
    });
    const clients = createClientService({
      db: db.db,
      clientSecretKey: derived.clientSecretKey,
      validate: async (metadata) => {
        await provider().Client.validate(metadata as never);
      },
      audit,
      resources,
      cache: clientCache,
    });
    const demoSeed =
      role === 'server' && config.demo && (await isEmpty(db))
        ? // Two instances starting together on a new database: one seeds, the other finds it done.
          await seedDemo(config, accounts, clients).catch((error: unknown) => {
            if (isPosternError(error, 'ERR_DUPLICATE')) return undefined;
            throw error;
          })
        : undefined;
    const app = createHttpApp({
      config,
      logger,
      views,
      accounts,
      signIn,
      provider,
      jwks: () => keyRing.jwks(),
      metrics,
      csrfKey: derived.csrfKey,
      cookieKeys: derived.cookieKeys,
      ready: () => readiness(db, latestMigration, () => keyRing.keySet().providerKeys.length > 0),
    });
    const sweeper: Sweeper | undefined =
      role === 'server'
        ? startSweeper({
            db: db.db,
            clock,
            logger,
            intervalSeconds: config.sweepIntervalSeconds,
            protect,
            rotation,
            throttleRetentionSeconds: config.lockout.maxLockSeconds + config.lockout.windowSeconds,
            onSwept: (n) => metrics.sweptRecords.inc(n),
            retention: [(now) => sweepAuditEvents(db.db, now, config.auditRetentionDays)],
          })
        : undefined;
    return {
      config,
      app,
      db,
      accounts,
      clients,
      resources,
      keys,
      keyRing,
      audit,
      metrics,
      sessions,
      demoSeed,
      provider,
      secretGenerated: secret.generated ? secret.file : undefined,
      async close() {
        await sweeper?.stop();
        await keyRing.stop();
        await audit.flush();
        await db.close();
      },
    };
  } catch (error) {
    await db.close();
    throw error;
  }
}
