import path from 'node:path';

import { Kysely, PostgresDialect } from 'kysely';
import type pg from 'pg';

import type { Logger } from '../shared/logger.ts';
import { lockDataDir } from './data-dir-lock.ts';
import { PGliteDialect } from './pglite-dialect.ts';
import type { Database } from './tables.ts';

export type Engine = 'postgres' | 'pglite';

export interface DatabaseHandle {
  readonly db: Kysely<Database>;
  readonly engine: Engine;
  /** Pool figures for metrics and readiness (postgres only). */
  readonly pool: pg.Pool | undefined;
  close(): Promise<void>;
}

export interface ConnectOptions {
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly logger: Logger;
  /** What holds the embedded data dir, shown to a second process that finds it locked. */
  readonly purpose: string;
  readonly poolSize?: number;
}

// Each engine's driver is loaded only when it is used: a command starts faster without the other.
export async function connectDatabase(options: ConnectOptions): Promise<DatabaseHandle> {
  if (options.databaseUrl) return connectPostgres(options.databaseUrl, options);
  return connectEmbedded(options);
}

async function connectPostgres(url: string, options: ConnectOptions): Promise<DatabaseHandle> {
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
  });
  // A client losing its server (a restart, a failover) must not crash the process: idle ones
  // report through the pool, checked-out ones on themselves; their queries fail on their own.
  pool.on('error', (error) => options.logger.warn({ err: error.message }, 'database connection lost'));
  pool.on('connect', (client) => {
    client.on('error', (error) => options.logger.warn({ err: error.message }, 'database connection lost while in use'));
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { db, engine: 'postgres', pool, close: () => db.destroy() };
}

async function connectEmbedded(options: ConnectOptions): Promise<DatabaseHandle> {
  const lock = lockDataDir(options.dataDir, options.purpose);
  try {
    const { PGlite } = await import('@electric-sql/pglite');
    const pglite = await PGlite.create(path.join(options.dataDir, 'pgdata'));
    const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
    return {
      db,
      engine: 'pglite',
      pool: undefined,
      close: async () => {
        try {
          await db.destroy();
        } finally {
          lock.release();
        }
      },
    };
  } catch (error) {
    lock.release();
    throw error;
  }
}
