import { describe, expect, it } from 'vitest';

import type { Clock } from '../../src/shared/clock.ts';
import { createTtlCache } from '../../src/shared/ttl-cache.ts';

// A frozen clock the test moves by hand; nothing here waits for real time.

function frozenClock(): Clock & { advance(ms: number): void } {
  let ms = Date.parse('2026-12-01T12:00:00Z');
  return {
    now: () => new Date(ms),
    advance(by) {
      ms += by;
    },
  };
}

/** A load function that counts its calls and answers what `answer` says. */
function loader<V>(answer: (call: number) => Promise<V>) {
  const load = () => answer(++load.calls);
  load.calls = 0;
  return load;
}

/** A promise the test settles by hand. */
function deferred<V>() {
  let resolve!: (value: V) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<V>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const TTL = 5_000;

describe('createTtlCache', () => {
  it('loads a key once and answers from memory until its time is up', async () => {
    const clock = frozenClock();
    const cache = createTtlCache<string>({ ttlMs: TTL, max: 10, clock });
    const load = loader(async (call) => `value ${call}`);

    expect(await cache.get('a', load)).toBe('value 1');
    clock.advance(TTL - 1);
    expect(await cache.get('a', load)).toBe('value 1');
    expect(load.calls).toBe(1);
    clock.advance(1);
    expect(await cache.get('a', load)).toBe('value 2');
    expect(load.calls).toBe(2);
  });

  it('counts the time from the load, not from the last read', async () => {
    const clock = frozenClock();
    const cache = createTtlCache<string>({ ttlMs: TTL, max: 10, clock });
    const load = loader(async (call) => `value ${call}`);

    await cache.get('a', load);
    for (let i = 0; i < 4; i++) {
      clock.advance(TTL / 4);
      await cache.get('a', load);
    }
    expect(load.calls).toBe(2);
  });

  it('remembers a miss like any other answer', async () => {
    const clock = frozenClock();
    const cache = createTtlCache<string | undefined>({ ttlMs: TTL, max: 10, clock });
    const load = loader(async () => undefined);

    expect(await cache.get('nobody', load)).toBeUndefined();
    expect(await cache.get('nobody', load)).toBeUndefined();
    expect(load.calls).toBe(1);
  });

  it('keeps keys apart', async () => {
    const cache = createTtlCache<string>({ ttlMs: TTL, max: 10, clock: frozenClock() });

    expect(await cache.get('a', async () => 'A')).toBe('A');
    expect(await cache.get('b', async () => 'B')).toBe('B');
    expect(await cache.get('a', async () => 'not loaded')).toBe('A');
  });

  it('lets concurrent reads of one key share one load', async () => {
    const cache = createTtlCache<string>({ ttlMs: TTL, max: 10, clock: frozenClock() });
    const pending = deferred<string>();
    const load = loader(() => pending.promise);

    const first = cache.get('a', load);
    const second = cache.get('a', load);
    pending.resolve('shared');

    expect(await Promise.all([first, second])).toEqual(['shared', 'shared']);
    expect(load.calls).toBe(1);
  });

  it('does not remember a failed load: the next read loads again', async () => {
    const cache = createTtlCache<string>({ ttlMs: TTL, max: 10, clock: frozenClock() });
    const load = loader(async (call) => {
      if (call === 1) throw new Error('database unavailable');
      return 'recovered';
    });

    await expect(cache.get('a', load)).rejects.toThrow('database unavailable');
    expect(await cache.get('a', load)).toBe('recovered');
    expect(load.calls).toBe(2);
  });

  it('a failed load that was already replaced does not evict its replacement', async () => {
    const cache = createTtlCache<string>({ ttlMs: TTL, max: 10, clock: frozenClock() });
    const slow = deferred<string>();

    const failing = cache.get('a', () => slow.promise);
    cache.delete('a');
    expect(await cache.get('a', async () => 'fresh')).toBe('fresh');
    slow.reject(new Error('timed out'));
    await expect(failing).rejects.toThrow('timed out');

    expect(await cache.get('a', async () => 'loaded again')).toBe('fresh');
  });

  it('forgets a deleted key at once', async () => {
    const cache = createTtlCache<string>({ ttlMs: TTL, max: 10, clock: frozenClock() });

    await cache.get('a', async () => 'old');
    cache.delete('a');
    cache.delete('never cached');

    expect(await cache.get('a', async () => 'new')).toBe('new');
  });

  it('holds at most `max` keys and lets the oldest load go first', async () => {
    const clock = frozenClock();
    const cache = createTtlCache<string>({ ttlMs: TTL, max: 2, clock });

    await cache.get('a', async () => 'A');
    await cache.get('b', async () => 'B');
    await cache.get('c', async () => 'C');

    expect(await cache.get('c', async () => 'reloaded')).toBe('C');
    expect(await cache.get('b', async () => 'reloaded')).toBe('B');
    expect(await cache.get('a', async () => 'reloaded')).toBe('reloaded');
  });

  it('counts a key reloaded after expiry as the newest', async () => {
    const clock = frozenClock();
    const cache = createTtlCache<string>({ ttlMs: TTL, max: 2, clock });

    await cache.get('a', async () => 'A1');
    clock.advance(TTL - 1);
    await cache.get('b', async () => 'B');
    clock.advance(1);
    await cache.get('a', async () => 'A2'); // expired: reloaded, now newer than b
    await cache.get('c', async () => 'C');

    expect(await cache.get('a', async () => 'reloaded')).toBe('A2');
    expect(await cache.get('b', async () => 'reloaded')).toBe('reloaded');
  });
});
