// Who must give a second factor at sign-in, and how (issue 14 §3). One decision, used by the
// sign-in pages after the password and, for a session that already exists, by the engine's
// login check (oidc/mfa-step-up.ts). Methods are a list so that passkeys plug in beside TOTP.

/** What an account can use as a second factor. recovery_code stands in for a lost authenticator. */
export type MfaMethod = 'totp' | 'recovery_code' | 'passkey';

/**
 * Authentication Context Class References (OIDC Core §2, `acr`): password only, or a second
 * factor in this sign-in. Advertised as acr_values_supported; an RP asks with acr_values.
 */
export const ACR_PASSWORD = 'urn:postern:pwd';
export const ACR_MFA = 'urn:postern:mfa';
export const ACR_VALUES = [ACR_PASSWORD, ACR_MFA] as const;

/** RFC 8176 values that mean "a second factor was given" (otp: TOTP or a recovery code; hwk/swk: a passkey). */
const SECOND_FACTOR_AMR = ['otp', 'hwk', 'swk'];

/** RFC 8176 §2 values that each stand for one factor (knowledge, possession, inherence). */
const FACTOR_AMR = ['pwd', 'otp', 'hwk', 'swk', 'user'];

/**
 * The sign-in used more than one factor, one of them a second factor: a password and a code, a
 * password and a passkey, or a passkey that verified the person (`user`). A passkey alone
 * without user verification (POSTERN_PASSKEY_USER_VERIFICATION=preferred|discouraged) is one
 * factor: something you have.
 */
export function hasSecondFactor(amr: readonly string[] | undefined): boolean {
  const factors = new Set(amr?.filter((value) => FACTOR_AMR.includes(value)));
  return [...factors].some((value) => SECOND_FACTOR_AMR.includes(value)) && factors.size > 1;
}

/**
 * A passwordless passkey sign-in (amr hwk|swk, and `user` when the authenticator verified the
 * person). With user verification it is two factors in one gesture (possession of the key, and
 * a PIN or biometrics): RFC 8176 `mfa` and acr urn:postern:mfa, so it satisfies --require-mfa,
 * acr_values urn:postern:mfa and POSTERN_MFA*. Without it, one factor: acr urn:postern:pwd
 * ("one factor"), and a relying party that asks for MFA gets the second-factor page.
 */
export function passwordlessLogin(passkeyAmr: readonly string[]): { amr: string[]; acr: string } {
  if (!hasSecondFactor(passkeyAmr)) return { amr: [...passkeyAmr], acr: ACR_PASSWORD };
  return { amr: [...new Set([...passkeyAmr, 'mfa'])], acr: ACR_MFA };
}

/** The amr of a sign-in that added `method` (RFC 8176 §2) to what was given before. */
export function amrWith(before: readonly string[] | undefined, ...method: readonly string[]): string[] {
  const amr = new Set([...(before ?? ['pwd']), ...method]);
  if (amr.size > 1) amr.add('mfa');
  return [...amr];
}

export interface MfaPolicy {
  /** POSTERN_MFA=required. */
  readonly required: boolean;
  /** POSTERN_MFA_REQUIRED_ROLES. */
  readonly requiredRoles: readonly string[];
}

export interface SignInFacts {
  readonly roles: readonly string[];
  /** The account's enrolled methods (mfa.service.ts, plus passkeys). */
  readonly methods: readonly MfaMethod[];
  /** The client was registered with --require-mfa. */
  readonly clientRequiresMfa: boolean;
  /** The request's acr_values name urn:postern:mfa (step-up). */
  readonly acrRequested: boolean;
  /** This browser carries a valid "don't ask again on this device" cookie for the account. */
  readonly deviceRemembered: boolean;
}

export type SecondFactorDecision =
  | { readonly kind: 'none' }
  /** Ask for one of these methods. */
  | { readonly kind: 'verify'; readonly methods: readonly MfaMethod[] }
  /** MFA is required and the account has no factor: walk the person through TOTP enrollment. */
  | { readonly kind: 'enroll' };

/**
 * Whoever enrolled a factor is asked for it; whoever must use MFA (the installation, a role, the
 * client, or the request's acr_values) and has none enrolls one on the spot, so a policy never
 * locks anyone out. A remembered device skips the question unless the client or the request
 * asked for MFA itself: the relying party then reads `acr` and expects a second factor now.
 */
export function decideSecondFactor(policy: MfaPolicy, facts: SignInFacts): SecondFactorDecision {
  const askedByRelyingParty = facts.clientRequiresMfa || facts.acrRequested;
  if (facts.deviceRemembered && !askedByRelyingParty) return { kind: 'none' };
  const byPolicy = policy.required || facts.roles.some((role) => policy.requiredRoles.includes(role));
  const asked = askedByRelyingParty || byPolicy;
  // Setting up TOTP turns on two-step verification: its code is asked at every sign-in. A passkey
  // is added as a way to sign in (passwordless); after a password it is asked only when MFA is
  // asked for, so that someone on a device without it is not locked out (passkeys have no
  // recovery codes).
  const factors = facts.methods.filter((m) => m !== 'recovery_code');
  if (factors.includes('totp') || (factors.length > 0 && asked)) return { kind: 'verify', methods: facts.methods };
  return asked ? { kind: 'enroll' } : { kind: 'none' };
}

/** acr_values (OIDC Core §3.1.2.1) asks for MFA when it names urn:postern:mfa. */
export function acrAsksForMfa(acrValues: unknown): boolean {
  return typeof acrValues === 'string' && acrValues.split(' ').includes(ACR_MFA);
}
