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

export function hasSecondFactor(amr: readonly string[] | undefined): boolean {
  return amr?.some((value) => SECOND_FACTOR_AMR.includes(value)) ?? false;
}

/** The amr of a sign-in that added `method` (RFC 8176 §2) to what was given before. */
export function amrWith(before: readonly string[] | undefined, method: 'otp' | 'hwk' | 'swk'): string[] {
  const amr = new Set([...(before ?? ['pwd']), method]);
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
  const factors = facts.methods.filter((m) => m !== 'recovery_code');
  if (factors.length > 0) return { kind: 'verify', methods: facts.methods };
  const byPolicy = policy.required || facts.roles.some((role) => policy.requiredRoles.includes(role));
  return askedByRelyingParty || byPolicy ? { kind: 'enroll' } : { kind: 'none' };
}

/** acr_values (OIDC Core §3.1.2.1) asks for MFA when it names urn:postern:mfa. */
export function acrAsksForMfa(acrValues: unknown): boolean {
  return typeof acrValues === 'string' && acrValues.split(' ').includes(ACR_MFA);
}
