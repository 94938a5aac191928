import { randomBytes } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Account } from '../../src/accounts/account.ts';
import { advanceCounter } from '../../src/accounts/passkey.repository.ts';
import type { Passkeys, UserVerification } from '../../src/accounts/passkeys.ts';
import { passkeyServiceOn, startServerOnOwnDatabase } from '../support/setup.ts';
import { createTestClock, type TestServer } from '../support/server.ts';
import { createSoftwarePasskey, type SoftwarePasskey } from '../support/software-authenticator.ts';

// The passkey service on a real database, answered by a software authenticator: what a browser
// would never send (an old counter, no user verification, a passkey of someone else after a
// password), and what the page after the password will call (a second factor).

const ISSUER = 'https://id.example.com';
const RP_ID = 'id.example.com';
const PASSWORD = 'a long enough passphrase';

let server: TestServer;
const clock = createTestClock();
let ann: Account;
let bob: Account;

function service(userVerification: UserVerification = 'required'): Passkeys {
  return passkeyServiceOn(server, clock, ISSUER, userVerification);
}

/** A passkey registered to the account through the service, as the account page does it. */
async function registered(passkeys: Passkeys, account: Account, flags = {}): Promise<SoftwarePasskey> {
  const key = createSoftwarePasskey(RP_ID);
  const binding = `account:${randomBytes(8).toString('hex')}`;
  const options = await passkeys.registrationOptions(account, binding, { name: 'Key', password: PASSWORD });
  const credential = key.register(options, ISSUER, flags);
  await passkeys.register(account, { binding, name: 'Key', password: PASSWORD, credential }, {});
  return key;
}

let interactions = 0;
/** A sign-in's challenge, bound to a new interaction; for a second factor, to the account too. */
async function challenge(passkeys: Passkeys, accountId?: string) {
  const binding = `interaction:${++interactions}`;
  return { binding, options: await passkeys.authenticationOptions(binding, accountId) };
}

beforeAll(async () => {
  server = await startServerOnOwnDatabase();
  ann = await server.container.accounts.create({ username: 'ann', email: 'ann@example.com', password: PASSWORD });
  bob = await server.container.accounts.create({ username: 'bob', email: 'bob@example.com', password: PASSWORD });
});

afterAll(async () => {
  await server?.close();
});

describe('passkeys as a second factor', () => {
  it('offer and accept only the passkeys of the account that gave its password', async () => {
    const passkeys = service();
    const annKey = await registered(passkeys, ann);
    const bobKey = await registered(passkeys, bob);
    const forAnn = await challenge(passkeys, ann.id);
    expect(forAnn.options.allowCredentials?.map((c) => c.id)).toEqual([annKey.id]);
    const bobAnswers = bobKey.assert(forAnn.options, ISSUER, { counter: 1 });
    expect(
      await passkeys.verifyAssertion({ binding: forAnn.binding, credential: bobAnswers, step: 'second_factor' }, {}),
    ).toEqual({ ok: false, reason: 'wrong_account' });

    const again = await challenge(passkeys, ann.id);
    const annAnswers = annKey.assert(again.options, ISSUER, { counter: 1 });
    const result = await passkeys.verifyAssertion(
      { binding: again.binding, credential: annAnswers, step: 'second_factor' },
      {},
    );
    expect(result).toMatchObject({ ok: true, account: { id: ann.id }, amr: ['hwk', 'user'], passkeyId: annKey.id });
  });
});

