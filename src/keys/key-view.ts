import type { SigningKeyRow } from '../db/tables.ts';

/** What the CLI and the admin API show of a signing key: never its private half. */
export interface KeyView {
  readonly kid: string;
  readonly alg: string;
  readonly state: SigningKeyRow['state'];
  readonly createdAt: Date;
  readonly activatedAt: Date | null;
  readonly retireAfter: Date | null;
}

export function toKeyView(k: SigningKeyRow): KeyView {
  return {
    kid: k.kid,
    alg: k.alg,
    state: k.state,
    createdAt: k.created_at,
    activatedAt: k.activated_at,
    retireAfter: k.retire_after,
  };
}
