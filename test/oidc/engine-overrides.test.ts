import Provider from 'oidc-provider';
import { expect, it } from 'vitest';

import { ENGINE_OVERRIDES, overrideEngine } from '../../src/oidc/engine-overrides.ts';

// Each method Postern replaces (src/oidc/engine-overrides.ts) or calls outside the engine's
// documented surface, with the arity it had in the engine release we wrote the code against
// (oidc-provider 9.13). An upgrade that drops one or changes its arguments fails here, so the
// override is looked at again rather than silently bypassed or called wrongly.
const OVERRIDDEN: Record<(typeof ENGINE_OVERRIDES)[number], number> = {
  'Client.find': 1, // (id)
  'Client.prototype.compareClientSecret': 1, // (actual)
  'Client.prototype.responseTypeAllowed': 1, // (type)
  'ReplayDetection.unique': 3, // (iss, jti, exp)
};
const CALLED: Record<string, number> = {
  'Client.prototype.backchannelLogout': 2, // (sub, sid): session-admin and back-channel retries send with it
};

type Method = (...args: never) => unknown;

const freshEngine = () => new Provider('http://localhost:3000', {});

function lookup(provider: Provider, name: string): unknown {
  return name.split('.').reduce<unknown>((target, key) => (target as Record<string, unknown>)?.[key], provider);
}

it('every overridden method exists in the engine with the arity it was overridden at', () => {
  const engine = freshEngine();
  const found = Object.fromEntries(
    Object.keys(OVERRIDDEN).map((name) => {
      const method = lookup(engine, name);
      return [name, typeof method === 'function' ? method.length : 'missing'];
    }),
  );
  expect(found).toEqual(OVERRIDDEN);
});

it('every override is recorded here, and each replaces the engine method on the provider it is installed on', () => {
  expect(Object.keys(OVERRIDDEN).sort()).toEqual([...ENGINE_OVERRIDES].sort());
  const engine = freshEngine();
  const ours = freshEngine();
  overrideEngine(ours, { clientSecretKey: Buffer.alloc(32) });
  for (const name of ENGINE_OVERRIDES) {
    const original = lookup(engine, name) as Method;
    const replaced = lookup(ours, name) as Method;
    expect(replaced, name).not.toBe(original);
    // The override takes what the engine passes, no more, no less.
    expect(replaced.length, name).toBe(original.length);
  }
});

it('the engine methods we call directly exist with the arity we call them with', () => {
  const engine = freshEngine();
  for (const [name, arity] of Object.entries(CALLED))
    expect((lookup(engine, name) as Method)?.length, name).toBe(arity);
  // Provider.ctx (docs "General access to ctx"): the request's ctx, read by refresh rotation.
  expect(Object.getOwnPropertyDescriptor(Provider, 'ctx')?.get).toBeTypeOf('function');
});

it("keeps the engine's Client for as long as the adapter hands out the same record, and builds one anew for a changed record", async () => {
  const records = new Map<string, Record<string, unknown>>();
  const client = (name: string) => ({
    client_id: 'app',
    client_secret: 'a-client-secret-of-reasonable-length',
    redirect_uris: ['https://app.example/cb'],
    client_name: name,
  });
  class Records {
    async find(id: string) {
      return records.get(id);
    }
  }
  const provider = new Provider('http://localhost:3000', { adapter: Records as never });
  overrideEngine(provider, { clientSecretKey: Buffer.alloc(32) });
  records.set('app', client('One'));
  const first = await provider.Client.find('app');
  expect(await provider.Client.find('app')).toBe(first);
  records.set('app', client('Two'));
  expect((await provider.Client.find('app'))?.clientName).toBe('Two');
  expect(await provider.Client.find('nobody')).toBeUndefined();
});
