import type { PublicKeyCredentialCreationOptionsJSON } from '@simplewebauthn/server';
import type { Transaction } from 'kysely';

import type { Database } from '../db/tables.ts';
import { isUniqueViolation } from '../db/unique-violation.ts';
import { invalid } from '../shared/errors.ts';
import type { Origin } from './account-page.service.ts';
import type { Account } from './account.ts';
import { readAttestation, userHandle } from './passkey-ceremony.ts';
import { createPasswordCheck } from './password-check.ts';
import { insertPasskey, listPasskeys } from './passkey.repository.ts';
import { CEREMONY_SECONDS, type Ceremonies, type PasskeyView } from './passkeys.ts';
import { webauthnLibrary } from './webauthn-library.ts';

// Adding a passkey from the account page (WebAuthn §7.1): the options, bound to the account-page
// session, and the verification and storing of the new credential.

const NAME_MAX = 64;
const PASSKEYS_MAX = 25;

const tooMany = () => invalid(`an account can have at most ${PASSKEYS_MAX} passkeys; remove one first`, 'passkey_name');

function passkeyName(raw: string): string {
  const name = raw.trim();
  if (name === '') invalid('give the passkey a name, such as the device it is on', 'passkey_name');
  if (name.length > NAME_MAX) invalid(`at most ${NAME_MAX} characters`, 'passkey_name');
  if (/\p{Cc}/u.test(name)) invalid('must not contain control characters', 'passkey_name');
  return name;
}

/** argon2 whether or not the account has a password (the timing tells nothing), each guess counted. */
function requirePassword(c: Ceremonies, accountId: string, password: string, origin: Origin = {}): Promise<void> {
  return createPasswordCheck(c)(accountId, password, 'passkey_password', origin);
}

/** The owner hears of every passkey added or removed, in the transaction of the change. */
export async function notifyOwner(
  c: Ceremonies,
  tx: Transaction<Database>,
  account: Account,
  template: 'passkey-added' | 'passkey-removed',
  passkey: string,
): Promise<void> {
  if (!c.outbox.enabled) return;
  const name = account.profile.name;
  await c.outbox.enqueue(tx, { to: account.email, template, data: { ...(name ? { name } : {}), passkey } });
}

export async function registrationOptions(
  c: Ceremonies,
  account: Account,
  binding: string,
  input: { name: string; password: string },
): Promise<PublicKeyCredentialCreationOptionsJSON> {
  passkeyName(input.name);
  await requirePassword(c, account.id, input.password);
  const existing = await listPasskeys(c.db, account.id);
  if (existing.length >= PASSKEYS_MAX) tooMany();
  const { generateRegistrationOptions } = await webauthnLibrary();
  const options = await generateRegistrationOptions({
    rpName: c.rp.name,
    rpID: c.rp.id,
    userName: account.username,
    userID: userHandle(account.id),
    userDisplayName: account.profile.name ?? account.username,
    timeout: CEREMONY_SECONDS * 1000,
    attestationType: 'none',
    // The same authenticator twice would be one passkey under two names.
    excludeCredentials: existing.map((p) => ({ id: p.id, transports: [...p.transports] })),
    // Discoverable ("resident") credentials: the login page signs in without a username.
    authenticatorSelection: { residentKey: 'required', userVerification: c.userVerification },
  });
  await c.remember(binding, 'register', options.challenge, account.id);
  return options;
}

/** The new credential, checked (§7.1) before anything is stored; a field error otherwise. */
async function verifiedCredential(c: Ceremonies, account: Account, input: { binding: string; credential: string }) {
  const posted = readAttestation(input.credential);
  if (!posted) invalid('your browser did not create a passkey (it needs JavaScript); try again', 'passkey_name');
  const challenge = await c.take(input.binding, 'register', posted.challenge);
  if (!challenge || challenge.accountId !== account.id)
    invalid('this request to add a passkey has expired; try again', 'passkey_name');
  if ((await listPasskeys(c.db, account.id)).length >= PASSKEYS_MAX) tooMany();
  const { verifyRegistrationResponse } = await webauthnLibrary();
  const verified = await verifyRegistrationResponse({
    response: posted.credential,
    expectedChallenge: posted.challenge,
    expectedOrigin: c.rp.origin,
    expectedRPID: c.rp.id,
    requireUserVerification: c.requireUserVerification,
  }).catch(() => undefined);
  if (!verified?.verified) invalid('the passkey could not be verified; try again', 'passkey_name');
  return verified.registrationInfo;
}

export async function registerPasskey(
  c: Ceremonies,
  account: Account,
  input: { binding: string; name: string; password: string; credential: string },
  origin: Origin,
): Promise<PasskeyView> {
  const name = passkeyName(input.name);
  await requirePassword(c, account.id, input.password, origin);
  const { credential, credentialDeviceType, credentialBackedUp } = await verifiedCredential(c, account, input);
  const stored = {
    id: credential.id,
    accountId: account.id,
    publicKey: Buffer.from(credential.publicKey).toString('base64url'),
    counter: credential.counter,
    transports: credential.transports ?? [],
    deviceType: credentialDeviceType,
    backedUp: credentialBackedUp,
    name,
    createdAt: c.clock.now(),
  };
  try {
    await c.db.transaction().execute(async (tx) => {
      await insertPasskey(tx, stored);
      await notifyOwner(c, tx, account, 'passkey-added', name);
    });
  } catch (error) {
    if (isUniqueViolation(error)) invalid('this passkey is registered already', 'passkey_name');
    throw error;
  }
  c.audit.record({
    type: 'passkey.registered',
    accountId: account.id,
    ip: origin.ip ?? null,
    userAgent: origin.userAgent ?? null,
    details: { passkey: stored.id, name },
  });
  return { id: stored.id, name, createdAt: stored.createdAt, lastUsedAt: null };
}
