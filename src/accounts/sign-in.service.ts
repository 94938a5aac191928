import { createHmac } from 'node:crypto';

import type { Kysely } from 'kysely';

import type { AuditEventInput } from '../audit/audit-event.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { LockoutPolicy } from '../config/config.ts';
import type { Database } from '../db/tables.ts';
import type { Clock } from '../shared/clock.ts';
import type { Account } from './account.ts';
import { findAccountForLogin, recordLogin } from './account.repository.ts';
import type { PasswordHasher } from './password-hasher.ts';
import {
  chargeAttempt,
  clearThrottles,
  lockIfExhausted,
  readThrottle,
  refundAttempt,
  releaseExpiredLock,
  type ThrottleKey,
} from './throttle.repository.ts';

export interface SignInAttempt {
  readonly login: string;
  readonly password: string;
  readonly ip: string;
  readonly userAgent?: string;
  readonly clientId?: string;
  /** Devices this browser proved with a valid device cookie (OWASP "device cookies"). */
  readonly devices: readonly { accountId: string; deviceId: string }[];
}

/** `failed` and `locked` look the same to the person unless the policy says to reveal locks. */
export type SignInOutcome =
  | {
      readonly kind: 'success';
      readonly account: Account;
      readonly device: { accountId: string; deviceId: string } | undefined;
    }
  | { readonly kind: 'failed' }
  | { readonly kind: 'locked' }
  | { readonly kind: 'throttled'; readonly retryAfterSeconds: number };

export interface SignInService {
  attempt(attempt: SignInAttempt): Promise<SignInOutcome>;
}

interface Deps {
  readonly db: Kysely<Database>;
  readonly hasher: PasswordHasher;
  readonly clock: Clock;
  readonly audit: AuditLog;
  readonly policy: LockoutPolicy;
  /** Names sign-in text that matches no account without storing it (see config/secrets.ts). */
  readonly throttleKey: Buffer;
}

export function createSignInService(deps: Deps): SignInService {
  const { db, hasher, clock, audit, policy } = deps;
  const limitFor = (k: ThrottleKey) => (k.scope === 'account' ? policy.accountThreshold : policy.threshold);

  function subjectKeys(
    accountId: string | null,
    subject: string,
    ip: string,
    deviceId: string | undefined,
  ): ThrottleKey[] {
    // A trusted device is counted on its own, so strangers' failures cannot lock it out.
    if (deviceId) return [{ scope: 'device', key: `${subject}|${deviceId}`, accountId }];
    return [
      { scope: 'account_ip', key: `${subject}|${ip}`, accountId },
      { scope: 'account', key: subject, accountId },
    ];
  }

  async function verify(found: Awaited<ReturnType<typeof findAccountForLogin>>, password: string) {
    if (!found?.passwordHash) {
      // Same work as a real check, so timing does not tell which accounts exist.
      await hasher.verifyDummy(password);
      return { ok: false as const, reason: found ? 'no_password' : 'unknown_account' };
    }
    const { ok, needsRehash } = await hasher.verify(found.passwordHash, password);
    if (!ok) return { ok: false as const, reason: 'wrong_password' };
    if (found.account.disabled) return { ok: false as const, reason: 'disabled' };
    return { ok: true as const, needsRehash };
  }

  return {
    async attempt(a) {
      const now = clock.now();
      const base: AuditEventInput = {
        type: 'login.failed',
        ip: a.ip,
        userAgent: a.userAgent ?? null,
        clientId: a.clientId ?? null,
      };
      const ipKey: ThrottleKey = { scope: 'ip', key: a.ip, accountId: null };
      if (!(await chargeAttempt(db, ipKey, now, policy.windowSeconds, policy.ipFailureLimit))) {
        const state = await readThrottle(db, ipKey);
        const ends = (state?.windowStartedAt.getTime() ?? now.getTime()) + policy.windowSeconds * 1000;
        return { kind: 'throttled', retryAfterSeconds: Math.max(1, Math.ceil((ends - now.getTime()) / 1000)) };
      }
      const login = a.login.slice(0, 320);
      const found = await findAccountForLogin(db, login);
      const accountId = found?.account.id ?? null;
      const subject =
        accountId ??
        `unknown:${createHmac('sha256', deps.throttleKey).update(login.toLowerCase()).digest('base64url')}`;
      const device = accountId ? a.devices.find((d) => d.accountId === accountId) : undefined;
      const keys = subjectKeys(accountId, subject, a.ip, device?.deviceId);

      for (const k of keys) {
        if (await releaseExpiredLock(db, k, now))
          audit.record({ ...base, type: 'lockout.ended', accountId, details: { scope: k.scope } });
      }
      const charged: ThrottleKey[] = [];
      for (const k of keys) {
        if (await chargeAttempt(db, k, now, policy.windowSeconds, limitFor(k))) {
          charged.push(k);
          continue;
        }
        for (const c of charged) await refundAttempt(db, c, now);
        // Locked: the password is not checked, but the answer costs what a check costs, or its
        // speed would tell a locked (so existing) account from an unknown name. The per-IP
        // charge above still bounds the hashing one address can cause.
        await hasher.verifyDummy(a.password);
        audit.record({
          ...base,
          accountId,
          details: { reason: 'locked', scope: k.scope, login: accountId ? undefined : 'unknown' },
        });
        return { kind: 'locked' };
      }

      const result = await verify(found, a.password);
      if (result.ok && found) {
        // The owner proved the password: this browser's counters and the account-wide back-off
        // start over, so strangers' failures cannot keep the account locked for good (a trusted
        // device gets in while the account-wide lock holds, and its success ends that lock).
        await clearThrottles(db, [
          ...keys.filter((k) => k.scope !== 'account'),
          { scope: 'account', key: subject, accountId },
        ]);
        await refundAttempt(db, ipKey, now);
        const rehashed = result.needsRehash ? await hasher.hash(a.password) : undefined;
        const account = (await recordLogin(db, found.account.id, now, rehashed)) ?? found.account;
        audit.record({
          ...base,
          type: 'login.succeeded',
          accountId: account.id,
          details: device ? { device: 'trusted' } : {},
        });
        return { kind: 'success', account, device };
      }

      for (const k of charged) {
        const until = await lockIfExhausted(db, k, now, limitFor(k), policy.lockSeconds, policy.maxLockSeconds);
        if (until)
          audit.record({
            ...base,
            type: 'lockout.started',
            accountId,
            details: { scope: k.scope, until: until.toISOString() },
          });
      }
      const ipState = await readThrottle(db, ipKey);
      if (ipState && ipState.failures === policy.ipFailureLimit) {
        audit.record({
          ...base,
          type: 'ip.throttled',
          details: { failures: ipState.failures, windowSeconds: policy.windowSeconds },
        });
      }
      audit.record({ ...base, accountId, details: { reason: result.reason } });
      return { kind: 'failed' };
    },
  };
}
