import { ACCESS_TOKEN_CLAIMS, type ResourceServer } from '../clients/resource-server.ts';
import { PosternError } from '../shared/errors.ts';
import { commaList, flag, optionalString, requiredString, UsageError, type Values } from './args.ts';
import { fields, isoOrNever, table, toJson } from './output.ts';
import { withServices, type Command } from './runtime.ts';

function describe(rs: ResourceServer): string {
  return fields([
    ['resource', rs.identifier],
    ['scopes', rs.scopes.join(' ')],
    ['token format', rs.tokenFormat === 'jwt' ? `jwt (RFC 9068, signed ${rs.signingAlg})` : 'opaque (introspection)'],
    ['token ttl', `${rs.accessTokenTtl} s`],
    ['token claims', rs.claims.length ? rs.claims.join(', ') : '- (iss sub aud client_id scope iat exp jti only)'],
    ['created', isoOrNever(rs.createdAt)],
  ]);
}

function readTtl(values: Values): number | undefined {
  const raw = optionalString(values, 'token-ttl');
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw)) throw new UsageError(`--token-ttl must be a whole number of seconds (got "${raw}")`);
  return Number(raw);
}

function readFormat(values: Values): 'jwt' | 'opaque' | undefined {
  const raw = optionalString(values, 'format');
  if (raw !== undefined && raw !== 'jwt' && raw !== 'opaque')
    throw new UsageError(`--format must be jwt or opaque (got "${raw}")`);
  return raw;
}

const create: Command = {
  name: 'resource create',
  summary: 'register a resource server (an API that accepts access tokens)',
  usage: `Usage: postern resource create --id URI --scope "S S..." [--token-ttl SECONDS] [--format jwt|opaque] [--alg A] [--claims C[,C...]] [--json]

  --id URI            the resource indicator (RFC 8707): an absolute URI, e.g. https://api.example.com;
                      it is the "aud" of the tokens
  --scope "S S..."    the scopes this API understands
  --token-ttl S       access token lifetime in seconds (default 3600, 60 to 86400)
  --format F          jwt (default; RFC 9068, verified offline with JWKS) or opaque (introspection)
  --alg A             JWT signing algorithm (default ES256)
  --claims C[,C...]   user claims the access tokens carry, for APIs that authorize by them
                      (${ACCESS_TOKEN_CLAIMS.join(', ')}); repeatable; default none.
                      roles: the user's roles, or a service's own (client create --role)`,
  options: {
    id: { type: 'string' },
    scope: { type: 'string' },
    'token-ttl': { type: 'string' },
    format: { type: 'string' },
    alg: { type: 'string' },
    claims: { type: 'string', multiple: true },
    json: { type: 'boolean' },
  },
  async run({ values }, ctx) {
    const identifier = requiredString(create, values, 'id');
    const scopes = requiredString(create, values, 'scope').trim().split(/\s+/);
    const ttl = readTtl(values);
    const format = readFormat(values);
    const alg = optionalString(values, 'alg');
    const claims = commaList(values, 'claims');
    const rs = await withServices(ctx, (c) =>
      c.resources.create({
        identifier,
        scopes,
        ...(ttl !== undefined ? { accessTokenTtl: ttl } : {}),
        ...(format ? { tokenFormat: format } : {}),
        ...(alg ? { signingAlg: alg } : {}),
        ...(claims.length ? { claims } : {}),
      }),
    );
    ctx.io.out(
      flag(values, 'json')
        ? toJson(rs)
        : `created resource server ${rs.identifier} (${rs.tokenFormat}, scopes: ${rs.scopes.join(' ')})`,
    );
  },
};

const list: Command = {
  name: 'resource list',
  summary: 'list resource servers',
  usage: 'Usage: postern resource list [--json]',
  options: { json: { type: 'boolean' } },
  async run({ values }, ctx) {
    const all = await withServices(ctx, (c) => c.resources.list());
    if (flag(values, 'json')) return ctx.io.out(toJson(all));
    if (all.length === 0) return ctx.io.out('no resource servers');
    ctx.io.out(
      table(
        ['RESOURCE', 'FORMAT', 'TTL', 'SCOPES'],
        all.map((r) => [r.identifier, r.tokenFormat, String(r.accessTokenTtl), r.scopes.join(' ')]),
      ),
    );
  },
};

const show: Command = {
  name: 'resource show',
  summary: 'show one resource server',
  usage: 'Usage: postern resource show URI [--json]',
  options: { json: { type: 'boolean' } },
  positionals: ['URI'],
  async run({ values, positionals }, ctx) {
    const id = positionals[0]!;
    const rs = await withServices(ctx, (c) => c.resources.find(id));
    if (!rs) throw new PosternError('ERR_NOT_FOUND', `no resource server "${id}"`);
    ctx.io.out(flag(values, 'json') ? toJson(rs) : describe(rs));
  },
};

const remove: Command = {
  name: 'resource delete',
  summary: 'delete a resource server (clients can no longer get tokens for it)',
  usage: 'Usage: postern resource delete URI',
  options: {},
  positionals: ['URI'],
  async run({ positionals }, ctx) {
    await withServices(ctx, (c) => c.resources.delete(positionals[0]!));
    ctx.io.out(`deleted resource server ${positionals[0]}`);
  },
};

export const resourceCommands: readonly Command[] = [create, list, show, remove];
