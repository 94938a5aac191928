import { sql, type Kysely } from 'kysely';

// Passkeys (WebAuthn Level 3): the credentials people register, several per account, and the
// challenges of ceremonies under way. A challenge is kept only as a keyed hash (DESIGN §5), one
// per binding (an interaction, or an account-page session) and purpose, and is used by ONE
// delete ... returning, so it serves once whichever instance finishes the ceremony.
// Never edited once landed.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('webauthn_credentials')
    // The credential id as the authenticator gave it, base64url (WebAuthn §6.1: at most 1023 bytes).
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'uuid', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    // COSE public key, base64url: public, stored in clear.
    .addColumn('public_key', 'text', (c) => c.notNull())
    // The signature counter is a 32-bit unsigned integer (WebAuthn §6.1.1): bigint holds all of it.
    .addColumn('counter', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('transports', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'::text[]`))
    .addColumn('device_type', 'text', (c) => c.notNull().check(sql`device_type in ('singleDevice', 'multiDevice')`))
    .addColumn('backed_up', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('last_used_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('webauthn_credentials_account').on('webauthn_credentials').column('account_id').execute();
  await db.schema
    .createTable('webauthn_challenges')
    .addColumn('binding_hash', 'text', (c) => c.notNull())
    .addColumn('purpose', 'text', (c) => c.notNull().check(sql`purpose in ('register', 'authenticate')`))
    .addColumn('challenge_hash', 'text', (c) => c.notNull())
    .addColumn('account_id', 'uuid', (c) => c.references('accounts.id').onDelete('cascade'))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('webauthn_challenges_pkey', ['binding_hash', 'purpose'])
    .execute();
  await db.schema.createIndex('webauthn_challenges_expires').on('webauthn_challenges').column('expires_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('webauthn_challenges').execute();
  await db.schema.dropTable('webauthn_credentials').execute();
}
