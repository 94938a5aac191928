import { createHmac, randomBytes, randomUUID } from 'node:crypto';

import { sql, type Kysely, type Transaction } from 'kysely';

import type { AuditEventInput } from '../audit/audit-event.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Database } from '../db/tables.ts';
import { isUniqueViolation } from '../db/unique-violation.ts';
import type { MailOutbox } from '../mail/mail-outbox.ts';
import type { Clock } from '../shared/clock.ts';
import { PosternError, type FieldError } from '../shared/errors.ts';
import type { Account } from './account.ts';
import { findAccountById, insertAccount, toAccount, updateAccount } from './account.repository.ts';
import type { OneTimeTokens } from './one-time-tokens.ts';
import type { PasswordHasher } from './password-hasher.ts';
import { checkPassword } from './password-policy.ts';
import { chargeAttempt, readThrottle, type ThrottleKey } from './throttle.repository.ts';

// Self-service registration and email verification (issue 13 §2). A registration for an email
// that already has an account answers exactly like a new one (OWASP Authentication Cheat
// Sheet, "account enumeration"): the same outcome, the same argon2 work, one mail either way
// (to the owner: "someone tried to register"), and nothing about that account changes.

/** POSTERN_REGISTRATION* (config/config.ts). */
export interface RegistrationSettings {
  /** POSTERN_REGISTRATION=open and mail can be sent: the sign-up pages and prompt=create are on. */
  readonly open: boolean;
  /** Registrations one client address may submit per window (RFC 6585 §4: 429 beyond). */
  readonly ipLimit: number;
  /** Registrations naming one email address per window. */
  readonly emailLimit: number;
  readonly windowSeconds: number;
}

export interface RegistrationInput {
  /** Optional: left empty, one is made from the email address (people sign in by email too). */
  readonly username: string;
  readonly email: string;
  readonly name: string;
  readonly password: string;
  readonly ip: string;
  readonly userAgent?: string;
  readonly clientId?: string;
}

export type RegistrationOutcome =
  /** `pendingId`: the new account's id, or a random one of the same shape for an existing email. */
  | { readonly kind: 'sent'; readonly pendingId: string }
  | { readonly kind: 'invalid'; readonly errors: readonly FieldError[] }
  | { readonly kind: 'throttled'; readonly retryAfterSeconds: number };

export type CodeOutcome =
  | { readonly kind: 'verified'; readonly account: Account }
  | { readonly kind: 'invalid' }
  | { readonly kind: 'throttled'; readonly retryAfterSeconds: number };

export interface RequestMeta {
  readonly ip: string;
  readonly userAgent?: string;
  readonly clientId?: string;
}

export interface RegistrationService {
  register(input: RegistrationInput): Promise<RegistrationOutcome>;
  /** Is the emailed link usable (the page shows a button; mail scanners that fetch links use nothing)? */
  checkLink(token: string): Promise<boolean>;
  /** Uses the emailed link; the verified account, or undefined for a used, expired or forged one. */
  verifyLink(token: string, meta: RequestMeta): Promise<Account | undefined>;
  verifyCode(accountId: string, code: string, meta: RequestMeta): Promise<CodeOutcome>;
  /** A new link and code for an unverified account; silent: nothing happens over the limit. */
  resend(accountId: string, meta: RequestMeta): Promise<void>;
  /** The account, once its address is verified (and it may sign in); else undefined. */
  verifiedAccount(accountId: string): Promise<Account | undefined>;
}

/** Links of the register-existing mail: the account page signs in; the reset page is issue 13 §3's. */
export interface RegistrationLinks {
  readonly signIn: string;
  readonly reset: string;
}

export const VERIFY_EMAIL_HOURS = 24;
/** Verification mails sent again per account and hour (on top of the registration's own). */
export const RESEND_LIMIT = 3;
const RESEND_WINDOW_SECONDS = 3600;

