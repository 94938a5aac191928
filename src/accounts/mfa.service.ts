import type { Kysely, Transaction } from 'kysely';

import type { AuditLog } from '../audit/audit-log.ts';
import type { Database } from '../db/tables.ts';
import { seal, unseal } from '../keys/sealed-box.ts';
import type { MailOutbox } from '../mail/mail-outbox.ts';
import type { Clock } from '../shared/clock.ts';
import { invalid, PosternError } from '../shared/errors.ts';
import type { Account } from './account.ts';
import { findAccountById } from './account.repository.ts';
import type { LockoutPolicy } from './lockout-policy.ts';
import type { MfaMethod } from './mfa-policy.ts';
import {
  acceptTotpStep,
  countUnusedRecoveryCodes,
  deleteRecoveryCodes,
  deleteStalePendingTotp,
  deleteTotp,
  findTotp,
  lockConfirmedTotp,
  PENDING_TOTP_MINUTES,
  replaceRecoveryCodes,
  savePendingTotp,
  useRecoveryCode,
} from './mfa.repository.ts';
import { deleteAccountPasskeys, listPasskeys } from './passkey.repository.ts';
import { createPasswordCheck, type PasswordCheckOrigin as Origin } from './password-check.ts';
import type { PasswordHasher } from './password-hasher.ts';
import {
  chargeAttempt,
  clearThrottles,
  lockIfExhausted,
  releaseExpiredLocks,
  type ThrottleKey,
} from './throttle.repository.ts';
import { looksLikeRecoveryCode, newRecoveryCode, RECOVERY_CODE_COUNT, recoveryCodeHasher } from './recovery-codes.ts';
import { matchTotpStep, newTotpSecret, TOTP_CODE, totpUri } from './totp.ts';

// TOTP and recovery codes (issue 14 §1). The secret is sealed (AES-256-GCM, bound to the account),
// recovery codes are keyed hashes (DESIGN §5). Every code given at sign-in or to confirm an
// enrollment is charged to the account's `mfa_code` counter first, in one statement, like a
// password guess (throttle.repository.ts), so six digits cannot be guessed in parallel.

export interface TotpEnrollment {
  /** Base32, for typing into an app. */
  readonly secret: string;
  /** otpauth:// URI, for the QR code. */
  readonly uri: string;
}

export type CodeCheck =
  | { readonly ok: true; readonly method: 'totp' | 'recovery_code' }
  | { readonly ok: false; readonly reason: 'invalid' | 'locked' };

export interface MfaStatus {
  readonly totp: boolean;
  readonly recoveryCodesLeft: number;
}

export interface MfaService {
  status(accountId: string): Promise<MfaStatus>;
  /** The methods the second-factor page may offer: TOTP, recovery codes (with TOTP), passkeys. */
  methods(accountId: string): Promise<MfaMethod[]>;
  /** When the TOTP factor was confirmed: a remembered device is valid for this enrollment only. */
  factorStamp(accountId: string): Promise<string | undefined>;
  /** A new secret to scan (replacing an unconfirmed one); refused while a confirmed factor exists. */
  startTotp(accountId: string): Promise<TotpEnrollment>;
  /** The unconfirmed secret, to show its page again. */
  pendingTotp(accountId: string): Promise<TotpEnrollment | undefined>;
  /**
   * A valid code confirms the factor; returns the 10 recovery codes, shown once. `password` is
   * asked (and throttled) whenever the person did not give it in this very request flow: on the
   * account page and at a step-up; it is left out only right after the password at sign-in.
   */
  confirmTotp(
    accountId: string,
    input: { code: string; password?: string },
    origin: Origin,
  ): Promise<CodeCheck & { recoveryCodes?: string[] }>;
  /** A TOTP code or a recovery code, at sign-in. */
  verify(accountId: string, code: string, origin: Origin): Promise<CodeCheck>;
  /** Needs the password and a valid code (issue 14 §1); field errors otherwise. */
  disableTotp(accountId: string, input: { password: string; code: string }, origin: Origin): Promise<void>;
  /** Needs the password and a valid code; the earlier codes stop working. */
  regenerateRecoveryCodes(
    accountId: string,
    input: { password: string; code: string },
    origin: Origin,
  ): Promise<string[]>;
  /** The sweeper's part: unconfirmed secrets past their time (mfa.repository.ts PENDING_TOTP_MINUTES). */
  sweep(now: Date): Promise<number>;
  /** `postern user mfa reset`, the admin API: every factor (TOTP, recovery codes, passkeys) goes, the owner is mailed once. */
  reset(accountId: string, origin: Origin & { by?: string }): Promise<{ removed: number }>;
}

