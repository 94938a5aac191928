import type { Account, Profile } from '../accounts/account.ts';
import type { AccessRevoked, NewAccount } from '../accounts/account.service.ts';
import type { LogoutResult } from '../oidc/session-admin.ts';
import { PosternError } from '../shared/errors.ts';
import { commaList, exclusive, helpHint, UsageError, type OptionSpec, type OptionSpecs, type Values } from './args.ts';
import { defineCommand, JSON_OPTION, USER_ARGUMENT } from './command.ts';
import { fields, isoOrNever, listOrDash, table, toJson } from './output.ts';
import { withServices, type CliContext, type Command } from './runtime.ts';
import { reportDeliveries } from './session.command.ts';

/** What the CLI shows of an account: an Account never carries its password hash, so all of it. */
export type UserView = Account;

export function toUserView(a: Account): UserView {
  return {
    id: a.id,
    username: a.username,
    email: a.email,
    emailVerified: a.emailVerified,
    profile: { ...a.profile },
    roles: [...a.roles],
    disabled: a.disabled,
    createdAt: a.createdAt,
    updatedAt: a.updatedAt,
    lastLoginAt: a.lastLoginAt,
  };
}

function describeUser(v: UserView): string {
  const name = v.profile.name ?? ([v.profile.givenName, v.profile.familyName].filter(Boolean).join(' ') || '-');
  return fields([
    ['id', v.id],
    ['username', v.username],
    ['email', `${v.email} (${v.emailVerified ? 'verified' : 'not verified'})`],
    ['name', name],
    ['roles', listOrDash(v.roles)],
    ['status', v.disabled ? 'disabled' : 'active'],
    ['created', isoOrNever(v.createdAt)],
    ['last login', isoOrNever(v.lastLoginAt)],
  ]);
}

const passwordOptions = {
  password: {
    type: 'string',
    value: 'P',
    description: 'the password (visible in the process list and shell history)',
  },
  'password-stdin': {
    type: 'boolean',
    description: 'read the password from standard input (one trailing newline is dropped)',
  },
} as const satisfies OptionSpecs;

/** Read before the database is opened, so a missing password fails fast. */
async function readPassword(command: string, values: Values<typeof passwordOptions>, ctx: CliContext): Promise<string> {
  exclusive(command, values, 'password', 'password-stdin');
  let password = values.password;
  if (values['password-stdin']) {
    password = (await ctx.io.readStdin()).replace(/\r?\n$/, '');
    if (password === '') throw new UsageError('--password-stdin: standard input was empty');
  }
  if (password === undefined)
    throw new UsageError(`a password is required: use --password or --password-stdin ${helpHint(command)}`);
  return password;
}

const PASSWORD_REQUIRED = 'A password is required: --password or --password-stdin.';

const createOptions = {
  username: {
    type: 'string',
    value: 'U',
    required: true,
    description: 'letters, digits, ". _ -"; unique regardless of case',
  },
  email: { type: 'string', value: 'E', required: true, description: 'unique regardless of case' },
  ...passwordOptions,
  name: { type: 'string', value: '"Full Name"', description: 'the "name" claim' },
  'given-name': { type: 'string', value: 'G', description: 'the "given_name" claim' },
  'family-name': { type: 'string', value: 'F', description: 'the "family_name" claim' },
  'email-verified': { type: 'boolean', description: 'mark the email address as verified' },
  role: { type: 'string', value: 'R', multiple: true, description: 'the "roles" claim (comma-separated too)' },
  json: { type: 'boolean', description: 'print the account as JSON' },
} as const satisfies OptionSpecs;

function readProfile(values: Values<typeof createOptions>): Profile {
  // --name alone stays alone: splitting a full name into given and family names guesses wrong too often.
  const name = values.name?.trim();
  const givenName = values['given-name']?.trim();
  const familyName = values['family-name']?.trim();
  return {
    ...(name ? { name } : {}),
    ...(givenName ? { givenName } : {}),
    ...(familyName ? { familyName } : {}),
  };
}

