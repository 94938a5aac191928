import type { Kysely } from 'kysely';
import Provider, { errors, type Adapter, type AdapterPayload } from 'oidc-provider';

import type { ClientRecord } from '../clients/client.ts';
import type { Database } from '../db/tables.ts';
import type { Clock } from '../shared/clock.ts';
import { hashLegacyRecord } from './legacy-records.ts';
import {
  createPayloadStatements,
  type FoundRow,
  type LookupColumn,
  type PayloadStatements,
} from './payload-statements.ts';
import { concealPayload, revealPayload } from './record-payload.ts';
import { isStorableText } from '../shared/storable-text.ts';
import type { RecordProtection } from './record-protection.ts';
import type { RefreshRotation } from './refresh-rotation.ts';
import { guardDatabase } from './unavailable.ts';

// node-oidc-provider's storage contract (docs: "adapter"), on one jsonb table keyed by (kind, id).
// Clients are the exception: they live in their own table, managed by `postern client`.

/** The models the engine binds to a grant (what its own memory adapter indexes by grant). */
const GRANT_BOUND_KINDS = [
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
];

export type AdapterClass = new (name: string) => Adapter;

/**
 * What a token value may be: the engine looks one value up as each of these at once when it
 * does not know which (introspection, revocation; lib/helpers/token_find.js).
 */
const TOKEN_KINDS: readonly string[] = ['AccessToken', 'ClientCredentials', 'RefreshToken'];

/**
 * Lookups of one token value as several kinds in the same request, made as ONE query: the
 * engine starts them together, so they share it while it runs (and only then: a later find
 * reads afresh).
 */
class TokenLookups {
  readonly #byRequest = new WeakMap<object, Map<string, Promise<FoundRow[]>>>();

  rows(key: string, query: () => Promise<FoundRow[]>): Promise<FoundRow[]> {
    const ctx = Provider.ctx;
    if (!ctx) return query();
    const running = this.#byRequest.get(ctx) ?? new Map<string, Promise<FoundRow[]>>();
    this.#byRequest.set(ctx, running);
    const shared = running.get(key);
    if (shared) return shared;
    const started = query().finally(() => running.delete(key));
    running.set(key, started);
    return started;
  }
}

/**
 * Grants read along with a token that names them, kept for the request that read them (the
 * engine's documented `Provider.ctx`): the engine looks the grant up right after the token on
 * every refresh, introspection and userinfo call, so one query serves both. Taken once.
 */
class GrantPrefetch {
  readonly #byRequest = new WeakMap<object, Map<string, AdapterPayload>>();

  keep(grantId: string, payload: AdapterPayload): void {
    const ctx = Provider.ctx;
    if (!ctx) return;
    const kept = this.#byRequest.get(ctx) ?? new Map<string, AdapterPayload>();
    kept.set(grantId, payload);
    this.#byRequest.set(ctx, kept);
  }

  take(grantId: string): AdapterPayload | undefined {
    const ctx = Provider.ctx;
    const kept = ctx && this.#byRequest.get(ctx);
    const payload = kept?.get(grantId);
    if (payload) kept!.delete(grantId);
    return payload;
  }
}

function expiry(clock: Clock, expiresIn: number | undefined): Date | null {
  return typeof expiresIn === 'number' ? new Date(clock.now().getTime() + expiresIn * 1000) : null;
}

type FindClient = (clientId: string) => Promise<ClientRecord | undefined>;

class ClientAdapter implements Adapter {
  readonly #findClient: FindClient;
  /** One properties object per record: the engine's Client is kept per object (engine-overrides.ts). */
  readonly #properties: WeakMap<ClientRecord, AdapterPayload>;

  constructor(findClient: FindClient, properties: WeakMap<ClientRecord, AdapterPayload>) {
    this.#findClient = findClient;
    this.#properties = properties;
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    if (typeof id !== 'string' || !isStorableText(id)) return undefined;
    const client = await this.#findClient(id);
    if (!client) return undefined;
    let properties = this.#properties.get(client);
    if (!properties) {
      // The engine needs a client_secret for secret-based methods; it gets the keyed hash,
      // which compareClientSecret (oidc/client-auth.ts) checks presented secrets against.
      properties = {
        ...client.metadata,
        client_id: client.clientId,
        ...(client.secretHash ? { client_secret: client.secretHash } : {}),
        first_party: client.firstParty,
      } as AdapterPayload;
      this.#properties.set(client, properties);
    }
    return properties;
  }

  // Clients are written by `postern client`, never by the engine (dynamic registration is off).
  async upsert(): Promise<void> {
    throw new Error('clients are managed with `postern client`');
  }
  async destroy(): Promise<void> {
    throw new Error('clients are managed with `postern client`');
  }
  async consume(): Promise<void> {}
  async findByUid(): Promise<undefined> {
    return undefined;
  }
  async findByUserCode(): Promise<undefined> {
    return undefined;
  }
  async revokeByGrantId(): Promise<void> {}
}

