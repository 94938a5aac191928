import { describe, expect, it } from 'vitest';

import type { KeyState, SigningKeyRow } from '../../src/db/tables.ts';
import {
  isEmptyPlan,
  type KeyPolicy,
  nextKeyReadyAt,
  planRotation,
  rotationDueAt,
} from '../../src/keys/key-lifecycle.ts';

// The planner is pure: it reads rows and one instant. The clock is frozen at NOW and every
// row's times are written relative to it, so each boundary is hit to the second.

const NOW = new Date('2026-12-01T12:00:00Z');
const ago = (s: number) => new Date(NOW.getTime() - s * 1000);
const later = (s: number) => new Date(NOW.getTime() + s * 1000);

const DAY = 86_400;
const policy: KeyPolicy = {
  algs: ['RS256', 'ES256'],
  rotationSeconds: 90 * DAY,
  jwksCacheSeconds: 3_600,
  pollSeconds: 60,
};
/** How long a next key must have been published before it may sign. */
const READY = policy.jwksCacheSeconds + policy.pollSeconds;

function key(
  kid: string,
  state: KeyState,
  times: { alg?: string; created: Date; activated?: Date; retireAfter?: Date },
): SigningKeyRow {
  return {
    kid,
    alg: times.alg ?? 'RS256',
    state,
    public_jwk: {},
    private_jwk_encrypted: '',
    created_at: times.created,
    activated_at: times.activated ?? null,
    retire_after: times.retireAfter ?? null,
  };
}

/** A current and a next key for each algorithm of the policy, neither due for anything. */
function settled(alg: string): SigningKeyRow[] {
  return [
    key(`${alg}-current`, 'current', { alg, created: ago(10 * DAY), activated: ago(10 * DAY) }),
    key(`${alg}-next`, 'next', { alg, created: ago(10 * DAY) }),
  ];
}

describe('nextKeyReadyAt and rotationDueAt', () => {
  it('a next key is ready once JWKS caches and every instance have had time to see it', () => {
    const next = key('n', 'next', { created: NOW });

    expect(nextKeyReadyAt(next, policy)).toEqual(later(3_660));
  });

  it('rotation is due a rotation period after the current key began to sign', () => {
    const current = key('c', 'current', { created: ago(200 * DAY), activated: ago(30 * DAY) });

    expect(rotationDueAt(current, policy)).toEqual(later(60 * DAY));
  });

  it('counts from creation for a current key that never recorded its activation', () => {
    const current = key('c', 'current', { created: ago(30 * DAY) });

    expect(rotationDueAt(current, policy)).toEqual(later(60 * DAY));
  });
});

describe('planRotation', () => {
  it('plans nothing for settled keys', () => {
    const plan = planRotation([...settled('RS256'), ...settled('ES256')], NOW, policy);

    expect(plan).toEqual({ promote: [], remove: [], incomplete: [] });
    expect(isEmptyPlan(plan)).toBe(true);
  });

  it('promotes the next key the second rotation is due, and not a second before', () => {
    const rows = (activatedAgo: number) => [
      key('c', 'current', { created: ago(400 * DAY), activated: ago(activatedAgo) }),
      key('n', 'next', { created: ago(30 * DAY) }),
      ...settled('ES256'),
    ];

    expect(planRotation(rows(policy.rotationSeconds - 1), NOW, policy).promote).toEqual([]);
    expect(planRotation(rows(policy.rotationSeconds), NOW, policy).promote).toEqual(['RS256']);
  });

  it('waits for a next key that is too new to be in every cache, even when rotation is overdue', () => {
    const rows = (nextAgo: number) => [
      key('c', 'current', { created: ago(400 * DAY), activated: ago(200 * DAY) }),
      key('n', 'next', { created: ago(nextAgo) }),
      ...settled('ES256'),
    ];

    expect(planRotation(rows(READY - 1), NOW, policy).promote).toEqual([]);
    expect(planRotation(rows(READY), NOW, policy).promote).toEqual(['RS256']);
  });

  it('reports an algorithm without a current or a next key as incomplete, and does not promote it', () => {
    const [current, next] = settled('ES256');
    const overdue = key('c', 'current', { created: ago(400 * DAY), activated: ago(200 * DAY) });

    expect(planRotation([overdue, current!], NOW, policy)).toMatchObject({
      promote: [],
      incomplete: ['RS256', 'ES256'],
    });
    expect(planRotation([overdue, ...settled('ES256')], NOW, policy).incomplete).toEqual(['RS256']);
    expect(planRotation([...settled('RS256'), next!], NOW, policy).incomplete).toEqual(['ES256']);
    expect(planRotation([], NOW, policy).incomplete).toEqual(['RS256', 'ES256']);
  });

  it('does not let one algorithm stand in for another', () => {
    const rows = [...settled('RS256'), key('ps', 'next', { alg: 'PS256', created: ago(DAY) })];

    expect(planRotation(rows, NOW, policy).incomplete).toEqual(['ES256']);
  });

  it('ignores keys of an algorithm the policy no longer lists, except to delete them once retired', () => {
    const rows = [
      ...settled('RS256'),
      ...settled('ES256'),
      key('old-current', 'current', { alg: 'PS256', created: ago(400 * DAY), activated: ago(400 * DAY) }),
      key('old-retired', 'retired', { alg: 'PS256', created: ago(400 * DAY), retireAfter: ago(1) }),
    ];

    expect(planRotation(rows, NOW, policy)).toEqual({ promote: [], remove: ['old-retired'], incomplete: [] });
  });

  it('deletes a retired key the second its last token has expired, and not a second before', () => {
    const rows = [
      ...settled('RS256'),
      ...settled('ES256'),
      key('gone', 'retired', { created: ago(300 * DAY), retireAfter: ago(1) }),
      key('just-now', 'retired', { created: ago(200 * DAY), retireAfter: NOW }),
      key('still-needed', 'retired', { created: ago(100 * DAY), retireAfter: later(1) }),
    ];

    expect(planRotation(rows, NOW, policy).remove).toEqual(['gone', 'just-now']);
  });

  it('keeps a retired key with no retirement time, and never deletes a key that is not retired', () => {
    const rows = [
      key('c', 'current', { created: ago(10 * DAY), activated: ago(10 * DAY), retireAfter: ago(DAY) }),
      key('n', 'next', { created: ago(DAY), retireAfter: ago(DAY) }),
      key('r', 'retired', { created: ago(300 * DAY) }),
      ...settled('ES256'),
    ];

    expect(planRotation(rows, NOW, policy).remove).toEqual([]);
  });

  it('plans each algorithm on its own', () => {
    const rows = [
      key('rs-c', 'current', { created: ago(400 * DAY), activated: ago(100 * DAY) }),
      key('rs-n', 'next', { created: ago(DAY) }),
      key('es-c', 'current', { alg: 'ES256', created: ago(5 * DAY), activated: ago(5 * DAY) }),
      key('es-n', 'next', { alg: 'ES256', created: ago(5 * DAY) }),
    ];

    expect(planRotation(rows, NOW, policy)).toEqual({ promote: ['RS256'], remove: [], incomplete: [] });
  });
});

describe('isEmptyPlan', () => {
  it('is false as soon as any list has an entry', () => {
    const empty = { promote: [], remove: [], incomplete: [] };

    expect(isEmptyPlan(empty)).toBe(true);
    expect(isEmptyPlan({ ...empty, promote: ['RS256'] })).toBe(false);
    expect(isEmptyPlan({ ...empty, remove: ['kid'] })).toBe(false);
    expect(isEmptyPlan({ ...empty, incomplete: ['RS256'] })).toBe(false);
  });
});
