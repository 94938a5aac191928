import type { Context } from 'koa';

// CORS (Fetch standard) for a browser console: off unless POSTERN_ADMIN_CORS_ORIGINS lists the
// console's origin. Tokens go in the Authorization header, never cookies, so no credentials mode.

const ALLOWED_HEADERS = 'Authorization, Content-Type, Idempotency-Key';
const EXPOSED_HEADERS = 'Retry-After, WWW-Authenticate, Idempotency-Replayed';

/** Sets the CORS headers for an allowed origin; true when the request was a preflight, now answered. */
export function applyCors(ctx: Context, allowedOrigins: readonly string[]): boolean {
  const origin = ctx.get('origin');
  const allowed = origin !== '' && allowedOrigins.includes(origin);
  if (allowedOrigins.length) ctx.vary('Origin');
  if (allowed) {
    ctx.set('Access-Control-Allow-Origin', origin);
    ctx.set('Access-Control-Expose-Headers', EXPOSED_HEADERS);
  }
  const preflight = ctx.method === 'OPTIONS' && ctx.get('access-control-request-method') !== '';
  if (!preflight) return false;
  if (allowed) {
    ctx.set('Access-Control-Allow-Methods', 'GET, POST, PATCH, DELETE');
    ctx.set('Access-Control-Allow-Headers', ALLOWED_HEADERS);
    ctx.set('Access-Control-Max-Age', '600');
  }
  // Not allowed: an answer without the headers, which the browser reads as a refusal.
  ctx.status = 204;
  return true;
}
