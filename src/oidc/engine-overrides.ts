import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';

import { verifyClientSecret } from '../clients/client-secret.ts';
import { ReplayDetected } from './adapter.ts';

// Every place Postern replaces a method of the engine's own models, and why. DESIGN §3 says the
// engine stays the engine: each of these does what no documented option, hook or event can,
// and test/oidc/engine-overrides.test.ts fails when an engine upgrade removes one of the
// methods or changes its arity, so that each is looked at again.
//
// What is not here, because the engine documents it: its configuration, `provider.use`
// (oidc/engine-middleware.ts), its events (oidc/provider-events.ts; back-channel logout retries
// ride on `backchannel.error`, oidc/backchannel-logout.ts), and `Provider.ctx`, the request's
// ctx from anywhere inside its handlers (docs "General access to ctx"; oidc/refresh-rotation.ts).

/** The overridden methods, as the engine names them; the test checks each against the engine. */
export const ENGINE_OVERRIDES = [
  'Client.find',
  'Client.prototype.compareClientSecret',
  'Client.prototype.responseTypeAllowed',
  'ReplayDetection.unique',
] as const;

/**
 * DESIGN §5: stored client secrets are keyed hashes (clients/client-secret.ts), never the
 * secret. The engine compares the stored value with the presented one; compare the hash of
 * what was presented instead. The engine documents no hook for secret comparison.
 */
function compareHashedClientSecrets(provider: Provider, key: Buffer): void {
  provider.Client.prototype.compareClientSecret = function compareClientSecret(actual: string) {
    return this.clientSecret !== undefined && verifyClientSecret(key, this.clientSecret, actual);
  };
}

/**
 * The engine offers every response type in its configuration (and discovery lists them), then
 * answers a client not registered for one with invalid_request. To that client Postern simply
 * does not support it: RFC 6749 §4.1.2.1 unsupported_response_type, sent to its redirect URI.
 */
function refuseUnregisteredResponseTypes(provider: Provider): void {
  const proto = provider.Client.prototype;
  const registered = proto.responseTypeAllowed;
  proto.responseTypeAllowed = function responseTypeAllowed(type) {
    if (!registered.call(this, type))
      throw new errors.UnsupportedResponseType(`response_type ${type} is not enabled for this client`);
    return true;
  };
}

/**
 * The engine's ReplayDetection.unique (client assertions, DPoP proofs; RFC 7523 §3 item 7) finds,
 * then saves. Our adapter makes the save insert-only, so of two concurrent uses of one assertion
 * the second save fails: that use is a replay, and the engine answers it exactly as a later replay.
 */
function answerLostReplayRaceAsReplay(provider: Provider): void {
  const model = provider.ReplayDetection;
  const unique = model.unique.bind(model);
  model.unique = async (iss, jti, exp) => {
    try {
      return await unique(iss, jti, exp);
    } catch (error) {
      if (error instanceof ReplayDetected) return false;
      throw error;
    }
  };
}

type ClientModel = Provider['Client'] & { adapter: { find(id: string): Promise<object | undefined> } };

/**
 * The engine's Client.find rebuilds a stored client's properties, serializes and hashes them on
 * every request to find its cached Client (lib/models/client.js). Our adapter hands out one
 * properties object per client record (oidc/adapter.ts) for as long as the client directory
 * keeps that record (clients/client-directory.ts: POSTERN_CACHE_SECONDS, or until this instance
 * changes the client), so the Client built from it is kept with it, and goes with it. No
 * documented option caches Client instances for an adapter.
 */
function keepClientPerRecord(provider: Provider): void {
  const model = provider.Client as ClientModel;
  const find = model.find.bind(model);
  const built = new WeakMap<object, Awaited<ReturnType<typeof find>>>();
  model.find = async (id: string) => {
    const properties = typeof id === 'string' && id ? await model.adapter.find(id) : undefined;
    const kept = properties && built.get(properties);
    if (kept) return kept;
    const client = await find(id);
    if (properties && client) built.set(properties, client);
    return client;
  };
}

/** Installs every override on one provider (each provider has its own model classes). */
export function overrideEngine(provider: Provider, deps: { clientSecretKey: Buffer }): void {
  keepClientPerRecord(provider);
  compareHashedClientSecrets(provider, deps.clientSecretKey);
  refuseUnregisteredResponseTypes(provider);
  answerLostReplayRaceAsReplay(provider);
}