describe('passkey checks', () => {
  it('let only one of two uses with the same counter value pass, even at the same time', async () => {
    const passkeys = service();
    const key = await registered(passkeys, ann);
    const first = await challenge(passkeys);
    const second = await challenge(passkeys);
    const results = await Promise.all(
      [first, second].map((c) =>
        passkeys.verifyAssertion(
          { binding: c.binding, credential: key.assert(c.options, ISSUER, { counter: 7 }), step: 'passwordless' },
          {},
        ),
      ),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    // The loser read the counter before or after the winner wrote it: refused by the
    // compare-and-set, or by the library's check of the value it read; both are the counter refusal.
    const refused = results.find((r) => !r.ok);
    expect(refused?.ok === false ? refused.reason : undefined).toBe('counter');
    // The statement itself: a use that read an old value moves nothing.
    expect(await advanceCounter(server.container.db.db, key.id, { from: 0, to: 8 }, clock.now())).toBe(false);
    const late = await challenge(passkeys);
    const stale = key.assert(late.options, ISSUER, { counter: 7 });
    expect(
      await passkeys.verifyAssertion({ binding: late.binding, credential: stale, step: 'passwordless' }, {}),
    ).toEqual({ ok: false, reason: 'counter' });
  });

  it('require user verification by default, and with "preferred" sign in without it, amr saying only hwk', async () => {
    const strict = service('required');
    const key = await registered(strict, ann);
    const c1 = await challenge(strict);
    const unverified = key.assert(c1.options, ISSUER, { counter: 1, userVerified: false });
    expect(
      await strict.verifyAssertion({ binding: c1.binding, credential: unverified, step: 'passwordless' }, {}),
    ).toEqual({ ok: false, reason: 'verification_failed' });
    const lenient = service('preferred');
    const lenientKey = await registered(lenient, ann);
    const c2 = await challenge(lenient);
    const answer = lenientKey.assert(c2.options, ISSUER, { counter: 1, userVerified: false });
    expect(
      await lenient.verifyAssertion({ binding: c2.binding, credential: answer, step: 'passwordless' }, {}),
    ).toMatchObject({ ok: true, amr: ['hwk'] });
  });

  it('count a synced passkey as a software key (swk)', async () => {
    const passkeys = service();
    const key = await registered(passkeys, ann, { synced: true });
    const c = await challenge(passkeys);
    const answer = key.assert(c.options, ISSUER, { counter: 1, synced: true });
    expect(
      await passkeys.verifyAssertion({ binding: c.binding, credential: answer, step: 'passwordless' }, {}),
    ).toMatchObject({ ok: true, amr: ['swk', 'user'] });
  });

  it('refuse a challenge five minutes old, and an answer to a challenge of another interaction', async () => {
    const passkeys = service();
    const key = await registered(passkeys, ann);
    const old = await challenge(passkeys);
    clock.advance(301);
    const late = key.assert(old.options, ISSUER, { counter: 1 });
    expect(
      await passkeys.verifyAssertion({ binding: old.binding, credential: late, step: 'passwordless' }, {}),
    ).toEqual({
      ok: false,
      reason: 'unknown_challenge',
    });
    const mine = await challenge(passkeys);
    const theirs = await challenge(passkeys);
    const answer = key.assert(theirs.options, ISSUER, { counter: 2 });
    expect(
      await passkeys.verifyAssertion({ binding: mine.binding, credential: answer, step: 'passwordless' }, {}),
    ).toEqual({ ok: false, reason: 'unknown_challenge' });
  });

  it('add a passkey only with the current password, checked before the authenticator is asked, and only once', async () => {
    const passkeys = service();
    const key = createSoftwarePasskey(RP_ID);
    const binding = 'account:session-1';
    await expect(
      passkeys.registrationOptions(ann, binding, { name: 'Key', password: 'not the password' }),
    ).rejects.toMatchObject({ fields: [{ field: 'passkey_password' }] });
    const options = await passkeys.registrationOptions(ann, binding, { name: 'Key', password: PASSWORD });
    const credential = key.register(options, ISSUER);
    await expect(
      passkeys.register(ann, { binding, name: 'Key', password: 'not the password', credential }, {}),
    ).rejects.toMatchObject({ fields: [{ field: 'passkey_password' }] });
    await passkeys.register(ann, { binding, name: 'Key', password: PASSWORD, credential }, {});
    // The same answer again: its challenge is spent.
    await expect(
      passkeys.register(ann, { binding, name: 'Key again', password: PASSWORD, credential }, {}),
    ).rejects.toMatchObject({ fields: [{ field: 'passkey_name', detail: expect.stringContaining('expired') }] });
    expect((await passkeys.list(ann.id)).filter((p) => p.id === key.id)).toHaveLength(1);
  });

  it("remove every passkey of one account at once (an administrator reset), and no other account's", async () => {
    const passkeys = service();
    const annKey = await registered(passkeys, ann);
    const bobKey = await registered(passkeys, bob);
    const annCount = (await passkeys.list(ann.id)).length;
    expect(await passkeys.removeAll(ann.id, {})).toBe(annCount);
    expect(await passkeys.list(ann.id)).toEqual([]);
    expect((await passkeys.list(bob.id)).map((p) => p.id)).toContain(bobKey.id);
    const c = await challenge(passkeys);
    const answer = annKey.assert(c.options, ISSUER, { counter: 1 });
    expect(
      await passkeys.verifyAssertion({ binding: c.binding, credential: answer, step: 'passwordless' }, {}),
    ).toEqual({ ok: false, reason: 'unknown_passkey' });
  });
});
