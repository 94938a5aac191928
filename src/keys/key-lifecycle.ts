import type { SigningKeyRow } from '../db/tables.ts';

// The life of a signing key, per algorithm (DESIGN: Keys):
//   next     published in JWKS, not signing, so every cache learns it before it is used
//   current  signs (exactly one per algorithm)
//   retired  published, not signing, until every token it could have signed has expired
//   deleted

/** What the operator sets (POSTERN_SIGNING_ALGS, POSTERN_KEY_*); read by config/config.ts. */
export interface KeyPolicy {
  readonly algs: readonly string[];
  readonly rotationSeconds: number;
  /** How long verifiers may cache JWKS (our Cache-Control max-age). */
  readonly jwksCacheSeconds: number;
  /** How often instances look for key changes: the time a new key takes to reach every JWKS response. */
  readonly pollSeconds: number;
}

const seconds = (s: number) => s * 1000;

/** A next key may sign once every instance has published it and every cache has had time to see it. */
export function nextKeyReadyAt(next: SigningKeyRow, policy: KeyPolicy): Date {
  return new Date(next.created_at.getTime() + seconds(policy.jwksCacheSeconds + policy.pollSeconds));
}

export function rotationDueAt(current: SigningKeyRow, policy: KeyPolicy): Date {
  return new Date((current.activated_at ?? current.created_at).getTime() + seconds(policy.rotationSeconds));
}

export interface RotationPlan {
  /** Algorithms whose next key becomes current now. */
  readonly promote: readonly string[];
  /** Retired keys whose tokens have all expired. */
  readonly remove: readonly string[];
  /** Algorithms lacking a current or a next key. */
  readonly incomplete: readonly string[];
}

export function planRotation(rows: readonly SigningKeyRow[], now: Date, policy: KeyPolicy): RotationPlan {
  const promote: string[] = [];
  const incomplete: string[] = [];
  for (const alg of policy.algs) {
    const current = rows.find((k) => k.alg === alg && k.state === 'current');
    const next = rows.find((k) => k.alg === alg && k.state === 'next');
    if (!current || !next) {
      incomplete.push(alg);
      continue;
    }
    if (rotationDueAt(current, policy) <= now && nextKeyReadyAt(next, policy) <= now) promote.push(alg);
  }
  const remove = rows
    .filter((k) => k.state === 'retired' && k.retire_after !== null && k.retire_after <= now)
    .map((k) => k.kid);
  return { promote, remove, incomplete };
}

export function isEmptyPlan(plan: RotationPlan): boolean {
  return plan.promote.length === 0 && plan.remove.length === 0 && plan.incomplete.length === 0;
}
