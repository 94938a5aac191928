import { errors } from 'oidc-provider';

import { isDatabaseUnavailable } from '../shared/database-unavailable.ts';

/** Seconds a client should wait before retrying a 503 (the database is away; RFC 9110 §10.2.3). */
export const RETRY_AFTER_SECONDS = '5';

/**
 * The database is unreachable: 503 with the OAuth error code `temporarily_unavailable`
 * (RFC 6749 §4.1.2.1), a readable page for people, JSON for clients. The HTTP layer adds
 * Retry-After. Never a 500: nothing is wrong with the request or with Postern.
 */
export class TemporarilyUnavailable extends errors.OIDCProviderError {
  constructor(cause: unknown) {
    super(503, 'temporarily_unavailable', { cause: cause as Error });
    this.error_description = 'the service is temporarily unavailable; try again shortly';
    // The engine hides errors >= 500 as server_error unless they are marked as safe to show.
    this.expose = true;
  }
}

/** Runs a storage call; a lost database becomes TemporarilyUnavailable, anything else is rethrown. */
export async function guardDatabase<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (isDatabaseUnavailable(error)) throw new TemporarilyUnavailable(error);
    throw error;
  }
}
