import { readFileSync } from 'node:fs';
import path from 'node:path';

import Router from '@koa/router';
import Koa from 'koa';
import type Provider from 'oidc-provider';

import type { AccountPageService } from '../accounts/account-page.service.ts';
import type { AccountService } from '../accounts/account.service.ts';
import type { MfaService } from '../accounts/mfa.service.ts';
import type { Passkeys } from '../accounts/passkeys.ts';
import type { RecoveryService } from '../accounts/recovery.service.ts';
import type { RegistrationService } from '../accounts/registration.service.ts';
import type { SignInService } from '../accounts/sign-in.service.ts';
import { issuerBasePath, type Config } from '../config/config.ts';
import type { AccountSessions } from '../oidc/account-sessions.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import type { Metrics } from '../shared/metrics.ts';
import { accountRoutes, type AccountRouteDeps } from './account.routes.ts';
import { mountAtBasePath } from './base-path.ts';
import { demoRoutes } from './demo.routes.ts';
import { requestError, sendError } from './edge-error.ts';
import { emailChangeRoutes } from './email-change.routes.ts';
import { errorPages } from './errors.ts';
import { clientName, interactionRoutes, signInTo, type InteractionDeps } from './interaction.routes.ts';
import { registrationRoutes, type RegistrationDeps } from './registration.routes.ts';
import { metricsOnMainPort } from './metrics.routes.ts';
import { mfaAccountRoutes } from './mfa-account.routes.ts';
import { loadPasskeyScripts, type PasskeyScripts } from './passkey-scripts.ts';
import { passkeyRoutes } from './passkey.routes.ts';
import { recoveryRoutes } from './recovery.routes.ts';
import { requestState } from './request-context.ts';
import { refuseUnstorableQuery } from './storable-input.ts';
import { sendPage, VIEWS_DIR, type Views } from './views.ts';

export interface HttpDeps {
  readonly config: Config;
  /** Our clock: when a "remembered device" pass was issued (http/device-cookie.ts). */
  readonly clock: Clock;
  readonly logger: Logger;
  readonly views: Views;
  readonly provider: () => Provider;
  readonly accounts: AccountService;
  readonly signIn: SignInService;
  readonly accountPage: AccountPageService;
  readonly accountSessions: AccountSessions;
  /** Password reset, unlock by email, invitations: mounted only when mail is on. */
  readonly recovery: RecoveryService;
  readonly registration: RegistrationService;
  /** Passkeys: the login page's passkey button, and the account page's list (accounts/passkeys.ts). */
  readonly passkeys: Passkeys;
  /** Mail can be sent: the verification pages are served (and sign-up, when open). */
  readonly mailEnabled: boolean;
  readonly csrfKey: Buffer;
  readonly cookieKeys: readonly string[];
  readonly ready: () => Promise<{ ok: boolean; checks: Record<string, boolean> }>;
  /** The published JWK Set and its ETag (see oidc/key-ring.ts). */
  readonly jwks: () => { body: string; etag: string };
  readonly metrics: Metrics;
  /** TOTP and recovery codes (issue 14): the second step of signing in, and the account page's. */
  readonly mfa: MfaService;
  /** The admin API under /admin/v1 (built by the container from the admin part), if served. */
  readonly admin?: Koa.Middleware;
}

/** A file of views/assets, read once; cacheable for an hour. */
function serveAsset(router: Router, name: string, type: string): void {
  const content = readFileSync(path.join(VIEWS_DIR, 'assets', name));
  router.get(`/assets/${name}`, (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.remove('Pragma');
    ctx.type = type;
    ctx.body = content;
  });
}

function siteRoutes(deps: HttpDeps, scripts: PasskeyScripts | undefined): Router {
  const router = new Router();
  router.get('/', (ctx) =>
    sendPage(ctx, deps.views, 'landing', { issuer: deps.config.issuer, demo: deps.config.demo }),
  );
  serveAsset(router, 'style.css', 'text/css');
  serveAsset(router, 'sign-out.js', 'text/javascript');
  scripts?.serve(router);
  router.get('/favicon.ico', (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=86400');
    ctx.status = 204;
  });
  router.get('/jwks', (ctx) => {
    const { body, etag } = deps.jwks();
    // Verifiers may cache this long; a next key is published at least this long before it signs.
    ctx.set('Cache-Control', `public, max-age=${deps.config.keys.jwksCacheSeconds}`);
    ctx.remove('Pragma');
    ctx.set('ETag', etag);
    ctx.set('Access-Control-Allow-Origin', '*');
    if (
      ctx
        .get('if-none-match')
        .split(/\s*,\s*/)
        .includes(etag)
    ) {
      ctx.status = 304;
      return;
    }
    ctx.type = 'application/jwk-set+json';
    ctx.body = body;
  });
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    const { ok, checks } = await deps.ready();
    ctx.status = ok ? 200 : 503;
    ctx.body = { status: ok ? 'ready' : 'not ready', checks };
  });
  return router;
}

type Layer = { methods: string[] };

/** The metrics' route label of a request one of our routers answered: its template, bounded. */
function routeLabel(metrics: Metrics): Koa.Middleware {
  return async (ctx, next) => {
    await next();
    const template = (ctx as Koa.Context & { routerPath?: string }).routerPath;
    if (template) metrics.routes.set(ctx.res, template);
  };
}

/**
 * A path of ours asked with a method it does not serve: 405 with Allow (RFC 9110 §15.5.6),
 * whatever the method (@koa/router answers 501, a server error, to methods it does not know).
 */
