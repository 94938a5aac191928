import { sql, type Kysely } from 'kysely';

// APIs that accept Postern's access tokens (RFC 8707 resource indicators). Never edited once landed.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('resource_servers')
    .addColumn('identifier', 'text', (c) => c.primaryKey())
    .addColumn('scopes', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'::text[]`))
    .addColumn('access_token_ttl', 'integer', (c) => c.notNull())
    .addColumn('token_format', 'text', (c) => c.notNull().check(sql`token_format in ('jwt', 'opaque')`))
    .addColumn('signing_alg', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('resource_servers').execute();
}
