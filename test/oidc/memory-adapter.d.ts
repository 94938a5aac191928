// oidc-provider ships no types for its reference adapter; the contract suite runs against it.
declare module 'oidc-provider/lib/adapters/memory_adapter.js' {
  import type { Adapter } from 'oidc-provider';

  export default class MemoryAdapter implements Adapter {
    constructor(model: string, store?: unknown, clockTolerance?: number);
    upsert: Adapter['upsert'];
    find: Adapter['find'];
    findByUid: Adapter['findByUid'];
    findByUserCode: Adapter['findByUserCode'];
    consume: Adapter['consume'];
    destroy: Adapter['destroy'];
    revokeByGrantId: Adapter['revokeByGrantId'];
  }

  /** A factory whose adapters share one private store (so suites do not see each other's records). */
  export function createMemoryAdapter(clockTolerance?: number): (model: string) => MemoryAdapter;
}
