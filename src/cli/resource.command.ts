import { ACCESS_TOKEN_CLAIMS, type ResourceServer } from '../clients/resource-server.ts';
import { PosternError } from '../shared/errors.ts';
import { commaList, UsageError } from './args.ts';
import { defineCommand, JSON_OPTION } from './command.ts';
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

function readTtl(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw)) throw new UsageError(`--token-ttl must be a whole number of seconds (got "${raw}")`);
  return Number(raw);
}

function readFormat(raw: string | undefined): 'jwt' | 'opaque' | undefined {
  if (raw !== undefined && raw !== 'jwt' && raw !== 'opaque')
    throw new UsageError(`--format must be jwt or opaque (got "${raw}")`);
  return raw;
}

const create = defineCommand({
  name: 'resource create',
  summary: 'register a resource server (an API that accepts access tokens)',
  options: {
    id: {
      type: 'string',
      value: 'URI',
      required: true,
      description:
        'the resource indicator (RFC 8707): an absolute URI, e.g. https://api.example.com; it is the "aud" of the tokens',
    },
    scope: { type: 'string', value: '"S S..."', required: true, description: 'the scopes this API understands' },
    'token-ttl': {
      type: 'string',
      value: 'S',
      description: 'access token lifetime in seconds (default 3600, 60 to 86400)',
    },
    format: {
      type: 'string',
      value: 'F',
      description: 'jwt (default; RFC 9068, verified offline with JWKS) or opaque (introspection)',
    },
    alg: { type: 'string', value: 'A', description: 'JWT signing algorithm (default ES256)' },
    claims: {
      type: 'string',
      value: 'C[,C...]',
      multiple: true,
      description: `user claims the access tokens carry, for APIs that authorize by them (${ACCESS_TOKEN_CLAIMS.join(', ')}); default none. roles: the user's roles, or a service's own (client create --role)`,
    },
    json: JSON_OPTION,
  },
  async run({ values }, ctx) {
    const identifier = values.id;
    const scopes = values.scope.trim().split(/\s+/);
    const ttl = readTtl(values['token-ttl']);
    const format = readFormat(values.format);
    const alg = values.alg;
    const claims = commaList(values.claims);
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
      values.json
        ? toJson(rs)
        : `created resource server ${rs.identifier} (${rs.tokenFormat}, scopes: ${rs.scopes.join(' ')})`,
    );
  },
});

const list = defineCommand({
  name: 'resource list',
  summary: 'list resource servers',
  options: { json: JSON_OPTION },
  async run({ values }, ctx) {
    const all = await withServices(ctx, (c) => c.resources.list());
    if (values.json) return ctx.io.out(toJson(all));
    if (all.length === 0) return ctx.io.out('no resource servers');
    ctx.io.out(
      table(
        ['RESOURCE', 'FORMAT', 'TTL', 'SCOPES'],
        all.map((r) => [r.identifier, r.tokenFormat, String(r.accessTokenTtl), r.scopes.join(' ')]),
      ),
    );
  },
});

const RESOURCE = { name: 'URI', description: 'the resource indicator the API was created with' } as const;

const show = defineCommand({
  name: 'resource show',
  summary: 'show one resource server',
  options: { json: JSON_OPTION },
  positionals: [RESOURCE],
  async run({ values, positionals: [id] }, ctx) {
    const rs = await withServices(ctx, (c) => c.resources.find(id));
    if (!rs) throw new PosternError('ERR_NOT_FOUND', `no resource server "${id}"`);
    ctx.io.out(values.json ? toJson(rs) : describe(rs));
  },
});

const remove = defineCommand({
  name: 'resource delete',
  summary: 'delete a resource server (clients can no longer get tokens for it)',
  options: { json: { type: 'boolean', description: 'print {"deleted": URI}' } },
  positionals: [RESOURCE],
  async run({ values, positionals: [id] }, ctx) {
    await withServices(ctx, (c) => c.resources.delete(id));
    ctx.io.out(values.json ? toJson({ deleted: id }) : `deleted resource server ${id}`);
  },
});

export const resourceCommands: readonly Command[] = [create, list, show, remove];
