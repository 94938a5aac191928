import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';

import type { Account } from '../accounts/account.ts';
import { VERIFY_EMAIL_HOURS, type RegistrationService, type RequestMeta } from '../accounts/registration.service.ts';
import { fillText, textsFor } from '../i18n/texts.ts';
import type { FieldError } from '../shared/errors.ts';
import { checkCsrf, csrfToken } from './csrf.ts';
import { readForm } from './form-body.ts';
import { sendPage, type Views } from './views.ts';

// Self-service registration and email verification pages (issue 13 §2). Registration happens
// inside an interaction (the login page's link, or prompt=create), so that once the address
// is verified the person continues to the relying party that sent them. Which account this
// browser registered (or proved the password of) is kept in a signed cookie bound to the
// interaction; for an address that already had an account it names a random id instead, so
// the pages that follow behave alike and tell nothing.

export interface RegistrationDeps {
  readonly provider: () => Provider;
  readonly registration: RegistrationService;
  readonly views: Views;
  readonly csrfKey: Buffer;
  readonly secureCookies: boolean;
  readonly basePath?: string;
  /** Ends the interaction with this account signed in (interaction.routes.ts). */
  readonly signInTo: (ctx: Context, details: Details, account: Account) => Promise<void>;
  readonly clientName: (details: Details) => Promise<string>;
}

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

const PENDING_COOKIE = 'postern.registration';
const texts = () => textsFor().pages;

async function loadInteraction(ctx: Context, deps: RegistrationDeps): Promise<Details> {
  const details = await deps.provider().interactionDetails(ctx.req, ctx.res);
  if (details.uid !== ctx.params.uid) throw new errors.SessionNotFound('interaction mismatch');
  return details;
}

async function postedForm(ctx: Context, deps: RegistrationDeps) {
  const details = await loadInteraction(ctx, deps);
  const form = await readForm(ctx);
  if (!checkCsrf(deps.csrfKey, details.uid, form.csrf))
    throw new errors.InvalidRequest('the form has expired; please start again', 403);
  return { details, form };
}

function meta(ctx: Context, details?: Details): RequestMeta {
  return {
    ip: ctx.ip,
    userAgent: ctx.get('user-agent'),
    ...(details ? { clientId: String(details.params.client_id) } : {}),
  };
}

/** Remembers, for this interaction only, which account this browser is verifying. */
export function rememberPending(
  ctx: Context,
  deps: Pick<RegistrationDeps, 'secureCookies' | 'basePath'>,
  uid: string,
  accountId: string,
) {
  ctx.cookies.set(PENDING_COOKIE, `${uid}.${accountId}`, {
    signed: true,
    httpOnly: true,
    sameSite: 'lax',
    secure: deps.secureCookies,
    path: `${deps.basePath ?? ''}/interaction/${uid}`,
  });
}

function pendingAccount(ctx: Context, uid: string): string | undefined {
  const value = ctx.cookies.get(PENDING_COOKIE, { signed: true });
  const [cookieUid, accountId] = value?.split('.') ?? [];
  return cookieUid === uid ? accountId : undefined;
}

function tooMany(ctx: Context, deps: RegistrationDeps, retryAfterSeconds: number, text: string) {
  ctx.set('Retry-After', String(retryAfterSeconds));
  const minutes = Math.ceil(retryAfterSeconds / 60);
  sendPage(
    ctx,
    deps.views,
    'error',
    {
      heading: texts().tooMany.title,
      message: fillText(text, { minutes }),
      code: 'too_many_attempts',
      requestId: ctx.state.requestId,
    },
    429,
  );
}

export async function renderRegister(
  ctx: Context,
  deps: RegistrationDeps,
  details: Details,
  form: { values?: Record<string, string>; errors?: readonly FieldError[] } = {},
) {
  const t = texts();
  const values = form.values ?? {
    email: typeof details.params.login_hint === 'string' ? details.params.login_hint : '',
  };
  sendPage(
    ctx,
    deps.views,
    'register',
    {
      t,
      uid: details.uid,
      csrf: csrfToken(deps.csrfKey, details.uid),
      lead: fillText(t.register.lead, { client: await deps.clientName(details) }),
      values,
      errors: form.errors ?? [],
    },
    form.errors?.length ? 400 : 200,
  );
}

function renderCheckInbox(ctx: Context, deps: RegistrationDeps, details: Details, email: string) {
  const t = texts();
  sendPage(ctx, deps.views, 'register-sent', {
    t,
    uid: details.uid,
    csrf: csrfToken(deps.csrfKey, details.uid),
    intro: fillText(t.checkInbox.intro, { email }),
    next: fillText(t.checkInbox.next, { hours: VERIFY_EMAIL_HOURS }),
  });
}

function renderCode(ctx: Context, deps: RegistrationDeps, details: Details, error?: string) {
  sendPage(
    ctx,
    deps.views,
    'verify-code',
    {
      t: texts(),
      uid: details.uid,
      csrf: csrfToken(deps.csrfKey, details.uid),
      errors: error ? [{ field: 'code', detail: error }] : [],
    },
    error ? 400 : 200,
  );
}

