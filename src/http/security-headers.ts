import type { Middleware } from 'koa';

// No inline script or style anywhere; the engine adds a sha256 source for its own form_post
// script when it needs one. form-action is left out on purpose: browsers apply it to the
// redirect that follows a sign-in form, which ends at the client's redirect URI.
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

// The documents and redirects a sign-in or sign-out popup walks through: the engine's
// authorization endpoint (/auth and its resume step /auth/:uid, which redirects or form-posts
// back to the client), our interaction pages, and the end-session endpoint. A popup opened by
// another origin keeps `window.opener` only if none of these asks for isolation: HTML §7.1.3
// switches browsing context groups as soon as one response on the way (redirects included)
// carries a COOP other than unsafe-none, and `same-origin-allow-popups` protects only the
// popups a document opens itself, not the popup it is. So these say unsafe-none; the rest of
// the site keeps same-origin.
const POPUP_FLOW_PATHS = /^\/(auth|interaction|session\/end)(\/|$)/;

export function openerPolicy(path: string): 'same-origin' | 'unsafe-none' {
  return POPUP_FLOW_PATHS.test(path) ? 'unsafe-none' : 'same-origin';
}

export function securityHeaders(options: { https: boolean; basePath: string }): Middleware {
  // Runs before the base path is taken off (http/base-path.ts): judge the path below it.
  const below = (path: string) =>
    options.basePath && path.startsWith(options.basePath) ? path.slice(options.basePath.length) : path;
  return async (ctx, next) => {
    ctx.set('Content-Security-Policy', CSP);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('Cross-Origin-Opener-Policy', openerPolicy(below(ctx.path)));
    ctx.set('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), interest-cohort=()');
    if (options.https) ctx.set('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
    // Pages and tokens are never cached; static assets and JWKS set their own policy after this.
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Pragma', 'no-cache');
    await next();
  };
}
