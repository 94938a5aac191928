import type { Kysely } from 'kysely';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';

import type { AuditLog } from '../audit/audit-log.ts';
import type { Database } from '../db/tables.ts';
import type { Logger } from '../shared/logger.ts';
import type { Metrics } from '../shared/metrics.ts';
import type { RecordProtection } from './record-protection.ts';
import type { RefreshRotation } from './refresh-rotation.ts';
import { recordGrantActivity } from './session.repository.ts';

type OAuthError = Error & { error?: string; error_description?: string; error_detail?: string };

const REFUSALS = [
  'grant.error',
  'authorization.error',
  'end_session.error',
  'userinfo.error',
  'introspection.error',
  'revocation.error',
];

/** What a read fails with when the client hung up (Node's request "aborted", a reset, a premature close) or sent what the HTTP parser refuses (HPE_*). */
const CLIENT_GONE = new Set(['aborted', 'ECONNRESET', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_CLIENT_GONE']);
const isClientGone = (error: Error & { code?: string }): boolean =>
  CLIENT_GONE.has(error.code ?? '') || CLIENT_GONE.has(error.message) || (error.code?.startsWith('HPE_') ?? false);

/** What the engine reports, turned into log lines, audit events and session records. */
export function watchEvents(
  provider: Provider,
  deps: {
    logger: Logger;
    db: Kysely<Database>;
    audit: AuditLog;
    metrics: Metrics;
    protect: RecordProtection;
    rotation: Pick<RefreshRotation, 'whenIssued'>;
  },
): void {
  const { logger, db, audit, metrics } = deps;
  const on = provider.on.bind(provider) as (name: string, fn: (...args: never[]) => void) => void;
  // Koa's own event for what escaped every middleware of the engine's app, and for socket errors
  // while an answer is pending: a client that hung up in the middle of its body (the read fails
  // with "aborted"), or sent bytes the HTTP parser refuses after a request on the same connection.
  // With no listener Koa prints the stack to stderr; these are the client's doing, and there is
  // nobody left to answer, so they are one debug line. Anything else is an error line.
  on('error', (error: Error & { code?: string }, ctx?: KoaContextWithOIDC) => {
    const requestId = ctx?.response?.get('x-request-id');
    if (ctx?.req.destroyed || isClientGone(error))
      logger.debug({ requestId, reason: error.code ?? error.message }, 'client went away or sent what HTTP refuses');
    else logger.error({ err: error, requestId }, 'provider request failed');
  });
  on('server_error', (ctx: KoaContextWithOIDC, error: Error) =>
    logger.error({ err: error, requestId: ctx.response?.get('x-request-id') }, 'provider server error'),
  );
  for (const event of REFUSALS) {
    on(event, (ctx: KoaContextWithOIDC, error: OAuthError) => {
      logger.info(
        {
          event,
          error: error.message,
          description: error.error_description,
          detail: error.error_detail,
          requestId: ctx.response?.get('x-request-id'),
        },
        'oauth request refused',
      );
    });
  }
  // RFC 9700 §4.14.2: a rotated refresh token came back after its grace window; the engine has
  // revoked the grant. Someone else may hold the token: record it.
  on('grant.error', (ctx: KoaContextWithOIDC, error: OAuthError) => {
    if (error.error_detail !== 'refresh token already used') return;
    const token = ctx.oidc?.entities?.RefreshToken as { grantId?: string; accountId?: string } | undefined;
    audit.record({
      type: 'refresh_token.reused',
      accountId: token?.accountId ?? null,
      clientId: ctx.oidc?.client?.clientId ?? null,
      ip: ctx.ip,
      userAgent: ctx.get('user-agent'),
      details: { grantId: token?.grantId && deps.protect.hashId(token.grantId), revoked: 'the whole grant' },
    });
  });
  // A refresh counts once its claim is won: one that loses it is answered as a repeat.
  on('grant.success', (ctx: KoaContextWithOIDC) => {
    const grantType = String(ctx.oidc?.params?.grant_type ?? 'unknown');
    const labels = { grant_type: grantType, client_id: metrics.perClient ? (ctx.oidc?.client?.clientId ?? '') : '' };
    deps.rotation.whenIssued(ctx, () => metrics.tokensIssued.inc(labels));
  });
  on('grant.revoked', (ctx: KoaContextWithOIDC, grantId: string) =>
    logger.info({ grantId, requestId: ctx.response?.get('x-request-id') }, 'grant revoked'),
  );
  // Where each grant was signed in from, for `postern user sessions`.
  on('authorization.success', (ctx: KoaContextWithOIDC) => {
    const grant = ctx.oidc?.entities?.Grant as { jti?: string } | undefined;
    const session = ctx.oidc?.session;
    if (!grant?.jti || !session?.accountId || !ctx.oidc.client) return;
    recordGrantActivity(db, {
      grantId: deps.protect.hashId(grant.jti),
      accountId: session.accountId,
      clientId: ctx.oidc.client.clientId,
      sessionUid: session.uid ?? null,
      ip: ctx.ip,
      userAgent: ctx.get('user-agent') || null,
    }).catch((error: Error) => logger.warn({ err: error.message }, 'recording grant activity failed'));
  });
}
