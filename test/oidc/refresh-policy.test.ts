import type { KoaContextWithOIDC } from 'oidc-provider';
import { describe, expect, it } from 'vitest';

import type { RefreshPolicy } from '../../src/oidc/refresh-policy.ts';
import {
  issueRefreshToken,
  refreshPolicyFor,
  refreshTokenTtl,
  rotateRefreshToken,
} from '../../src/oidc/refresh-policy.ts';
import type { Clock } from '../../src/shared/clock.ts';

// The engine calls these with its Client and token objects; the functions read only the few
// members stubbed here. Our clock is frozen at NOW (epoch seconds), so lifetimes are exact.

const NOW = 1_796_126_400; // 2026-12-01T12:00:00Z
const clock: Clock = { now: () => new Date(NOW * 1000) };
const DAY = 86_400;
const defaults: RefreshPolicy = {
  idleSeconds: 14 * DAY,
  absoluteSeconds: 90 * DAY,
  graceSeconds: 10,
  graceMaxRepeats: 3,
};
const noContext = {} as KoaContextWithOIDC;

function client(metadata: Record<string, unknown> = {}, grantTypes: readonly string[] = ['refresh_token']) {
  return {
    metadata: () => ({ client_id: 'app', ...metadata }),
    grantTypeAllowed: (type: string) => grantTypes.includes(type),
  };
}

const ttl = (token: { iiat?: number; iat?: number }, metadata: Record<string, unknown> = {}) =>
  refreshTokenTtl(defaults, clock)(noContext, token, client(metadata));

describe('refreshPolicyFor', () => {
  it('takes the defaults for a client that overrode nothing, rotation on', () => {
    expect(refreshPolicyFor(client(), defaults)).toEqual({
      rotate: true,
      idleSeconds: 14 * DAY,
      absoluteSeconds: 90 * DAY,
    });
  });

  it("takes the client's own lifetimes and rotation", () => {
    const own = client({ refresh_rotation: 'never', refresh_idle_seconds: 3_600, refresh_absolute_seconds: DAY });

    expect(refreshPolicyFor(own, defaults)).toEqual({ rotate: false, idleSeconds: 3_600, absoluteSeconds: DAY });
    expect(refreshPolicyFor(client({ refresh_rotation: 'always' }), defaults).rotate).toBe(true);
  });

  it.each([0, -60, 1.5, '3600', null, Number.NaN])('ignores %j as a lifetime and keeps the default', (value) => {
    const odd = client({ refresh_idle_seconds: value, refresh_absolute_seconds: value });

    expect(refreshPolicyFor(odd, defaults)).toMatchObject({ idleSeconds: 14 * DAY, absoluteSeconds: 90 * DAY });
  });
});

describe('refreshTokenTtl', () => {
  it('gives a token from a fresh sign-in the idle window', () => {
    expect(ttl({ iiat: NOW, iat: NOW })).toBe(14 * DAY);
  });

  it('never lets a rotated token outlive the absolute lifetime counted from the sign-in (iiat)', () => {
    // Signed in 89 days ago, rotated just now: one day left, not fourteen.
    expect(ttl({ iiat: NOW - 89 * DAY, iat: NOW })).toBe(DAY);
    expect(ttl({ iiat: NOW - 90 * DAY + 2, iat: NOW })).toBe(2);
  });

  it('answers one second, never zero or less, once the absolute lifetime is used up', () => {
    // The engine takes a positive lifetime; the token is refused at its next use anyway.
    expect(ttl({ iiat: NOW - 90 * DAY, iat: NOW })).toBe(1);
    expect(ttl({ iiat: NOW - 365 * DAY, iat: NOW })).toBe(1);
  });

  it('counts from iat when the token has no iiat, and from now when it has neither', () => {
    expect(ttl({ iat: NOW - 89 * DAY })).toBe(DAY);
    expect(ttl({})).toBe(14 * DAY);
  });

  it("uses the client's own idle and absolute lifetimes", () => {
    const own = { refresh_idle_seconds: 3_600, refresh_absolute_seconds: DAY };

    expect(ttl({ iiat: NOW }, own)).toBe(3_600);
    expect(ttl({ iiat: NOW - DAY + 600 }, own)).toBe(600);
  });

  it('gives the one token of a client without rotation the whole absolute lifetime, from now', () => {
    const never = { refresh_rotation: 'never' };

    expect(ttl({ iiat: NOW }, never)).toBe(90 * DAY);
    expect(ttl({ iiat: NOW - 89 * DAY }, never)).toBe(90 * DAY);
    expect(ttl({ iiat: NOW }, { ...never, refresh_absolute_seconds: DAY })).toBe(DAY);
  });

  it('reads the time from our clock', () => {
    const tomorrow: Clock = { now: () => new Date((NOW + DAY) * 1000) };

    expect(refreshTokenTtl(defaults, tomorrow)(noContext, { iiat: NOW - 89 * DAY }, client())).toBe(1);
  });
});

describe('rotateRefreshToken', () => {
  const rotate = (metadata: Record<string, unknown>) =>
    rotateRefreshToken(defaults)({ oidc: { client: client(metadata) } } as unknown as KoaContextWithOIDC);

  it('rotates on every use unless the client was registered with rotation never (RFC 9700 §4.14.2)', () => {
    expect(rotate({})).toBe(true);
    expect(rotate({ refresh_rotation: 'always' })).toBe(true);
    expect(rotate({ refresh_rotation: 'never' })).toBe(false);
  });
});

describe('issueRefreshToken', () => {
  it('issues one exactly to clients allowed the refresh_token grant', async () => {
    expect(await issueRefreshToken(noContext, client({}, ['authorization_code', 'refresh_token']))).toBe(true);
    expect(await issueRefreshToken(noContext, client({}, ['authorization_code']))).toBe(false);
  });
});
