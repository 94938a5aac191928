import type { KoaContextWithOIDC } from 'oidc-provider';

import { keepRequestedOfflineAccess } from './offline-access.ts';

type Grant = InstanceType<KoaContextWithOIDC['oidc']['provider']['Grant']>;

/** What a grant holds that loadExistingGrant may extend, as comparable text. */
const grantedSoFar = (grant: Grant) =>
  JSON.stringify([grant.openid ?? null, grant.resources ?? null, grant.rejected ?? null]);

/**
 * loadExistingGrant: the grant the session already holds for this client; for first-party
 * clients (marked with --first-party) consent is implied, so the grant is extended with what
 * is being asked and the consent prompt never shows. It runs before the consent prompt, on the
 * authorization request and on every resume, so it is where a requested offline_access is kept.
 */
export async function loadExistingGrant(ctx: KoaContextWithOIDC) {
  keepRequestedOfflineAccess(ctx);
  const { oidc } = ctx;
  const client = oidc.client!;
  const session = oidc.session!;
  const grantId = oidc.result?.consent?.grantId ?? session.grantIdFor(client.clientId);
  const existing = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
  if (client.metadata().first_party !== true || !session.accountId) return existing;

  const grant = existing ?? new oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
  const before = existing && grantedSoFar(existing);
  grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
  if (oidc.requestParamClaims.size > 0) grant.addOIDCClaims([...oidc.requestParamClaims]);
  // API scopes: what was asked, as far as each requested resource offers it.
  const asked = String(oidc.params?.scope ?? '').split(' ');
  for (const [resource, server] of Object.entries(oidc.resourceServers ?? {})) {
    const offered = new Set(String(server.scope ?? '').split(' '));
    const scopes = asked.filter((s) => offered.has(s));
    if (scopes.length) grant.addResourceScope(resource, scopes.join(' '));
  }
  // Saved only when new or extended: a resume or a repeat sign-in that asks for nothing new
  // does not rewrite the record (a save keeps the expiry it had: BaseToken saves remainingTTL).
  if (!before || grantedSoFar(grant) !== before) await grant.save();
  return grant;
}
