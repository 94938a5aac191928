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

type Sender = (this: { clientId: string }, sub: string, sid: string) => Promise<void>;

async function deliver(
  send: Sender,
  client: { clientId: string },
  sub: string,
  sid: string,
  deps: { logger: Logger; wait: boolean },
): Promise<BackchannelDelivery> {
  const { logger } = deps;
  const { clientId } = client;
  const started = performance.now(); // monotonic: a wall-clock step must not stretch the bound
  for (let attempt = 1; ; attempt++) {
    try {
      await send.call(client, sub, sid);
      logger.info({ clientId, attempt }, 'back-channel logout delivered');
      return { clientId, status: 'delivered', attempts: attempt };
    } catch (error) {
      const message = (error as Error).message;
      const delay = RETRY_DELAYS_MS[attempt - 1];
      if (delay === undefined || performance.now() - started + delay > DELIVERY_DEADLINE_MS) {
        // A command reports the failure itself (one line per token); a server has only its log.
        logger[deps.wait ? 'info' : 'warn'](
          { clientId, err: message, attempts: attempt },
          'back-channel logout failed; giving up',
        );
        return { clientId, status: 'failed', attempts: attempt, error: message };
      }
      logger.info({ clientId, attempt, err: message }, 'back-channel logout attempt failed');
      // The server lets a pending retry die with the process; the CLI waits for it.
      await sleep(delay, undefined, { ref: deps.wait });
    }
  }
}

/**
 * Back-channel logout, retried (1 s, 2 s, 4 s, within 10 s) where the engine sends it once.
 * The server never lets delivery block a logout: the token goes in the background and the
 * method answers `queued` at once. A command (`wait`) has no background to leave it to, since
 * the process exits: the method then resolves with the outcome, so it can be reported.
 */
export function retryBackchannelLogout(provider: Provider, logger: Logger, options: { wait: boolean }): void {
  const proto = provider.Client.prototype as unknown as { backchannelLogout: Sender };
  const send = proto.backchannelLogout;
  proto.backchannelLogout = function backchannelLogout(sub, sid) {
    const delivery = deliver(send, this, sub, sid, { logger, wait: options.wait });
    return (options.wait ? delivery : Promise.resolve({ clientId: this.clientId, status: 'queued' })) as never;
  };
}