const create = defineCommand({
  name: 'user create',
  summary: 'create a user account',
  description: PASSWORD_REQUIRED,
  options: createOptions,
  async run({ values }, ctx) {
    const { username, email } = values;
    const password = await readPassword('user create', values, ctx);
    const input: NewAccount = {
      username,
      email,
      password,
      emailVerified: values['email-verified'],
      profile: readProfile(values),
      roles: commaList(values.role),
    };
    const view = toUserView(await withServices(ctx, (c) => c.accounts.create(input)));
    ctx.io.out(values.json ? toJson(view) : `created user "${view.username}" (id ${view.id})`);
  },
});

const list = defineCommand({
  name: 'user list',
  summary: 'list user accounts',
  options: { json: JSON_OPTION },
  async run({ values }, ctx) {
    const views = (await withServices(ctx, (c) => c.accounts.list())).map(toUserView);
    if (values.json) return ctx.io.out(toJson(views));
    if (views.length === 0) return ctx.io.out('no users');
    ctx.io.out(
      table(
        ['USERNAME', 'EMAIL', 'VERIFIED', 'STATUS', 'ROLES', 'ID'],
        views.map((v) => [
          v.username,
          v.email,
          v.emailVerified ? 'yes' : 'no',
          v.disabled ? 'disabled' : 'active',
          listOrDash(v.roles),
          v.id,
        ]),
      ),
    );
  },
});

const show = defineCommand({
  name: 'user show',
  summary: 'show one user (by username, email or id)',
  options: { json: JSON_OPTION },
  positionals: [USER_ARGUMENT],
  async run({ values, positionals: [login] }, ctx) {
    const account = await withServices(
      ctx,
      async (c) => (await c.accounts.findByLogin(login)) ?? (await c.accounts.findById(login)),
    );
    if (!account) throw new PosternError('ERR_NOT_FOUND', `no account "${login}"`);
    const view = toUserView(account);
    ctx.io.out(values.json ? toJson(view) : describeUser(view));
  },
});

const ENDS_SESSIONS = `Ends every session of the user and revokes every grant, as "postern user logout" does,
waiting for back-channel logout to be delivered (a warning on stderr for each that was not).`;

/**
 * Disabling an account or changing its password ends its sessions: say so, with back-channel
 * logout (a warning on stderr for each delivery that failed, in JSON too).
 */
function reportChange(ctx: CliContext, json: boolean, done: string, change: AccessRevoked<LogoutResult>): void {
  const { account, revoked } = change;
  const deliveries = revoked ? reportDeliveries(ctx, revoked.deliveries) : '';
  if (json) {
    ctx.io.out(toJson({ account: toUserView(account), ...(revoked ? { revoked } : {}) }));
    return;
  }
  const summary = revoked
    ? `: ${revoked.sessions} session(s) ended, ${revoked.grants} grant(s) revoked${deliveries}`
    : '';
  ctx.io.out(`${done} user "${account.username}"${summary}`);
}

const USER_JSON = {
  type: 'boolean',
  description: 'print {"account": ..., "revoked": ...} (revoked: sessions, grants and back-channel deliveries)',
} as const satisfies OptionSpec;

function setDisabledCommand(disabled: boolean): Command {
  const verb = disabled ? 'disable' : 'enable';
  return defineCommand({
    name: `user ${verb}`,
    summary: disabled ? 'stop a user from signing in' : 'let a disabled user sign in again',
    ...(disabled ? { description: ENDS_SESSIONS } : {}),
    options: { json: USER_JSON },
    positionals: [USER_ARGUMENT],
    async run({ values, positionals: [login] }, ctx) {
      const change = await withServices(ctx, (c) => c.accounts.setDisabled(login, disabled));
      reportChange(ctx, values.json, `${verb}d`, change);
    },
  });
}

