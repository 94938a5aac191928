import { createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';

import type { AccountService } from '../accounts/account.service.ts';
import { PosternError } from '../shared/errors.ts';
import { ADMIN_ROLE } from './admin-resource.ts';

// The admin API checks a token as any resource server checks Postern's (RFC 9068 §4): a JWT of
// type at+jwt, signed by a key Postern publishes, from our issuer, for our audience, not expired,
// with a scope. The keys are the published JWK Set itself, taken from this instance's key ring
// (what /jwks serves, and follows every key change within POSTERN_KEY_POLL_SECONDS) instead of
// fetched from /jwks over HTTP: the same keys, without a request from the server to itself
// through a public URL that a proxy may own, and without a remote cache that lags a revocation.

/** Who is calling: always a client; a person too when the token was issued to one. */
export interface Caller {
  readonly clientId: string;
  /** The signed-in person, when the token came from the code flow (sub is then their account id). */
  readonly accountId?: string;
  readonly scopes: readonly string[];
  /** Idempotency keys are this caller's own: a person, or a client acting for itself. */
  readonly key: string;
}

export interface BearerVerifier {
  verify(authorization: string): Promise<Caller>;
}

const unauthorized = (message: string) => new PosternError('ERR_UNAUTHORIZED', message);

/** RFC 6750 §2.1: `Bearer <token>`, the scheme in any case. */
function bearerToken(authorization: string): string {
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i.exec(authorization.trim());
  if (!match) throw unauthorized('an access token is required: Authorization: Bearer <token>');
  return match[1]!;
}

function describeFailure(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'the access token has expired';
  if (error instanceof errors.JWTClaimValidationFailed && error.claim === 'aud')
    return 'the access token is not meant for this API (aud)';
  return 'the access token is not valid for this API';
}

export function createBearerVerifier(deps: {
  issuer: string;
  audience: string;
  algorithms: readonly string[];
  /** The published JWK Set (key-ring.ts) and its ETag. */
  jwks: () => { body: string; etag: string };
  accounts: AccountService;
}): BearerVerifier {
  let keys: { etag: string; get: JWTVerifyGetKey } | undefined;
  const keySet = (): JWTVerifyGetKey => {
    const { body, etag } = deps.jwks();
    if (keys?.etag !== etag) keys = { etag, get: createLocalJWKSet(JSON.parse(body) as JSONWebKeySet) };
    return keys.get;
  };

  /** A person's token: their account must still exist, be enabled and hold the admin role now. */
  async function checkPerson(accountId: string): Promise<void> {
    const account = await deps.accounts.findById(accountId);
    if (!account || account.disabled) throw unauthorized('the account this token was issued to cannot sign in');
    if (!account.roles.includes(ADMIN_ROLE))
      throw new PosternError('ERR_FORBIDDEN', `the account needs the ${ADMIN_ROLE} role to use the admin API`);
  }

  return {
    async verify(authorization) {
      const token = bearerToken(authorization);
      const { payload } = await jwtVerify(token, keySet(), {
        issuer: deps.issuer,
        audience: deps.audience,
        typ: 'at+jwt',
        algorithms: [...deps.algorithms],
        requiredClaims: ['exp', 'iat', 'sub', 'client_id'],
      }).catch((error: unknown) => {
        throw unauthorized(describeFailure(error));
      });
      const clientId = String(payload.client_id);
      const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [];
      // RFC 9068 §2.2: a client-credentials token's sub is the client itself; else it is the person's.
      if (payload.sub === clientId) return { clientId, scopes, key: `client:${clientId}` };
      const accountId = String(payload.sub);
      await checkPerson(accountId);
      return { clientId, accountId, scopes, key: `account:${accountId}` };
    },
  };
}
