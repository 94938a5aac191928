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

/**
 * The migrations this code ships, by name, oldest first: the file names, read the way Kysely's
 * FileMigrationProvider reads them, without loading the files (loading them all is most of a
 * command's start-up cost).
 */
export async function knownMigrations(): Promise<string[]> {
  const files = await fs.readdir(MIGRATIONS_DIR);
  return files
    .filter((f) => /\.(m?ts|m?js)$/.test(f) && !/\.d\.m?ts$/.test(f))
    .map((f) => f.slice(0, f.lastIndexOf('.')))
    .sort();
}

/** The newest migration this code knows. */
export async function latestKnownMigration(): Promise<string | undefined> {
  return (await knownMigrations()).at(-1);
}

/**
 * One query: the applied migrations are exactly the ones this code ships, so there is nothing
 * for the migrator to do or check. Anything else (a new database, a pending migration, one this
 * code does not know) is left to the migrator, which explains it.
 */
export async function schemaMatchesCode(db: Kysely<Database>): Promise<boolean> {
  const known = await knownMigrations();
  let applied: string[];
  try {
    const { rows } = await sql<{ name: string }>`select name from postern_migrations`.execute(db);
    applied = rows.map((r) => r.name).sort();
  } catch (error) {
    // 42P01 undefined_table: a database that was never migrated.
    if ((error as { code?: unknown }).code === '42P01') return false;
    throw error;
  }
  return applied.length === known.length && applied.every((name, i) => name === known[i]);
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
