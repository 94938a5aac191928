import { createHash, randomBytes } from 'node:crypto';

import { basicAuth, call, CookieJar, redirectTo, type Answer, type CallOptions } from './http.ts';
import type { ResourceServer } from './resource-server.ts';
import type { Recorder } from './stats.ts';

export const WEB_CLIENT = 'soak-web';
export const REDIRECT_URI = 'http://127.0.0.1:9/cb';
export const WEB_SCOPE = 'openid profile offline_access';

export interface TokenSet {
  accessToken: string;
  accessExpiresAt: number;
  refreshToken: string;
  idToken: string;
  sub: string;
}

/** When an access token from a token response expires (expires_in, RFC 6749 §5.1). */
export const expiresAt = (body: Record<string, unknown>) => Date.now() + Number(body.expires_in ?? 0) * 1000;

export type SignInOutcome =
  | { readonly ok: true; readonly tokens: TokenSet }
  /** pastResume: the request that saves the grant (the resume at /auth/UID) was sent, so a grant may exist. */
  | { readonly ok: false; readonly step: string; readonly pastResume: boolean };

export interface WebContext {
  readonly recorder: Recorder;
  readonly resourceServer: ResourceServer;
  readonly instances: readonly string[];
  readonly issuer: string;
  readonly webSecret: string;
}

type Send = (op: string, url: URL, options?: CallOptions) => Promise<Answer & { ok: boolean }>;

// 32 bytes: 43 characters, the shortest code_verifier RFC 7636 §4.1 allows.
const random = () => randomBytes(32).toString('base64url');
const unescapeHtml = (s: string) =>
  s
    .replace(/&amp;/g, '&')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>');
const location = (a: Answer) => a.headers.get('location') ?? '';

export function tokenSet(a: Answer): true | string {
  if (a.status !== 200) return a.text.slice(0, 200);
  const body = JSON.parse(a.text) as Record<string, unknown>;
  return typeof body.access_token === 'string' ? true : `no access_token: ${a.text.slice(0, 200)}`;
}

/** The form on a page whose action ends with `suffix`: its action and CSRF token. */
function formOf(html: string, suffix: string): { action: string; csrf: string } | undefined {
  const action = new RegExp(`action="([^"]*${suffix})"`).exec(html)?.[1];
  const csrf = /name="csrf" value="([^"]*)"/.exec(html)?.[1];
  return action && csrf ? { action: unescapeHtml(action), csrf: unescapeHtml(csrf) } : undefined;
}

const hasForm =
  (suffix: string) =>
  (a: Answer): true | string =>
    a.status === 200 && formOf(a.text, suffix) ? true : `no ${suffix} form: ${a.status} ${a.text.slice(0, 200)}`;

/** A fresh browser: one cookie jar for every request it sends. */
function newBrowser(recorder: Recorder): Send {
  const jar = new CookieJar();
  return async (op, url, options = {}) => {
    const cookie = jar.header(url);
    const answer = await call(recorder, op, url.href, {
      ...options,
      headers: { accept: 'text/html', ...(cookie ? { cookie } : {}), ...options.headers },
    });
    if (answer.status !== 0) jar.store(url, answer.headers);
    return answer;
  };
}

/** Submits the page's form (action ending in `suffix`) to instance `to`; it should send the browser back to /auth/UID. */
function submit(send: Send, op: string, page: Answer, suffix: string, to: URL, fields: Record<string, string> = {}) {
  const form = formOf(page.text, suffix)!;
  return send(op, new URL(form.action, to), { form: { csrf: form.csrf, ...fields }, expect: redirectTo('/auth/') });
}

/**
 * After the login: the resume through the issuer URL (instance A, where the engine sends the
 * browser), which saves the grant; with prompt=consent, the consent page first, answered "Allow"
 * on instance `other`. Returns the callback URL, or the step that failed.
 */
