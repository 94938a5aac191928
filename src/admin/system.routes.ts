import { AUDIT_EVENT_TYPES } from '../audit/audit-event.ts';
import { toKeyView } from '../keys/key-view.ts';
import { invalid } from '../shared/errors.ts';
import { CURSOR, decodeCursor, LIMIT, page, pageOf, ref, type Operation } from './operation.ts';

// Signing keys and the audit log: what `postern keys list|rotate|revoke` and `postern audit` do.

const listKeys: Operation = {
  method: 'get',
  path: '/signing-keys',
  operationId: 'listSigningKeys',
  summary: 'List the signing keys (next, current, retired); private keys are never shown',
  tag: 'signing keys',
  area: 'keys',
  access: 'read',
  status: 200,
  response: { type: 'object', properties: { items: { type: 'array', items: ref('SigningKey') } } },
  run: async ({ keys }) => ({ items: (await keys.list()).map(toKeyView) }),
};

const rotate: Operation = {
  method: 'post',
  path: '/signing-keys/rotate',
  operationId: 'rotateSigningKeys',
  summary: 'Rotate now: the next key signs, the current one retires (still published until its tokens expire)',
  tag: 'signing keys',
  area: 'keys',
  access: 'write',
  idempotent: true,
  body: {
    type: 'object',
    additionalProperties: false,
    properties: {
      alg: { type: 'string', description: 'one algorithm only (default: all)' },
      force: { type: 'boolean', description: 'even if the next key was published too recently for every cache' },
    },
  },
  status: 200,
  response: {
    type: 'object',
    properties: {
      items: {
        type: 'array',
        items: {
          type: 'object',
          properties: { alg: { type: 'string' }, retired: { type: 'string' }, activated: { type: 'string' } },
        },
      },
    },
  },
  async run({ keys, keysChanged }, { body }) {
    const items = await keys.rotate({ ...(body.alg ? { alg: body.alg } : {}), force: body.force === true });
    await keysChanged();
    return { items };
  },
};

const revoke: Operation = {
  method: 'post',
  path: '/signing-keys/{kid}/revoke',
  operationId: 'revokeSigningKey',
  summary: 'Withdraw a compromised key at once; tokens it signed stop verifying',
  tag: 'signing keys',
  area: 'keys',
  access: 'write',
  params: { kid: 'the key id' },
  status: 200,
  response: {
    type: 'object',
    properties: { revoked: ref('SigningKey'), activated: { type: ['string', 'null'] } },
  },
  async run({ keys, keysChanged }, { params }) {
    const { revoked, activated } = await keys.revoke(params.kid!);
    await keysChanged();
    return { revoked: toKeyView(revoked), activated: activated ?? null };
  },
};

const audit: Operation = {
  method: 'get',
  path: '/audit-events',
  operationId: 'listAuditEvents',
  summary: 'Read the audit log, newest first',
  tag: 'audit log',
  area: 'audit',
  access: 'read',
  query: {
    type: 'object',
    additionalProperties: false,
    properties: {
      account: { type: 'string', minLength: 1, description: 'events of one account (id, username or email)' },
      client: { type: 'string', minLength: 1, maxLength: 128, description: 'events of one client' },
      type: { enum: [...AUDIT_EVENT_TYPES] },
      since: { type: 'string', format: 'date-time', description: 'at or after' },
      until: { type: 'string', format: 'date-time', description: 'before' },
      limit: LIMIT,
      cursor: CURSOR,
    },
  },
  status: 200,
  response: page('AuditEvent'),
  async run({ accounts, audit }, { query }) {
    const before = decodeCursor(query.cursor);
    if (before !== undefined && !/^\d{1,19}$/.test(before)) invalid('is not a cursor this API gave', 'cursor');
    const account = query.account === undefined ? undefined : await accounts.get(query.account);
    const rows = await audit.query({
      ...(account ? { accountId: account.id } : {}),
      ...(query.client ? { clientId: query.client } : {}),
      ...(query.type ? { type: query.type } : {}),
      ...(query.since ? { since: new Date(query.since) } : {}),
      ...(query.until ? { until: new Date(query.until) } : {}),
      ...(before !== undefined ? { beforeId: before } : {}),
      paged: true,
      limit: query.limit + 1,
    });
    return pageOf(
      rows,
      query.limit,
      (e) => e.id,
      (e) => e,
    );
  },
};

export const systemOperations: readonly Operation[] = [listKeys, rotate, revoke, audit];
