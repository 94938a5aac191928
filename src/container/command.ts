import { adminResourceServer } from '../admin/admin-resource.ts';
import type { Config } from '../config/config.ts';
import type { DatabaseHandle } from '../db/connect.ts';
import type { Logger } from '../shared/logger.ts';
import { buildDomain, type Domain } from './domain.ts';
import { createEngineLink } from './engine-link.ts';
import type { Protocol } from './protocol.ts';
import { openStorage, type Storage } from './storage.ts';

// The composition root of a command (`postern ...`): the storage and domain stages only. The
// engine (key ring, provider) is built the first time an operation needs it (see
// engine-link.ts), or at once with `engine: 'now'`; its code is not even loaded before that.

export interface CommandContainer extends Domain {
  readonly config: Config;
  readonly db: DatabaseHandle;
  readonly secretGenerated: string | undefined;
  close(): Promise<void>;
}

/** The protocol stage as a command needs it: no metrics to serve, back-channel logout awaited. */
async function buildCommandProtocol(storage: Storage, domain: Domain): Promise<Protocol> {
  const [{ buildProtocol }, { createMetrics }] = await Promise.all([
    import('./protocol.ts'),
    import('../shared/metrics.ts'),
  ]);
  const metrics = createMetrics({ perClient: false, sources: { pool: () => undefined } });
  return buildProtocol(storage, domain, { metrics });
}

export async function createCommandContainer(
  config: Config,
  options: { logger: Logger; engine: 'on-demand' | 'now' },
): Promise<CommandContainer> {
  const storage = await openStorage(config, { logger: options.logger, purpose: 'postern command' });
  const { db } = storage;
  const engine = createEngineLink<Protocol>();
  const domain = buildDomain(storage, { engine, waitForBackchannelLogout: true });
  engine.connect(() => buildCommandProtocol(storage, domain));
  try {
    // As at a server's start, so that `client create --resource <issuer>/admin` works before one ran.
    await domain.resources.ensure(adminResourceServer(config.issuer));
    if (options.engine === 'now') await engine.engine();
  } catch (error) {
    await db.close();
    throw error;
  }
  return {
    ...domain,
    config,
    db,
    secretGenerated: storage.secretGenerated,
    async close() {
      // An engine that failed to build has nothing to stop; its error was the command's.
      await engine.built()?.then(
        (protocol) => protocol.keyRing.stop(),
        () => undefined,
      );
      await domain.audit.flush();
      await db.close();
    },
  };
}
