import Router, { type RouterMiddleware } from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { Kysely } from 'kysely';

import type { AdminApiSettings } from '../config/config.ts';
import type { Database } from '../db/tables.ts';
import { describeError, sendError } from '../http/edge-error.ts';
import type { Views } from '../http/views.ts';
import type { Clock } from '../shared/clock.ts';
import { PosternError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { adminResourceIdentifier, scopesAllowing } from './admin-resource.ts';
import { createBearerVerifier, type Caller } from './bearer.ts';
import { clientOperations } from './clients.routes.ts';
import { applyCors } from './cors.ts';
import { createIdempotencyStore, fingerprintOf, type IdempotencyStore } from './idempotency.ts';
import { openApiDocument } from './openapi.ts';
import type { AdminServices, Operation } from './operation.ts';
import { createRateLimiter, RateLimited, type RateLimiter } from './rate-limit.ts';
import { readIdempotencyKey, readJsonBody, readQuery } from './request.ts';
import { createSchemaValidator, type SchemaValidator } from './schema.ts';
import { systemOperations } from './system.routes.ts';
import { userOperations } from './users.routes.ts';

// The admin API (README: Admin API): JSON under /admin/v1, each request a list of named steps:
// CORS, the bearer token, the rate limit, the scope, the input, the Idempotency-Key, then the
// domain service, on behalf of the caller for the audit log. Every error is problem details.

export const ADMIN_PREFIX = '/admin/v1';
export const ADMIN_OPERATIONS: readonly Operation[] = [...userOperations, ...clientOperations, ...systemOperations];

export interface AdminApiDeps {
  readonly issuer: string;
  readonly settings: AdminApiSettings;
  readonly algorithms: readonly string[];
  readonly services: AdminServices;
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  /** Seals stored answers (they may hold a generated client secret). */
  readonly sealKey: Buffer;
  readonly jwks: () => { body: string; etag: string };
  readonly views: Views;
  readonly logger: Logger;
}

interface Steps {
  readonly deps: AdminApiDeps;
  readonly verifyCaller: (ctx: Context) => Promise<Caller>;
  readonly limiter: RateLimiter;
  readonly validator: SchemaValidator;
  readonly idempotency: IdempotencyStore;
}

/** RFC 6750 §3.1: the scope the request needed, when the token lacked it. */
function requireScope(ctx: Context, caller: Caller, op: Operation): void {
  const allowing = scopesAllowing(op.area, op.access);
  if (caller.scopes.some((s) => allowing.includes(s))) return;
  ctx.state.requiredScope = allowing.join(' ');
  throw new PosternError('ERR_FORBIDDEN', `this needs one of the scopes ${allowing.join(', ')}`);
}

async function respond(ctx: Context, status: number, body: unknown): Promise<void> {
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  if (status !== 204) ctx.body = body ?? {};
}

/** Runs the operation once per Idempotency-Key; a retry gets the first answer. */
async function runOnce(ctx: Context, s: Steps, caller: Caller, op: Operation, run: () => Promise<unknown>) {
  const key = op.idempotent ? readIdempotencyKey(ctx) : undefined;
  if (key === undefined) return respond(ctx, op.status, await run());
  const fingerprint = fingerprintOf(op.method, ctx.path, ctx.state.adminBody);
  const claim = await s.idempotency.claim(caller.key, key, fingerprint, s.deps.clock.now());
  if (claim.kind === 'replay') {
    ctx.set('Idempotency-Replayed', 'true');
    return respond(ctx, claim.status, claim.body);
  }
  let result: unknown;
  try {
    result = await run();
  } catch (error) {
    await s.idempotency.release(caller.key, key);
    throw error;
  }
  await s.idempotency.complete(caller.key, key, op.status, result ?? null);
  return respond(ctx, op.status, result);
}

function handler(s: Steps, op: Operation): RouterMiddleware {
  return async (ctx) => {
    const caller = await s.verifyCaller(ctx);
    await s.limiter.hit(`client:${caller.clientId}`, s.deps.clock.now());
    requireScope(ctx, caller, op);
    const query = op.query ? s.validator.check(op.query, readQuery(ctx), 'query') : {};
    const raw = op.method === 'get' || op.method === 'delete' ? {} : await readJsonBody(ctx);
    ctx.state.adminBody = raw;
    const body = s.validator.check(op.body ?? { type: 'object', maxProperties: 0 }, raw, 'body');
    const { services } = s.deps;
    const actor = { clientId: caller.clientId, ...(caller.accountId ? { accountId: caller.accountId } : {}) };
    await runOnce(ctx, s, caller, op, () =>
      services.audit.actingAs(actor, () => op.run(services, { params: ctx.params, query, body, caller })),
    );
  };
}

/** Every failure as RFC 9457 problem details, with the headers its status calls for. */
function problems(deps: AdminApiDeps): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body == null)
        throw new PosternError('ERR_NOT_FOUND', `no ${ctx.method} ${ctx.path} in the admin API`);
    } catch (error) {
      const e = describeError(error);
      if (e.status >= 500)
        ((ctx.state.logger as Logger | undefined) ?? deps.logger).error({ err: error }, 'admin API request failed');
      if (e.status === 401) {
        const presented = ctx.get('authorization') !== '';
        // RFC 6750 §3.1: no error code when no credentials were presented.
        ctx.set('WWW-Authenticate', `Bearer realm="${ADMIN_PREFIX}"${presented ? ', error="invalid_token"' : ''}`);
      }
      if (e.status === 403 && ctx.state.requiredScope)
        ctx.set('WWW-Authenticate', `Bearer error="insufficient_scope", scope="${ctx.state.requiredScope}"`);
      if (error instanceof RateLimited) ctx.set('Retry-After', String(error.retryAfterSeconds));
      ctx.set('Cache-Control', 'no-store');
      sendError(ctx, deps.views, e, { problem: { issuer: deps.issuer } });
    }
  };
}

