import { sql, type Kysely } from 'kysely';

// Which user claims a resource server's access tokens carry (README: Roles in access tokens).
// Empty by default: tokens stay small unless an API asks. Never edited once landed.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('resource_servers')
    .addColumn('claims', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'::text[]`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('resource_servers').dropColumn('claims').execute();
}