interface Deps {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly audit: AuditLog;
  readonly hasher: PasswordHasher;
  readonly outbox: MailOutbox;
  readonly policy: LockoutPolicy;
  /** POSTERN_PUBLIC_NAME, shown by authenticator apps as the issuer. */
  readonly issuerName: string;
  readonly sealKey: Buffer;
  readonly hmacKey: Buffer;
}

export function createMfaService(deps: Deps): MfaService {
  const { db, clock, audit } = deps;
  const binding = (accountId: string) => `totp_factors:${accountId}`;
  const sealSecret = (accountId: string, secret: string) =>
    seal(deps.sealKey, binding(accountId), Buffer.from(secret, 'utf8'));
  const openSecret = (accountId: string, sealed: string) =>
    unseal(deps.sealKey, binding(accountId), sealed).toString('utf8');
  const recoveryHash = recoveryCodeHasher(deps.hmacKey);
  const requirePassword = createPasswordCheck(deps);
  const throttleKey = (accountId: string): ThrottleKey => ({ scope: 'mfa_code', key: accountId, accountId });
  const event = (type: Parameters<AuditLog['record']>[0]['type'], accountId: string, origin: Origin) => ({
    type,
    accountId,
    ip: origin.ip ?? null,
    userAgent: origin.userAgent ?? null,
    clientId: origin.clientId ?? null,
  });

  async function mustFind(accountId: string): Promise<Account> {
    const account = await findAccountById(db, accountId);
    if (!account || account.disabled) throw new PosternError('ERR_NOT_FOUND', 'no such account');
    return account;
  }

  async function enrollment(accountId: string, sealed: string): Promise<TotpEnrollment> {
    const account = await mustFind(accountId);
    const secret = openSecret(accountId, sealed);
    return { secret, uri: totpUri(secret, deps.issuerName, account.username) };
  }

  /**
   * Charges the attempt before the code is compared (one statement), then runs `check`; a wrong
   * code may lock the counter, a right one clears it. The same threshold, window and back-off as
   * passwords (POSTERN_LOCKOUT_*), in the `mfa_code` scope of the same table.
   */
  async function guarded(accountId: string, origin: Origin, check: () => Promise<CodeCheck>): Promise<CodeCheck> {
    const { policy } = deps;
    const key = throttleKey(accountId);
    const now = clock.now();
    for (const k of await releaseExpiredLocks(db, [key], now))
      audit.record({ ...event('lockout.ended', accountId, origin), details: { scope: k.scope } });
    if (!(await chargeAttempt(db, key, now, policy.windowSeconds, policy.threshold))) {
      audit.record({ ...event('mfa.failed', accountId, origin), details: { reason: 'locked' } });
      return { ok: false, reason: 'locked' };
    }
    const result = await check();
    if (result.ok) {
      await clearThrottles(db, [key]);
      audit.record({ ...event('mfa.succeeded', accountId, origin), details: { method: result.method } });
      return result;
    }
    const until = await lockIfExhausted(db, key, now, policy.threshold, policy.lockSeconds, policy.maxLockSeconds);
    if (until)
      audit.record({
        ...event('lockout.started', accountId, origin),
        details: { scope: key.scope, until: until.toISOString() },
      });
    audit.record({ ...event('mfa.failed', accountId, origin), details: { reason: 'invalid_code' } });
    return result;
  }

  /** Unconfirmed secrets last PENDING_TOTP_MINUTES (the sweeper drops older ones). */
  const pendingSince = () => new Date(clock.now().getTime() - PENDING_TOTP_MINUTES * 60_000);

  async function checkTotp(db: Kysely<Database>, accountId: string, code: string, confirming: boolean) {
    const row = await findTotp(db, accountId);
    if (!row || (row.confirmedAt === null) !== confirming) return false;
    if (confirming && row.createdAt <= pendingSince()) return false;
    const now = clock.now();
    const step = matchTotpStep(openSecret(accountId, row.secretSealed), code, now);
    // The compare-and-set names the secret that was checked: one replaced meanwhile is not confirmed.
    const expected = { secretSealed: row.secretSealed, confirming, createdAfter: pendingSince() };
    return step !== undefined && acceptTotpStep(db, accountId, step, now, expected);
  }

  async function issueRecoveryCodes(tx: Transaction<Database>, accountId: string): Promise<string[]> {
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
    await replaceRecoveryCodes(
      tx,
      accountId,
      codes.map((c) => recoveryHash(accountId, c)),
      clock.now(),
    );
    return codes;
  }

  /** The owner hears of every change to their factors, by mail written in the change's transaction. */
  async function notify(
    tx: Transaction<Database>,
    account: Account,
    template: 'totp-enrolled' | 'totp-disabled' | 'recovery-codes-regenerated',
  ): Promise<void> {
    if (!deps.outbox.enabled) return;
    const name = account.profile.name;
    await deps.outbox.enqueue(tx, { to: account.email, template, data: name ? { name } : {} });
  }

  /** The recovery code is used (once), the owner is told by mail, in one transaction. */
  async function checkRecoveryCode(accountId: string, code: string, origin: Origin): Promise<boolean> {
    const account = await mustFind(accountId);
    const used = await db.transaction().execute(async (tx) => {
      if (!(await useRecoveryCode(tx, accountId, recoveryHash(accountId, code), clock.now()))) return undefined;
      const remaining = await countUnusedRecoveryCodes(tx, accountId);
      if (deps.outbox.enabled) {
        const name = account.profile.name;
        await deps.outbox.enqueue(tx, {
          to: account.email,
          template: 'recovery-code-used',
          data: { ...(name ? { name } : {}), remaining },
        });
      }
      return remaining;
    });
    if (used === undefined) return false;
    audit.record({ ...event('mfa.recovery_code_used', accountId, origin), details: { remaining: used } });
    return true;
  }

  /** A TOTP code (or a recovery code) of the enabled factor, or the field error the form shows. */
  async function requireCode(accountId: string, code: string, field: string, origin: Origin): Promise<void> {
    const result = await verify(accountId, code, origin);
    if (!result.ok)
      invalid(result.reason === 'locked' ? 'too many wrong codes; try again later' : 'the code is not correct', field);
  }

  async function status(accountId: string): Promise<MfaStatus> {
    const row = await findTotp(db, accountId);
    return { totp: Boolean(row?.confirmedAt), recoveryCodesLeft: await countUnusedRecoveryCodes(db, accountId) };
  }

  function verify(accountId: string, code: string, origin: Origin): Promise<CodeCheck> {
    const trimmed = code.replace(/\s/g, '');
    return guarded(accountId, origin, async () => {
      if (TOTP_CODE.test(trimmed))
        return (await checkTotp(db, accountId, trimmed, false))
          ? { ok: true, method: 'totp' }
          : { ok: false, reason: 'invalid' };
      if (looksLikeRecoveryCode(trimmed) && (await checkRecoveryCode(accountId, trimmed, origin)))
        return { ok: true, method: 'recovery_code' };
      return { ok: false, reason: 'invalid' };
    });
  }

  return {
    status,
    verify,
    async methods(accountId) {
      const { totp, recoveryCodesLeft } = await status(accountId);
      const passkeys = await listPasskeys(db, accountId);
      return [
        ...(totp ? (['totp'] as const) : []),
        ...(totp && recoveryCodesLeft > 0 ? (['recovery_code'] as const) : []),
        ...(passkeys.length > 0 ? (['passkey'] as const) : []),
      ];
    },
    async factorStamp(accountId) {
      return (await findTotp(db, accountId))?.confirmedAt?.toISOString();
    },
    async startTotp(accountId) {
      await mustFind(accountId);
      const secret = newTotpSecret();
      const sealed = sealSecret(accountId, secret);
      if (!(await savePendingTotp(db, accountId, sealed, clock.now())))
        throw new PosternError('ERR_CONFLICT', 'an authenticator app is already set up');
      return enrollment(accountId, sealed);
    },
    async pendingTotp(accountId) {
      const row = await findTotp(db, accountId);
      const fresh = row && row.confirmedAt === null && row.createdAt > pendingSince();
      return fresh ? enrollment(accountId, row.secretSealed) : undefined;
    },
    async confirmTotp(accountId, input, origin) {
      const account = await mustFind(accountId);
      if (input.password !== undefined) await requirePassword(accountId, input.password, 'password', origin);
      const digits = input.code.replace(/\s/g, '');
      let recoveryCodes: string[] = [];
      // Confirming, the recovery codes and the mail are one transaction: all of it, or none.
      const result = await guarded(accountId, origin, () =>
        db.transaction().execute(async (tx): Promise<CodeCheck> => {
          if (!(await checkTotp(tx, accountId, digits, true))) return { ok: false, reason: 'invalid' };
          recoveryCodes = await issueRecoveryCodes(tx, accountId);
          await notify(tx, account, 'totp-enrolled');
          return { ok: true, method: 'totp' };
        }),
      );
      if (!result.ok) return result;
      audit.record(event('mfa.totp_enrolled', accountId, origin));
      return { ...result, recoveryCodes };
    },
    async disableTotp(accountId, input, origin) {
      const account = await mustFind(accountId);
      await requirePassword(accountId, input.password, 'disable_password', origin);
      await requireCode(accountId, input.code, 'disable_code', origin);
      await db.transaction().execute(async (tx) => {
        await deleteTotp(tx, accountId);
        await deleteRecoveryCodes(tx, accountId);
        await notify(tx, account, 'totp-disabled');
      });
      audit.record(event('mfa.totp_disabled', accountId, origin));
    },
    async regenerateRecoveryCodes(accountId, input, origin) {
      const account = await mustFind(accountId);
      if (!(await status(accountId)).totp) throw new PosternError('ERR_CONFLICT', 'no authenticator app is set up');
      await requirePassword(accountId, input.password, 'codes_password', origin);
      await requireCode(accountId, input.code, 'codes_code', origin);
      const codes = await db.transaction().execute(async (tx) => {
        // The factor's row, locked: two submits at once run one after the other, so ten codes stay valid, not twenty.
        if (!(await lockConfirmedTotp(tx, accountId)))
          throw new PosternError('ERR_CONFLICT', 'no authenticator app is set up');
        const issued = await issueRecoveryCodes(tx, accountId);
        await notify(tx, account, 'recovery-codes-regenerated');
        return issued;
      });
      audit.record(event('mfa.recovery_codes_regenerated', accountId, origin));
      return codes;
    },
    sweep: (now) => deleteStalePendingTotp(db, now),
    async reset(accountId, origin) {
      const account = await findAccountById(db, accountId);
      if (!account) throw new PosternError('ERR_NOT_FOUND', 'no such account');
      // Every second factor goes, passkeys too (each can sign in alone), in one transaction with
      // one mail: the owner learns once that their factors were reset.
      const removed = await db.transaction().execute(async (tx) => {
        const n =
          (await deleteTotp(tx, accountId)) +
          (await deleteRecoveryCodes(tx, accountId)) +
          (await deleteAccountPasskeys(tx, accountId));
        if (deps.outbox.enabled) {
          const name = account.profile.name;
          await deps.outbox.enqueue(tx, { to: account.email, template: 'mfa-reset', data: name ? { name } : {} });
        }
        return n;
      });
      await clearThrottles(db, [throttleKey(accountId)]);
      audit.record({ ...event('mfa.reset', accountId, origin), details: { by: origin.by ?? null, removed } });
      return { removed };
    },
  };
}
