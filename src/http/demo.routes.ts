import { createHash, randomBytes } from 'node:crypto';

import Router from '@koa/router';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type { Context } from 'koa';

import type { AccountService } from '../accounts/account.service.ts';
import type { ClientService } from '../clients/client.service.ts';
import { isPosternError, PosternError } from '../shared/errors.ts';
import { sendPage, type Views } from './views.ts';

// A small relying party living inside Postern, so a first run can show the whole journey.
// It talks to Postern only over HTTP, through the public endpoints, as any web app would.
export const DEMO_CLIENT_ID = 'postern-demo';
const COOKIE = 'postern_demo';

export function demoRedirectUris(issuer: string) {
  return { redirectUri: `${issuer}/demo/callback`, postLogoutRedirectUri: `${issuer}/demo` };
}

/** The demo user and app a first start created; the password is shown once, by the caller. */
export interface DemoSeed {
  readonly username: string;
  readonly password: string;
  readonly clientId: string;
}

/**
 * On a new installation (no account and no client yet), a demo app and a demo user with a
 * random password. Two instances starting together on a new database: one seeds, the other
 * finds it done and returns undefined.
 */
export async function seedDemo(deps: {
  issuer: string;
  accounts: AccountService;
  clients: ClientService;
  isNewInstallation: () => Promise<boolean>;
}): Promise<DemoSeed | undefined> {
  if (!(await deps.isNewInstallation())) return undefined;
  try {
    return await createDemo(deps);
  } catch (error) {
    if (isPosternError(error, 'ERR_DUPLICATE')) return undefined;
    throw error;
  }
}

async function createDemo(deps: { issuer: string; accounts: AccountService; clients: ClientService }) {
  const { redirectUri, postLogoutRedirectUri } = demoRedirectUris(deps.issuer);
  await deps.clients.create({
    clientId: DEMO_CLIENT_ID,
    name: 'Postern demo app',
    public: true,
    grantTypes: ['authorization_code'],
    redirectUris: [redirectUri],
    postLogoutRedirectUris: [postLogoutRedirectUri],
    scope: 'openid profile email roles',
    firstParty: true,
  });
  const password = randomBytes(12).toString('base64url');
  await deps.accounts.create({
    username: 'demo',
    email: 'demo@example.com',
    emailVerified: true,
    password,
    profile: { name: 'Demo User', givenName: 'Demo', familyName: 'User' },
    roles: ['demo'],
  });
  return { username: 'demo', password, clientId: DEMO_CLIENT_ID };
}

interface Pending {
  state: string;
  nonce: string;
  verifier: string;
}

const b64 = (bytes = 32) => randomBytes(bytes).toString('base64url');

export function demoRoutes(deps: { issuer: string; views: Views; secure: boolean; selfUrl: string }): Router {
  const { issuer, views, selfUrl } = deps;
  const { redirectUri, postLogoutRedirectUri } = demoRedirectUris(issuer);
  // Server-side calls go to this very process (behind a proxy the public URL may not be
  // reachable from inside); the browser is sent to the public issuer URL as usual.
  const jwks = createRemoteJWKSet(new URL(`${selfUrl}/jwks`));
  const cookieOptions = {
    httpOnly: true,
    sameSite: 'lax' as const,
    secure: deps.secure,
    signed: true,
    path: `${new URL(issuer).pathname.replace(/\/+$/, '')}/demo`,
    maxAge: 10 * 60 * 1000,
  };
  const router = new Router({ prefix: '/demo' });

  router.get('/', (ctx) => sendPage(ctx, views, 'demo', {}));

  router.get('/login', (ctx) => {
    const pending: Pending = { state: b64(), nonce: b64(), verifier: b64() };
    ctx.cookies.set(COOKIE, JSON.stringify(pending), cookieOptions);
    const url = new URL(`${issuer}/auth`);
    url.search = new URLSearchParams({
      client_id: DEMO_CLIENT_ID,
      response_type: 'code',
      scope: 'openid profile email roles',
      redirect_uri: redirectUri,
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: createHash('sha256').update(pending.verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }).toString();
    ctx.redirect(url.href);
  });

  router.get('/callback', async (ctx) => {
    const pending = readPending(ctx);
    ctx.cookies.set(COOKIE, null, cookieOptions);
    const { code, state, error, error_description: description } = ctx.query;
    if (!pending || state !== pending.state)
      return fail(ctx, views, 'The sign-in response did not match a sign-in this browser started. Please try again.');
    if (typeof error === 'string')
      return fail(
        ctx,
        views,
        `Postern answered: ${error}${typeof description === 'string' ? ` (${description})` : ''}`,
      );
    if (typeof code !== 'string') return fail(ctx, views, 'The sign-in response had no code.');
    const tokens = await exchange(selfUrl, code, redirectUri, pending.verifier);
    const { payload } = await jwtVerify(tokens.id_token, jwks, {
      issuer,
      audience: DEMO_CLIENT_ID,
      algorithms: ['RS256'],
    });
    if (payload.nonce !== pending.nonce)
      return fail(ctx, views, 'The ID token was not issued for this sign-in (nonce mismatch).');
    const userinfo = await fetchJson(`${selfUrl}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    sendPage(ctx, views, 'demo', {
      claims: payload satisfies JWTPayload,
      userinfo,
      idToken: tokens.id_token,
      endSessionUrl: `${issuer}/session/end`,
      postLogoutRedirectUri,
    });
  });
  return router;
}

function readPending(ctx: Context): Pending | undefined {
  try {
    const raw = ctx.cookies.get(COOKIE, { signed: true });
    return raw ? (JSON.parse(raw) as Pending) : undefined;
  } catch {
    return undefined;
  }
}

function fail(ctx: Context, views: Views, message: string): void {
  sendPage(ctx, views, 'error', { heading: 'Demo sign-in failed', message }, 400);
}

async function exchange(base: string, code: string, redirectUri: string, verifier: string) {
  const body = new URLSearchParams({
    grant_type: 'authorization_code',
    code,
    redirect_uri: redirectUri,
    code_verifier: verifier,
    client_id: DEMO_CLIENT_ID,
  });
  return fetchJson(`${base}/token`, { method: 'POST', body }) as Promise<{ id_token: string; access_token: string }>;
}

async function fetchJson(url: string, init: RequestInit): Promise<Record<string, unknown>> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const json = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok)
    throw new PosternError('ERR_UPSTREAM_FAILED', `${url} answered ${response.status}`, { cause: json });
  return json;
}
