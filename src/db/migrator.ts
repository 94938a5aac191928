import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { FileMigrationProvider, Migrator, sql, type Kysely, type MigrationResult } from 'kysely';

import { PosternError } from '../shared/errors.ts';
import type { Database } from './tables.ts';

const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations', import.meta.url));

function createMigrator(db: Kysely<Database>): Migrator {
  return new Migrator({
    db,
    provider: new FileMigrationProvider({ fs, path, migrationFolder: MIGRATIONS_DIR }),
    migrationTableName: 'postern_migrations',
    migrationLockTableName: 'postern_migrations_lock',
  });
}

export interface MigrationOutcome {
  readonly applied: readonly string[];
  /** true when the database had no schema before this run. */
  readonly fresh: boolean;
}

export async function migrateToLatest(db: Kysely<Database>): Promise<MigrationOutcome> {
  const migrator = createMigrator(db);
  const before = await migrator.getMigrations();
  const fresh = before.every((m) => m.executedAt === undefined);
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r: MigrationResult) => r.status === 'Error');
    throw new Error(`migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message}`, { cause: error });
  }
  return { applied: (results ?? []).map((r) => r.migrationName), fresh };
}

export async function pendingMigrations(db: Kysely<Database>): Promise<string[]> {
  const migrations = await createMigrator(db).getMigrations();
  return migrations.filter((m) => m.executedAt === undefined).map((m) => m.name);
}

export async function assertSchemaCurrent(db: Kysely<Database>): Promise<void> {
  const pending = await pendingMigrations(db);
  if (pending.length > 0) {
    throw new PosternError(
      'ERR_SCHEMA_BEHIND',
      `the database schema is behind (${pending.length} migration(s) pending: ${pending.join(', ')}); run "postern migrate" first, or set POSTERN_MIGRATE_ON_START=true`,
    );
  }
}

/** The newest migration this code knows. */
export async function latestKnownMigration(db: Kysely<Database>): Promise<string | undefined> {
  return (await createMigrator(db).getMigrations()).at(-1)?.name;
}

/**
 * Cheap readiness check: the newest applied migration is the newest this code knows (or newer:
 * during a rolling upgrade the next version may have migrated already).
 */
export async function schemaIsCurrent(db: Kysely<Database>, latestKnown: string | undefined): Promise<boolean> {
  if (latestKnown === undefined) return true;
  const { rows } = await sql<{ name: string | null }>`select max(name) as name from postern_migrations`.execute(db);
  return (rows[0]?.name ?? '') >= latestKnown;
}
