import type { NewResourceServer } from '../clients/resource-server.service.ts';

// The admin API is a resource server like any other (README: Admin API): Postern issues its
// tokens at /token, for the resource indicator `<issuer>/admin` (RFC 8707), and the API checks
// them as an outside API would. The resource server is made at start, by every instance (one
// insert wins); an operator may change its token lifetime, never its scopes' meaning.

export const ADMIN_SCOPES = ['admin:read', 'admin:write', 'admin:users', 'admin:clients'] as const;

/** The role a person's account needs to call the admin API (besides the scope). */
export const ADMIN_ROLE = 'postern:admin';

/** What an operation touches: users (and their sessions), clients (and resource servers), keys, the audit log. */
export type AdminArea = 'users' | 'clients' | 'keys' | 'audit';
export type AdminAccess = 'read' | 'write';

/** The finer scopes: each gives read and write over its area, and nothing else. */
const AREA_SCOPES: Partial<Record<AdminArea, string>> = { users: 'admin:users', clients: 'admin:clients' };

export function adminResourceIdentifier(issuer: string): string {
  return `${issuer}/admin`;
}

export function adminResourceServer(issuer: string): NewResourceServer {
  return {
    identifier: adminResourceIdentifier(issuer),
    scopes: [...ADMIN_SCOPES],
    // Short-lived: an admin token is a strong credential, and a removed role ends at its expiry.
    accessTokenTtl: 900,
    tokenFormat: 'jwt',
    // A console can show what the signed-in person may do; the API itself reads the account.
    claims: ['roles'],
  };
}

/**
 * The scopes, any one of which allows an operation:
 *   admin:write                 every operation;
 *   admin:read                  every read;
 *   admin:users / admin:clients every operation, read or write, on users / on clients and resource servers.
 * Keys and the audit log have no finer scope: admin:read reads them, admin:write changes keys.
 */
export function scopesAllowing(area: AdminArea, access: AdminAccess): string[] {
  const fine = AREA_SCOPES[area];
  return [...(access === 'read' ? ['admin:read'] : []), 'admin:write', ...(fine ? [fine] : [])];
}
