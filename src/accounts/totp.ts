import { Secret, TOTP } from 'otpauth';

// RFC 6238 time-based one-time passwords with the parameters every authenticator app reads from
// an otpauth:// URI: HMAC-SHA-1, 6 digits, 30-second steps (RFC 6238 §4, Google Authenticator's
// key URI format). Pure functions: storage, replay and throttling are the service's.

const PERIOD_SECONDS = 30;
const DIGITS = 6;
/** RFC 6238 §5.2: one step either side absorbs clock drift and the time it takes to type. */
const WINDOW = 1;
/** RFC 4226 §4: at least 128 bits; 160 bits, the size of an HMAC-SHA-1 key, is what apps expect. */
const SECRET_BYTES = 20;

export const TOTP_CODE = /^\d{6}$/;

export function newTotpSecret(): string {
  return new Secret({ size: SECRET_BYTES }).base32;
}

function totpFor(secret: string, issuer: string, label: string): TOTP {
  return new TOTP({
    issuer,
    label,
    algorithm: 'SHA1',
    digits: DIGITS,
    period: PERIOD_SECONDS,
    secret: Secret.fromBase32(secret),
  });
}

/** The otpauth:// URI an authenticator app scans (issuer and account name are shown in the app). */
export function totpUri(secret: string, issuer: string, label: string): string {
  return totpFor(secret, issuer, label).toString();
}

/**
 * The time step the code belongs to, within ±1 step of `now`, or undefined. The caller refuses a
 * step not after the last one accepted (RFC 6238 §5.2: each code is accepted once).
 */
export function matchTotpStep(secret: string, code: string, now: Date): number | undefined {
  if (!TOTP_CODE.test(code)) return undefined;
  const timestamp = now.getTime();
  const delta = totpFor(secret, 'postern', 'postern').validate({ token: code, timestamp, window: WINDOW });
  if (delta === null) return undefined;
  return TOTP.counter({ period: PERIOD_SECONDS, timestamp }) + delta;
}
