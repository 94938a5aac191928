import type { KoaContextWithOIDC } from 'oidc-provider';

import { epochSeconds, type Clock } from '../shared/clock.ts';

/** Refresh-token lifetimes and reuse (POSTERN_REFRESH_*; a client may override the first two). */
export interface RefreshPolicy {
  /** A refresh token unused this long expires; each use (rotation) starts a new window. */
  readonly idleSeconds: number;
  /** No refresh token outlives this, counted from the original sign-in. */
  readonly absoluteSeconds: number;
  /** A rotated token presented again this soon (a race, a retry) is answered, not treated as theft. */
  readonly graceSeconds: number;
  /** ... at most this many times. */
  readonly graceMaxRepeats: number;
}

type Client = { metadata(): Record<string, unknown>; grantTypeAllowed(type: string): boolean };
type Token = { iiat?: number; iat?: number };

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined);

/** The policy for one client: the defaults, with what `postern client create` overrode. */
export function refreshPolicyFor(client: Client, defaults: RefreshPolicy) {
  const m = client.metadata();
  return {
    rotate: m.refresh_rotation !== 'never',
    idleSeconds: num(m.refresh_idle_seconds) ?? defaults.idleSeconds,
    absoluteSeconds: num(m.refresh_absolute_seconds) ?? defaults.absoluteSeconds,
  };
}

/**
 * refreshPolicyFor, worked out once per Client: the engine's metadata() builds a new object on
 * every call, and a refresh asks twice. A changed client record is a new Client instance
 * (oidc/engine-overrides.ts keeps one per record), so a kept policy is never stale.
 */
function policyPerClient(defaults: RefreshPolicy) {
  const kept = new WeakMap<Client, ReturnType<typeof refreshPolicyFor>>();
  return (client: Client) => {
    let policy = kept.get(client);
    if (!policy) {
      policy = refreshPolicyFor(client, defaults);
      kept.set(client, policy);
    }
    return policy;
  };
}

/**
 * RFC 9700 §4.14.2: rotate on every use (unless the client was registered with
 * --refresh-rotation never). Reuse detection and its grace window live in the adapter.
 */
export function rotateRefreshToken(defaults: RefreshPolicy) {
  const policyFor = policyPerClient(defaults);
  return (ctx: KoaContextWithOIDC) => policyFor(ctx.oidc.client as unknown as Client).rotate;
}

/**
 * A rotated token lives for the idle window, but never past the absolute lifetime counted
 * from the original sign-in (iiat). Without rotation the one token lives the absolute lifetime.
 */
export function refreshTokenTtl(defaults: RefreshPolicy, clock: Clock) {
  const policyFor = policyPerClient(defaults);
  return (_ctx: KoaContextWithOIDC, token: Token, client: Client): number => {
    const policy = policyFor(client);
    if (!policy.rotate) return policy.absoluteSeconds;
    const now = epochSeconds(clock);
    const started = token.iiat ?? token.iat ?? now;
    const remaining = started + policy.absoluteSeconds - now;
    return Math.max(1, Math.min(policy.idleSeconds, remaining));
  };
}

/**
 * Every sign-in of a client allowed the refresh_token grant gets one. With offline_access it
 * outlives the browser session; without, it ends with it (the engine's expiresWithSession).
 */
export async function issueRefreshToken(_ctx: KoaContextWithOIDC, client: Client): Promise<boolean> {
  return client.grantTypeAllowed('refresh_token');
}
