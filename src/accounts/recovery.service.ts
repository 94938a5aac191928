import { createHmac, randomBytes, randomUUID } from 'node:crypto';

import type { Kysely, Transaction } from 'kysely';

import type { AuditLog } from '../audit/audit-log.ts';
import type { Database } from '../db/tables.ts';
import { isUniqueViolation } from '../db/unique-violation.ts';
import type { MailOutbox } from '../mail/mail-outbox.ts';
import type { Clock } from '../shared/clock.ts';
import { PosternError } from '../shared/errors.ts';
import type { Account, Profile } from './account.ts';
import { findAccountById, findAccountForLogin, insertAccount, updateAccount } from './account.repository.ts';
import { validateNewAccount, type AccessRevoked, type AccountService } from './account.service.ts';
import type { OneTimeTokens } from './one-time-tokens.ts';
import { checkPassword } from './password-policy.ts';
import { chargeAttempt, clearThrottles, readThrottle, type ThrottleKey } from './throttle.repository.ts';

// Password reset, unlock by email and invitations: the owner proves the mailbox with a
// single-use link (one-time-tokens.ts) and gets back in, whatever strangers did to the
// sign-in counters (DESIGN principle 6).

/** The links a person follows to choose a password. */
export type PasswordLinkPurpose = 'reset_password' | 'invite';

export const RESET_LINK_SECONDS = 30 * 60;
export const UNLOCK_LINK_SECONDS = 30 * 60;
export const INVITE_LINK_SECONDS = 7 * 86400;
const RATE_WINDOW_SECONDS = 3600;
/** Stands in for the account of a request that names none, so both do the same queries. */
const NO_ACCOUNT = '00000000-0000-0000-0000-000000000000';
/** RFC 2606: a domain that never receives mail (the decoy is never written anyway). */
const DECOY_ADDRESS = 'nobody@example.invalid';

export interface RecoveryRequest {
  /** Username or email address, as typed. */
  readonly login: string;
  readonly ip: string;
  readonly userAgent?: string;
}

export interface NewPassword {
  readonly token: string;
  readonly purpose: PasswordLinkPurpose;
  readonly password: string;
  readonly ip: string;
  readonly userAgent?: string;
}

export type PasswordSet<Revoked> = { readonly ok: false } | ({ readonly ok: true } & AccessRevoked<Revoked>);

export interface Invitation {
  readonly email: string;
  readonly username?: string;
  readonly name?: string;
  readonly roles?: readonly string[];
}

export interface RecoveryService<Revoked = unknown> {
  /** false in production without SMTP: the pages and the command are off. */
  readonly enabled: boolean;
  /**
   * "Can't sign in?": mails an unlock link when the account is locked account-wide, a reset
   * link otherwise, and nothing for an unknown, disabled or rate-limited request. Returns
   * nothing either way, and does the same queries either way, so that neither the answer
   * nor its time tells whether the account exists.
   */
  request(input: RecoveryRequest): Promise<void>;
  /** The account a link is for, if the link is still usable (the GET that shows the form). */
  checkLink(token: string, purpose: PasswordLinkPurpose | 'unlock'): Promise<Account | undefined>;
  /** Uses the link and sets the password (the policy applies: throws ERR_WEAK_PASSWORD before the link is used). */
  setPassword(input: NewPassword): Promise<PasswordSet<Revoked>>;
  /** Uses an unlock link; returns the account and a fresh reset token, in case the password was forgotten too. */
  unlock(input: {
    token: string;
    ip: string;
    userAgent?: string;
  }): Promise<{ account: Account; resetToken: string } | undefined>;
  /** `postern user invite`: an account without a password, and a mail with a 7-day set-password link. */
  invite(input: Invitation): Promise<{ account: Account; expiresAt: Date }>;
}

interface Deps<Revoked> {
  readonly db: Kysely<Database>;
  readonly accounts: AccountService<Revoked>;
  readonly tokens: OneTimeTokens;
  readonly outbox: MailOutbox;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly limits: { readonly accountLimit: number; readonly ipLimit: number };
  /** The sign-in service's key for naming text that matches no account (config/secrets.ts). */
  readonly throttleKey: Buffer;
}

