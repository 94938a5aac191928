import { randomBytes } from 'node:crypto';

import type { Context } from 'koa';

// OWASP "device cookies": after a successful sign-in the browser gets a signed, HttpOnly
// cookie naming the account and a random device id. Attempts that carry it are counted on
// their own, so an attacker's failures cannot lock the owner's browser out.
const NAME = 'postern_device';
const MAX_ACCOUNTS = 5;
const MAX_AGE_MS = 180 * 86400 * 1000;

export interface TrustedDevice {
  readonly accountId: string;
  readonly deviceId: string;
}

export function readDevices(ctx: Context): TrustedDevice[] {
  try {
    // `signed: true`: a cookie whose signature does not verify under our keys reads as absent.
    const raw = ctx.cookies.get(NAME, { signed: true });
    if (!raw) return [];
    const parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as unknown;
    if (!Array.isArray(parsed)) return [];
    return parsed
      .filter((e): e is { a: string; d: string } => typeof e?.a === 'string' && typeof e?.d === 'string')
      .map((e) => ({ accountId: e.a, deviceId: e.d }));
  } catch {
    return [];
  }
}

/** Remembers this browser as a trusted device of the account (newest first, a few accounts at most). */
export function rememberDevice(
  ctx: Context,
  accountId: string,
  known: TrustedDevice | undefined,
  secure: boolean,
  basePath = '',
): void {
  const device = known ?? { accountId, deviceId: randomBytes(16).toString('base64url') };
  const others = readDevices(ctx).filter((d) => d.accountId !== accountId);
  const entries = [device, ...others].slice(0, MAX_ACCOUNTS).map((d) => ({ a: d.accountId, d: d.deviceId }));
  ctx.cookies.set(NAME, Buffer.from(JSON.stringify(entries)).toString('base64url'), {
    signed: true,
    httpOnly: true,
    sameSite: 'lax',
    secure,
    path: `${basePath}/interaction`,
    maxAge: MAX_AGE_MS,
    overwrite: true,
  });
}

// "Don't ask again on this device" (issue 14 §3, POSTERN_MFA_REMEMBER_DAYS): a second signed
// cookie beside the device cookie, naming the account, until when, and the enrollment it was
// earned with, so that resetting or re-enrolling the factor ends every remembered device.
const MFA_NAME = 'postern_mfa_device';

interface RememberedMfa {
  readonly a: string;
  /** The factor's enrollment stamp (mfa.service.ts factorStamp). */
  readonly s: string;
  /** Until, in ms since the epoch. */
  readonly u: number;
  /** Issued at, in ms since the epoch: a pass lasts no longer than the current setting allows. */
  readonly i: number;
}

function readRememberedMfa(ctx: Context): RememberedMfa[] {
  try {
    const raw = ctx.cookies.get(MFA_NAME, { signed: true });
    if (!raw) return [];
    const parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as unknown;
    if (!Array.isArray(parsed)) return [];
    return parsed.filter(
      (e): e is RememberedMfa =>
        typeof e?.a === 'string' && typeof e?.s === 'string' && typeof e?.u === 'number' && typeof e?.i === 'number',
    );
  } catch {
    return [];
  }
}

/**
 * Did a second factor on this browser, for this enrollment, earn a pass that still holds? It
 * holds until its own end and no longer than `days` (POSTERN_MFA_REMEMBER_DAYS now) after it was
 * issued, so lowering the setting shortens the passes already given.
 */
export function isMfaRemembered(
  ctx: Context,
  accountId: string,
  stamp: string | undefined,
  now: Date,
  days: number,
): boolean {
  if (!stamp || days <= 0) return false;
  const t = now.getTime();
  return readRememberedMfa(ctx).some(
    (e) => e.a === accountId && e.s === stamp && e.u > t && e.i + days * 86400 * 1000 > t,
  );
}

export function rememberMfaDevice(
  ctx: Context,
  input: { accountId: string; stamp: string; days: number; now: Date },
  secure: boolean,
  basePath = '',
): void {
  const maxAge = input.days * 86400 * 1000;
  const entry = { a: input.accountId, s: input.stamp, u: input.now.getTime() + maxAge, i: input.now.getTime() };
  const others = readRememberedMfa(ctx).filter((e) => e.a !== input.accountId && e.u > input.now.getTime());
  const entries = [entry, ...others].slice(0, MAX_ACCOUNTS);
  ctx.cookies.set(MFA_NAME, Buffer.from(JSON.stringify(entries)).toString('base64url'), {
    signed: true,
    httpOnly: true,
    sameSite: 'lax',
    secure,
    path: `${basePath}/interaction`,
    maxAge,
    overwrite: true,
  });
}
