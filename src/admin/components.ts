import { AUDIT_EVENT_TYPES } from '../audit/audit-event.ts';
import type { JsonSchema } from './schema.ts';

// What the API answers with: the component schemas of the OpenAPI document.

const strings = { type: 'array', items: { type: 'string' } } as const;
const time = { type: 'string', format: 'date-time' } as const;
const timeOrNull = { type: ['string', 'null'], format: 'date-time' } as const;

export const PROFILE = {
  type: 'object',
  additionalProperties: false,
  properties: {
    name: { type: 'string', maxLength: 256 },
    givenName: { type: 'string', maxLength: 256 },
    familyName: { type: 'string', maxLength: 256 },
  },
} as const;

export const COMPONENTS: Readonly<Record<string, JsonSchema>> = {
  User: {
    type: 'object',
    properties: {
      id: { type: 'string', format: 'uuid' },
      username: { type: 'string' },
      email: { type: 'string' },
      emailVerified: { type: 'boolean' },
      profile: PROFILE,
      roles: strings,
      disabled: { type: 'boolean' },
      createdAt: time,
      updatedAt: time,
      lastLoginAt: timeOrNull,
    },
  },
  Client: {
    type: 'object',
    description: 'A client as registered; never its secret (clientSecret only when one was just generated)',
    properties: {
      clientId: { type: 'string' },
      clientSecret: { type: 'string', description: 'only in the answer that generated it' },
      name: { type: ['string', 'null'] },
      type: { enum: ['confidential', 'public'] },
      tokenEndpointAuthMethod: { type: 'string' },
      grantTypes: strings,
      responseTypes: strings,
      pkce: { enum: ['required', 'optional'] },
      roles: strings,
      redirectUris: strings,
      postLogoutRedirectUris: strings,
      scope: { type: ['string', 'null'] },
      oidcScopes: strings,
      apiScopes: strings,
      resources: strings,
      introspects: strings,
      jwksUri: { type: ['string', 'null'] },
      firstParty: { type: 'boolean' },
      requireMfa: { type: 'boolean', description: 'every sign-in at this client needs a second factor' },
      createdAt: time,
      updatedAt: time,
    },
  },
  ResourceServer: {
    type: 'object',
    properties: {
      identifier: { type: 'string' },
      scopes: strings,
      accessTokenTtl: { type: 'integer' },
      tokenFormat: { enum: ['jwt', 'opaque'] },
      signingAlg: { type: 'string' },
      claims: strings,
      createdAt: time,
      updatedAt: time,
    },
  },
  SigningKey: {
    type: 'object',
    properties: {
      kid: { type: 'string' },
      alg: { type: 'string' },
      state: { enum: ['next', 'current', 'retired'] },
      createdAt: time,
      activatedAt: timeOrNull,
      retireAfter: timeOrNull,
    },
  },
  AuditEvent: {
    type: 'object',
    properties: {
      id: { type: 'string' },
      at: time,
      type: { enum: [...AUDIT_EVENT_TYPES] },
      accountId: { type: ['string', 'null'] },
      clientId: { type: ['string', 'null'] },
      ip: { type: ['string', 'null'] },
      userAgent: { type: ['string', 'null'] },
      details: { type: 'object', description: 'details.actor: who made the change through this API' },
    },
  },
  Problem: {
    type: 'object',
    description: 'RFC 9457 problem details; `type` is stable per error code',
    required: ['type', 'title', 'status'],
    properties: {
      type: { type: 'string', format: 'uri' },
      title: { type: 'string' },
      status: { type: 'integer' },
      detail: { type: 'string' },
      errors: {
        type: 'array',
        description: 'the fields at fault',
        items: {
          type: 'object',
          required: ['field', 'detail'],
          properties: { field: { type: 'string' }, detail: { type: 'string' } },
        },
      },
    },
  },
};
