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