// RFC 6749 §4.1.2 (codes) and RFC 9700 §4.14.2 (rotated refresh tokens): one use only. The
// first consume wins a compare-and-set; a concurrent second one is refused, never served.
const SINGLE_USE: Readonly<Record<string, string>> = {
  AuthorizationCode: 'authorization code already used',
  RefreshToken: 'refresh token already rotated',
};

/** Thrown by a ReplayDetection save that lost the race: the engine answers it as a replay (oidc/provider.ts). */
export class ReplayDetected extends Error {
  constructor() {
    super('replay detected');
  }
}

class PayloadAdapter implements Adapter {
  readonly #db: Kysely<Database>;
  readonly #statements: PayloadStatements;
  readonly #clock: Clock;
  readonly #kind: string;
  readonly #protect: RecordProtection;
  readonly #rotation: RefreshRotation | undefined;
  /** Every kind: a refresh holds the new records it saves until it claims (refresh-rotation.ts). */
  readonly #deferred: RefreshRotation | undefined;

  readonly #grants: GrantPrefetch;
  readonly #lookups: TokenLookups;

  constructor(
    deps: {
      db: Kysely<Database>;
      statements: PayloadStatements;
      clock: Clock;
      protect: RecordProtection;
      rotation?: RefreshRotation | undefined;
      grants: GrantPrefetch;
      lookups: TokenLookups;
    },
    kind: string,
  ) {
    this.#grants = deps.grants;
    this.#lookups = deps.lookups;
    this.#db = deps.db;
    this.#statements = deps.statements;
    this.#clock = deps.clock;
    this.#kind = kind;
    this.#protect = deps.protect;
    this.#rotation = kind === 'RefreshToken' ? deps.rotation : undefined;
    this.#deferred = kind === 'ReplayDetection' ? undefined : deps.rotation;
  }