function allowedMethods(views: Views): Koa.Middleware {
  return async (ctx, next) => {
    await next();
    if (ctx.respond === false || ctx.status !== 404 || ctx.body != null) return;
    const matched = (ctx as Koa.Context & { matched?: Layer[] }).matched ?? [];
    const allowed = [...new Set(matched.flatMap((layer) => layer.methods))];
    if (allowed.length === 0) return;
    ctx.set('Allow', allowed.join(', '));
    if (ctx.method === 'OPTIONS') {
      ctx.status = 204;
      return;
    }
    sendError(ctx, views, requestError(405, `${ctx.path} does not accept ${ctx.method}`), 'page');
  };
}

/** How this process reaches itself (the demo app's server-side calls): not via the public URL, which a proxy may own. */
function selfUrl(config: Config): string {
  const host = ['0.0.0.0', '::', ''].includes(config.host)
    ? '127.0.0.1'
    : config.host.includes(':')
      ? `[${config.host}]`
      : config.host;
  return `http://${host}:${config.port}${issuerBasePath(config.issuer)}`;
}

/**
 * Sign-in and consent pages, the passkey button and the account page's passkeys, and, when mail
 * works, registration and email verification.
 */
function signInRoutes(deps: HttpDeps, secure: boolean, account: AccountRouteDeps): Router[] {
  const basePath = issuerBasePath(deps.config.issuer);
  const interaction: InteractionDeps = {
    ...deps,
    secureCookies: secure,
    revealLockout: deps.config.lockout.reveal,
    basePath,
    recoveryLinks: deps.recovery.enabled,
    registrationOpen: deps.config.registration.open,
    mfa: {
      service: deps.mfa,
      policy: deps.config.mfa,
      clock: deps.clock,
      ...(deps.passkeys.available ? { passkeys: deps.passkeys } : {}),
    },
    ...(account.passkeyScripts ? { passkeyScripts: account.passkeyScripts } : {}),
  };
  const passkeys = (pages: InteractionDeps) =>
    deps.passkeys.available ? [passkeyRoutes({ passkeys: deps.passkeys, interaction: pages, account })] : [];
  if (!deps.mailEnabled) return [interactionRoutes(interaction), ...passkeys(interaction)];
  const pages: RegistrationDeps = {
    provider: deps.provider,
    registration: deps.registration,
    views: deps.views,
    csrfKey: deps.csrfKey,
    secureCookies: secure,
    basePath,
    signInTo: (ctx, details, account) => signInTo(ctx, interaction, details, account),
    clientName: (details) => clientName(interaction, details),
  };
  return [
    interactionRoutes({ ...interaction, registrationPages: pages }),
    ...passkeys({ ...interaction, registrationPages: pages }),
    registrationRoutes(pages, { registrationOpen: deps.config.registration.open }),
  ];
}

export function createHttpApp(deps: HttpDeps): Koa {
  // Behind a proxy, trust exactly one hop: the client IP is the X-Forwarded-For entry our proxy
  // appended (the last one), never one the client wrote itself.
  const app = new Koa({ proxy: deps.config.trustProxy, maxIpsCount: 1 });
  app.keys = [...deps.cookieKeys];
  app.silent = true;
  const secure = deps.config.issuer.startsWith('https:');
  // The request id, security headers, metrics and access line are the front door's (front-door.ts).
  app.use(requestState(deps.logger));
  app.use(routeLabel(deps.metrics));
  app.use(errorPages(deps.views, deps.logger));
  app.use(mountAtBasePath(issuerBasePath(deps.config.issuer)));
  // Before the page-speaking middleware below: the admin API answers every error as problem details.
  if (deps.admin) app.use(deps.admin);
  // Off the public listener unless a token guards it (POSTERN_METRICS_PORT serves it apart).
  if (deps.config.metrics.token && deps.config.metrics.port === undefined)
    app.use(metricsOnMainPort(deps.metrics, deps.config.metrics.token));
  app.use(refuseUnstorableQuery(deps.views));
  app.use(allowedMethods(deps.views));
  // Passkeys need a domain name as issuer host (Passkeys.available): otherwise nothing offers them.
  const scripts = deps.passkeys.available ? loadPasskeyScripts() : undefined;
  const account: AccountRouteDeps = {
    ...deps,
    issuer: deps.config.issuer,
    ...(scripts ? { passkeyScripts: scripts.scripts } : {}),
  };
  const routers = [
    siteRoutes(deps, scripts),
    ...signInRoutes(deps, secure, account),
    emailChangeRoutes(deps),
    mfaAccountRoutes({
      ...deps,
      issuer: deps.config.issuer,
      requiredFor: (roles) =>
        deps.config.mfa.required || roles.some((role) => deps.config.mfa.requiredRoles.includes(role)),
    }),
    accountRoutes(account),
  ];
  if (deps.recovery.enabled)
    routers.push(
      recoveryRoutes({
        recovery: deps.recovery,
        views: deps.views,
        csrf: { key: deps.csrfKey, secure, basePath: issuerBasePath(deps.config.issuer) },
      }),
    );
  if (deps.config.demo)
    routers.push(demoRoutes({ issuer: deps.config.issuer, views: deps.views, secure, selfUrl: selfUrl(deps.config) }));
  for (const router of routers) app.use(router.routes());
  // Nothing after this: the engine's paths never come here (front-door.ts), and whatever no
  // router answered is the "not found" page (errors.ts).
  return app;
}
