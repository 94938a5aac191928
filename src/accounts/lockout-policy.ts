// How many failed sign-ins lock what, and for how long (POSTERN_LOCKOUT_*; README "Sign-in protection").
export interface LockoutPolicy {
  /** Failures per account and client IP (or per device cookie) before a lock. */
  readonly threshold: number;
  readonly windowSeconds: number;
  readonly lockSeconds: number;
  readonly maxLockSeconds: number;
  /** Failures per account from all untrusted clients before the account is locked for them all. */
  readonly accountThreshold: number;
  /** Failures per client IP across accounts before it is throttled (429) for the window. */
  readonly ipFailureLimit: number;
  /** Say "locked" instead of the generic failure message (reveals which accounts exist). */
  readonly reveal: boolean;
}
