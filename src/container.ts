import type { RequestListener } from 'node:http';

import type { MfaService } from './accounts/mfa.service.ts';
import type Provider from 'oidc-provider';

import type { AccountService } from './accounts/account.service.ts';
import type { OneTimeTokens } from './accounts/one-time-tokens.ts';
import type { AuditLog } from './audit/audit-log.ts';
import type { ClientService } from './clients/client.service.ts';
import type { ResourceServerService } from './clients/resource-server.service.ts';
import type { Config } from './config/config.ts';
import { buildDomain } from './container/domain.ts';
import { createEngineLink } from './container/engine-link.ts';
import { buildHttp } from './container/http.ts';
import { startJobs } from './container/jobs.ts';
import { buildProtocol, type Protocol } from './container/protocol.ts';
import { openStorage } from './container/storage.ts';
import type { DatabaseHandle } from './db/connect.ts';
import { latestKnownMigration } from './db/migrator.ts';
import { adminResourceServer } from './admin/admin-resource.ts';
import { seedDemo, type DemoSeed } from './http/demo.routes.ts';
import type { KeyService } from './keys/key.service.ts';
import type { MailOutbox } from './mail/mail-outbox.ts';
import type { KeyRing } from './oidc/key-ring.ts';
import type { LogoutResult, SessionAdmin } from './oidc/session-admin.ts';
import type { Clock } from './shared/clock.ts';
import type { Logger } from './shared/logger.ts';
import { createMetrics, observeAuditEvent, type Metrics, watchMailOutbox } from './shared/metrics.ts';

// The composition root of the server: every part is built here, by plain construction, in
// dependency order, one stage at a time (src/container/*). Commands build only the stages they
// need (src/container/command.ts).

export interface ContainerOptions {
  readonly logger: Logger;
  readonly clock?: Clock;
  /**
   * An open database to share instead of opening one (two instances in one process over one
   * embedded database, as tests do); the container then leaves closing it to its owner.
   */
  readonly database?: DatabaseHandle;
}

export interface Container {
  readonly config: Config;
  /** Every HTTP request's way in (http/front-door.ts): the engine's paths to the engine, the rest to our app. */
  readonly listener: RequestListener;
  readonly db: DatabaseHandle;
  readonly accounts: AccountService<LogoutResult>;
  readonly clients: ClientService;
  readonly resources: ResourceServerService;
  readonly keys: KeyService;
  readonly keyRing: KeyRing;
  readonly audit: AuditLog;
  readonly metrics: Metrics;
  readonly sessions: SessionAdmin;
  /** Write a message in the transaction of the event that causes it (mail/mail-outbox.ts). */
  readonly mail: MailOutbox;
  /** Single-use links and codes (accounts/one-time-tokens.ts). */
  readonly tokens: OneTimeTokens;
  /** TOTP and recovery codes (accounts/mfa.service.ts). */
  readonly mfa: MfaService;
  readonly provider: () => Provider;
  /** Set when this start created the demo user; its password is shown once, by the caller. */
  readonly demoSeed: DemoSeed | undefined;
  readonly secretGenerated: string | undefined;
  close(): Promise<void>;
}

export async function createContainer(config: Config, options: ContainerOptions): Promise<Container> {
  const storage = await openStorage(config, { ...options, purpose: 'postern serve' });
  const { db } = storage;
  try {
    const metrics = createMetrics({
      perClient: config.metrics.perClient,
      sources: {
        pool: () => db.pool && { total: db.pool.totalCount, idle: db.pool.idleCount, waiting: db.pool.waitingCount },
      },
    });
    const engine = createEngineLink<Protocol>();
    const domain = buildDomain(storage, {
      engine,
      observe: (event) => observeAuditEvent(metrics, event),
      waitForBackchannelLogout: false,
      mailEvents: { onSent: () => metrics.mailSent.inc(), onFailed: () => metrics.mailFailed.inc() },
    });
    watchMailOutbox(metrics, () => domain.mail.outbox.pending());
    engine.connect(() => buildProtocol(storage, domain, { metrics }));
    const protocol = await engine.engine();
    // The admin API's resource server: made by whichever instance starts first (README: Admin API).
    await domain.resources.ensure(adminResourceServer(config.issuer));
    const { accounts, clients, isNewInstallation } = domain;
    const demoSeed = config.demo
      ? await seedDemo({ issuer: config.issuer, accounts, clients, isNewInstallation })
      : undefined;
    const listener = buildHttp(storage, domain, protocol, { metrics, latestMigration: await latestKnownMigration() });
    const jobs = await startJobs(storage, domain, protocol, { metrics });
    return {
      config,
      listener,
      db,
      accounts,
      clients,
      resources: domain.resources,
      keys: domain.keys,
      audit: domain.audit,
      sessions: domain.sessions,
      mail: domain.mail.outbox,
      tokens: domain.tokens,
      mfa: domain.mfa,
      keyRing: protocol.keyRing,
      metrics,
      demoSeed,
      provider: protocol.provider,
      secretGenerated: storage.secretGenerated,
      async close() {
        await jobs.stop();
        await domain.audit.flush();
        await db.close();
      },
    };
  } catch (error) {
    await db.close();
    throw error;
  }
}
