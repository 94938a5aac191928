import { sql, type Kysely } from 'kysely';

// Secrets that belong to this installation rather than to POSTERN_SECRET: each is stored sealed
// (AES-256-GCM) under the key-encryption key derived from POSTERN_SECRET, so changing
// POSTERN_SECRET only re-seals them. Never edited once landed.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('installation_secrets')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('sealed', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('installation_secrets').execute();
}