async function comeBack(send: Send, posted: Answer, other: URL): Promise<URL | string> {
  const resumeUrl = new URL(location(posted), other);
  let resumed = await send('resume', resumeUrl, { expect: redirectTo() });
  if (!resumed.ok) return 'resume';
  if (location(resumed).includes('/interaction/')) {
    const consent = await send('consent page', new URL(location(resumed), resumeUrl), { expect: hasForm('/confirm') });
    if (!consent.ok) return 'consent page';
    const allowed = await submit(send, 'consent post', consent, '/confirm', other);
    if (!allowed.ok) return 'consent post';
    resumed = await send('resume', new URL(location(allowed), other), { expect: redirectTo(REDIRECT_URI) });
    if (!resumed.ok) return 'resume';
  }
  return location(resumed).startsWith(REDIRECT_URI)
    ? new URL(location(resumed))
    : `resume went to ${location(resumed).slice(0, 80)}`;
}

/** The code exchanged at `instance` (client_secret_basic, PKCE), the ID token verified. */
async function exchange(
  ctx: WebContext,
  code: string,
  verifier: string,
  nonce: string,
  instance: number,
): Promise<TokenSet | string> {
  const exchanged = await call(ctx.recorder, 'token: code', `${ctx.instances[instance]}/token`, {
    form: { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier },
    headers: { authorization: basicAuth(WEB_CLIENT, ctx.webSecret) },
    expect: tokenSet,
  });
  if (!exchanged.ok) return 'token: code';
  const body = JSON.parse(exchanged.text) as Record<string, string | undefined>;
  if (!body.refresh_token || !body.id_token) return 'no refresh or ID token';
  const claims = await ctx.resourceServer.verifyIdToken(body.id_token, instance, { audience: WEB_CLIENT, nonce });
  if (!claims?.sub) return 'ID token verification';
  return {
    accessToken: body.access_token!,
    accessExpiresAt: expiresAt(body),
    refreshToken: body.refresh_token,
    idToken: body.id_token,
    sub: claims.sub,
  };
}

/**
 * A person signing in to the web app through the real pages, in a fresh browser: the
 * authorization request (PKCE S256) and the login page on instance `first`, the form posted to
 * the other instance (one database: an interaction started on one finishes on the other), the
 * way back through the issuer URL, and the code exchanged at `exchangeAt`.
 */
export async function signIn(
  ctx: WebContext,
  user: { username: string; password: string },
  first: number,
  exchangeAt: number,
): Promise<SignInOutcome> {
  const send = newBrowser(ctx.recorder);
  const failed = (step: string, pastResume: boolean): SignInOutcome => ({ ok: false, step, pastResume });
  const [verifier, state, nonce] = [random(), random(), random()];
  const base = new URL(ctx.instances[first]!);
  const other = new URL(ctx.instances[(first + 1) % ctx.instances.length]!);
  const authorize = new URL('/auth', base);
  authorize.search = new URLSearchParams({
    client_id: WEB_CLIENT,
    response_type: 'code',
    redirect_uri: REDIRECT_URI,
    scope: WEB_SCOPE,
    prompt: 'consent',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    state,
    nonce,
  }).toString();

  const started = await send('authorize', authorize, { expect: redirectTo('/interaction/') });
  if (!started.ok) return failed('authorize', false);
  const page = await send('login page', new URL(location(started), base), { expect: hasForm('/login') });
  if (!page.ok) return failed('login page', false);
  const posted = await submit(send, 'login post', page, '/login', other, user);
  if (!posted.ok) return failed('login post', false);
  const callback = await comeBack(send, posted, other);
  if (typeof callback === 'string') return failed(callback, true);
  const code = callback.searchParams.get('code');
  if (!code || callback.searchParams.get('state') !== state || callback.searchParams.get('iss') !== ctx.issuer) {
    return failed(`callback ${callback.search.slice(0, 120)}`, true);
  }
  const tokens = await exchange(ctx, code, verifier, nonce, exchangeAt);
  return typeof tokens === 'string' ? failed(tokens, true) : { ok: true, tokens };
}
