import type { Kysely } from 'kysely';

import type { AuditLog } from '../audit/audit-log.ts';
import { pseudonymiseAccountEvents } from '../audit/audit.repository.ts';
import type { Database } from '../db/tables.ts';
import { isUniqueViolation } from '../db/unique-violation.ts';
import type { MailOutbox } from '../mail/mail-outbox.ts';
import type { Clock } from '../shared/clock.ts';
import { invalid, PosternError } from '../shared/errors.ts';
import type { Account, Profile } from './account.ts';
import { deleteAccountRow, findAccountById, updateAccount } from './account.repository.ts';
import { EMAIL, USERNAME } from './account.service.ts';
import type { LockoutPolicy } from './lockout-policy.ts';
import type { OneTimeTokens } from './one-time-tokens.ts';
import { createPasswordCheck } from './password-check.ts';
import type { PasswordHasher } from './password-hasher.ts';
import { checkPassword } from './password-policy.ts';
import { clearAccountThrottles } from './throttle.repository.ts';

// What a signed-in person may do to their own account (issue 13 §4): the account page calls
// these, and only these. Each change is an audit event; each one that could hand the account
// to someone else asks for the current password first.

/** Where a change came from, for its audit event. */
export interface Origin {
  readonly ip?: string | null;
  readonly userAgent?: string | null;
}

export interface ProfileInput {
  readonly name: string;
  readonly givenName: string;
  readonly familyName: string;
  readonly username: string;
}

/** The engine's side: ending sessions and revoking grants (wired to oidc/session-admin.ts). */
export interface SessionEnder {
  /** Every session but this browser's, every grant not made in it; `keepSessionUid` stays. */
  endOtherSessions(accountId: string, keepSessionUid: string, reason: string): Promise<unknown>;
  /** Every session and grant of the account. */
  endAllSessions(accountId: string, reason: string): Promise<unknown>;
}

export interface AccountPageService {
  /** False in production without SMTP: the email change is not offered. */
  readonly emailChangeEnabled: boolean;
  /** POSTERN_ACCOUNT_DELETION. */
  readonly deletionEnabled: boolean;
  updateProfile(accountId: string, input: ProfileInput, origin: Origin): Promise<Account>;
  /** Mails a confirmation link to the new address and a notice to the old one; changes nothing yet. */
  requestEmailChange(
    accountId: string,
    input: { currentPassword: string; newEmail: string },
    origin: Origin,
  ): Promise<void>;
  /** The new address a usable link would confirm, without using the link (the GET of its page). */
  pendingEmailChange(token: string): Promise<string | undefined>;
  /** Uses the link: the new address becomes the account's, verified. undefined: used, expired or forged. */
  confirmEmailChange(token: string, origin: Origin): Promise<Account | undefined>;
  changePassword(
    accountId: string,
    input: { currentPassword: string; newPassword: string; keepSessionUid: string },
    origin: Origin,
  ): Promise<void>;
  deleteAccount(accountId: string, input: { password: string }, origin: Origin): Promise<void>;
}

/** An email-change link lasts a day: long enough to reach another mailbox, short enough to die unused. */
export const EMAIL_CHANGE_HOURS = 24;
const PROFILE_TEXT_MAX = 128;

function profileText(value: string, field: string): string | undefined {
  const text = value.trim();
  if (text.length > PROFILE_TEXT_MAX) invalid(`at most ${PROFILE_TEXT_MAX} characters`, field);
  // Control characters have no place in a name, and would break the mails it is written into.
  if (/\p{Cc}/u.test(text)) invalid('must not contain control characters', field);
  return text === '' ? undefined : text;
}

function validProfile(input: ProfileInput): { profile: Profile; username: string } {
  const username = input.username.trim();
  if (!USERNAME.test(username))
    invalid('1-64 letters, digits, ".", "_" or "-", starting with a letter or digit', 'username');
  const name = profileText(input.name, 'name');
  const givenName = profileText(input.givenName, 'given_name');
  const familyName = profileText(input.familyName, 'family_name');
  return {
    username,
    profile: {
      ...(name ? { name } : {}),
      ...(givenName ? { givenName } : {}),
      ...(familyName ? { familyName } : {}),
    },
  };
}

