import type { Account } from './account.ts';

/** Claims each scope releases (OIDC Core §5.4), plus our `roles` scope. `sub` is the opaque account id. */
export const SCOPE_CLAIMS = {
  openid: ['sub'],
  profile: ['name', 'preferred_username', 'given_name', 'family_name', 'updated_at'],
  email: ['email', 'email_verified'],
  roles: ['roles'],
} as const;

/** Every claim this account has; oidc-provider filters them by the granted scopes and claims. */
export function accountClaims(account: Account): Record<string, unknown> {
  const { profile } = account;
  return {
    sub: account.id,
    name: profile.name,
    preferred_username: account.username,
    given_name: profile.givenName,
    family_name: profile.familyName,
    updated_at: Math.floor(account.updatedAt.getTime() / 1000),
    email: account.email,
    email_verified: account.emailVerified,
    roles: [...account.roles],
  };
}