/** The router: one route per operation, and the OpenAPI document built from the same list. */
export function createAdminRouter(s: Steps): Router {
  const router = new Router({ prefix: ADMIN_PREFIX });
  const document = openApiDocument(ADMIN_OPERATIONS, s.deps.issuer);
  router.get('/openapi.json', (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.body = document;
  });
  for (const op of ADMIN_OPERATIONS) router[op.method](op.path.replace(/\{(\w+)\}/g, ':$1'), handler(s, op));
  return router;
}

export function createAdminApi(deps: AdminApiDeps): Middleware {
  const bearer = createBearerVerifier({
    issuer: deps.issuer,
    audience: adminResourceIdentifier(deps.issuer),
    algorithms: deps.algorithms,
    jwks: deps.jwks,
    accounts: deps.services.accounts,
  });
  const steps: Steps = {
    deps,
    verifyCaller: (ctx) => bearer.verify(ctx.get('authorization')),
    limiter: createRateLimiter({
      db: deps.db,
      limit: deps.settings.rateLimit,
      windowSeconds: deps.settings.rateWindowSeconds,
    }),
    validator: createSchemaValidator(),
    idempotency: createIdempotencyStore({
      db: deps.db,
      sealKey: deps.sealKey,
      ttlSeconds: deps.settings.idempotencySeconds,
    }),
  };
  const router = createAdminRouter(steps);
  // A path of ours with a method it does not take: 405 with Allow (RFC 9110 §15.5.6), as a problem.
  const guard = problems(deps);
  const routes = router.routes() as unknown as Middleware;
  const methods = router.allowedMethods({ throw: true }) as unknown as Middleware;
  return async (ctx, next) => {
    if (ctx.path !== ADMIN_PREFIX && !ctx.path.startsWith(`${ADMIN_PREFIX}/`)) return next();
    if (applyCors(ctx, deps.settings.corsOrigins)) return;
    await guard(ctx, () => routes(ctx, () => methods(ctx, async () => {})));
  };
}