/** Sign-in refused until the address is verified: the page that offers a new link and the code. */
export async function renderUnverified(ctx: Context, deps: RegistrationDeps, details: Details, resent = false) {
  const t = texts();
  sendPage(
    ctx,
    deps.views,
    'unverified',
    {
      t,
      uid: details.uid,
      csrf: csrfToken(deps.csrfKey, details.uid),
      next: fillText(t.unverified.next, { client: await deps.clientName(details) }),
      resent,
    },
    403,
  );
}

async function register(ctx: Context, deps: RegistrationDeps) {
  const { details, form } = await postedForm(ctx, deps);
  const values = {
    email: (form.email ?? '').trim(),
    username: (form.username ?? '').trim(),
    name: (form.name ?? '').trim(),
  };
  const outcome = await deps.registration.register({ ...values, password: form.password ?? '', ...meta(ctx, details) });
  if (outcome.kind === 'invalid') return renderRegister(ctx, deps, details, { values, errors: outcome.errors });
  if (outcome.kind === 'throttled') return tooMany(ctx, deps, outcome.retryAfterSeconds, texts().tooMany.registration);
  rememberPending(ctx, deps, details.uid, outcome.pendingId);
  renderCheckInbox(ctx, deps, details, values.email);
}

async function verifyCode(ctx: Context, deps: RegistrationDeps) {
  const { details, form } = await postedForm(ctx, deps);
  const accountId = pendingAccount(ctx, details.uid);
  if (!accountId) return renderCode(ctx, deps, details, texts().verifyCode.invalid);
  const outcome = await deps.registration.verifyCode(accountId, form.code ?? '', meta(ctx, details));
  if (outcome.kind === 'throttled') return tooMany(ctx, deps, outcome.retryAfterSeconds, texts().tooMany.code);
  if (outcome.kind === 'invalid') return renderCode(ctx, deps, details, texts().verifyCode.invalid);
  await deps.signInTo(ctx, details, outcome.account);
}

/** The link was opened (perhaps on another device): this browser goes on once the address is verified. */
async function continueAfterLink(ctx: Context, deps: RegistrationDeps) {
  const { details } = await postedForm(ctx, deps);
  const accountId = pendingAccount(ctx, details.uid);
  const account = accountId ? await deps.registration.verifiedAccount(accountId) : undefined;
  if (!account) return renderCode(ctx, deps, details, texts().verifyCode.notYet);
  await deps.signInTo(ctx, details, account);
}

async function resend(ctx: Context, deps: RegistrationDeps) {
  const { details } = await postedForm(ctx, deps);
  const accountId = pendingAccount(ctx, details.uid);
  // Silent: over the limit, or for no account, the page is the same and no mail goes out.
  if (accountId) await deps.registration.resend(accountId, meta(ctx, details));
  await renderUnverified(ctx, deps, details, true);
}

async function showLinkPage(ctx: Context, deps: RegistrationDeps) {
  const token = typeof ctx.query.token === 'string' ? ctx.query.token : '';
  // The GET uses nothing: mail scanners fetch links, and the person confirms with a button.
  const usable = await deps.registration.checkLink(token);
  sendPage(
    ctx,
    deps.views,
    'verify-email',
    {
      t: texts(),
      state: usable ? 'confirm' : 'invalid',
      token,
      csrf: csrfToken(deps.csrfKey, `verify-email:${token}`),
    },
    usable ? 200 : 410,
  );
}

async function useLink(ctx: Context, deps: RegistrationDeps) {
  const form = await readForm(ctx);
  const token = form.token ?? '';
  if (!checkCsrf(deps.csrfKey, `verify-email:${token}`, form.csrf))
    throw new errors.InvalidRequest('the form has expired; please start again', 403);
  const account = await deps.registration.verifyLink(token, meta(ctx));
  sendPage(ctx, deps.views, 'verify-email', { t: texts(), state: account ? 'done' : 'invalid' }, account ? 200 : 410);
}

/** Verification pages whenever mail works; the sign-up form only when registration is open. */
export function registrationRoutes(deps: RegistrationDeps, options: { registrationOpen: boolean }): Router {
  const router = new Router();
  if (options.registrationOpen) {
    router.get('/interaction/:uid/register', async (ctx) =>
      renderRegister(ctx, deps, await loadInteraction(ctx, deps)),
    );
    router.post('/interaction/:uid/register', (ctx) => register(ctx, deps));
  }
  router.get('/interaction/:uid/verify-code', async (ctx) => renderCode(ctx, deps, await loadInteraction(ctx, deps)));
  router.post('/interaction/:uid/verify-code', (ctx) => verifyCode(ctx, deps));
  router.post('/interaction/:uid/continue', (ctx) => continueAfterLink(ctx, deps));
  router.post('/interaction/:uid/resend', (ctx) => resend(ctx, deps));
  router.get('/verify-email', (ctx) => showLinkPage(ctx, deps));
  router.post('/verify-email', (ctx) => useLink(ctx, deps));
  return router;
}
