import { createHmac } from 'node:crypto';

import type { Kysely } from 'kysely';

import type { AuditEventInput } from '../audit/audit-event.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Database } from '../db/tables.ts';
import type { Clock } from '../shared/clock.ts';
import type { Account } from './account.ts';
import type { LockoutPolicy } from './lockout-policy.ts';
import { findAccountForLogin, recordLogin, storeRehashedPassword } from './account.repository.ts';
import type { PasswordHasher } from './password-hasher.ts';
import {
  chargeAttempt,
  chargeAttempts,
  lockIfExhausted,
  readThrottle,
  refundAttempt,
  releaseExpiredLocks as releaseLocks,
  settleSuccess,
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
  | { readonly kind: 'throttled'; readonly retryAfterSeconds: number }
  /** The password was right, but the email address is not verified and the policy requires it. */
  | { readonly kind: 'unverified'; readonly account: Account };

/** A sign-in that ends here: every step it needed (the password, a second factor) was given. */
export interface CompletedSignIn {
  readonly accountId: string;
  readonly ip: string;
  readonly userAgent?: string;
  readonly clientId?: string;
  /** The browser carried this account's trusted-device cookie. */
  readonly trustedDevice: boolean;
  /** RFC 8176 amr of the second factor, when one was given (a step-up gives only that). */
  readonly secondFactor?: string;
  readonly stepUp?: boolean;
}

export interface SignInService {
  /**
   * Checks the password. A right one settles the password counters; the sign-in itself is not
   * done until `completed` (a second factor may follow).
   */
  attempt(attempt: SignInAttempt): Promise<SignInOutcome>;
  /**
   * The password was right and a second step is asked: `login.password_ok`. A sign-in that
   * needs none goes straight to `completed`, one audit row rather than two.
   */
  secondStepPending(signIn: CompletedSignIn): void;
  /** `login.succeeded` and last_login_at, when the interaction ends signed in. */
  completed(signIn: CompletedSignIn): Promise<void>;
}

interface Deps {
  readonly db: Kysely<Database>;
  readonly hasher: PasswordHasher;
  readonly clock: Clock;
  readonly audit: AuditLog;
  readonly policy: LockoutPolicy;
  /** Names sign-in text that matches no account without storing it (see config/secrets.ts). */
  readonly throttleKey: Buffer;
  /** POSTERN_REQUIRE_VERIFIED_EMAIL: an unverified account is refused after its password is checked. */
  readonly requireVerifiedEmail?: boolean;
}

/** Everything a step reads: the request, when it came, and the service's parts (the engine's `ctx`). */
interface Attempt {
  readonly deps: Deps;
  readonly input: SignInAttempt;
  readonly now: Date;
  /** The per-address counter, charged before anything else. */
  readonly ipKey: ThrottleKey;
  /** The fields every audit event of this attempt shares. */
  readonly event: AuditEventInput;
}

type FoundAccount = NonNullable<Awaited<ReturnType<typeof findAccountForLogin>>>;
type TrustedDevice = SignInAttempt['devices'][number];
type RefusalReason = 'unknown_account' | 'no_password' | 'wrong_password' | 'disabled';

/** After findAccount: whom the attempt is for, and which counters it is charged to. */
interface Targeted extends Attempt {
  readonly found: FoundAccount | undefined;
  readonly accountId: string | null;
  /** The account id, or a keyed hash of the login text when it names no account. */
  readonly subject: string;
  readonly device: TrustedDevice | undefined;
  readonly keys: readonly ThrottleKey[];
}

export function createSignInService(deps: Deps): SignInService {
  return {
    // One step per check, in order; a step that answers ends the attempt. Every refusal after
    // the per-address charge costs one argon2 verification, real or dummy, so its timing does
    // not tell which accounts exist (the OWASP Authentication Cheat Sheet asks for equal times).
    async attempt(input) {
      const attempt = beginAttempt(deps, input);
      const throttled = await chargeAddress(attempt);
      if (throttled) return throttled;
      const targeted = await findAccount(attempt);
      await releaseExpiredLocks(targeted);
      const locked = await chargeSubject(targeted);
      if (locked) return locked;
      const verdict = await verifyPassword(targeted);
      if (!verdict.ok) return refuse(targeted, verdict.reason);
      const disabled = checkDisabled(verdict);
      if (disabled) return refuse(targeted, disabled);
      if (deps.requireVerifiedEmail && !verdict.account.emailVerified) return refuseUnverified(targeted, verdict);
      return recordSuccess(targeted, verdict);
    },
    secondStepPending(signIn) {
      deps.audit.record({
        ...signInEvent(signIn),
        type: 'login.password_ok',
        details: signIn.trustedDevice ? { device: 'trusted' } : {},
      });
    },
    async completed(signIn) {
      await recordLogin(deps.db, signIn.accountId, deps.clock.now());
      deps.audit.record({
        ...signInEvent(signIn),
        type: 'login.succeeded',
        details: {
          ...(signIn.trustedDevice ? { device: 'trusted' } : {}),
          ...(signIn.secondFactor ? { second_factor: signIn.secondFactor } : {}),
          ...(signIn.stepUp ? { step_up: true } : {}),
        },
      });
    },
  };
}

/** Who signed in, from where and at which client: what both sign-in events carry. */
function signInEvent(signIn: CompletedSignIn) {
  return {
    accountId: signIn.accountId,
    ip: signIn.ip,
    userAgent: signIn.userAgent ?? null,
    clientId: signIn.clientId ?? null,
  };
}

function beginAttempt(deps: Deps, input: SignInAttempt): Attempt {
  return {
    deps,
    input,
    now: deps.clock.now(),
    ipKey: { scope: 'ip', key: input.ip, accountId: null },
    event: { type: 'login.failed', ip: input.ip, userAgent: input.userAgent ?? null, clientId: input.clientId ?? null },
  };
}

const limitFor = (policy: LockoutPolicy, k: ThrottleKey) =>
  k.scope === 'account' ? policy.accountThreshold : policy.threshold;

/**
 * Charges the client's address before any lookup or hashing, so one address can cause only
 * so much work. Over its limit, the answer is 429 with the end of the window (RFC 6585 §4).
 */
async function chargeAddress({ deps, now, ipKey }: Attempt): Promise<SignInOutcome | undefined> {
  const { db, policy } = deps;
  if (await chargeAttempt(db, ipKey, now, policy.windowSeconds, policy.ipFailureLimit)) return undefined;
  const state = await readThrottle(db, ipKey);
  const ends = (state?.windowStartedAt.getTime() ?? now.getTime()) + policy.windowSeconds * 1000;
  return { kind: 'throttled', retryAfterSeconds: Math.max(1, Math.ceil((ends - now.getTime()) / 1000)) };
}

async function findAccount(attempt: Attempt): Promise<Targeted> {
  const { deps, input } = attempt;
  const login = input.login.slice(0, 320);
  const found = await findAccountForLogin(deps.db, login);
  const accountId = found?.account.id ?? null;
  const subject =
    accountId ?? `unknown:${createHmac('sha256', deps.throttleKey).update(login.toLowerCase()).digest('base64url')}`;
  const device = accountId ? input.devices.find((d) => d.accountId === accountId) : undefined;
  return { ...attempt, found, accountId, subject, device, keys: subjectKeys(accountId, subject, input.ip, device) };
}

function subjectKeys(
  accountId: string | null,
  subject: string,
  ip: string,
  device: TrustedDevice | undefined,
): ThrottleKey[] {
  // A trusted device is counted on its own, so strangers' failures cannot lock it out.
  if (device) return [{ scope: 'device', key: `${subject}|${device.deviceId}`, accountId }];
  return [
    { scope: 'account_ip', key: `${subject}|${ip}`, accountId },
    { scope: 'account', key: subject, accountId },
  ];
}

async function releaseExpiredLocks({ deps, now, event, accountId, keys }: Targeted): Promise<void> {
  for (const k of await releaseLocks(deps.db, keys, now))
    deps.audit.record({ ...event, type: 'lockout.ended', accountId, details: { scope: k.scope } });
}

/**
 * Charges every counter of the subject before the password is checked, in one statement that
 * charges each row atomically, so parallel guesses cannot slip past the threshold. A locked or
 * exhausted counter refuses the attempt and gives back what was charged to the others.
 */
async function chargeSubject(targeted: Targeted): Promise<SignInOutcome | undefined> {
  const { deps, now, input, event, accountId, keys } = targeted;
  const { db, policy, hasher } = deps;
  const limits = { account: policy.accountThreshold, other: policy.threshold };
  const charged = await chargeAttempts(db, keys, now, policy.windowSeconds, limits);
  const k = keys.find((key) => !charged.includes(key));
  if (k) {
    for (const c of charged) await refundAttempt(db, c, now);
    // Locked: the password is not checked, but the answer costs what a check costs, or its
    // speed would tell a locked (so existing) account from an unknown name. The per-IP
    // charge above still bounds the hashing one address can cause.
    await hasher.verifyDummy(input.password);
    deps.audit.record({
      ...event,
      accountId,
      details: { reason: 'locked', scope: k.scope, login: accountId ? undefined : 'unknown' },
    });
    return { kind: 'locked' };
  }
  return undefined;
}

interface Verified {
  readonly ok: true;
  readonly account: Account;
  readonly needsRehash: boolean;
}
type Verdict = Verified | { readonly ok: false; readonly reason: RefusalReason };

async function verifyPassword({ deps, input, found }: Targeted): Promise<Verdict> {
  if (!found?.passwordHash) {
    // Same work as a real check, so timing does not tell which accounts exist.
    await deps.hasher.verifyDummy(input.password);
    return { ok: false, reason: found ? 'no_password' : 'unknown_account' };
  }
  const { ok, needsRehash } = await deps.hasher.verify(found.passwordHash, input.password);
  return ok ? { ok, account: found.account, needsRehash } : { ok, reason: 'wrong_password' };
}

/**
 * Checked only once the password is right: a wrong password on a disabled account is refused,
 * counted and timed like any other, and the audit reason `disabled` means the password was right.
 */
function checkDisabled({ account }: Verified): RefusalReason | undefined {
  return account.disabled ? 'disabled' : undefined;
}

/**
 * The owner proved the password: this browser's counters and the account-wide back-off start
 * over, so strangers' failures cannot keep the account locked for good (a trusted device gets
 * in while the account-wide lock holds, and its success ends that lock). The password counters
 * are settled here, before any second factor, which has its own counter (`mfa_code`): a right
 * password is no password guess. The sign-in is not recorded as a success yet (`completed`).
 */
async function recordSuccess(targeted: Targeted, verdict: Verified): Promise<SignInOutcome> {
  const { deps, now, input, ipKey, subject, accountId, keys, device } = targeted;
  const { db, hasher } = deps;
  await settleSuccess(
    db,
    [...keys.filter((k) => k.scope !== 'account'), { scope: 'account', key: subject, accountId }],
    ipKey,
    now,
  );
  const rehashed = verdict.needsRehash ? await hasher.hash(input.password) : undefined;
  const account =
    (rehashed ? await storeRehashedPassword(db, verdict.account.id, rehashed) : undefined) ?? verdict.account;
  return { kind: 'success', account, device };
}

/**
 * The owner proved the password but not the address: the counters start over as after a
 * success (a stranger could not have got here), and the person is offered a new link instead
 * of the generic failure. Only checked once the password is right, so it reveals nothing more.
 */
async function refuseUnverified(targeted: Targeted, verdict: Verified): Promise<SignInOutcome> {
  const { deps, now, event, ipKey, subject, accountId, keys } = targeted;
  await settleSuccess(
    deps.db,
    [...keys.filter((k) => k.scope !== 'account'), { scope: 'account', key: subject, accountId }],
    ipKey,
    now,
  );
  deps.audit.record({ ...event, type: 'login.unverified', accountId: verdict.account.id });
  return { kind: 'unverified', account: verdict.account };
}

/**
 * Every refusal after the password step: the counters that reached their threshold lock, and
 * the person sees the one generic failure whatever the reason (the audit log keeps it).
 */
async function refuse(targeted: Targeted, reason: RefusalReason): Promise<SignInOutcome> {
  const { deps, now, event, ipKey, accountId, keys } = targeted;
  const { db, policy, audit } = deps;
  for (const k of keys) {
    const until = await lockIfExhausted(db, k, now, limitFor(policy, k), policy.lockSeconds, policy.maxLockSeconds);
    if (until)
      audit.record({
        ...event,
        type: 'lockout.started',
        accountId,
        details: { scope: k.scope, until: until.toISOString() },
      });
  }
  const ipState = await readThrottle(db, ipKey);
  if (ipState && ipState.failures === policy.ipFailureLimit) {
    audit.record({
      ...event,
      type: 'ip.throttled',
      details: { failures: ipState.failures, windowSeconds: policy.windowSeconds },
    });
  }
  audit.record({ ...event, accountId, details: { reason } });
  return { kind: 'failed' };
}
