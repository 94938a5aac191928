import type { Kysely } from 'kysely';

import type { AuditLog } from '../audit/audit-log.ts';
import type { Database } from '../db/tables.ts';
import type { Clock } from '../shared/clock.ts';
import { invalid } from '../shared/errors.ts';
import { findPasswordHash } from './account.repository.ts';
import type { LockoutPolicy } from './lockout-policy.ts';
import type { PasswordHasher } from './password-hasher.ts';
import {
  chargeAttempt,
  lockIfExhausted,
  refundAttempt,
  releaseExpiredLocks,
  type ThrottleKey,
} from './throttle.repository.ts';

// The current password, asked again by the account page before a change that could hand the
// account to someone else (a new password, turning TOTP off, new recovery codes, a new
// authenticator). Whoever holds a session must not get an unlimited password oracle: each guess
// is charged, before argon2 runs, to the account's own sign-in counter (scope `account`, the key
// sign-in uses), in one statement, so guesses here and at the login page share one threshold.

/** Where a check or change came from, for its audit event (also the MFA service's). */
export interface PasswordCheckOrigin {
  readonly ip?: string | null;
  readonly userAgent?: string | null;
  readonly clientId?: string | null;
}

/** Throws a field error (ERR_INVALID_INPUT on `field`) unless `password` is the account's. */
export type RequirePassword = (
  accountId: string,
  password: string,
  field: string,
  origin: PasswordCheckOrigin,
) => Promise<void>;

export function createPasswordCheck(deps: {
  db: Kysely<Database>;
  hasher: PasswordHasher;
  clock: Clock;
  audit: AuditLog;
  policy: LockoutPolicy;
}): RequirePassword {
  const { db, hasher, audit, policy } = deps;
  return async (accountId, password, field, origin) => {
    const key: ThrottleKey = { scope: 'account', key: accountId, accountId };
    const now = deps.clock.now();
    const event = {
      type: 'login.failed' as const,
      accountId,
      ip: origin.ip ?? null,
      userAgent: origin.userAgent ?? null,
      clientId: origin.clientId ?? null,
    };
    for (const k of await releaseExpiredLocks(db, [key], now))
      audit.record({ ...event, type: 'lockout.ended', details: { scope: k.scope } });
    if (!(await chargeAttempt(db, key, now, policy.windowSeconds, policy.accountThreshold))) {
      // Locked: answered after the same work as a check, so speed tells nothing.
      await hasher.verifyDummy(password);
      audit.record({ ...event, details: { reason: 'locked', scope: key.scope, step: 'reauthenticate' } });
      invalid('too many wrong passwords; try again later', field);
    }
    const hash = await findPasswordHash(db, accountId);
    if (!hash) await hasher.verifyDummy(password);
    if (hash && (await hasher.verify(hash, password)).ok) {
      // A right password is no failure; it does not clear strangers' earlier guesses either.
      await refundAttempt(db, key, now);
      return;
    }
    const until = await lockIfExhausted(
      db,
      key,
      now,
      policy.accountThreshold,
      policy.lockSeconds,
      policy.maxLockSeconds,
    );
    if (until)
      audit.record({ ...event, type: 'lockout.started', details: { scope: key.scope, until: until.toISOString() } });
    audit.record({ ...event, details: { reason: 'wrong_password', step: 'reauthenticate' } });
    invalid('the password is not correct', field);
  };
}