  #hash = (value: unknown) => (typeof value === 'string' ? this.#protect.hashId(value) : null);

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const key = this.#protect.hashId(id);
    const row = {
      payload: JSON.stringify(concealPayload(this.#protect, this.#kind, id, key, payload)),
      grant_id: this.#hash(payload.grantId),
      uid: this.#hash(payload.uid),
      user_code: this.#hash(payload.userCode),
      expires_at: expiry(this.#clock, expiresIn),
      id_hashed: true,
    };
    if (this.#kind === 'ReplayDetection') return this.#insertOnce(key, row);
    if (this.#deferred?.deferWrite({ kind: this.#kind, id: key, ...row })) return;
    await this.#statements.upsert({ kind: this.#kind, id: key, ...row });
  }

  /**
   * The engine's replay detection finds, then saves: two concurrent saves of one client assertion
   * or DPoP proof must not both succeed. Insert-only; an expired leftover row may be replaced.
   */
  async #insertOnce(key: string, row: { payload: string; expires_at: Date | null }): Promise<void> {
    const inserted = await this.#db
      .insertInto('oidc_payloads')
      .values({ kind: this.#kind, id: key, ...row, id_hashed: true })
      .onConflict((oc) =>
        oc.columns(['kind', 'id']).doUpdateSet(row).where('oidc_payloads.expires_at', '<=', this.#clock.now()),
      )
      .returning('id')
      .executeTakeFirst();
    if (!inserted) throw new ReplayDetected();
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    if (this.#kind === 'Grant' && typeof id === 'string') {
      const prefetched = this.#grants.take(id);
      if (prefetched) return prefetched;
    }
    return this.#findWhere('id', id);
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.#findWhere('uid', uid);
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.#findWhere('user_code', userCode);
  }

  async #findWhere(column: LookupColumn, value: string): Promise<AdapterPayload | undefined> {
    if (typeof value !== 'string' || !isStorableText(value)) return undefined;
    const key = this.#protect.hashId(value);
    const rows =
      column === 'id' && TOKEN_KINDS.includes(this.#kind)
        ? await this.#lookups.rows(key, () => this.#select(column, value, key, TOKEN_KINDS))
        : await this.#select(column, value, key, [this.#kind]);
    const row = rows.find((r) => r.kind === this.#kind);
    if (!row) return undefined;
    if (!row.id_hashed) await hashLegacyRecord(this.#db, this.#protect, this.#kind, row.id);
    const stored = row.payload as Record<string, unknown>;
    const payload = row.id_hashed
      ? revealPayload(this.#protect, this.#kind, column === 'id' ? value : undefined, row.id, stored)
      : ({ ...stored, jti: row.id } as AdapterPayload);
    if (payload && row.id_hashed) this.#keepGrant(payload, row.grant_payload);
    if (!payload || !row.consumed_at) return payload;
    // A rotated refresh token presented again inside the grace window is a repeat: the engine
    // checks it as usual, and its consume hands it to oidc/refresh-rotation.ts.
    if (column === 'id' && this.#rotation?.withinGrace(row.consumed_at)) return payload;
    // The engine's replay detection reads `consumed` (RFC 6749 §4.1.2 for codes; for refresh
    // tokens, RFC 9700 §4.14.2: reuse of a rotated token revokes the grant).
    return { ...payload, consumed: Math.floor(row.consumed_at.getTime() / 1000) };
  }

  /** The live rows of these kinds under this key (or legacy clear value), hashed rows first. */
  async #select(column: LookupColumn, value: string, key: string, kinds: readonly string[]): Promise<FoundRow[]> {
    const { rows } = await this.#statements.lookup(column, kinds)({ key, value, now: this.#clock.now() });
    return rows;
  }

  #keepGrant(payload: AdapterPayload, stored: unknown): void {
    const grantId = payload.grantId;
    if (typeof grantId !== 'string' || !stored || typeof stored !== 'object') return;
    const grant = revealPayload(
      this.#protect,
      'Grant',
      grantId,
      this.#protect.hashId(grantId),
      stored as Record<string, unknown>,
    );
    if (grant) this.#grants.keep(grantId, grant);
  }

  async consume(id: string): Promise<void> {
    const key = this.#protect.hashId(id);
    // A refresh at the token endpoint claims when its answer is ready, in one statement with it.
    if (this.#rotation?.deferClaim(key)) return;
    const claimed = await this.#statements.claim({ kind: this.#kind, id: key, now: this.#clock.now() });
    if ((claimed.numAffectedRows ?? 0n) > 0n) return;
    const refusal = SINGLE_USE[this.#kind];
    if (!refusal) return;
    this.#rotation?.repeated(key);
    throw new errors.InvalidGrant(refusal);
  }

  async destroy(id: string): Promise<void> {
    await this.#db
      .deleteFrom('oidc_payloads')
      .where('kind', '=', this.#kind)
      .where((eb) =>
        eb.or([
          eb.and([eb('id', '=', this.#protect.hashId(id)), eb('id_hashed', '=', true)]),
          eb.and([eb('id', '=', id), eb('id_hashed', '=', false)]),
        ]),
      )
      .execute();
  }

  // Every token, code and request bound to the grant goes at once, whichever model asks.
  async revokeByGrantId(grantId: string): Promise<void> {
    await this.#db
      .deleteFrom('oidc_payloads')
      .where((eb) =>
        eb.or([
          eb.and([eb('grant_id', '=', this.#protect.hashId(grantId)), eb('id_hashed', '=', true)]),
          eb.and([eb('grant_id', '=', grantId), eb('id_hashed', '=', false)]),
        ]),
      )
      .where('kind', 'in', GRANT_BOUND_KINDS)
      .execute();
  }
}

export function createAdapterClass(deps: {
  db: Kysely<Database>;
  clock: Clock;
  findClient: FindClient;
  protect: RecordProtection;
  rotation?: RefreshRotation;
}): AdapterClass {
  const { findClient } = deps;
  const payloadDeps = {
    ...deps,
    statements: createPayloadStatements(deps.db),
    grants: new GrantPrefetch(),
    lookups: new TokenLookups(),
  };
  const clientProperties = new WeakMap<ClientRecord, AdapterPayload>();
  return class PosternAdapter implements Adapter {
    readonly #inner: Adapter;

    constructor(name: string) {
      this.#inner =
        name === 'Client' ? new ClientAdapter(findClient, clientProperties) : new PayloadAdapter(payloadDeps, name);
    }

    // A lost database answers 503 temporarily_unavailable, never 500 (oidc/unavailable.ts).
    upsert(id: string, payload: AdapterPayload, expiresIn: number) {
      return guardDatabase(() => this.#inner.upsert(id, payload, expiresIn));
    }
    find(id: string) {
      return guardDatabase(() => this.#inner.find(id));
    }
    findByUid(uid: string) {
      return guardDatabase(() => this.#inner.findByUid(uid));
    }
    findByUserCode(userCode: string) {
      return guardDatabase(() => this.#inner.findByUserCode(userCode));
    }
    consume(id: string) {
      return guardDatabase(() => this.#inner.consume(id));
    }
    destroy(id: string) {
      return guardDatabase(() => this.#inner.destroy(id));
    }
    revokeByGrantId(grantId: string) {
      return guardDatabase(() => this.#inner.revokeByGrantId(grantId));
    }
  };
}
