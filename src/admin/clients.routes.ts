import type { ClientChanges, NewClient } from '../clients/client.service.ts';
import { GRANT_TYPES, PKCE_POLICIES, RESPONSE_TYPES, SECRET_AUTH_METHODS } from '../clients/client-metadata.ts';
import { toClientView } from '../clients/client-view.ts';
import { ACCESS_TOKEN_CLAIMS } from '../clients/resource-server.ts';
import { invalid, PosternError } from '../shared/errors.ts';
import { adminResourceIdentifier } from './admin-resource.ts';
import { type Operation, operationGroup, page, pageOf, pageQuery, pageRequest, ref } from './operation.ts';

// Clients and resource servers: what `postern client ...` and `postern resource ...` do.

const client = operationGroup('clients', 'clients');
const resourceServer = operationGroup('resource servers', 'clients');

const uris = { type: 'array', maxItems: 50, items: { type: 'string', format: 'uri', maxLength: 2048 } } as const;
const seconds = { type: 'integer', minimum: 60 } as const;

/** What may change after creation (ClientChanges): also what creation takes, but the id, kind and secret. */
const CHANGEABLE = {
  grantTypes: { type: 'array', minItems: 1, items: { enum: [...GRANT_TYPES] } },
  redirectUris: uris,
  postLogoutRedirectUris: uris,
  scope: { type: 'string', maxLength: 2048, description: 'OpenID Connect scopes and API scopes, space-separated' },
  name: { type: 'string', maxLength: 256 },
  firstParty: { type: 'boolean' },
  resources: uris,
  introspects: uris,
  refreshRotation: { enum: ['always', 'never'] },
  refreshIdleSeconds: seconds,
  refreshAbsoluteSeconds: seconds,
  backchannelLogoutUri: { type: 'string', format: 'uri', maxLength: 2048 },
  pkce: { enum: [...PKCE_POLICIES] },
  responseTypes: { type: 'array', items: { enum: [...RESPONSE_TYPES] } },
  roles: { type: 'array', items: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9:._-]{0,63}$' } },
  requireMfa: { type: 'boolean', description: 'every sign-in at this client needs a second factor' },
} as const;

/** `introspects` is the API's word for what the domain calls resourceServerFor. */
function fromBody<T extends Record<string, unknown>>(body: T): T {
  const { introspects, ...rest } = body;
  return (introspects === undefined ? rest : { ...rest, resourceServerFor: introspects }) as unknown as T;
}

const CLIENT = { clientId: 'the client_id' };

const list = client.read({
  method: 'get',
  path: '/clients',
  operationId: 'listClients',
  summary: 'List clients by client id',
  query: pageQuery(),
  status: 200,
  response: page('Client'),
  async run({ clients }, { query }) {
    const rows = await clients.listPage(pageRequest(query));
    return pageOf(rows, query.limit, (c) => c.clientId, toClientView);
  },
});

const create = client.write({
  method: 'post',
  path: '/clients',
  operationId: 'createClient',
  summary: 'Register a client; a generated secret is in this answer only',
  idempotent: true,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['clientId', 'grantTypes'],
    properties: {
      clientId: { type: 'string', minLength: 1, maxLength: 128 },
      public: { type: 'boolean' },
      authMethod: { enum: [...SECRET_AUTH_METHODS] },
      jwksUri: { type: 'string', format: 'uri', maxLength: 2048 },
      ...CHANGEABLE,
    },
  },
  status: 201,
  response: ref('Client'),
  async run({ clients }, { body }) {
    const { client, secret } = await clients.create(fromBody(body) as NewClient);
    return { ...toClientView(client), ...(secret !== undefined ? { clientSecret: secret } : {}) };
  },
});

const show = client.read({
  method: 'get',
  path: '/clients/{clientId}',
  operationId: 'getClient',
  summary: 'Show one client (never its secret)',
  params: CLIENT,
  status: 200,
  response: ref('Client'),
  async run({ clients }, { params }) {
    const client = await clients.find(params.clientId!);
    if (!client) throw notFound('client', params.clientId!);
    return toClientView(client);
  },
});

