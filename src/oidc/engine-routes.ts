/**
 * Where the engine serves each endpoint. Spelled out in its configuration (not left to its
 * defaults) so that the HTTP layer, metrics and tests read one table: everything our own routers
 * do not answer goes to the engine, and every path the engine serves is named here.
 * /jwks is the engine's too, but our router answers it first (every published key, cache headers).
 */
export const ENGINE_ROUTES = {
  authorization: '/auth',
  token: '/token',
  userinfo: '/me',
  introspection: '/token/introspection',
  revocation: '/token/revocation',
  end_session: '/session/end',
  pushed_authorization_request: '/request',
  jwks: '/jwks',
} as const;

export const DISCOVERY_PATH = '/.well-known/openid-configuration';

const GET = ['GET', 'HEAD'];

/**
 * The methods each engine path answers, as configured (OIDC Core §3.1.2.1 authorization by POST
 * only when POSTERN_AUTHORIZATION_POST is on; the engine then takes RP-initiated logout by POST too).
 */
export function engineMethods(authorizationPost: boolean): ReadonlyMap<string, readonly string[]> {
  const r = ENGINE_ROUTES;
  const getOrPost = authorizationPost ? [...GET, 'POST'] : GET;
  return new Map([
    [DISCOVERY_PATH, GET],
    [r.authorization, getOrPost],
    [`${r.authorization}/:uid`, GET],
    [r.token, ['POST']],
    [r.userinfo, [...GET, 'POST']],
    [r.introspection, ['POST']],
    [r.revocation, ['POST']],
    [r.pushed_authorization_request, ['POST']],
    [r.end_session, getOrPost],
    [`${r.end_session}/confirm`, ['POST']],
    [`${r.end_session}/success`, GET],
  ]);
}

/** The engine's route names (`ctx.oidc.route`) that are not a key of ENGINE_ROUTES, with their paths. */
const OTHER_ROUTES: Readonly<Record<string, string>> = {
  discovery: DISCOVERY_PATH,
  resume: `${ENGINE_ROUTES.authorization}/:uid`,
  end_session_confirm: `${ENGINE_ROUTES.end_session}/confirm`,
  end_session_success: `${ENGINE_ROUTES.end_session}/success`,
};

/**
 * The path template of an engine route, by the name the engine gives it (`ctx.oidc.route`;
 * `cors.token` is the preflight of `token`): bounded metric labels. undefined for a name we do not know.
 */
export function engineRouteTemplate(name: string): string | undefined {
  const route = name.replace(/^cors\./, '');
  return Object.hasOwn(ENGINE_ROUTES, route) ? ENGINE_ROUTES[route as keyof typeof ENGINE_ROUTES] : OTHER_ROUTES[route];
}