const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const EMAIL = /^[^\s@<>",;]{1,64}@[^\s@<>",;]{1,255}\.[^\s@<>",;]{1,63}$/;
const NAME_MAX = 200;

interface Deps {
  readonly db: Kysely<Database>;
  readonly hasher: PasswordHasher;
  readonly clock: Clock;
  readonly audit: AuditLog;
  readonly tokens: OneTimeTokens;
  readonly outbox: MailOutbox;
  readonly settings: RegistrationSettings;
  readonly links: RegistrationLinks;
  /** Names an email address in a throttle key without storing it (see config/secrets.ts). */
  readonly throttleKey: Buffer;
}

export function createRegistrationService(deps: Deps): RegistrationService {
  return {
    async register(input) {
      const event = eventOf(input);
      const errors = validate(input);
      if (errors.length) return { kind: 'invalid', errors };
      // Checked before the email is looked at, and for every email alike: "taken" then says
      // something about the username only, never about the address.
      if (input.username && (await usernameTaken(deps.db, input.username)))
        return { kind: 'invalid', errors: [{ field: 'username', detail: 'This username is taken. Choose another.' }] };
      const throttled = await chargeRegistration(deps, input);
      if (throttled) {
        deps.audit.record({ ...event, type: 'registration.throttled', details: { scope: throttled.scope } });
        return { kind: 'throttled', retryAfterSeconds: throttled.retryAfterSeconds };
      }
      // The same argon2 work whether or not the address has an account.
      const passwordHash = await deps.hasher.hash(input.password);
      try {
        return await deps.db.transaction().execute((tx) => registerIn(tx, deps, input, passwordHash, event));
      } catch (error) {
        // Two registrations raced for one username: the second is told as if it had been taken.
        if (isUniqueViolation(error))
          return {
            kind: 'invalid',
            errors: [{ field: 'username', detail: 'This username is taken. Choose another.' }],
          };
        throw error;
      }
    },
    async checkLink(token) {
      return (await deps.tokens.check(deps.db, token, 'verify_email')) !== undefined;
    },
    async verifyLink(token, meta) {
      const used = await deps.tokens.consume(deps.db, token, 'verify_email');
      return (
        used && markVerified(deps, used.accountId, used.payload, { ...eventOf(meta), details: { method: 'link' } })
      );
    },
    async verifyCode(accountId, code, meta) {
      const result = await deps.tokens.consumeCode(deps.db, { accountId, purpose: 'verify_email', code });
      if (!result.ok)
        return result.reason === 'throttled'
          ? { kind: 'throttled', retryAfterSeconds: result.retryAfterSeconds }
          : { kind: 'invalid' };
      const account = await markVerified(deps, accountId, result.token.payload, {
        ...eventOf(meta),
        details: { method: 'code' },
      });
      return account ? { kind: 'verified', account } : { kind: 'invalid' };
    },
    async verifiedAccount(accountId) {
      const account = await findAccountById(deps.db, accountId);
      return account?.emailVerified && !account.disabled ? account : undefined;
    },
    async resend(accountId, meta) {
      const account = await findAccountById(deps.db, accountId);
      if (!account || account.emailVerified || account.disabled) return;
      const key: ThrottleKey = { scope: 'verify_resend', key: account.id, accountId: account.id };
      if (!(await chargeAttempt(deps.db, key, deps.clock.now(), RESEND_WINDOW_SECONDS, RESEND_LIMIT))) return;
      await deps.db.transaction().execute((tx) => sendVerification(tx, deps, account));
      deps.audit.record({
        ...eventOf(meta),
        type: 'email.verification_sent',
        accountId: account.id,
        details: { reason: 'resend' },
      });
    },
  };
}

function eventOf(meta: RequestMeta): AuditEventInput {
  return {
    type: 'account.registered',
    ip: meta.ip,
    userAgent: meta.userAgent ?? null,
    clientId: meta.clientId ?? null,
  };
}

/** Every problem of the form at once, each on its field (the page links them from its summary). */
function validate(input: RegistrationInput): FieldError[] {
  const errors: FieldError[] = [];
  if (input.username && !USERNAME.test(input.username))
    errors.push({
      field: 'username',
      detail: 'A username is 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit.',
    });
  if (!EMAIL.test(input.email))
    errors.push({ field: 'email', detail: 'Enter an email address, like name@example.com.' });
  if ([...input.name].length > NAME_MAX || /[\r\n]/.test(input.name))
    errors.push({ field: 'name', detail: `A name is one line of at most ${NAME_MAX} characters.` });
  try {
    checkPassword(input.password, { username: input.username, email: input.email });
  } catch (error) {
    const detail = error instanceof PosternError ? error.message.replace(/^password rejected: it/, 'The password') : '';
    errors.push({ field: 'password', detail: `${detail || 'Choose another password'}.` });
  }
  return errors;
}

async function usernameTaken(db: Kysely<Database>, username: string): Promise<boolean> {
  const row = await db
    .selectFrom('accounts')
    .select('id')
    .where(sql`lower(username)`, '=', username.toLowerCase())
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * One atomic charge per counter (throttle.repository.ts), the address first: a limited
 * request costs no hashing. Over a limit: RFC 6585 §4, 429 with the end of the window.
 */
async function chargeRegistration(
  deps: Deps,
  input: RegistrationInput,
): Promise<{ scope: string; retryAfterSeconds: number } | undefined> {
  const { db, clock, settings } = deps;
  const now = clock.now();
  const emailKey = createHmac('sha256', deps.throttleKey).update(`register:${input.email.toLowerCase()}`);
  const keys: [ThrottleKey, number][] = [
    [{ scope: 'register_ip', key: input.ip, accountId: null }, settings.ipLimit],
    [{ scope: 'register_email', key: emailKey.digest('base64url'), accountId: null }, settings.emailLimit],
  ];
  for (const [key, limit] of keys) {
    if (await chargeAttempt(db, key, now, settings.windowSeconds, limit)) continue;
    const state = await readThrottle(db, key);
    const ends = (state?.windowStartedAt.getTime() ?? now.getTime()) + settings.windowSeconds * 1000;
    return { scope: key.scope, retryAfterSeconds: Math.max(1, Math.ceil((ends - now.getTime()) / 1000)) };
  }
  return undefined;
}

async function registerIn(
  tx: Transaction<Database>,
  deps: Deps,
  input: RegistrationInput,
  passwordHash: string,
  event: AuditEventInput,
): Promise<RegistrationOutcome> {
  const existing = await tx
    .selectFrom('accounts')
    .selectAll()
    .where(sql`lower(email)`, '=', input.email.toLowerCase())
    .executeTakeFirst();
  if (existing) {
    // Nothing of the account changes: only its owner hears of the attempt.
    const owner = toAccount(existing);
    await deps.outbox.enqueue(tx, {
      to: owner.email,
      template: 'register-existing',
      data: {
        ...(owner.profile.name ? { name: owner.profile.name } : {}),
        signInLink: deps.outbox.link(deps.links.signIn),
        resetLink: deps.outbox.link(deps.links.reset),
      },
    });
    deps.audit.record({ ...event, type: 'registration.existing_email', accountId: owner.id });
    return { kind: 'sent', pendingId: randomUUID() };
  }
  const account = await insertAccount(tx, {
    id: randomUUID(),
    username: input.username || (await freeUsername(tx, input.email)),
    email: input.email,
    email_verified: false,
    password_hash: passwordHash,
    profile: JSON.stringify(input.name ? { name: input.name } : {}),
    roles: [],
  });
  await sendVerification(tx, deps, account);
  deps.audit.record({ ...event, accountId: account.id, details: { username: account.username } });
  deps.audit.record({
    ...event,
    type: 'email.verification_sent',
    accountId: account.id,
    details: { reason: 'registration' },
  });
  return { kind: 'sent', pendingId: account.id };
}

/** The email's local part when it is a free username, else with a random suffix. */
async function freeUsername(tx: Transaction<Database>, email: string): Promise<string> {
  const local = (email.split('@')[0] ?? '').replace(/[^A-Za-z0-9._-]/g, '').replace(/^[^A-Za-z0-9]+/, '');
  const base = local.slice(0, 40) || 'user';
  if (!(await usernameTaken(tx, base))) return base;
  return `${base}-${randomBytes(3).toString('hex')}`;
}

/** A verification link and code (one token: using either uses both), mailed in the caller's transaction. */
async function sendVerification(tx: Transaction<Database>, deps: Deps, account: Account): Promise<void> {
  const issued = await deps.tokens.issue(tx, {
    purpose: 'verify_email',
    accountId: account.id,
    ttlSeconds: VERIFY_EMAIL_HOURS * 3600,
    // The address the link proves: if the account's address changes meanwhile, the link proves nothing.
    payload: { email: account.email.toLowerCase() },
    withCode: true,
  });
  await deps.outbox.enqueue(tx, {
    to: account.email,
    template: 'verify-email',
    data: {
      ...(account.profile.name ? { name: account.profile.name } : {}),
      link: deps.outbox.link('/verify-email', { token: issued.token }),
      code: issued.code ?? '',
      hours: VERIFY_EMAIL_HOURS,
    },
    notAfter: issued.expiresAt,
  });
}

async function markVerified(
  deps: Deps,
  accountId: string,
  payload: Readonly<Record<string, unknown>> | undefined,
  event: AuditEventInput,
): Promise<Account | undefined> {
  const account = await findAccountById(deps.db, accountId);
  if (!account || account.email.toLowerCase() !== payload?.email) return undefined;
  const updated = account.emailVerified ? account : await updateAccount(deps.db, account.id, { email_verified: true });
  if (updated) deps.audit.record({ ...event, type: 'email.verified', accountId: account.id });
  return updated;
}
