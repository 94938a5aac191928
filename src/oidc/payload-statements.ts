import type { Kysely } from 'kysely';

import { compileOnce, type CompiledStatement } from '../db/compile-once.ts';
import type { Database } from '../db/tables.ts';

// The adapter's statements on the token paths (adapter.ts), each compiled once (db/compile-once.ts):
// every refresh and introspection runs them.

export type LookupColumn = 'id' | 'uid' | 'user_code';

/** A record as the adapter stores it in oidc_payloads (the upsert's values; refresh rotation's deferred writes). */
export interface PayloadRow {
  readonly kind: string;
  readonly id: string;
  readonly payload: string;
  readonly grant_id: string | null;
  readonly uid: string | null;
  readonly user_code: string | null;
  readonly expires_at: Date | null;
}

/** `key` is the keyed hash of `value`, the value the engine asked for. */
type Lookup = { key: string; value: string; now: Date };

export interface PayloadStatements {
  /** The live rows of these kinds under this key (or legacy clear value), hashed rows first. */
  lookup(column: LookupColumn, kinds: readonly string[]): CompiledStatement<Lookup, FoundRow>;
  readonly upsert: CompiledStatement<PayloadRow, unknown>;
  /** The compare-and-set claim of a record (consume). */
  readonly claim: CompiledStatement<{ kind: string; id: string; now: Date }, unknown>;
}

export type FoundRow = {
  kind: string;
  id: string;
  payload: unknown;
  consumed_at: Date | null;
  id_hashed: boolean;
  grant_payload: unknown;
};

export function createPayloadStatements(db: Kysely<Database>): PayloadStatements {
  // A handful of (column, kinds) pairs: the engine's models times three lookup columns.
  const lookups = new Map<string, CompiledStatement<Lookup, FoundRow>>();
  return {
    lookup(column, kinds) {
      const name = `${column}:${kinds.join(',')}`;
      let statement = lookups.get(name);
      if (!statement) {
        statement = compileLookup(db, column, kinds);
        lookups.set(name, statement);
      }
      return statement;
    },
    upsert: compileOnce<PayloadRow, unknown>(db, (p) => {
      const row = {
        payload: p('payload'),
        grant_id: p('grant_id'),
        uid: p('uid'),
        user_code: p('user_code'),
        expires_at: p('expires_at'),
        id_hashed: true,
      };
      return db
        .insertInto('oidc_payloads')
        .values({ kind: p('kind'), id: p('id'), ...row })
        .onConflict((oc) => oc.columns(['kind', 'id']).doUpdateSet(row))
        .compile();
    }),
    claim: compileOnce<{ kind: string; id: string; now: Date }, unknown>(db, (p) =>
      db
        .updateTable('oidc_payloads')
        .set({ consumed_at: p('now') })
        .where('kind', '=', p('kind'))
        .where('id', '=', p('id'))
        .where('id_hashed', '=', true)
        .where('consumed_at', 'is', null)
        .compile(),
    ),
  };
}

function compileLookup(db: Kysely<Database>, column: LookupColumn, kinds: readonly string[]) {
  return compileOnce<Lookup, FoundRow>(db, (p) =>
    db
      .selectFrom('oidc_payloads')
      .select(['kind', 'id', 'payload', 'consumed_at', 'id_hashed'])
      // The grant the record names, in the same query (GrantPrefetch): same filters as a find.
      .select((eb) =>
        eb
          .selectFrom('oidc_payloads as g')
          .select('g.payload')
          .where('g.kind', '=', 'Grant')
          .whereRef('g.id', '=', 'oidc_payloads.grant_id')
          .where('g.id_hashed', '=', true)
          .where((w) => w.or([w('g.expires_at', 'is', null), w('g.expires_at', '>', p('now'))]))
          .as('grant_payload'),
      )
      .where('kind', 'in', kinds)
      // A row written before ids were hashed is still found by its clear value until it is
      // converted; a hashed row is never found by its stored hash (that would make a dump usable).
      .where((eb) =>
        eb.or([
          eb.and([eb(column, '=', p('key')), eb('id_hashed', '=', true)]),
          eb.and([eb(column, '=', p('value')), eb('id_hashed', '=', false)]),
        ]),
      )
      // Expired rows wait for the sweeper but are never returned.
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', p('now'))]))
      .orderBy('id_hashed', 'desc')
      .limit(2 * kinds.length)
      .compile(),
  );
}
