import type { IncomingMessage } from 'node:http';

import type { Middleware } from 'koa';

// An issuer with a path (https://id.example.com/idp, like Keycloak's /realms/x) puts the whole
// app under that path: each request has the path taken off here, so every route below is
// written once, from the root. The engine derives the prefix of every URL it publishes from
// req.originalUrl (as under Express or koa-mount), so it is set to the URL as the client sent it.

/** Probes and scrapers address the process itself, so these also answer at the root. */
const ROOT_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics']);

/** The path below the issuer's path (itself for the root paths); undefined outside the issuer. */
export function pathBelow(basePath: string, path: string): string | undefined {
  if (basePath === '' || ROOT_PATHS.has(path)) return path;
  if (path === basePath) return '/';
  return path.startsWith(`${basePath}/`) ? path.slice(basePath.length) : undefined;
}

export function mountAtBasePath(basePath: string): Middleware {
  return async (ctx, next) => {
    const below = pathBelow(basePath, ctx.path);
    if (below === undefined) {
      ctx.status = 404; // outside the issuer: not ours (the error page middleware above renders it)
      return;
    }
    if (below === ctx.path) return next(); // no issuer path, or a root path
    const rest = ctx.url.slice(basePath.length);
    (ctx.req as IncomingMessage & { originalUrl?: string }).originalUrl = ctx.url;
    ctx.url = rest.startsWith('/') ? rest : `/${rest}`;
    await next();
  };
}