export function createAccountPageService(deps: {
  db: Kysely<Database>;
  hasher: PasswordHasher;
  audit: AuditLog;
  tokens: OneTimeTokens;
  outbox: MailOutbox;
  sessions: SessionEnder;
  deletionEnabled: boolean;
  clock: Clock;
  /** POSTERN_LOCKOUT_*: the current password asked again is throttled like a sign-in. */
  policy: LockoutPolicy;
}): AccountPageService {
  const { db, hasher, audit, tokens, outbox } = deps;

  async function mustFind(accountId: string): Promise<Account> {
    const account = await findAccountById(db, accountId);
    if (!account || account.disabled) throw new PosternError('ERR_NOT_FOUND', 'no such account');
    return account;
  }

  /**
   * The current password, or the field error the form shows; argon2 either way (no timing tell),
   * each guess counted in the account's sign-in counter (password-check.ts), so a session holder
   * gets no unlimited password oracle.
   */
  const requirePassword = createPasswordCheck(deps);

  const event = (type: Parameters<AuditLog['record']>[0]['type'], accountId: string, origin: Origin) => ({
    type,
    accountId,
    ip: origin.ip ?? null,
    userAgent: origin.userAgent ?? null,
  });

  return {
    emailChangeEnabled: outbox.enabled,
    deletionEnabled: deps.deletionEnabled,

    async updateProfile(accountId, input, origin) {
      const before = await mustFind(accountId);
      const { profile, username } = validProfile(input);
      let updated: Account | undefined;
      try {
        updated = await updateAccount(db, accountId, { username, profile: JSON.stringify(profile) });
      } catch (error) {
        if (isUniqueViolation(error)) invalid('this username is taken', 'username');
        throw error;
      }
      if (!updated) throw new PosternError('ERR_NOT_FOUND', 'no such account');
      const changed = ['name', 'givenName', 'familyName'].filter(
        (k) => before.profile[k as keyof Profile] !== profile[k as keyof Profile],
      );
      if (username !== before.username) changed.push('username');
      audit.record({
        ...event('account.profile_updated', accountId, origin),
        details: { changed, ...(username !== before.username ? { from: before.username, to: username } : {}) },
      });
      return updated;
    },

    async requestEmailChange(accountId, input, origin) {
      if (!outbox.enabled) throw new PosternError('ERR_MAIL_DISABLED', 'email is off on this server');
      const account = await mustFind(accountId);
      const newEmail = input.newEmail.trim();
      if (!EMAIL.test(newEmail)) invalid('enter an email address, like name@example.com', 'new_email');
      if (newEmail.toLowerCase() === account.email.toLowerCase())
        invalid('this is already your email address', 'new_email');
      await requirePassword(accountId, input.currentPassword, 'email_password', origin);
      // Whether another account holds the address is not said here (that would let anyone
      // signed in probe addresses); the link says so, to the owner of the address, if it is.
      await db.transaction().execute(async (tx) => {
        const issued = await tokens.issue(tx, {
          purpose: 'email_change',
          accountId,
          ttlSeconds: EMAIL_CHANGE_HOURS * 3600,
          payload: { email: newEmail },
        });
        const name = account.profile.name ?? account.username;
        const link = outbox.link('/account/email/confirm', { token: issued.token });
        await outbox.enqueue(tx, {
          to: newEmail,
          template: 'email-change-confirm',
          data: { name, link, hours: EMAIL_CHANGE_HOURS },
          notAfter: issued.expiresAt,
        });
        await outbox.enqueue(tx, { to: account.email, template: 'email-change-notice', data: { name, newEmail } });
      });
      audit.record({ ...event('account.email_change_requested', accountId, origin), details: { to: newEmail } });
    },

    async pendingEmailChange(token) {
      const found = await tokens.check(db, token, 'email_change');
      return typeof found?.payload?.email === 'string' ? found.payload.email : undefined;
    },

    async confirmEmailChange(token, origin) {
      try {
        return await db.transaction().execute(async (tx) => {
          const used = await tokens.consume(tx, token, 'email_change');
          const email = used?.payload?.email;
          if (!used || typeof email !== 'string') return undefined;
          const before = await findAccountById(tx, used.accountId);
          const account = await updateAccount(tx, used.accountId, { email, email_verified: true });
          if (!account || !before) return undefined;
          // Links mailed to the old address (a reset, a verification) no longer belong to this account's mailbox.
          await tokens.revoke(tx, account.id, 'reset_password');
          await tokens.revoke(tx, account.id, 'verify_email');
          audit.record({
            ...event('account.email_changed', account.id, origin),
            details: { from: before.email, to: email },
          });
          return account;
        });
      } catch (error) {
        if (isUniqueViolation(error))
          throw new PosternError('ERR_DUPLICATE', 'another account uses this email address now');
        throw error;
      }
    },

    async changePassword(accountId, input, origin) {
      const account = await mustFind(accountId);
      await requirePassword(accountId, input.currentPassword, 'current_password', origin);
      try {
        checkPassword(input.newPassword, account);
      } catch (error) {
        if (error instanceof PosternError) invalid(error.message, 'new_password');
        throw error;
      }
      const passwordHash = await hasher.hash(input.newPassword);
      // The owner hears of the change, with a way back in if it was not them (as after a reset,
      // recovery.service.ts): the change and its mail are committed together or not at all.
      await db.transaction().execute(async (tx) => {
        await updateAccount(tx, accountId, { password_hash: passwordHash });
        if (!outbox.enabled) return;
        const name = account.profile.name;
        await outbox.enqueue(tx, {
          to: account.email,
          template: 'password-changed',
          data: { ...(name ? { name } : {}), resetLink: outbox.link('/forgot-password') },
        });
      });
      audit.record({ ...event('account.password_changed', accountId, origin), details: { by: 'self' } });
      await deps.sessions.endOtherSessions(accountId, input.keepSessionUid, 'password changed');
    },

    async deleteAccount(accountId, input, origin) {
      if (!deps.deletionEnabled) throw new PosternError('ERR_NOT_FOUND', 'account deletion is off');
      const account = await mustFind(accountId);
      await requirePassword(accountId, input.password, 'delete_password', origin);
      await deps.sessions.endAllSessions(accountId, 'account deleted');
      await clearAccountThrottles(db, accountId);
      await deleteAccountRow(db, accountId);
      // Events still being written must be in the table before their details are rewritten.
      await audit.flush();
      const identifiers = [account.username, account.email];
      const pseudonymised = await pseudonymiseAccountEvents(db, accountId, identifiers);
      audit.record({ ...event('account.deleted', accountId, origin), details: { pseudonymised } });
    },
  };
}