const update = client.write({
  method: 'patch',
  path: '/clients/{clientId}',
  operationId: 'updateClient',
  summary: 'Change a client (checked as a creation is); what is left out stays',
  idempotent: true,
  params: CLIENT,
  body: { type: 'object', additionalProperties: false, minProperties: 1, properties: CHANGEABLE },
  status: 200,
  response: ref('Client'),
  run: async ({ clients }, { params, body }) =>
    toClientView(await clients.update(params.clientId!, fromBody(body) as ClientChanges)),
});

const rotateSecret = client.write({
  method: 'post',
  path: '/clients/{clientId}/secret',
  operationId: 'rotateClientSecret',
  summary: 'Generate a new client secret (in this answer only); the old one stops working at once',
  idempotent: true,
  params: CLIENT,
  status: 200,
  response: ref('Client'),
  async run({ clients }, { params }) {
    const { client, secret } = await clients.rotateSecret(params.clientId!);
    return { ...toClientView(client), clientSecret: secret };
  },
});

const remove = client.write({
  method: 'delete',
  path: '/clients/{clientId}',
  operationId: 'deleteClient',
  summary: 'Delete a client',
  params: CLIENT,
  status: 204,
  run: ({ clients }, { params }) => clients.delete(params.clientId!),
});

const notFound = (what: string, id: string) => new PosternError('ERR_NOT_FOUND', `no ${what} "${id}"`);

const RESOURCE = { identifier: 'the resource indicator (URL-encoded)' };

const listResources = resourceServer.read({
  method: 'get',
  path: '/resource-servers',
  operationId: 'listResourceServers',
  summary: 'List resource servers (APIs that accept access tokens)',
  status: 200,
  response: { type: 'object', properties: { items: { type: 'array', items: ref('ResourceServer') } } },
  run: async ({ resources }) => ({ items: await resources.list() }),
});

const createResource = resourceServer.write({
  method: 'post',
  path: '/resource-servers',
  operationId: 'createResourceServer',
  summary: 'Register a resource server',
  idempotent: true,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['identifier', 'scopes'],
    properties: {
      identifier: { type: 'string', format: 'uri', maxLength: 2048 },
      scopes: { type: 'array', minItems: 1, maxItems: 200, items: { type: 'string', minLength: 1, maxLength: 128 } },
      accessTokenTtl: { type: 'integer', minimum: 60, maximum: 86400 },
      tokenFormat: { enum: ['jwt', 'opaque'] },
      signingAlg: { type: 'string' },
      claims: { type: 'array', items: { enum: [...ACCESS_TOKEN_CLAIMS] } },
    },
  },
  status: 201,
  response: ref('ResourceServer'),
  run: ({ resources }, { body }) => resources.create(body),
});

const showResource = resourceServer.read({
  method: 'get',
  path: '/resource-servers/{identifier}',
  operationId: 'getResourceServer',
  summary: 'Show one resource server',
  params: RESOURCE,
  status: 200,
  response: ref('ResourceServer'),
  async run({ resources }, { params }) {
    const rs = await resources.find(params.identifier!);
    if (!rs) throw notFound('resource server', params.identifier!);
    return rs;
  },
});

const deleteResource = resourceServer.write({
  method: 'delete',
  path: '/resource-servers/{identifier}',
  operationId: 'deleteResourceServer',
  summary: 'Delete a resource server (not the admin API itself)',
  params: RESOURCE,
  status: 204,
  async run({ resources, issuer }, { params }) {
    // Deleting the API one is calling would lock every caller out (it is made again at start).
    if (params.identifier === adminResourceIdentifier(issuer))
      invalid('the admin API resource server cannot be deleted', 'identifier');
    await resources.delete(params.identifier!);
  },
});

export const clientOperations: readonly Operation[] = [
  list,
  create,
  show,
  update,
  rotateSecret,
  remove,
  listResources,
  createResource,
  showResource,
  deleteResource,
];
