import { ADMIN_SCOPES, scopesAllowing } from './admin-resource.ts';
import { COMPONENTS } from './components.ts';
import type { Operation } from './operation.ts';

// The OpenAPI 3.1 document, built from the operations the router serves: the same paths, the
// same JSON Schemas the requests are checked with. Nothing to keep in step by hand.

const problem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
});

const IDEMPOTENCY_KEY = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description: 'A retry with the same key and body gets the first answer (kept 24 h by default)',
  schema: { type: 'string', minLength: 1, maxLength: 255 },
};

function parameters(op: Operation) {
  const path = Object.entries(op.params ?? {}).map(([name, description]) => ({
    name,
    in: 'path',
    required: true,
    description,
    schema: { type: 'string' },
  }));
  const properties = (op.query?.properties ?? {}) as Record<string, Record<string, unknown>>;
  const query = Object.entries(properties).map(([name, schema]) => ({
    name,
    in: 'query',
    required: false,
    ...(typeof schema.description === 'string' ? { description: schema.description } : {}),
    schema,
  }));
  return [...path, ...query, ...(op.idempotent ? [IDEMPOTENCY_KEY] : [])];
}

function describe(op: Operation) {
  const scopes = scopesAllowing(op.area, op.access);
  const success =
    op.status === 204
      ? { description: 'Done' }
      : { description: 'OK', content: { 'application/json': { schema: op.response ?? {} } } };
  return {
    operationId: op.operationId,
    summary: op.summary,
    description: `Any one of these scopes allows it: ${scopes.join(', ')}.`,
    tags: [op.tag],
    parameters: parameters(op),
    ...(op.body ? { requestBody: { required: true, content: { 'application/json': { schema: op.body } } } } : {}),
    security: scopes.map((scope) => ({ bearer: [scope] })),
    responses: {
      [String(op.status)]: success,
      '400': problem('Invalid input: `errors` names each field'),
      '401': problem('No valid access token for this API'),
      '403': problem('The token lacks the scope, or the person the postern:admin role'),
      ...(op.params ? { '404': problem('Not found') } : {}),
      ...(op.idempotent ? { '409': problem('Conflict, or the same Idempotency-Key still in progress') } : {}),
      ...(op.idempotent ? { '422': problem('The same Idempotency-Key with another request') } : {}),
      '429': problem('Too many requests from this client: see Retry-After'),
    },
  };
}

export function openApiDocument(operations: readonly Operation[], issuer: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of operations) paths[op.path] = { ...paths[op.path], [op.method]: describe(op) };
  return {
    openapi: '3.1.0',
    info: {
      title: 'Postern admin API',
      version: '1',
      description: `Users, clients, resource servers, signing keys and the audit log. Call it with an access token from ${issuer}/token for the resource ${issuer}/admin.`,
    },
    servers: [{ url: `${issuer}/admin/v1` }],
    paths,
    components: {
      schemas: COMPONENTS,
      securitySchemes: {
        bearer: {
          type: 'oauth2',
          description: 'RFC 9068 JWT access tokens from Postern itself, for the resource `<issuer>/admin`',
          flows: {
            clientCredentials: {
              tokenUrl: `${issuer}/token`,
              scopes: Object.fromEntries(ADMIN_SCOPES.map((s) => [s, scopeDescription(s)])),
            },
            authorizationCode: {
              authorizationUrl: `${issuer}/auth`,
              tokenUrl: `${issuer}/token`,
              scopes: Object.fromEntries(ADMIN_SCOPES.map((s) => [s, scopeDescription(s)])),
            },
          },
        },
      },
    },
  };
}

function scopeDescription(scope: (typeof ADMIN_SCOPES)[number]): string {
  return {
    'admin:read': 'read everything',
    'admin:write': 'read and change everything',
    'admin:users': 'read and change users',
    'admin:clients': 'read and change clients and resource servers',
  }[scope];
}
