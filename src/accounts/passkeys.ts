import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
} from '@simplewebauthn/server';
import { isIP } from 'node:net';

import type { Kysely, Transaction } from 'kysely';

import type { AuditLog } from '../audit/audit-log.ts';
import type { Database, WebauthnChallengePurpose } from '../db/tables.ts';
import { isUniqueViolation } from '../db/unique-violation.ts';
import type { MailOutbox } from '../mail/mail-outbox.ts';
import type { Clock } from '../shared/clock.ts';
import { invalid } from '../shared/errors.ts';
import type { Origin } from './account-page.service.ts';
import type { Account } from './account.ts';
import { findAccountById, findPasswordHash, recordLogin } from './account.repository.ts';
import {
  challengeHasher,
  passkeyAmr,
  readAssertion,
  readAttestation,
  relyingParty,
  userHandle,
  userHandleText,
} from './passkey-ceremony.ts';
import {
  advanceCounter,
  deleteExpiredChallenges,
  deletePasskey,
  findPasskey,
  insertPasskey,
  listPasskeys,
  putChallenge,
  takeChallenge,
  type StoredPasskey,
} from './passkey.repository.ts';
import type { PasswordHasher } from './password-hasher.ts';

// Passkeys (WebAuthn, with @simplewebauthn/server): registering from the account page, and
// verifying an assertion, passwordless from the login page or (wired by the MFA page) after
// a password. Every ceremony's challenge lives in the database, bound to the interaction or
// the account-page session that asked for it, and serves once (passkey.repository.ts).

/** WebAuthn §5.8.6: asked of the authenticator, and enforced (flag UV) when 'required'. */
export type UserVerification = 'required' | 'preferred' | 'discouraged';

export interface PasskeyView {
  readonly id: string;
  readonly name: string;
  readonly createdAt: Date;
  readonly lastUsedAt: Date | null;
}

/** Where an assertion is used: it decides only the audit events (passwordless is a sign-in). */
export type PasskeyStep = 'passwordless' | 'second_factor';

export type AssertionRefusal =
  | 'malformed'
  | 'unknown_challenge'
  | 'unknown_passkey'
  | 'wrong_account'
  | 'verification_failed'
  | 'counter'
  | 'disabled';

export type AssertionResult =
  | { readonly ok: true; readonly account: Account; readonly amr: readonly string[]; readonly passkeyId: string }
  | { readonly ok: false; readonly reason: AssertionRefusal };

export interface Passkeys {
  /**
   * false when the issuer's host is an IP address: WebAuthn §5.1.4.1 takes only a domain as RP
   * ID, so browsers refuse every ceremony; the pages then offer no passkey at all.
   */
  readonly available: boolean;
  list(accountId: string): Promise<PasskeyView[]>;
  /** Options for navigator.credentials.create(); `binding` names the session that asked. */
  registrationOptions(account: Account, binding: string): Promise<PublicKeyCredentialCreationOptionsJSON>;
  /**
   * Verifies and stores a new passkey. It can sign in alone, so it asks for the current
   * password as a changed email address does; a field error (`passkey_name`, `passkey_password`)
   * when it cannot be stored.
   */
  register(
    account: Account,
    input: { binding: string; name: string; password: string; credential: string },
    origin: Origin,
  ): Promise<PasskeyView>;
  /** false when the account has no such passkey. */
  remove(accountId: string, id: string, origin: Origin): Promise<boolean>;
  /**
   * Options for navigator.credentials.get(), bound to an interaction. Without an account:
   * discoverable credentials (the authenticator offers its passkeys for this RP ID). With one
   * (a second factor): only that account's passkeys, and only they will be accepted.
   */
  authenticationOptions(binding: string, accountId?: string): Promise<PublicKeyCredentialRequestOptionsJSON>;
  /** The account a posted assertion proves, and its RFC 8176 amr values; or why not. */
  verifyAssertion(
    input: { binding: string; credential: string; step: PasskeyStep; clientId?: string },
    origin: Origin,
  ): Promise<AssertionResult>;
  /** Deletes challenges past their expiry (the sweeper calls it). */
  sweep(now: Date): Promise<number>;
}

