import type { Account, Profile } from '../accounts/account.ts';
import type { NewAccount } from '../accounts/account.service.ts';
import type { LogoutResult } from '../oidc/session-admin.ts';
import { PosternError } from '../shared/errors.ts';
import {
  commaList,
  exclusive,
  flag,
  helpHint,
  optionalString,
  requiredString,
  UsageError,
  type CommandSpec,
  type Values,
} from './args.ts';
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

const PASSWORD_HELP = `  --password P                     the password (visible in the process list and shell history)
  --password-stdin                 read the password from standard input (one trailing newline is dropped)`;
const passwordOptions = { password: { type: 'string' }, 'password-stdin': { type: 'boolean' } } as const;

/** Read before the database is opened, so a missing password fails fast. */
async function readPassword(spec: CommandSpec, values: Values, ctx: CliContext): Promise<string> {
  exclusive(spec, values, 'password', 'password-stdin');
  let password = optionalString(values, 'password');
  if (flag(values, 'password-stdin')) {
    password = (await ctx.io.readStdin()).replace(/\r?\n$/, '');
    if (password === '') throw new UsageError('--password-stdin: standard input was empty');
  }
  if (password === undefined)
    throw new UsageError(`a password is required: use --password or --password-stdin ${helpHint(spec.name)}`);
  return password;
}

const createSpec: CommandSpec = {
  name: 'user create',
  summary: 'create a user account',
  usage: `Usage: postern user create --username U --email E (--password P | --password-stdin) [options]

  --username U                     letters, digits, ". _ -"; unique regardless of case
  --email E                        unique regardless of case
${PASSWORD_HELP}
  --name "Full Name"               the "name" claim
  --given-name G                   the "given_name" claim
  --family-name F                  the "family_name" claim
  --email-verified                 mark the email address as verified
  --role R                         repeatable (or comma-separated); the "roles" claim
  --json                           print the account as JSON`,
  options: {
    username: { type: 'string' },
    email: { type: 'string' },
    ...passwordOptions,
    name: { type: 'string' },
    'given-name': { type: 'string' },
    'family-name': { type: 'string' },
    'email-verified': { type: 'boolean' },
    role: { type: 'string', multiple: true },
    json: { type: 'boolean' },
  },
};

function readProfile(values: Values): Profile {
  // --name alone stays alone: splitting a full name into given and family names guesses wrong too often.
  const name = optionalString(values, 'name')?.trim();
  const givenName = optionalString(values, 'given-name')?.trim();
  const familyName = optionalString(values, 'family-name')?.trim();
  return {
    ...(name ? { name } : {}),
    ...(givenName ? { givenName } : {}),
    ...(familyName ? { familyName } : {}),
  };
}

const create: Command = {
  ...createSpec,
  async run({ values }, ctx) {
    const username = requiredString(createSpec, values, 'username');
    const email = requiredString(createSpec, values, 'email');
    const password = await readPassword(createSpec, values, ctx);
    const input: NewAccount = {
      username,
      email,
      password,
      emailVerified: flag(values, 'email-verified'),
      profile: readProfile(values),
      roles: commaList(values, 'role'),
    };
    const view = toUserView(await withServices(ctx, (c) => c.accounts.create(input)));
    ctx.io.out(flag(values, 'json') ? toJson(view) : `created user "${view.username}" (id ${view.id})`);
  },
};

const list: Command = {
  name: 'user list',
  summary: 'list user accounts',
  usage: 'Usage: postern user list [--json]',
  options: { json: { type: 'boolean' } },
  async run({ values }, ctx) {
    const views = (await withServices(ctx, (c) => c.accounts.list())).map(toUserView);
    if (flag(values, 'json')) return ctx.io.out(toJson(views));
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
};

const show: Command = {
  name: 'user show',
  summary: 'show one user (by username, email or id)',
  usage: 'Usage: postern user show USER [--json]\n\nUSER is a username, an email address or an account id.',
  options: { json: { type: 'boolean' } },
  positionals: ['USER'],
  async run({ values, positionals }, ctx) {
    const login = positionals[0]!;
    const account = await withServices(
      ctx,
      async (c) => (await c.accounts.findByLogin(login)) ?? (await c.accounts.findById(login)),
    );
    if (!account) throw new PosternError('ERR_NOT_FOUND', `no account "${login}"`);
    const view = toUserView(account);
    ctx.io.out(flag(values, 'json') ? toJson(view) : describeUser(view));
  },
};

const ENDS_SESSIONS = `Ends every session of the user and revokes every grant, as "postern user logout" does,
waiting for back-channel logout to be delivered (a warning on stderr for each that was not).`;

/** Disabling an account or changing its password ends its sessions: say so, with back-channel logout. */
function revokedSummary(ctx: CliContext, revoked: LogoutResult): string {
  return `${revoked.sessions} session(s) ended, ${revoked.grants} grant(s) revoked${reportDeliveries(ctx, revoked.deliveries)}`;
}

function setDisabledCommand(disabled: boolean): Command {
  const verb = disabled ? 'disable' : 'enable';
  return {
    name: `user ${verb}`,
    summary: disabled ? 'stop a user from signing in' : 'let a disabled user sign in again',
    usage: `Usage: postern user ${verb} USER\n\nUSER is a username, an email address or an account id.${disabled ? `\n\n${ENDS_SESSIONS}` : ''}`,
    options: {},
    positionals: ['USER'],
    async run({ positionals }, ctx) {
      const { account, revoked } = await withServices(ctx, (c) => c.accounts.setDisabled(positionals[0]!, disabled));
      ctx.io.out(`${verb}d user "${account.username}"${revoked ? `: ${revokedSummary(ctx, revoked)}` : ''}`);
    },
  };
}

const setPasswordSpec: CommandSpec = {
  name: 'user set-password',
  summary: "set a user's password",
  usage: `Usage: postern user set-password USER (--password P | --password-stdin)\n\n${PASSWORD_HELP}\n\n${ENDS_SESSIONS}`,
  options: { ...passwordOptions },
  positionals: ['USER'],
};

const setPassword: Command = {
  ...setPasswordSpec,
  async run({ values, positionals }, ctx) {
    const password = await readPassword(setPasswordSpec, values, ctx);
    const { account, revoked } = await withServices(ctx, (c) => c.accounts.setPassword(positionals[0]!, password));
    ctx.io.out(`password changed for user "${account.username}"${revoked ? `: ${revokedSummary(ctx, revoked)}` : ''}`);
  },
};

const unlock: Command = {
  name: 'user unlock',
  summary: "clear a user's sign-in lockout and failure counters",
  usage: 'Usage: postern user unlock USER\n\nUSER is a username, an email address or an account id.',
  options: {},
  positionals: ['USER'],
  async run({ positionals }, ctx) {
    const { account, cleared } = await withServices(ctx, (c) => c.accounts.unlock(positionals[0]!));
    ctx.io.out(`unlocked user "${account.username}" (${cleared} lock(s) or counter(s) cleared)`);
  },
};

export const userCommands: readonly Command[] = [
  create,
  list,
  show,
  setDisabledCommand(true),
  setDisabledCommand(false),
  setPassword,
  unlock,
];
