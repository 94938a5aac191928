import type { AdapterPayload } from 'oidc-provider';

import type { RecordProtection } from './record-protection.ts';

// What of an engine record is stored (README "Security model"). The row key is the keyed hash of
// the id; the payload must not give the id back either:
// - `jti` (the id itself) is dropped and restored from the id that was asked for;
// - records also looked up by uid or user code (Session, DeviceCode) keep their id sealed, since
//   such a lookup does not know it;
// - a string that embeds the record's own id (an Interaction's returnTo, /auth/<uid>) is kept in
//   pieces, joined with the id again on the way out;
// - ids of other records that are credentials in their own right (an Interaction remembers the
//   session cookie, a device code, a PAR request id), and a device's user code, are sealed in place.

const SEALED_FOREIGN_IDS: Readonly<Record<string, readonly string[]>> = {
  Interaction: ['deviceCode', 'parJti'],
  // What the user types to approve a device (RFC 8628 §3.3): looked up by its hash, kept sealed.
  DeviceCode: ['userCode'],
};
const SEALED_JTI = 'jtiSealed';
const SPLIT = 'withOwnId';

type Payload = Record<string, unknown>;

const bindingFor = (kind: string, key: string, field: string) => `${kind}:${key}:${field}`;

export function concealPayload(
  protect: RecordProtection,
  kind: string,
  id: string,
  key: string,
  payload: AdapterPayload,
): Payload {
  const stored: Payload = { ...payload };
  delete stored.jti;
  if (payload.uid !== undefined || payload.userCode !== undefined)
    stored[SEALED_JTI] = protect.seal(bindingFor(kind, key, 'jti'), id);
  const split: Record<string, string[]> = {};
  for (const [field, value] of Object.entries(stored)) {
    if (typeof value === 'string' && value.includes(id)) {
      split[field] = value.split(id);
      delete stored[field];
    }
  }
  if (Object.keys(split).length) stored[SPLIT] = split;
  for (const field of SEALED_FOREIGN_IDS[kind] ?? []) {
    if (typeof stored[field] === 'string') stored[field] = protect.seal(bindingFor(kind, key, field), stored[field]);
  }
  const session = stored.session as Payload | undefined;
  if (kind === 'Interaction' && typeof session?.cookie === 'string') {
    stored.session = { ...session, cookie: protect.seal(bindingFor(kind, key, 'session.cookie'), session.cookie) };
  }
  return stored;
}

/**
 * The payload as the engine stored it. `id` is the clear id when the caller asked by it;
 * undefined for a lookup by uid or user code (then the sealed copy gives it back).
 */
export function revealPayload(
  protect: RecordProtection,
  kind: string,
  id: string | undefined,
  key: string,
  stored: Payload,
): AdapterPayload | undefined {
  const payload: Payload = { ...stored };
  const sealedJti = payload[SEALED_JTI];
  delete payload[SEALED_JTI];
  const jti =
    id ?? (typeof sealedJti === 'string' ? protect.unseal(bindingFor(kind, key, 'jti'), sealedJti) : undefined);
  if (jti === undefined) return undefined;
  const split = payload[SPLIT] as Record<string, string[]> | undefined;
  delete payload[SPLIT];
  for (const [field, parts] of Object.entries(split ?? {})) payload[field] = parts.join(jti);
  for (const field of SEALED_FOREIGN_IDS[kind] ?? []) {
    if (typeof payload[field] === 'string')
      payload[field] = protect.unseal(bindingFor(kind, key, field), payload[field]);
  }
  const session = payload.session as Payload | undefined;
  if (kind === 'Interaction' && typeof session?.cookie === 'string') {
    payload.session = { ...session, cookie: protect.unseal(bindingFor(kind, key, 'session.cookie'), session.cookie) };
  }
  return { ...payload, jti } as AdapterPayload;
}
