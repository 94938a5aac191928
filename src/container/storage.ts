import type { Config } from '../config/config.ts';
import { deriveKeyEncryptionKey, deriveKeys, resolveSecret, type DerivedKeys } from '../config/secrets.ts';
import { connectDatabase, type DatabaseHandle } from '../db/connect.ts';
import { assertSchemaCurrent, migrateToLatest, schemaMatchesCode } from '../db/migrator.ts';
import { loadInstallationKey } from '../keys/installation-key.ts';
import { systemClock, type Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';

// Stage 1 of the composition root: the database, its schema, and the keys everything else
// derives from. Needs nothing but the config.

export interface Storage {
  readonly config: Config;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly db: DatabaseHandle;
  /** Seals the signing keys and the installation key (from POSTERN_SECRET). */
  readonly keyEncryptionKey: Buffer;
  /** Cookie, CSRF, client-secret, throttle and record keys (from the installation key). */
  readonly derived: DerivedKeys;
  /** Set when this start generated POSTERN_SECRET into the data dir: the caller warns once. */
  readonly secretGenerated: string | undefined;
}

export interface StorageOptions {
  readonly logger: Logger;
  readonly clock?: Clock | undefined;
  /**
   * An open database to share instead of opening one (two instances in one process over one
   * embedded database, as tests do); closing it is then left to its owner.
   */
  readonly database?: DatabaseHandle | undefined;
  /** What holds the embedded data dir, shown to a second process that finds it locked. */
  readonly purpose: string;
}

/**
 * The schema as the code expects it. Usually it already is: one query says so, and the migrator
 * (which loads every migration file) is not started. Otherwise the embedded database, or
 * POSTERN_MIGRATE_ON_START, migrates; PostgreSQL without it refuses a schema that is behind.
 */
async function prepareSchema(config: Config, db: DatabaseHandle, logger: Logger): Promise<void> {
  if (await schemaMatchesCode(db.db)) return;
  if (db.engine === 'pglite' || config.migrateOnStart) {
    const { applied } = await migrateToLatest(db.db);
    if (applied.length) logger.info({ applied }, 'database migrated');
    return;
  }
  await assertSchemaCurrent(db.db);
}

export async function openStorage(config: Config, options: StorageOptions): Promise<Storage> {
  const { logger } = options;
  const secret = resolveSecret(config);
  const keyEncryptionKey = deriveKeyEncryptionKey(secret.secret);
  const db = options.database
    ? { ...options.database, close: async () => {} }
    : await connectDatabase({
        databaseUrl: config.databaseUrl,
        dataDir: config.dataDir,
        logger,
        purpose: options.purpose,
      });
  try {
    await prepareSchema(config, db, logger);
    const derived = deriveKeys(await loadInstallationKey(db.db, keyEncryptionKey));
    return {
      config,
      logger,
      clock: options.clock ?? systemClock,
      db,
      keyEncryptionKey,
      derived,
      secretGenerated: secret.generated ? secret.file : undefined,
    };
  } catch (error) {
    await db.close();
    throw error;
  }
}
