/**
 * Claims a resource server may ask its access tokens to carry: the user's (and, for roles, a
 * service's own). Claims the token already has by definition (sub, client_id, scope) are not options.
 */
export const ACCESS_TOKEN_CLAIMS = [
  'roles',
  'email',
  'email_verified',
  'name',
  'preferred_username',
  'given_name',
  'family_name',
  // How the user signed in (RFC 8176 amr, OIDC Core §2 acr): an API can demand MFA for a call.
  'amr',
  'acr',
] as const;

/** An API that accepts Postern's access tokens, named by its resource indicator (RFC 8707). */
export interface ResourceServer {
  readonly identifier: string;
  readonly scopes: readonly string[];
  readonly accessTokenTtl: number;
  readonly tokenFormat: 'jwt' | 'opaque';
  readonly signingAlg: string;
  /** User claims its access tokens carry (RFC 9068 §2.2.3.1 roles, and e.g. email); none by default. */
  readonly claims: readonly string[];
  readonly createdAt: Date;
  readonly updatedAt: Date;
}
