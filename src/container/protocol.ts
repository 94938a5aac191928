import type Provider from 'oidc-provider';

import { issuerBasePath } from '../config/config.ts';
import { createProviderPages } from '../http/provider-pages.ts';
import { requestState } from '../http/request-context.ts';
import { guardEngineInput } from '../http/storable-input.ts';
import { createViews, type Views } from '../http/views.ts';
import { createAdapterClass } from '../oidc/adapter.ts';
import { createKeyRing, type KeyRing } from '../oidc/key-ring.ts';
import { createProvider } from '../oidc/provider.ts';
import { createRecordProtection, type RecordProtection } from '../oidc/record-protection.ts';
import { createRefreshRotation, type RefreshRotation } from '../oidc/refresh-rotation.ts';
import { watchSigningKeyAges, type Metrics } from '../shared/metrics.ts';
import type { Domain } from './domain.ts';
import type { Storage } from './storage.ts';

// Stage 3 of the composition root: node-oidc-provider with our storage, accounts and keys.
// Needs the storage and domain stages. Building it completes the key store (makes missing keys).

export interface Protocol {
  /** The current engine: the key ring builds a new one when the signing keys change. */
  provider(): Provider;
  readonly keyRing: KeyRing;
  readonly protect: RecordProtection;
  readonly rotation: RefreshRotation;
  /** Our page templates, which the engine renders its own pages with too. */
  readonly views: Views;
}

export async function buildProtocol(
  storage: Storage,
  domain: Domain,
  options: {
    metrics: Metrics;
  },
): Promise<Protocol> {
  const { config, clock, logger, derived } = storage;
  const db = storage.db.db;
  const protect = createRecordProtection({ hmacKey: derived.recordIdKey, sealKey: derived.recordSealKey });
  const rotation = createRefreshRotation({
    db,
    clock,
    protect,
    logger,
    grace: { seconds: config.refresh.graceSeconds, maxRepeats: config.refresh.graceMaxRepeats },
  });
  const adapter = createAdapterClass({ db, clock, findClient: domain.clientDirectory.find, protect, rotation });
  const views = createViews(undefined, issuerBasePath(config.issuer));
  const pages = createProviderPages(views);
  const edge = [requestState(logger), guardEngineInput(views)];
  const keyRing = await createKeyRing({
    keys: domain.keys,
    logger,
    buildProvider: (set) =>
      createProvider({
        config,
        adapter,
        accounts: domain.accounts,
        resources: domain.resources,
        pages,
        edge,
        logger,
        audit: domain.audit,
        clock,
        metrics: options.metrics,
        db,
        protect,
        rotation,
        jwks: set.providerKeys,
        cookieKeys: derived.cookieKeys,
        clientSecretKey: derived.clientSecretKey,
      }),
  });
  watchSigningKeyAges(options.metrics, () =>
    keyRing
      .keySet()
      .rows.filter((k) => k.state === 'current')
      .map((k) => ({
        alg: k.alg,
        seconds: (clock.now().getTime() - (k.activated_at ?? k.created_at).getTime()) / 1000,
      })),
  );
  return { provider: () => keyRing.provider(), keyRing, protect, rotation, views };
}
