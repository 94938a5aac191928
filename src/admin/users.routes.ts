import type { Account } from '../accounts/account.ts';
import { PROFILE } from './components.ts';
import { type Operation, operationGroup, page, pageOf, pageQuery, pageRequest, ref } from './operation.ts';

// Users: what `postern user ...` and `postern user sessions|logout` do, over the same services.

const user = operationGroup('users', 'users');

const ROLES = {
  type: 'array',
  maxItems: 100,
  items: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9:._-]{0,63}$' },
} as const;
const USER = { user: 'the account: its id, username or email' };

/** An account as the API shows it: an Account never carries its password hash. */
function toUserJson(a: Account) {
  const { id, username, email, emailVerified, profile, roles, disabled, createdAt, updatedAt, lastLoginAt } = a;
  return { id, username, email, emailVerified, profile, roles, disabled, createdAt, updatedAt, lastLoginAt };
}

const list = user.read({
  method: 'get',
  path: '/users',
  operationId: 'listUsers',
  summary: 'List users by username, optionally searching username, email and name',
  query: pageQuery({ search: { type: 'string', minLength: 1, maxLength: 256 } }),
  status: 200,
  response: page('User'),
  async run({ accounts }, { query }) {
    const rows = await accounts.listPage({
      ...pageRequest(query),
      ...(query.search ? { search: query.search } : {}),
    });
    return pageOf(rows, query.limit, (a) => a.username, toUserJson);
  },
});

const create = user.write({
  method: 'post',
  path: '/users',
  operationId: 'createUser',
  summary: 'Create a user',
  idempotent: true,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['username', 'email', 'password'],
    properties: {
      username: { type: 'string', minLength: 1, maxLength: 64 },
      email: { type: 'string', minLength: 3, maxLength: 320 },
      password: { type: 'string', minLength: 1, maxLength: 1024 },
      emailVerified: { type: 'boolean' },
      profile: PROFILE,
      roles: ROLES,
    },
  },
  status: 201,
  response: ref('User'),
  async run({ accounts }, { body }) {
    return toUserJson(await accounts.create(body));
  },
});

const invite = user.write({
  method: 'post',
  path: '/users/invite',
  operationId: 'inviteUser',
  summary:
    'Create a user without a password and email them a 7-day link to choose one (503 mail-disabled when mail is off)',
  idempotent: true,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['email'],
    properties: {
      email: { type: 'string', minLength: 3, maxLength: 320 },
      username: { type: 'string', minLength: 1, maxLength: 64 },
      name: { type: 'string', minLength: 1, maxLength: 256 },
      roles: ROLES,
    },
  },
  status: 201,
  response: {
    type: 'object',
    required: ['user', 'linkExpiresAt'],
    properties: { user: ref('User'), linkExpiresAt: { type: 'string', format: 'date-time' } },
  },
  async run({ recovery }, { body }) {
    const { account, expiresAt } = await recovery.invite(body);
    return { user: toUserJson(account), linkExpiresAt: expiresAt.toISOString() };
  },
});

const show = user.read({
  method: 'get',
  path: '/users/{user}',
  operationId: 'getUser',
  summary: 'Show one user',
  params: USER,
  status: 200,
  response: ref('User'),
  run: async ({ accounts }, { params }) => toUserJson(await accounts.get(params.user!)),
});

const update = user.write({
  method: 'patch',
  path: '/users/{user}',
  operationId: 'updateUser',
  summary: "Change a user's profile, roles or email verification (what is left out stays)",
  idempotent: true,
  params: USER,
  body: {
    type: 'object',
    additionalProperties: false,
    minProperties: 1,
    properties: { profile: PROFILE, roles: ROLES, emailVerified: { type: 'boolean' } },
  },
  status: 200,
  response: ref('User'),
  run: async ({ accounts }, { params, body }) => toUserJson(await accounts.update(params.user!, body)),
});

function setDisabled(disabled: boolean): Operation {
  const verb = disabled ? 'disable' : 'enable';
  return user.write({
    method: 'post',
    path: `/users/{user}/${verb}`,
    operationId: `${verb}User`,
    summary: disabled ? 'Stop a user from signing in; ends their sessions and grants' : 'Let a user sign in again',
    idempotent: true,
    params: USER,
    status: 200,
    response: ref('User'),
    run: async ({ accounts }, { params }) => toUserJson((await accounts.setDisabled(params.user!, disabled)).account),
  });
}

const unlock = user.write({
  method: 'post',
  path: '/users/{user}/unlock',
  operationId: 'unlockUser',
  summary: "Clear a user's sign-in lockout and failure counters",
  idempotent: true,
  params: USER,
  status: 200,
  response: { type: 'object', properties: { user: ref('User'), cleared: { type: 'integer' } } },
  async run({ accounts }, { params }) {
    const { account, cleared } = await accounts.unlock(params.user!);
    return { user: toUserJson(account), cleared };
  },
});

const resetMfa = user.write({
  method: 'post',
  path: '/users/{user}/mfa/reset',
  operationId: 'resetUserMfa',
  summary:
    "Remove a user's authenticator app, recovery codes and passkeys (postern user mfa reset); the owner is mailed",
  idempotent: true,
  params: USER,
  status: 200,
  response: { type: 'object', properties: { user: ref('User'), removed: { type: 'integer' } } },
  async run({ accounts, mfa }, { params, caller }) {
    const account = await accounts.get(params.user!);
    const { removed } = await mfa.reset(account.id, { by: caller.accountId ?? caller.clientId });
    return { user: toUserJson(account), removed };
  },
});

const setPassword = user.write({
  method: 'post',
  path: '/users/{user}/password',
  operationId: 'setUserPassword',
  summary: "Set a user's password; ends their sessions and grants",
  idempotent: true,
  params: USER,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['password'],
    properties: { password: { type: 'string', minLength: 1, maxLength: 1024 } },
  },
  status: 200,
  response: ref('User'),
  run: async ({ accounts }, { params, body }) =>
    toUserJson((await accounts.setPassword(params.user!, body.password)).account),
});

const sessions = user.read({
  method: 'get',
  path: '/users/{user}/sessions',
  operationId: 'listUserSessions',
  summary: "A user's sign-in sessions and grants",
  params: USER,
  status: 200,
  response: {
    type: 'object',
    properties: {
      sessions: { type: 'array', items: { type: 'object' } },
      grants: { type: 'array', items: { type: 'object' } },
    },
  },
  run: async ({ accounts, sessions }, { params }) => sessions.list((await accounts.get(params.user!)).id),
});

const logout = user.write({
  method: 'post',
  path: '/users/{user}/logout',
  operationId: 'logoutUser',
  summary: "End a user's sessions and revoke their grants (or only one client's)",
  idempotent: true,
  params: USER,
  body: { type: 'object', additionalProperties: false, properties: { clientId: { type: 'string', minLength: 1 } } },
  status: 200,
  response: {
    type: 'object',
    properties: {
      sessions: { type: 'integer' },
      grants: { type: 'integer' },
      notified: { type: 'array', items: { type: 'string' } },
      deliveries: { type: 'array', items: { type: 'object' } },
    },
  },
  async run({ accounts, sessions }, { params, body }) {
    const account = await accounts.get(params.user!);
    const clientId = body?.clientId as string | undefined;
    return sessions.logout(account.id, { ...(clientId ? { clientId } : {}), reason: 'admin logout' });
  },
});

export const userOperations: readonly Operation[] = [
  list,
  create,
  invite,
  show,
  update,
  setDisabled(true),
  setDisabled(false),
  unlock,
  resetMfa,
  setPassword,
  sessions,
  logout,
];
