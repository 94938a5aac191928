import type Provider from 'oidc-provider';

/**
 * The one way back from the domain to the protocol engine. The engine is built after the domain
 * (it reads accounts, resources and clients), yet two domain operations need it: checking a new
 * client's metadata the way the engine will, and sending back-channel logout tokens. They ask
 * this link. The server builds the engine at start; a command builds it the first time one of
 * those operations asks, so `user list` or `client list` never loads it (nor makes a key).
 */
export interface EngineLink<Engine extends { provider(): Provider }> {
  provider(): Promise<Provider>;
  /** The engine, built now if it was not yet. */
  engine(): Promise<Engine>;
  /** The engine if something built it: what a command has to stop. */
  built(): Promise<Engine> | undefined;
  /** Says how to build the engine; nothing is built until something asks. */
  connect(build: () => Promise<Engine>): void;
}

export function createEngineLink<Engine extends { provider(): Provider }>(): EngineLink<Engine> {
  let build: (() => Promise<Engine>) | undefined;
  let built: Promise<Engine> | undefined;
  const engine = () => {
    if (!build) return Promise.reject(new Error('the protocol engine is not connected'));
    built ??= build();
    return built;
  };
  return {
    engine,
    async provider() {
      return (await engine()).provider();
    },
    built: () => built,
    connect(fn) {
      build = fn;
    },
  };
}
