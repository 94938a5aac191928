import type { Kysely } from 'kysely';
import type { Adapter, AdapterPayload } from 'oidc-provider';

import type { ClientRecord } from '../clients/client.ts';
import type { Database } from '../db/tables.ts';
import type { Clock } from '../shared/clock.ts';
import { guardDatabase } from './unavailable.ts';

// node-oidc-provider's storage contract (docs: "adapter"), on one jsonb table keyed by (kind, id).
// Clients are the exception: they live in their own table, managed by `postern client`.

/** The models the engine binds to a grant (what its own memory adapter indexes by grant). */
const GRANT_BOUND_KINDS = [
  'AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest', 'PreAuthorizedCode',
];

export type AdapterClass = new (name: string) => Adapter;

function expiry(clock: Clock, expiresIn: number | undefined): Date | null {
  return typeof expiresIn === 'number' ? new Date(clock.now().getTime() + expiresIn * 1000) : null;
}

type FindClient = (clientId: string) => Promise<ClientRecord | undefined>;

class ClientAdapter implements Adapter {
  readonly #findClient: FindClient;

  constructor(findClient: FindClient) {
    this.#findClient = findClient;
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const client = await this.#findClient(id);
    if (!client) return undefined;
    // The engine needs a client_secret for secret-based methods; it gets the keyed hash,
    // which compareClientSecret (oidc/client-auth.ts) checks presented secrets against.
    return {
      ...client.metadata,
      client_id: client.clientId,
      ...(client.secretHash ? { client_secret: client.secretHash } : {}),
      first_party: client.firstParty,
    } as AdapterPayload;
  }

  // Clients are written by `postern client`, never by the engine (dynamic registration is off).
  async upsert(): Promise<void> { throw new Error('clients are managed with `postern client`'); }
  async destroy(): Promise<void> { throw new Error('clients are managed with `postern client`'); }
  async consume(): Promise<void> {}
  async findByUid(): Promise<undefined> { return undefined; }
  async findByUserCode(): Promise<undefined> { return undefined; }
  async revokeByGrantId(): Promise<void> {}
}

/** See README "Refresh tokens": a repeat of a just-rotated token is answered, a bounded number of times. */
export interface RefreshGrace {
  readonly seconds: number;
  readonly maxRepeats: number;
}

class PayloadAdapter implements Adapter {
  readonly #db: Kysely<Database>;
  readonly #clock: Clock;
  readonly #kind: string;
  readonly #grace: RefreshGrace | undefined;

  constructor(db: Kysely<Database>, clock: Clock, kind: string, grace?: RefreshGrace) {
    this.#db = db;
    this.#clock = clock;
    this.#kind = kind;
    this.#grace = kind === 'RefreshToken' ? grace : undefined;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const row = {
      payload: JSON.stringify(payload),
      grant_id: payload.grantId ?? null,
      uid: payload.uid ?? null,
      user_code: payload.userCode ?? null,
      expires_at: expiry(this.#clock, expiresIn),
    };
    await this.#db
      .insertInto('oidc_payloads')
      .values({ kind: this.#kind, id, ...row })
      .onConflict((oc) => oc.columns(['kind', 'id']).doUpdateSet(row))
      .execute();
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return this.#findWhere('id', id);
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.#findWhere('uid', uid);
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.#findWhere('user_code', userCode);
  }

  async #findWhere(column: 'id' | 'uid' | 'user_code', value: string): Promise<AdapterPayload | undefined> {
    if (typeof value !== 'string') return undefined;
    const row = await this.#db
      .selectFrom('oidc_payloads')
      .select(['payload', 'consumed_at'])
      .where('kind', '=', this.#kind)
      .where(column, '=', value)
      // Expired rows wait for the sweeper but are never returned.
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', this.#clock.now())]))
      .limit(1)
      .executeTakeFirst();
    if (!row) return undefined;
    const payload = row.payload as AdapterPayload;
    if (!row.consumed_at) return payload;
    if (this.#grace && column === 'id' && this.#clock.now().getTime() - row.consumed_at.getTime() < this.#grace.seconds * 1000) {
      return this.#withinGrace(value, payload);
    }
    // The engine's replay detection reads `consumed` (RFC 6749 §4.1.2 for codes; for refresh
    // tokens, RFC 9700 §4.14.2: reuse of a rotated token revokes the grant).
    return { ...payload, consumed: Math.floor(row.consumed_at.getTime() / 1000) };
  }

  /**
   * A rotated refresh token presented again inside the grace window (two tabs, a retry after a
   * timeout) is answered as if fresh, so the client ends up with working tokens, up to
   * maxRepeats times (counted atomically); past that it is "not found": refused, but nothing is
   * revoked. Only after the window does a repeat count as reuse.
   */
  async #withinGrace(id: string, payload: AdapterPayload): Promise<AdapterPayload | undefined> {
    const counted = await this.#db
      .updateTable('oidc_payloads')
      .set((eb) => ({ grace_uses: eb('grace_uses', '+', 1) }))
      .where('kind', '=', this.#kind).where('id', '=', id)
      .where('grace_uses', '<', this.#grace!.maxRepeats)
      .executeTakeFirst();
    return counted.numUpdatedRows > 0n ? payload : undefined;
  }

  async consume(id: string): Promise<void> {
    // The first consumption counts: a repeat inside the grace window must not move it.
    await this.#db
      .updateTable('oidc_payloads')
      .set((eb) => ({ consumed_at: eb.fn.coalesce('consumed_at', eb.val(this.#clock.now())) }))
      .where('kind', '=', this.#kind)
      .where('id', '=', id)
      .execute();
  }

  async destroy(id: string): Promise<void> {
    await this.#db.deleteFrom('oidc_payloads').where('kind', '=', this.#kind).where('id', '=', id).execute();
  }

  // Every token, code and request bound to the grant goes at once, whichever model asks.
  async revokeByGrantId(grantId: string): Promise<void> {
    await this.#db
      .deleteFrom('oidc_payloads')
      .where('grant_id', '=', grantId)
      .where('kind', 'in', GRANT_BOUND_KINDS)
      .execute();
  }
}

export function createAdapterClass(deps: { db: Kysely<Database>; clock: Clock; findClient: FindClient; refreshGrace?: RefreshGrace }): AdapterClass {
  const { db, clock, findClient, refreshGrace } = deps;
  return class PosternAdapter implements Adapter {
    readonly #inner: Adapter;

    constructor(name: string) {
      this.#inner = name === 'Client' ? new ClientAdapter(findClient) : new PayloadAdapter(db, clock, name, refreshGrace);
    }

    // A lost database answers 503 temporarily_unavailable, never 500 (oidc/unavailable.ts).
    upsert(id: string, payload: AdapterPayload, expiresIn: number) { return guardDatabase(() => this.#inner.upsert(id, payload, expiresIn)); }
    find(id: string) { return guardDatabase(() => this.#inner.find(id)); }
    findByUid(uid: string) { return guardDatabase(() => this.#inner.findByUid(uid)); }
    findByUserCode(userCode: string) { return guardDatabase(() => this.#inner.findByUserCode(userCode)); }
    consume(id: string) { return guardDatabase(() => this.#inner.consume(id)); }
    destroy(id: string) { return guardDatabase(() => this.#inner.destroy(id)); }
    revokeByGrantId(grantId: string) { return guardDatabase(() => this.#inner.revokeByGrantId(grantId)); }
  };
}
