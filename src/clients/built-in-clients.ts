import { invalid } from '../shared/errors.ts';

// Client ids Postern's own clients use. They live in the engine's static configuration (the
// account page's: oidc/account-page-client.ts), not in the clients table, and the engine looks
// static clients up first: a stored client under one of these ids would never be the one that
// answers, so creating it is refused, by the CLI and the admin API alike (both create here).

export const ACCOUNT_PAGE_CLIENT_ID = 'postern-account';

const BUILT_IN_CLIENT_IDS: ReadonlySet<string> = new Set([ACCOUNT_PAGE_CLIENT_ID]);

/** Refuses an id a built-in client holds (client ids compare exactly: RFC 6749 §2.2). */
export function checkClientIdFree(clientId: string): void {
  if (BUILT_IN_CLIENT_IDS.has(clientId))
    invalid(`client id "${clientId}" is reserved for Postern's built-in account page; choose another`, 'clientId');
}
