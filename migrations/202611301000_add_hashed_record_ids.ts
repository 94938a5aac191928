import { sql, type Kysely } from 'kysely';

// Engine records are stored under a keyed hash of their id (README "Security model"). The hash
// key derives from the installation key, which a migration cannot unseal (it needs
// POSTERN_SECRET and must not import src/): this only marks the rows written before, and the
// app converts them once it has the key (oidc/legacy-records.ts); until then the adapter still
// finds them by their clear id. Also: the sealed refresh-token successor kept for the grace
// window. Never edited once landed.
export async function up(db: Kysely<any>): Promise<void> {
  // Existing rows (and rows an older instance still writes during an upgrade) default to false.
  await db.schema
    .alterTable('oidc_payloads')
    .addColumn('id_hashed', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();
  await db.schema.alterTable('oidc_payloads').addColumn('successor_sealed', 'text').execute();
  await db.schema
    .createIndex('oidc_payloads_legacy')
    .on('oidc_payloads')
    .column('kind')
    .where(sql.ref('id_hashed'), '=', false)
    .execute();
  await db.schema
    .createIndex('oidc_payloads_successor')
    .on('oidc_payloads')
    .column('consumed_at')
    .where(sql.ref('successor_sealed'), 'is not', null)
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('oidc_payloads_successor').execute();
  await db.schema.dropIndex('oidc_payloads_legacy').execute();
  await db.schema.alterTable('oidc_payloads').dropColumn('successor_sealed').execute();
  await db.schema.alterTable('oidc_payloads').dropColumn('id_hashed').execute();
}
