import type { RequestListener } from 'node:http';

import { createAdminApi } from '../admin/admin-api.ts';
import { issuerBasePath } from '../config/config.ts';
import { schemaIsCurrent } from '../db/migrator.ts';
import type { DatabaseHandle } from '../db/connect.ts';
import { createHttpApp } from '../http/app.ts';
import { frontDoor } from '../http/front-door.ts';
import { createAccountSessions } from '../oidc/account-sessions.ts';
import type { Metrics } from '../shared/metrics.ts';
import type { Domain } from './domain.ts';
import type { Protocol } from './protocol.ts';
import type { Storage } from './storage.ts';

// Stage 4 of the composition root: the front door and our Koa app behind it. Needs the three stages
// before it; nothing needs it but the server.

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

export function buildHttp(
  storage: Storage,
  domain: Domain,
  protocol: Protocol,
  options: { metrics: Metrics; latestMigration: string | undefined },
): RequestListener {
  const { config, logger, db, derived, clock } = storage;
  const { keyRing } = protocol;
  const admin = createAdminApi({
    issuer: config.issuer,
    settings: config.admin,
    algorithms: config.keys.algs,
    services: { issuer: config.issuer, ...domain, keysChanged: () => keyRing.refresh() },
    db: db.db,
    clock,
    sealKey: derived.recordSealKey,
    jwks: () => keyRing.jwks(),
    views: protocol.views,
    logger,
  });
  const site = createHttpApp({
    admin,
    config,
    clock,
    logger,
    views: protocol.views,
    accounts: domain.accounts,
    signIn: domain.signIn,
    accountPage: domain.accountPage,
    accountSessions: createAccountSessions({
      sessions: domain.sessions,
      provider: protocol.provider,
      audit: domain.audit,
    }),
    recovery: domain.recovery,
    registration: domain.registration,
    mfa: domain.mfa,
    passkeys: domain.passkeys,
    mailEnabled: domain.mail.outbox.enabled,
    provider: protocol.provider,
    jwks: () => keyRing.jwks(),
    metrics: options.metrics,
    csrfKey: derived.csrfKey,
    cookieKeys: derived.cookieKeys,
    ready: () => readiness(db, options.latestMigration, () => keyRing.keySet().providerKeys.length > 0),
  });
  return frontDoor({
    basePath: issuerBasePath(config.issuer),
    https: config.issuer.startsWith('https:'),
    trustProxy: config.trustProxy,
    authorizationPost: config.authorizationPost,
    logger,
    metrics: options.metrics,
    site: site.callback(),
    provider: protocol.provider,
  });
}
