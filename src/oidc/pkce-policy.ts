import type { KoaContextWithOIDC } from 'oidc-provider';

type Client = { clientAuthMethod?: string | undefined; metadata(): Record<string, unknown> };

/**
 * pkce.required: PKCE for every code-flow request (RFC 9700 §2.1.1), except from a confidential
 * client registered with --pkce optional that sends a nonce: §2.1.1 lets a confidential OpenID
 * Connect client rely on the nonce against code injection instead. A public client has no
 * secret to bind the code to, so it never goes without (and the registration refuses it).
 */
export function pkceRequired(ctx: KoaContextWithOIDC, client: Client): boolean {
  if (client.clientAuthMethod === 'none' || client.metadata().pkce !== 'optional') return true;
  const nonce = ctx.oidc.params?.nonce;
  return typeof nonce !== 'string' || nonce.length === 0;
}