export function createRecoveryService<Revoked>(deps: Deps<Revoked>): RecoveryService<Revoked> {
  const { db, tokens, outbox, audit } = deps;
  return {
    enabled: outbox.enabled,
    request: (input) => handleRequest(deps, input),
    async checkLink(token, purpose) {
      const link = await tokens.check(db, token, purpose);
      const account = link && (await findAccountById(db, link.accountId));
      return account && !account.disabled ? account : undefined;
    },
    setPassword: (input) => setPasswordByLink(deps, input),
    async unlock({ token, ip, userAgent }) {
      const link = await tokens.consume(db, token, 'unlock');
      const account = link && (await findAccountById(db, link.accountId));
      if (!account || account.disabled) return undefined;
      // The owner proved the mailbox just now: offer a reset without a second mail.
      const { token: resetToken } = await tokens.issue(db, {
        purpose: 'reset_password',
        accountId: account.id,
        ttlSeconds: RESET_LINK_SECONDS,
      });
      audit.record({
        type: 'account.unlocked',
        accountId: account.id,
        ip,
        userAgent: userAgent ?? null,
        details: { via: 'email', scope: 'device' },
      });
      return { account, resetToken };
    },
    invite: (input) => invite(deps, input),
  };
}

const unknownSubject = (key: Buffer, login: string) =>
  `unknown:${createHmac('sha256', key).update(login.toLowerCase()).digest('base64url')}`;

async function handleRequest<R>(deps: Deps<R>, input: RecoveryRequest): Promise<void> {
  const { db, clock, limits } = deps;
  const now = clock.now();
  const login = input.login.trim().slice(0, 320);
  // Both counters are charged and the lock is read whatever the outcome: the same queries
  // for a known and an unknown account, and for a limited request.
  const ipAllowed = await chargeAttempt(
    db,
    { scope: 'recovery_ip', key: input.ip, accountId: null },
    now,
    RATE_WINDOW_SECONDS,
    limits.ipLimit,
  );
  const found = login ? await findAccountForLogin(db, login) : undefined;
  const account = found?.account;
  const subject = account?.id ?? unknownSubject(deps.throttleKey, login);
  const accountKey: ThrottleKey = { scope: 'recovery_account', key: subject, accountId: account?.id ?? null };
  const accountAllowed = await chargeAttempt(db, accountKey, now, RATE_WINDOW_SECONDS, limits.accountLimit);
  const lock = await readThrottle(db, { scope: 'account', key: subject, accountId: null });
  const locked = lock?.lockedUntil != null && lock.lockedUntil > now;
  const reason = !deps.outbox.enabled
    ? 'mail_off'
    : !account
      ? 'unknown_account'
      : account.disabled
        ? 'disabled'
        : !ipAllowed
          ? 'ip_limit'
          : !accountAllowed
            ? 'account_limit'
            : undefined;
  const sent = await db
    .transaction()
    .execute((tx) => (reason === undefined && account ? sendLink(deps, tx, account, locked) : decoy(deps, tx)));
  deps.audit.record({
    type: 'recovery.requested',
    accountId: account?.id ?? null,
    ip: input.ip,
    userAgent: input.userAgent ?? null,
    details: sent ? { sent } : { sent: 'nothing', reason },
  });
}

/** The mail of a request: an unlock link if strangers locked the account for everyone, else a reset link. */
async function sendLink<R>(deps: Deps<R>, tx: Transaction<Database>, account: Account, locked: boolean) {
  const { tokens, outbox } = deps;
  const purpose = locked ? 'unlock' : 'reset_password';
  const ttlSeconds = locked ? UNLOCK_LINK_SECONDS : RESET_LINK_SECONDS;
  const { token, expiresAt } = await tokens.issue(tx, { purpose, accountId: account.id, ttlSeconds });
  const name = account.profile.name;
  const common = { ...(name ? { name } : {}), minutes: ttlSeconds / 60 };
  if (locked)
    await outbox.enqueue(tx, {
      to: account.email,
      template: 'unlock-account',
      data: { ...common, link: outbox.link('/unlock', { token }) },
      notAfter: expiresAt,
    });
  else
    await outbox.enqueue(tx, {
      to: account.email,
      template: 'reset-password',
      data: { ...common, link: outbox.link('/reset-password', { token }) },
      notAfter: expiresAt,
    });
  return locked ? 'unlock' : 'reset';
}

/**
 * No mail: the same transaction with the statements of a real one that find nothing to
 * change, and the same rendering and sealing of a mail that is not written, so a request for
 * nobody costs what a request for someone costs.
 */
