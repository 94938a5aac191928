// What both servers are set up with, so their numbers compare like with like.

/** The API the client-credentials tokens are for: ES256 JWT access tokens. */
export const API = {
  resource: 'https://api.bench.local',
  scopes: 'orders:read orders:write',
  alg: 'ES256',
  tokenTtlSeconds: 3600,
} as const;

/** The service client that asks for tokens; it may use orders:read only. */
export const SERVICE_CLIENT = { id: 'bench-svc', scope: 'orders:read' } as const;

/** An API with opaque tokens, and its client: the introspection phase. */
export const OPAQUE_API = { resource: 'https://opaque.bench.local', scopes: 'inv:read' } as const;
export const OPAQUE_CLIENT = { id: 'bench-opaque', scope: 'inv:read' } as const;

/** The token request body of the client-credentials phase. */
export function tokenRequestBody(scope: string, resource: string): string {
  return new URLSearchParams({ grant_type: 'client_credentials', scope, resource }).toString();
}

/** The web app of the sign-in and refresh rows: a first-party code-flow client with refresh tokens. */
export const WEB_CLIENT = { id: 'bench-web', scope: 'openid offline_access' } as const;

/** People who sign in: one per concurrent sign-in, so no one's throttle counts another's attempts. */
export const BENCH_USERS = [1, 2, 3, 4].map((n) => ({
  username: n === 1 ? 'bench' : `bench-${n}`,
  email: n === 1 ? 'bench@example.com' : `bench-${n}@example.com`,
  password: 'bench user has a long passphrase',
}));
