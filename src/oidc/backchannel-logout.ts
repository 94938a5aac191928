import { setTimeout as sleep } from 'node:timers/promises';

import type Provider from 'oidc-provider';

import type { Logger } from '../shared/logger.ts';

/** What became of one logout token (OpenID Connect Back-Channel Logout 1.0 §2.5). */
export interface BackchannelDelivery {
  readonly clientId: string;
  /** queued: left to the background (the server); delivered or failed: waited for (the CLI). */
  readonly status: 'queued' | 'delivered' | 'failed';
  readonly attempts?: number;
  readonly error?: string;
}

/** Waits between attempts; no retry starts once it would begin after the deadline. */
export const RETRY_DELAYS_MS: readonly number[] = [1000, 2000, 4000];
export const DELIVERY_DEADLINE_MS = 10_000;

/**
 * The engine's client, which posts a signed logout token (its lib/models/client.js
 * backchannelLogout; the engine's own logout calls it, and so do we, once per attempt).
 * @types/oidc-provider does not declare the method.
 */
export type LogoutTokenRecipient = InstanceType<Provider['Client']> & {
  backchannelLogout(sub: string, sid: string): Promise<void>;
};

interface Attempt {
  readonly number: number;
  readonly error: string;
  /** performance.now() when the first attempt started: monotonic, so a clock step cannot stretch the bound. */
  readonly started: number;
}

interface DeliveryDeps {
  readonly logger: Logger;
  /** A command waits for the outcome (it exits next); the server lets a pending retry die with it. */
  readonly wait: boolean;
}

async function send(client: LogoutTokenRecipient, sub: string, sid: string): Promise<string | undefined> {
  try {
    await client.backchannelLogout(sub, sid);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Retries after a failed attempt (1 s, 2 s, 4 s, within 10 s), and says how it ended. */
async function retry(
  client: LogoutTokenRecipient,
  sub: string,
  sid: string,
  deps: DeliveryDeps,
  failed: Attempt,
): Promise<BackchannelDelivery> {
  const { logger } = deps;
  const { clientId } = client;
  for (let { number: attempt, error } = failed; ; ) {
    const delay = RETRY_DELAYS_MS[attempt - 1];
    if (delay === undefined || performance.now() - failed.started + delay > DELIVERY_DEADLINE_MS) {
      // A command reports the failure itself (one line per token); a server has only its log.
      logger[deps.wait ? 'info' : 'warn'](
        { clientId, err: error, attempts: attempt },
        'back-channel logout failed; giving up',
      );
      return { clientId, status: 'failed', attempts: attempt, error };
    }
    logger.info({ clientId, attempt, err: error }, 'back-channel logout attempt failed');
    await sleep(delay, undefined, { ref: deps.wait });
    attempt++;
    const next = await send(client, sub, sid);
    if (next === undefined) {
      logger.info({ clientId, attempt }, 'back-channel logout delivered');
      return { clientId, status: 'delivered', attempts: attempt };
    }
    error = next;
  }
}

/** Sends one logout token, with retries; resolves with the outcome. */
export async function deliverLogoutToken(
  client: LogoutTokenRecipient,
  sub: string,
  sid: string,
  deps: DeliveryDeps,
): Promise<BackchannelDelivery> {
  const started = performance.now();
  const error = await send(client, sub, sid);
  if (error === undefined) {
    deps.logger.info({ clientId: client.clientId, attempt: 1 }, 'back-channel logout delivered');
    return { clientId: client.clientId, status: 'delivered', attempts: 1 };
  }
  return retry(client, sub, sid, deps, { number: 1, error, started });
}

/**
 * The engine sends the logout token of an RP-initiated logout once, and reports the outcome in
 * its documented `backchannel.success` / `backchannel.error` events: retries start from there,
 * in the background, with the same delays as a command's.
 */
export function retryFailedBackchannelLogout(provider: Provider, logger: Logger): void {
  provider.on('backchannel.success', (_ctx, client) =>
    logger.info({ clientId: client.clientId, attempt: 1 }, 'back-channel logout delivered'),
  );
  provider.on('backchannel.error', (_ctx, error, client, sub, sid) => {
    const failed = { number: 1, error: error.message, started: performance.now() };
    void retry(client as LogoutTokenRecipient, sub, sid, { logger, wait: false }, failed);
  });
}