async function decoy<R>(deps: Deps<R>, tx: Transaction<Database>): Promise<undefined> {
  await deps.tokens.revoke(tx, NO_ACCOUNT, 'reset_password');
  await tx.selectFrom('mail_outbox').select('id').where('id', '=', '0').execute();
  deps.outbox.rehearse({
    to: DECOY_ADDRESS,
    template: 'reset-password',
    data: {
      minutes: RESET_LINK_SECONDS / 60,
      link: deps.outbox.link('/reset-password', { token: randomBytes(32).toString('base64url') }),
    },
  });
  return undefined;
}

async function setPasswordByLink<R>(deps: Deps<R>, input: NewPassword): Promise<PasswordSet<R>> {
  const { db, tokens, outbox, audit } = deps;
  const link = await tokens.check(db, input.token, input.purpose);
  const account = link && (await findAccountById(db, link.accountId));
  if (!account || account.disabled) return { ok: false };
  // The policy is checked before the link is used, so a refused password leaves it usable.
  checkPassword(input.password, account);
  if (!(await tokens.consume(db, input.token, input.purpose))) return { ok: false };
  // Ends every session, grant and refresh token, with back-channel logout (the session admin).
  const change = await deps.accounts.setPassword(account.username, input.password);
  await db.transaction().execute(async (tx) => {
    // Using the link proved the mailbox (OIDC Core §5.1 email_verified).
    if (!account.emailVerified) await updateAccount(tx, account.id, { email_verified: true });
    for (const purpose of ['reset_password', 'unlock', 'invite'] as const) await tokens.revoke(tx, account.id, purpose);
    if (input.purpose === 'reset_password' && outbox.enabled) {
      const name = account.profile.name;
      await outbox.enqueue(tx, {
        to: account.email,
        template: 'password-changed',
        data: { ...(name ? { name } : {}), resetLink: outbox.link('/forgot-password') },
      });
    }
  });
  // Strangers' failures were against the old password: the account-wide lock ends, and so
  // does this address's (the counters of other addresses stay).
  await clearThrottles(db, [
    { scope: 'account', key: account.id, accountId: account.id },
    { scope: 'account_ip', key: `${account.id}|${input.ip}`, accountId: account.id },
  ]);
  audit.record({
    type: 'account.password_reset',
    accountId: account.id,
    ip: input.ip,
    userAgent: input.userAgent ?? null,
    details: { via: input.purpose === 'invite' ? 'invitation' : 'reset_link' },
  });
  return { ok: true, ...change };
}

/** A username from the address's local part, when the administrator gave none. */
function usernameFromEmail(email: string): string {
  const local = email.split('@')[0] ?? '';
  return local
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 64);
}

async function invite<R>(deps: Deps<R>, input: Invitation): Promise<{ account: Account; expiresAt: Date }> {
  const { db, tokens, outbox, audit } = deps;
  if (!outbox.enabled)
    throw new PosternError('ERR_MAIL_DISABLED', 'invitations need email: set POSTERN_SMTP_URL (see README "Email")');
  const email = input.email.trim();
  const username = input.username ?? usernameFromEmail(email);
  const profile: Profile = input.name ? { name: input.name } : {};
  validateNewAccount({ username, email, roles: input.roles ?? [] });
  try {
    // The account, its link and the mail exist together or not at all.
    const result = await db.transaction().execute(async (tx) => {
      const account = await insertAccount(tx, {
        id: randomUUID(),
        username,
        email,
        email_verified: false,
        password_hash: null,
        profile: JSON.stringify(profile),
        roles: [...(input.roles ?? [])],
      });
      const { token, expiresAt } = await tokens.issue(tx, {
        purpose: 'invite',
        accountId: account.id,
        ttlSeconds: INVITE_LINK_SECONDS,
      });
      await outbox.enqueue(tx, {
        to: email,
        template: 'invite',
        data: {
          ...(input.name ? { name: input.name } : {}),
          username,
          days: INVITE_LINK_SECONDS / 86400,
          link: outbox.link('/set-password', { token }),
        },
        notAfter: expiresAt,
      });
      return { account, expiresAt };
    });
    audit.record({ type: 'account.created', accountId: result.account.id, details: { username } });
    audit.record({ type: 'account.invited', accountId: result.account.id, details: { expiresAt: result.expiresAt } });
    return result;
  } catch (error) {
    if (isUniqueViolation(error))
      throw new PosternError(
        'ERR_DUPLICATE',
        `an account with the username "${username}" or that email already exists`,
      );
    throw error;
  }
}