const setPassword = defineCommand({
  name: 'user set-password',
  summary: "set a user's password",
  description: `${PASSWORD_REQUIRED}\n\n${ENDS_SESSIONS}`,
  options: { ...passwordOptions, json: USER_JSON },
  positionals: [USER_ARGUMENT],
  async run({ values, positionals: [login] }, ctx) {
    const password = await readPassword('user set-password', values, ctx);
    const change = await withServices(ctx, (c) => c.accounts.setPassword(login, password));
    reportChange(ctx, values.json, 'password changed for', change);
  },
});

const unlock = defineCommand({
  name: 'user unlock',
  summary: "clear a user's sign-in lockout and failure counters",
  options: { json: { type: 'boolean', description: 'print {"account": ..., "cleared": N}' } },
  positionals: [USER_ARGUMENT],
  async run({ values, positionals: [login] }, ctx) {
    const { account, cleared } = await withServices(ctx, (c) => c.accounts.unlock(login));
    if (values.json) return ctx.io.out(toJson({ account: toUserView(account), cleared }));
    ctx.io.out(`unlocked user "${account.username}" (${cleared} lock(s) or counter(s) cleared)`);
  },
});

const mfa = defineCommand({
  name: 'user mfa',
  summary: "reset a user's second factors: postern user mfa reset USER",
  description: `"reset" removes the user's authenticator app (TOTP), recovery codes and passkeys, so the next
sign-in asks for the password only (or walks them through setting up a new app when MFA is
required). The owner is mailed, and the reset is in the audit log.`,
  options: { json: { type: 'boolean', description: 'print {"account": ..., "removed": N}' } },
  positionals: [{ name: 'ACTION', description: 'reset (the only action)' }, USER_ARGUMENT],
  async run({ values, positionals: [action, login] }, ctx) {
    if (action !== 'reset')
      throw new UsageError(`user mfa: unknown action "${action}" (only: reset) ${helpHint('user mfa')}`);
    const { account, removed } = await withServices(ctx, async (c) => {
      const found = await c.accounts.get(login);
      return { account: found, ...(await c.mfa.reset(found.id, { by: 'cli' })) };
    });
    if (values.json) return ctx.io.out(toJson({ account: toUserView(account), removed }));
    ctx.io.out(`reset the second factors of user "${account.username}" (${removed} removed)`);
  },
});

const invite = defineCommand({
  name: 'user invite',
  summary: 'create an account without a password and email its owner a link to choose one',
  description: `The link is valid 7 days and works once; using it sets the password and marks
the email address verified. Needs email (POSTERN_SMTP_URL, or the log outside production).
Without --username, the part of the address before "@" is the username.`,
  options: {
    email: {
      type: 'string',
      value: 'E',
      required: true,
      description: 'where the invitation goes; unique regardless of case',
    },
    name: { type: 'string', value: '"Full Name"', description: 'the "name" claim, and the greeting of the mail' },
    role: { type: 'string', value: 'R', multiple: true, description: 'the "roles" claim (comma-separated too)' },
    username: { type: 'string', value: 'U', description: 'letters, digits, ". _ -" (default: from the address)' },
    json: { type: 'boolean', description: 'print {"account": ..., "linkExpiresAt": ...}' },
  },
  async run({ values }, ctx) {
    const name = values.name?.trim();
    const { account, expiresAt } = await withServices(ctx, (c) =>
      c.recovery.invite({
        email: values.email,
        ...(values.username === undefined ? {} : { username: values.username }),
        ...(name ? { name } : {}),
        roles: commaList(values.role),
      }),
    );
    const view = toUserView(account);
    if (values.json) return ctx.io.out(toJson({ account: view, linkExpiresAt: expiresAt }));
    ctx.io.out(
      `invited "${view.username}" (id ${view.id}): a set-password link went to ${view.email}, valid until ${expiresAt.toISOString()}`,
    );
  },
});

export const userCommands: readonly Command[] = [
  create,
  invite,
  list,
  show,
  setDisabledCommand(true),
  setDisabledCommand(false),
  setPassword,
  unlock,
  mfa,
];
