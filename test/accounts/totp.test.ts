import { Secret, TOTP, URI } from 'otpauth';
import { describe, expect, it } from 'vitest';

import { matchTotpStep, newTotpSecret, totpUri } from '../../src/accounts/totp.ts';

// RFC 6238 with the parameters authenticator apps read from an otpauth:// URI; the clock is a
// fixed instant, 10 s into a 30 s step.

const NOW = new Date('2026-12-01T10:00:10Z');
const STEP = Math.floor(NOW.getTime() / 30_000);
const codeAt = (secret: string, secondsFromNow: number) =>
  TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: NOW.getTime() + secondsFromNow * 1000 });

describe('TOTP', () => {
  it('makes a 160-bit secret, in base32', () => {
    const secret = newTotpSecret();
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(Secret.fromBase32(secret).bytes).toHaveLength(20);
    expect(newTotpSecret()).not.toBe(secret);
  });

  it('writes the otpauth URI an app scans: SHA1, 6 digits, 30 s, the issuer and the username', () => {
    const secret = newTotpSecret();
    const parsed = URI.parse(totpUri(secret, 'Acme ID', 'ann')) as TOTP;
    expect(parsed).toBeInstanceOf(TOTP);
    expect(parsed).toMatchObject({ issuer: 'Acme ID', label: 'ann', algorithm: 'SHA1', digits: 6, period: 30 });
    expect(parsed.secret.base32).toBe(secret);
  });

  it('accepts the current step and one step either side, and says which step the code was of', () => {
    const secret = newTotpSecret();
    expect(matchTotpStep(secret, codeAt(secret, 0), NOW)).toBe(STEP);
    expect(matchTotpStep(secret, codeAt(secret, -30), NOW)).toBe(STEP - 1);
    expect(matchTotpStep(secret, codeAt(secret, 30), NOW)).toBe(STEP + 1);
  });

  it("refuses a code two steps away, another secret's code, and anything but six digits", () => {
    const secret = newTotpSecret();
    const stale = codeAt(secret, -60);
    // A code of two steps ago may, rarely, equal a code of the window: compare only when it does not.
    if (![-30, 0, 30].some((s) => codeAt(secret, s) === stale))
      expect(matchTotpStep(secret, stale, NOW)).toBeUndefined();
    expect(matchTotpStep(newTotpSecret(), codeAt(secret, 0), NOW) === STEP).toBe(false);
    expect(matchTotpStep(secret, `${codeAt(secret, 0)}0`, NOW)).toBeUndefined();
    expect(matchTotpStep(secret, 'abcdef', NOW)).toBeUndefined();
  });
});
