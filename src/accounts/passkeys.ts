import { isIP } from 'node:net';

import type {
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
} from '@simplewebauthn/server';
import type { Kysely } from 'kysely';

import type { AuditLog } from '../audit/audit-log.ts';
import type { Database, WebauthnChallengePurpose } from '../db/tables.ts';
import type { MailOutbox } from '../mail/mail-outbox.ts';
import type { Clock } from '../shared/clock.ts';
import type { Origin } from './account-page.service.ts';
import type { Account } from './account.ts';
import { findAccountById } from './account.repository.ts';
import { authenticationOptions, verifyAssertion } from './passkey-assertion.ts';
import { challengeHasher, relyingParty, type RelyingParty } from './passkey-ceremony.ts';
import { notifyOwner, registerPasskey, registrationOptions } from './passkey-registration.ts';
import {
  deleteAccountPasskeys,
  deleteExpiredChallenges,
  deletePasskey,
  listPasskeys,
  putChallenge,
  takeChallenge,
} from './passkey.repository.ts';
import type { LockoutPolicy } from './lockout-policy.ts';
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
  /**
   * Options for navigator.credentials.create(); `binding` names the session that asked. The
   * name and the current password are checked first (the same field errors as `register`), so
   * a mistyped password never leaves the person's authenticator holding a passkey we refuse.
   */
  registrationOptions(
    account: Account,
    binding: string,
    input: { name: string; password: string },
  ): Promise<PublicKeyCredentialCreationOptionsJSON>;
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
   * Every passkey of the account, at once: for an administrator's reset of a person's factors,
   * which mails the owner itself. Returns how many there were.
   */
  removeAll(accountId: string, origin: Origin): Promise<number>;
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
export const CEREMONY_SECONDS = 300;

export interface PasskeyDeps {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly audit: AuditLog;
  readonly outbox: MailOutbox;
  readonly hasher: PasswordHasher;
  /** POSTERN_LOCKOUT_*: the password asked before adding a passkey is counted (password-check.ts). */
  readonly policy: LockoutPolicy;
  readonly issuer: string;
  /** Shown by the authenticator when creating a passkey. */
  readonly publicName: string;
  readonly challengeKey: Buffer;
  readonly userVerification: UserVerification;
}

/** What every ceremony step uses (passkey-registration.ts, passkey-assertion.ts). */
export interface Ceremonies extends PasskeyDeps {
  readonly rp: RelyingParty;
  readonly requireUserVerification: boolean;
  /** Stores a new challenge for the binding (replacing the one before it). */
  remember(binding: string, purpose: WebauthnChallengePurpose, challenge: string, accountId?: string): Promise<void>;
  /** Uses the binding's challenge, if it is this one and still valid: once. */
  take(
    binding: string,
    purpose: WebauthnChallengePurpose,
    challenge: string,
  ): Promise<{ accountId: string | null } | undefined>;
}

function ceremonies(deps: PasskeyDeps): Ceremonies {
  const { db, clock } = deps;
  const hash = challengeHasher(deps.challengeKey);
  return {
    ...deps,
    rp: relyingParty(deps.issuer, deps.publicName),
    requireUserVerification: deps.userVerification === 'required',
    async remember(binding, purpose, challenge, accountId) {
      await putChallenge(db, {
        bindingHash: hash.binding(binding),
        purpose,
        challengeHash: hash.challenge(challenge),
        accountId: accountId ?? null,
        expiresAt: new Date(clock.now().getTime() + CEREMONY_SECONDS * 1000),
      });
    },
    take: (binding, purpose, challenge) =>
      takeChallenge(
        db,
        { bindingHash: hash.binding(binding), purpose, challengeHash: hash.challenge(challenge) },
        clock.now(),
      ),
  };
}

async function removePasskey(c: Ceremonies, accountId: string, id: string, origin: Origin): Promise<boolean> {
  const removed = await c.db.transaction().execute(async (tx) => {
    const account = await findAccountById(tx, accountId);
    const gone = account && (await deletePasskey(tx, accountId, id));
    if (account && gone) await notifyOwner(c, tx, account, 'passkey-removed', gone.name);
    return gone;
  });
  if (!removed) return false;
  c.audit.record({
    type: 'passkey.removed',
    accountId,
    ip: origin.ip ?? null,
    userAgent: origin.userAgent ?? null,
    details: { passkey: id, name: removed.name },
  });
  return true;
}

export function createPasskeys(deps: PasskeyDeps): Passkeys {
  const c = ceremonies(deps);
  return {
    available: isIP(c.rp.id) === 0,
    list: async (accountId) =>
      (await listPasskeys(c.db, accountId)).map((p) => ({
        id: p.id,
        name: p.name,
        createdAt: p.createdAt,
        lastUsedAt: p.lastUsedAt,
      })),
    registrationOptions: (account, binding, input) => registrationOptions(c, account, binding, input),
    register: (account, input, origin) => registerPasskey(c, account, input, origin),
    remove: (accountId, id, origin) => removePasskey(c, accountId, id, origin),
    async removeAll(accountId, origin) {
      const count = await deleteAccountPasskeys(c.db, accountId);
      if (count > 0)
        c.audit.record({
          type: 'passkey.removed',
          accountId,
          ip: origin.ip ?? null,
          userAgent: origin.userAgent ?? null,
          details: { all: true, count },
        });
      return count;
    },
    authenticationOptions: (binding, accountId) => authenticationOptions(c, binding, accountId),
    verifyAssertion: (input, origin) => verifyAssertion(c, input, origin),
    sweep: (now) => deleteExpiredChallenges(c.db, now),
  };
}