/** Five minutes to finish a ceremony (WebAuthn §15.1 recommends 5 to 10 for user verification). */
const CEREMONY_SECONDS = 300;
const NAME_MAX = 64;
const PASSKEYS_MAX = 25;

export interface PasskeyDeps {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly audit: AuditLog;
  readonly outbox: MailOutbox;
  readonly hasher: PasswordHasher;
  readonly issuer: string;
  /** Shown by the authenticator when creating a passkey. */
  readonly publicName: string;
  readonly challengeKey: Buffer;
  readonly userVerification: UserVerification;
}

const view = (p: StoredPasskey): PasskeyView => ({
  id: p.id,
  name: p.name,
  createdAt: p.createdAt,
  lastUsedAt: p.lastUsedAt,
});

function passkeyName(raw: string): string {
  const name = raw.trim();
  if (name === '') invalid('give the passkey a name, such as the device it is on', 'passkey_name');
  if (name.length > NAME_MAX) invalid(`at most ${NAME_MAX} characters`, 'passkey_name');
  if (/\p{Cc}/u.test(name)) invalid('must not contain control characters', 'passkey_name');
  return name;
}

export function createPasskeys(deps: PasskeyDeps): Passkeys {
  const { db, clock, audit } = deps;
  const rp = relyingParty(deps.issuer, deps.publicName);
  const hash = challengeHasher(deps.challengeKey);
  const requireUserVerification = deps.userVerification === 'required';

  async function remember(binding: string, purpose: WebauthnChallengePurpose, challenge: string, accountId?: string) {
    await putChallenge(db, {
      bindingHash: hash.binding(binding),
      purpose,
      challengeHash: hash.challenge(challenge),
      accountId: accountId ?? null,
      expiresAt: new Date(clock.now().getTime() + CEREMONY_SECONDS * 1000),
    });
  }

  /** argon2 whether or not the account has a password: the timing tells nothing. */
  async function requirePassword(accountId: string, password: string): Promise<void> {
    const stored = await findPasswordHash(db, accountId);
    if (!stored) await deps.hasher.verifyDummy(password);
    const ok = stored ? (await deps.hasher.verify(stored, password)).ok : false;
    if (!ok) invalid('the password is not correct', 'passkey_password');
  }

  const take = (binding: string, purpose: WebauthnChallengePurpose, challenge: string) =>
    takeChallenge(
      db,
      { bindingHash: hash.binding(binding), purpose, challengeHash: hash.challenge(challenge) },
      clock.now(),
    );

  /** The owner hears of every passkey added or removed, in the transaction of the change. */
  async function notify(
    tx: Transaction<Database>,
    account: Account,
    template: 'passkey-added' | 'passkey-removed',
    passkey: string,
  ) {
    if (!deps.outbox.enabled) return;
    const name = account.profile.name;
    await deps.outbox.enqueue(tx, { to: account.email, template, data: { ...(name ? { name } : {}), passkey } });
  }

  const event = (type: Parameters<AuditLog['record']>[0]['type'], accountId: string | null, origin: Origin) => ({
    type,
    accountId,
    ip: origin.ip ?? null,
    userAgent: origin.userAgent ?? null,
  });

  return {
    available: isIP(rp.id) === 0,

    async list(accountId) {
      return (await listPasskeys(db, accountId)).map(view);
    },

    async registrationOptions(account, binding) {
      const existing = await listPasskeys(db, account.id);
      const options = await generateRegistrationOptions({
        rpName: rp.name,
        rpID: rp.id,
        userName: account.username,
        userID: userHandle(account.id),
        userDisplayName: account.profile.name ?? account.username,
        timeout: CEREMONY_SECONDS * 1000,
        attestationType: 'none',
        // The same authenticator twice would be one passkey under two names.
        excludeCredentials: existing.map((p) => ({ id: p.id, transports: [...p.transports] })),
        // Discoverable ("resident") credentials: the login page signs in without a username.
        authenticatorSelection: { residentKey: 'required', userVerification: deps.userVerification },
      });
      await remember(binding, 'register', options.challenge, account.id);
      return options;
    },

    async register(account, input, origin) {
      const name = passkeyName(input.name);
      await requirePassword(account.id, input.password);
      const posted = readAttestation(input.credential);
      if (!posted) invalid('your browser did not create a passkey (it needs JavaScript); try again', 'passkey_name');
      const challenge = await take(input.binding, 'register', posted.challenge);
      if (!challenge || challenge.accountId !== account.id)
        invalid('this request to add a passkey has expired; try again', 'passkey_name');
      if ((await listPasskeys(db, account.id)).length >= PASSKEYS_MAX)
        invalid(`an account can have at most ${PASSKEYS_MAX} passkeys; remove one first`, 'passkey_name');
      const verified = await verifyRegistrationResponse({
        response: posted.credential,
        expectedChallenge: posted.challenge,
        expectedOrigin: rp.origin,
        expectedRPID: rp.id,
        requireUserVerification,
      }).catch(() => undefined);
      if (!verified?.verified) invalid('the passkey could not be verified; try again', 'passkey_name');
      const { credential, credentialDeviceType, credentialBackedUp } = verified.registrationInfo;
      const stored = {
        id: credential.id,
        accountId: account.id,
        publicKey: Buffer.from(credential.publicKey).toString('base64url'),
        counter: credential.counter,
        transports: credential.transports ?? [],
        deviceType: credentialDeviceType,
        backedUp: credentialBackedUp,
        name,
        createdAt: clock.now(),
      };
      try {
        await db.transaction().execute(async (tx) => {
          await insertPasskey(tx, stored);
          await notify(tx, account, 'passkey-added', name);
        });
      } catch (error) {
        if (isUniqueViolation(error)) invalid('this passkey is registered already', 'passkey_name');
        throw error;
      }
      audit.record({ ...event('passkey.registered', account.id, origin), details: { passkey: stored.id, name } });
      return view({ ...stored, lastUsedAt: null });
    },

    async remove(accountId, id, origin) {
      const removed = await db.transaction().execute(async (tx) => {
        const account = await findAccountById(tx, accountId);
        const gone = account && (await deletePasskey(tx, accountId, id));
        if (account && gone) await notify(tx, account, 'passkey-removed', gone.name);
        return gone;
      });
      if (!removed) return false;
      audit.record({ ...event('passkey.removed', accountId, origin), details: { passkey: id, name: removed.name } });
      return true;
    },

    async authenticationOptions(binding, accountId) {
      const allowed = accountId ? await listPasskeys(db, accountId) : [];
      const options = await generateAuthenticationOptions({
        rpID: rp.id,
        timeout: CEREMONY_SECONDS * 1000,
        userVerification: deps.userVerification,
        ...(accountId ? { allowCredentials: allowed.map((p) => ({ id: p.id, transports: [...p.transports] })) } : {}),
      });
      await remember(binding, 'authenticate', options.challenge, accountId);
      return options;
    },

    verifyAssertion: (input, origin) => verifyAssertion({ ...deps, rp, take, requireUserVerification }, input, origin),

    sweep: (now) => deleteExpiredChallenges(db, now),
  };
}

interface Verifier extends PasskeyDeps {
  readonly rp: ReturnType<typeof relyingParty>;
  readonly requireUserVerification: boolean;
  take(
    binding: string,
    purpose: WebauthnChallengePurpose,
    challenge: string,
  ): Promise<{ accountId: string | null } | undefined>;
}

type AssertionInput = Parameters<Passkeys['verifyAssertion']>[0];

/**
 * WebAuthn §7.2, in the order that refuses cheaply first: the challenge is used before anything
 * else is looked at, so a posted assertion never gets a second try whatever fails after.
 */
async function verifyAssertion(v: Verifier, input: AssertionInput, origin: Origin): Promise<AssertionResult> {
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
  let verified: Awaited<ReturnType<typeof verifyAuthenticationResponse>>;
  try {
    verified = await verifyAuthenticationResponse({
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
  } catch (error) {
    return refuse('verification_failed', passkey.accountId, (error as Error).message.slice(0, 200));
  }
  if (!verified.verified) return refuse('verification_failed', passkey.accountId);
  const info = verified.authenticationInfo;
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
