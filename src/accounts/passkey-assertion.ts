import type { PublicKeyCredentialRequestOptionsJSON, VerifiedAuthenticationResponse } from '@simplewebauthn/server';

import type { Origin } from './account-page.service.ts';
import { findAccountById, recordLogin } from './account.repository.ts';
import { passkeyAmr, readAssertion, userHandleText } from './passkey-ceremony.ts';
import { advanceCounter, findPasskey, listPasskeys, type StoredPasskey } from './passkey.repository.ts';
import { webauthnLibrary } from './webauthn-library.ts';
import {
  CEREMONY_SECONDS,
  type AssertionRefusal,
  type AssertionResult,
  type Ceremonies,
  type Passkeys,
} from './passkeys.ts';

// Signing in with a passkey (WebAuthn §7.2): the options, bound to an interaction, and the
// verification of the answer, passwordless or as the second factor after a password.

export async function authenticationOptions(
  c: Ceremonies,
  binding: string,
  accountId: string | undefined,
): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const allowed = accountId ? await listPasskeys(c.db, accountId) : [];
  const { generateAuthenticationOptions } = await webauthnLibrary();
  const options = await generateAuthenticationOptions({
    rpID: c.rp.id,
    timeout: CEREMONY_SECONDS * 1000,
    userVerification: c.userVerification,
    ...(accountId ? { allowCredentials: allowed.map((p) => ({ id: p.id, transports: [...p.transports] })) } : {}),
  });
  await c.remember(binding, 'authenticate', options.challenge, accountId);
  return options;
}

type AssertionInput = Parameters<Passkeys['verifyAssertion']>[0];

type Posted = NonNullable<ReturnType<typeof readAssertion>>;

/** §7.2 steps 11 to 21 (@simplewebauthn/server): origin, RP ID, flags, counter, signature. */
async function checkSignature(
  v: Ceremonies,
  posted: Posted,
  passkey: StoredPasskey,
): Promise<VerifiedAuthenticationResponse['authenticationInfo'] | { failed: string; counter?: boolean }> {
  const { verifyAuthenticationResponse } = await webauthnLibrary();
  try {
    const verified = await verifyAuthenticationResponse({
      response: posted.credential,
      expectedChallenge: posted.challenge,
      expectedOrigin: v.rp.origin,
      expectedRPID: v.rp.id,
      credential: {
        id: passkey.id,
        publicKey: new Uint8Array(Buffer.from(passkey.publicKey, 'base64url')),
        counter: passkey.counter,
        transports: [...passkey.transports],
      },
      requireUserVerification: v.requireUserVerification,
    });
    return verified.verified ? verified.authenticationInfo : { failed: 'signature' };
  } catch (error) {
    const message = (error as Error).message;
    // The library refuses a counter that did not move forward (§7.2 step 21: a cloned
    // authenticator, or a replay) with an error of its own; it is the counter refusal.
    return { failed: message.slice(0, 200), counter: /counter/i.test(message) };
  }
}

/**
 * WebAuthn §7.2, in the order that refuses cheaply first: the challenge is used before anything
 * else is looked at, so a posted assertion never gets a second try whatever fails after.
 */
export async function verifyAssertion(v: Ceremonies, input: AssertionInput, origin: Origin): Promise<AssertionResult> {
  const common = { ip: origin.ip ?? null, userAgent: origin.userAgent ?? null, clientId: input.clientId ?? null };
  const refuse = (reason: AssertionRefusal, accountId: string | null = null, detail?: string): AssertionResult => {
    v.audit.record({
      ...common,
      type: 'passkey.refused',
      accountId,
      details: { reason, step: input.step, ...(detail ? { detail } : {}) },
    });
    return { ok: false, reason };
  };
  const posted = readAssertion(input.credential);
  if (!posted) return refuse('malformed');
  const challenge = await v.take(input.binding, 'authenticate', posted.challenge);
  if (!challenge) return refuse('unknown_challenge');
  const passkey = await findPasskey(v.db, posted.credential.id);
  if (!passkey) return refuse('unknown_passkey', challenge.accountId);
  // A second factor is bound to the account that gave its password; a user handle, when the
  // authenticator sends one, must name the passkey's own account (§7.2 step 6).
  if (challenge.accountId && challenge.accountId !== passkey.accountId)
    return refuse('wrong_account', challenge.accountId);
  const handle = posted.credential.response.userHandle;
  if (handle !== undefined && handle !== userHandleText(passkey.accountId))
    return refuse('wrong_account', passkey.accountId);
  const info = await checkSignature(v, posted, passkey);
  if ('failed' in info) return refuse(info.counter ? 'counter' : 'verification_failed', passkey.accountId, info.failed);
  const now = v.clock.now();
  if (!(await advanceCounter(v.db, passkey.id, { from: passkey.counter, to: info.newCounter }, now)))
    return refuse('counter', passkey.accountId);
  const found = await findAccountById(v.db, passkey.accountId);
  if (!found || found.disabled) return refuse('disabled', passkey.accountId);
  const account = input.step === 'passwordless' ? ((await recordLogin(v.db, found.id, now)) ?? found) : found;
  const amr = passkeyAmr(info.credentialDeviceType, info.userVerified);
  const details = { passkey: passkey.id, name: passkey.name, step: input.step, amr };
  v.audit.record({ ...common, type: 'passkey.used', accountId: account.id, details });
  if (input.step === 'passwordless')
    v.audit.record({ ...common, type: 'login.succeeded', accountId: account.id, details: { method: 'passkey', amr } });
  return { ok: true, account, amr, passkeyId: passkey.id };
}
