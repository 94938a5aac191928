import type { Kysely } from 'kysely';

import type { AuditLog } from '../audit/audit-log.ts';
import type { Database } from '../db/tables.ts';
import { invalid, PosternError } from '../shared/errors.ts';
import type { TtlCache } from '../shared/ttl-cache.ts';
import { ACCESS_TOKEN_CLAIMS, type ResourceServer } from './resource-server.ts';
import {
  deleteResourceServer,
  findResourceServer,
  insertResourceServer,
  insertResourceServerIfMissing,
  listResourceServers,
} from './resource-server.repository.ts';

export interface NewResourceServer {
  readonly identifier: string;
  readonly scopes: readonly string[];
  readonly accessTokenTtl?: number;
  readonly tokenFormat?: 'jwt' | 'opaque';
  readonly signingAlg?: string;
  /** User claims its access tokens carry (default none). */
  readonly claims?: readonly string[];
}

export interface ResourceServerService {
  create(input: NewResourceServer): Promise<ResourceServer>;
  /**
   * Creates it unless it exists, as many instances starting at once may all ask (one insert
   * wins, the others change nothing); an existing one is left as its operator set it.
   */
  ensure(input: NewResourceServer): Promise<void>;
  /** Cached for a few seconds (POSTERN_CACHE_SECONDS): this is on every token request. */
  find(identifier: string): Promise<ResourceServer | undefined>;
  list(): Promise<ResourceServer[]>;
  delete(identifier: string): Promise<void>;
}

const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/; // RFC 6749 §3.3
/** The longest access-token lifetime a resource server may set (keys stay published that long). */
export const MAX_RESOURCE_TOKEN_TTL = 86400;

/** RFC 8707 §2: an absolute URI without a fragment. */
export function checkResourceIndicator(identifier: string): void {
  const url = URL.parse(identifier);
  if (!url || identifier.includes('#') || !/^[a-z][a-z0-9+.-]*:/i.test(identifier)) {
    invalid(`resource "${identifier}" must be an absolute URI without a fragment (e.g. https://api.example.com)`);
  }
}

function checkClaims(claims: readonly string[]): string[] {
  const unique = [...new Set(claims)];
  for (const c of unique) {
    if (!(ACCESS_TOKEN_CLAIMS as readonly string[]).includes(c))
      invalid(`--claims: "${c}" is not a claim access tokens can carry (allowed: ${ACCESS_TOKEN_CLAIMS.join(', ')})`);
  }
  return unique;
}

/** A new resource server's settings, checked, with the defaults filled in. */
function checkNewResourceServer(
  input: NewResourceServer,
  signingAlgs: readonly string[],
): Omit<ResourceServer, 'createdAt' | 'updatedAt'> {
  checkResourceIndicator(input.identifier);
  const scopes = [...new Set(input.scopes)];
  if (scopes.length === 0) invalid('a resource server needs at least one scope (--scope "orders:read orders:write")');
  for (const s of scopes) if (!SCOPE_TOKEN.test(s)) invalid(`"${s}" is not a valid scope`);
  if (['openid', 'offline_access', 'profile', 'email', 'roles'].some((s) => scopes.includes(s))) {
    invalid('API scopes must not reuse the OpenID Connect scopes (openid, offline_access, profile, email, roles)');
  }
  const ttl = input.accessTokenTtl ?? 3600;
  if (!Number.isInteger(ttl) || ttl < 60 || ttl > MAX_RESOURCE_TOKEN_TTL)
    invalid(`--token-ttl must be a whole number of seconds from 60 to ${MAX_RESOURCE_TOKEN_TTL}`);
  const alg = input.signingAlg ?? 'ES256';
  if (!signingAlgs.includes(alg))
    invalid(`--alg must be one of the signing algorithms in use: ${signingAlgs.join(', ')}`);
  const claims = checkClaims(input.claims ?? []);
  return {
    identifier: input.identifier,
    scopes,
    accessTokenTtl: ttl,
    tokenFormat: input.tokenFormat ?? 'jwt',
    signingAlg: alg,
    claims,
  };
}

export function createResourceServerService(deps: {
  db: Kysely<Database>;
  audit: AuditLog;
  cache: TtlCache<ResourceServer | undefined>;
  signingAlgs: readonly string[];
}): ResourceServerService {
  const { db, audit, cache } = deps;
  return {
    async create(input) {
      const rs = checkNewResourceServer(input, deps.signingAlgs);
      if (await findResourceServer(db, input.identifier))
        throw new PosternError('ERR_DUPLICATE', `a resource server "${input.identifier}" already exists`);
      const created = await insertResourceServer(db, rs);
      const { scopes, claims } = rs;
      cache.delete(created.identifier);
      audit.record({
        type: 'resource.created',
        details: { resource: created.identifier, scopes, format: created.tokenFormat, claims },
      });
      return created;
    },
    async ensure(input) {
      const rs = checkNewResourceServer(input, deps.signingAlgs);
      if (!(await insertResourceServerIfMissing(db, rs))) return;
      cache.delete(rs.identifier);
      audit.record({
        type: 'resource.created',
        details: { resource: rs.identifier, scopes: rs.scopes, builtIn: true },
      });
    },
    find: (identifier) => cache.get(identifier, () => findResourceServer(db, identifier)),
    list: () => listResourceServers(db),
    async delete(identifier) {
      if (!(await deleteResourceServer(db, identifier)))
        throw new PosternError('ERR_NOT_FOUND', `no resource server "${identifier}"`);
      cache.delete(identifier);
      audit.record({ type: 'resource.deleted', details: { resource: identifier } });
    },
  };
}
