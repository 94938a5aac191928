import type { MfaService } from '../accounts/mfa.service.ts';
import type { AccountService } from '../accounts/account.service.ts';
import type { RecoveryService } from '../accounts/recovery.service.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { ClientService } from '../clients/client.service.ts';
import type { ResourceServerService } from '../clients/resource-server.service.ts';
import type { KeyService } from '../keys/key.service.ts';
import type { LogoutResult, SessionAdmin } from '../oidc/session-admin.ts';
import type { AdminAccess, AdminArea } from './admin-resource.ts';
import type { Caller } from './bearer.ts';
import type { JsonSchema } from './schema.ts';

// One operation of the admin API, declared once: the router serves it from this declaration
// and the OpenAPI document describes it from the same one (openapi.ts), schemas included.

/** The domain services the CLI uses too: the API calls them, never the CLI. */
export interface AdminServices {
  readonly issuer: string;
  readonly accounts: AccountService<LogoutResult>;
  /** Invitations (`postern user invite`). */
  readonly recovery: RecoveryService<LogoutResult>;
  readonly clients: ClientService;
  readonly resources: ResourceServerService;
  readonly keys: KeyService;
  readonly audit: AuditLog;
  readonly sessions: SessionAdmin;
  /** `postern user mfa reset`. */
  readonly mfa: MfaService;
  /** After a key change made here: this instance serves the new keys at once (the others poll). */
  readonly keysChanged: () => Promise<unknown>;
}

export interface OperationInput {
  readonly params: Readonly<Record<string, string>>;
  // Checked against the operation's schemas before `run` sees them.
  // biome-ignore lint/suspicious/noExplicitAny: the schema, not the type system, describes it
  readonly query: any;
  // biome-ignore lint/suspicious/noExplicitAny: as above
  readonly body: any;
  readonly caller: Caller;
}

export interface Operation {
  readonly method: 'get' | 'post' | 'patch' | 'delete';
  /** OpenAPI path template under /admin/v1, e.g. /users/{user}. */
  readonly path: string;
  readonly operationId: string;
  readonly summary: string;
  readonly tag: 'users' | 'clients' | 'resource servers' | 'signing keys' | 'audit log';
  readonly area: AdminArea;
  readonly access: AdminAccess;
  /** Path parameters and what they name. */
  readonly params?: Readonly<Record<string, string>>;
  readonly query?: JsonSchema;
  readonly body?: JsonSchema;
  /** Accepts an Idempotency-Key header (creates and updates). */
  readonly idempotent?: boolean;
  readonly status: 200 | 201 | 204;
  /** A reference to a component schema, or a schema. */
  readonly response?: JsonSchema;
  run(services: AdminServices, input: OperationInput): Promise<unknown>;
}

type Declared = Omit<Operation, 'tag' | 'area' | 'access'>;

/** The tag and area a group of operations shares, declared once, with read or write access. */
export function operationGroup(tag: Operation['tag'], area: AdminArea) {
  return {
    read: (op: Declared): Operation => ({ ...op, tag, area, access: 'read' }),
    write: (op: Declared): Operation => ({ ...op, tag, area, access: 'write' }),
  };
}

export const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });

/** The page envelope of every list: follow nextCursor until it is null. */
export const page = (item: string): JsonSchema => ({
  type: 'object',
  required: ['items', 'nextCursor'],
  properties: { items: { type: 'array', items: ref(item) }, nextCursor: { type: ['string', 'null'] } },
});

export const LIMIT = { type: 'integer', minimum: 1, maximum: 100, default: 50 } as const;
export const CURSOR = {
  type: 'string',
  minLength: 1,
  maxLength: 512,
  description: 'nextCursor of the previous page',
} as const;

/** Opaque to callers: the last key of a page, which the next page starts after. */
export function encodeCursor(key: string | undefined): string | null {
  return key === undefined ? null : Buffer.from(key, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string | undefined): string | undefined {
  return cursor === undefined ? undefined : Buffer.from(cursor, 'base64url').toString('utf8');
}

/** The query of a paged list: `limit`, `cursor` and the list's own filters. */
export function pageQuery(filters: Readonly<Record<string, JsonSchema>> = {}): JsonSchema {
  return { type: 'object', additionalProperties: false, properties: { ...filters, limit: LIMIT, cursor: CURSOR } };
}

/** What a repository's listPage needs for the page a query asks for (one extra row: see pageOf). */
export function pageRequest(query: { limit: number; cursor?: string }): { limit: number; after?: string } {
  const after = decodeCursor(query.cursor);
  return { limit: query.limit + 1, ...(after !== undefined ? { after } : {}) };
}

/** One page of `limit` from `limit + 1` rows: the extra row says whether a next page exists. */
export function pageOf<T, V>(rows: T[], limit: number, key: (row: T) => string, view: (row: T) => V) {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items: items.map(view), nextCursor: rows.length > limit && last ? encodeCursor(key(last)) : null };
}
