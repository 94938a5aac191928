import type { ServerResponse } from 'node:http';

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

/**
 * Every answer's security headers, set on the raw response before anyone answers
 * (http/front-door.ts), so the engine's answers carry them as ours do. `path` is the path below
 * the issuer's. Pages and tokens are never cached; static assets and JWKS override that.
 */
export function setSecurityHeaders(res: ServerResponse, path: string, https: boolean): void {
  res.setHeader('Content-Security-Policy', CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cross-Origin-Opener-Policy', openerPolicy(path));
  res.setHeader('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), interest-cohort=()');
  if (https) res.setHeader('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Pragma', 'no-cache');
}
