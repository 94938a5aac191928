import { createHash } from 'node:crypto';

import type Provider from 'oidc-provider';

import type { KeyService, SigningKeySet } from '../keys/key.service.ts';
import type { Logger } from '../shared/logger.ts';

/**
 * The engine takes its keys at construction and never rotates them. The key ring watches the
 * key store (a fingerprint query every few seconds), runs the scheduled rotation when it is
 * due (one instance wins the advisory lock), and on any change builds a new Provider with the
 * new key set and swaps it in. Requests in flight finish on the provider they started on.
 */
export interface KeyRing {
  provider(): Provider;
  /** The published JWK Set, its strong ETag and its body, ready to serve. */
  jwks(): { body: string; etag: string };
  keySet(): SigningKeySet;
  /** Looks for changes now (tests; the timer does it every poll interval). */
  refresh(): Promise<boolean>;
  /** Starts looking every poll interval (a server's job; a command takes one snapshot). */
  watch(): void;
  stop(): Promise<void>;
}

function renderJwks(set: SigningKeySet) {
  const body = JSON.stringify(set.publicJwks);
  return { body, etag: `"${createHash('sha256').update(body).digest('base64url')}"` };
}

function logKeyAges(logger: Logger, set: SigningKeySet): void {
  for (const row of set.rows.filter((k) => k.state === 'current')) {
    const ageDays = Math.floor((Date.now() - (row.activated_at ?? row.created_at).getTime()) / 86_400_000);
    logger.info({ kid: row.kid, alg: row.alg, activatedAt: row.activated_at, ageDays }, 'signing key in use');
  }
}

export async function createKeyRing(deps: {
  keys: KeyService;
  buildProvider: (set: SigningKeySet) => Provider;
  logger: Logger;
}): Promise<KeyRing> {
  const { keys, logger } = deps;
  await keys.ensureKeys();
  let set = await keys.load();
  let provider = deps.buildProvider(set);
  let jwks = renderJwks(set);
  logKeyAges(logger, set);

  async function refresh(): Promise<boolean> {
    await keys.rotateIfDue(set.rows);
    if ((await keys.fingerprint()) === set.fingerprint) return false;
    const next = await keys.load();
    provider = deps.buildProvider(next);
    set = next;
    jwks = renderJwks(next);
    logger.info(
      { kids: next.rows.map((k) => `${k.alg}:${k.state}:${k.kid}`) },
      'signing keys changed; provider rebuilt',
    );
    logKeyAges(logger, next);
    return true;
  }

  let running: Promise<unknown> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const check = () => {
    running ??= refresh()
      .catch((error: Error) => logger.warn({ err: error.message }, 'checking signing keys failed; will retry'))
      .finally(() => {
        running = undefined;
      });
  };

  return {
    provider: () => provider,
    jwks: () => jwks,
    keySet: () => set,
    refresh,
    watch() {
      timer ??= setInterval(check, keys.policy.pollSeconds * 1000);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      await running;
    },
  };
}
