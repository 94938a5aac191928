import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';

import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';

// The small pure parts of a WebAuthn ceremony: what the relying party is, how a challenge and
// its binding are named in the database, and reading what a browser posted before trusting it.

export interface RelyingParty {
  /** WebAuthn §5.1.4.1 (RP ID): the issuer's host, so passkeys are scoped to this installation. */
  readonly id: string;
  /** The issuer's origin: the only origin whose signed client data is accepted (§7.2 step 9). */
  readonly origin: string;
  readonly name: string;
}

export function relyingParty(issuer: string, name: string): RelyingParty {
  const url = new URL(issuer);
  // An IPv6 host comes in brackets; the RP ID check (Passkeys.available) wants the address alone.
  return { id: url.hostname.replace(/^\[(.*)\]$/, '$1'), origin: url.origin, name };
}

/**
 * DESIGN §5: a challenge is 256 random bits, so a keyed hash is enough to keep it out of a dump;
 * the binding (an interaction uid, or the secret id of an account-page session) is hashed too.
 */
export function challengeHasher(key: Buffer): { challenge(value: string): string; binding(value: string): string } {
  const hmacKey: KeyObject = createSecretKey(key);
  const hash = (value: string) => createHmac('sha256', hmacKey).update(value, 'utf8').digest('base64url');
  return { challenge: (value) => hash(`challenge:${value}`), binding: (value) => hash(`binding:${value}`) };
}

/** WebAuthn user handle: the account's uuid as 16 bytes (no personal data, §14.6.1). */
export function userHandle(accountId: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Buffer.from(accountId.replace(/-/g, ''), 'hex'));
}

export function userHandleText(accountId: string): string {
  return Buffer.from(userHandle(accountId)).toString('base64url');
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** A posted credential is a few kilobytes at most; anything larger is not one. */
const MAX_POSTED = 64 * 1024;

function isText(value: unknown, max = MAX_POSTED): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= max && BASE64URL.test(value);
}

/** The challenge the browser signed, read from its client data (§5.8.1), without trusting it yet. */
function signedChallenge(clientDataJSON: string): string | undefined {
  try {
    const data = JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8')) as { challenge?: unknown };
    return isText(data.challenge, 1024) ? data.challenge : undefined;
  } catch {
    return undefined;
  }
}

interface Posted<T> {
  readonly credential: T;
  readonly challenge: string;
}

function readPosted(text: string): { value: Record<string, unknown>; inner: Record<string, unknown> } | undefined {
  if (text.length === 0 || text.length > MAX_POSTED) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const inner = v.response;
  if (v.type !== 'public-key' || !isText(v.id, 2048) || !isText(v.rawId, 2048) || typeof inner !== 'object' || !inner)
    return undefined;
  return { value: v, inner: inner as Record<string, unknown> };
}

/** An assertion as @simplewebauthn/browser posts it (startAuthentication), or undefined. */
export function readAssertion(text: string): Posted<AuthenticationResponseJSON> | undefined {
  const posted = readPosted(text);
  if (!posted) return undefined;
  const { inner } = posted;
  if (!isText(inner.clientDataJSON) || !isText(inner.authenticatorData) || !isText(inner.signature)) return undefined;
  if (inner.userHandle !== undefined && !isText(inner.userHandle, 128)) return undefined;
  const challenge = signedChallenge(inner.clientDataJSON);
  return challenge ? { credential: posted.value as unknown as AuthenticationResponseJSON, challenge } : undefined;
}

/** A new credential as @simplewebauthn/browser posts it (startRegistration), or undefined. */
export function readAttestation(text: string): Posted<RegistrationResponseJSON> | undefined {
  const posted = readPosted(text);
  if (!posted) return undefined;
  const { inner } = posted;
  if (!isText(inner.clientDataJSON) || !isText(inner.attestationObject)) return undefined;
  const challenge = signedChallenge(inner.clientDataJSON);
  return challenge ? { credential: posted.value as unknown as RegistrationResponseJSON, challenge } : undefined;
}

/**
 * RFC 8176 §2: `hwk` for a key held in hardware, `swk` for one in software. A synced passkey
 * (multi-device, WebAuthn §6.1.3 backup eligible) leaves the authenticator to be copied, so it is
 * counted as software; a device-bound one as hardware. `user` when the authenticator verified
 * the person (PIN, biometrics: §6.1 flag UV).
 */
export function passkeyAmr(deviceType: 'singleDevice' | 'multiDevice', userVerified: boolean): string[] {
  return [deviceType === 'multiDevice' ? 'swk' : 'hwk', ...(userVerified ? ['user'] : [])];
}
