import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { errors, type InteractionResults } from 'oidc-provider';

import type { Account } from '../accounts/account.ts';
import type { AccountService } from '../accounts/account.service.ts';
import { ACR_PASSWORD, type MfaPolicy } from '../accounts/mfa-policy.ts';
import type { MfaService } from '../accounts/mfa.service.ts';
import type { Passkeys } from '../accounts/passkeys.ts';
import type { SignInService } from '../accounts/sign-in.service.ts';
import { textsFor } from '../i18n/texts.ts';
import type { Clock } from '../shared/clock.ts';
import { checkCsrf, csrfToken } from './csrf.ts';
import { readDevices, rememberDevice } from './device-cookie.ts';
import { readForm } from './form-body.ts';
import { mountPasskeySecondFactor } from './mfa-passkey.routes.ts';
import { isStepUp, mountMfaPages, secondFactorAfterPassword, showStepUp, type MfaPageDeps } from './mfa.routes.ts';
import type { PageScript } from './passkey-scripts.ts';
import { rememberPending, renderRegister, renderUnverified, type RegistrationDeps } from './registration.routes.ts';
import { sendPage, type Views } from './views.ts';

export interface InteractionDeps {
  readonly provider: () => Provider;
  readonly accounts: AccountService;
  readonly signIn: SignInService;
  readonly views: Views;
  readonly csrfKey: Buffer;
  readonly secureCookies: boolean;
  /** POSTERN_LOCKOUT_REVEAL: say "locked" rather than the generic message. */
  readonly revealLockout: boolean;
  /** The issuer's path, under which the device cookie lives. */
  readonly basePath?: string;
  /** Mail is on: offer "Forgot your password?" and, after a failure, the unlock-or-reset link. */
  readonly recoveryLinks?: boolean;
  /** POSTERN_REGISTRATION=open (and mail works): the login page links to the sign-up page. */
  readonly registrationOpen?: boolean;
  /** The registration and verification pages, when mail works (registration.routes.ts). */
  readonly registrationPages?: RegistrationDeps;
  /** The second step of signing in (issue 14, http/mfa.routes.ts). */
  readonly mfa?: {
    readonly service: MfaService;
    readonly policy: MfaPolicy & { readonly rememberDays: number };
    readonly clock: Clock;
    /** Passkeys are served: they are offered as a second factor too (http/mfa-passkey.routes.ts). */
    readonly passkeys?: Passkeys;
  };
  /** Passkeys are served: the login page offers "Sign in with a passkey" (http/passkey.routes.ts). */
  readonly passkeyScripts?: readonly PageScript[];
}

/** One message whatever the reason (unknown user, wrong password, disabled): no enumeration. */
export const LOGIN_FAILED_MESSAGE = 'The username or password is incorrect.';
const LOCKED_MESSAGE = 'This account is temporarily locked after too many failed sign-ins. Try again later.';

export type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

const SCOPE_TEXT: Record<string, string> = {
  openid: 'Know who you are (a stable identifier)',
  profile: 'See your name and username',
  email: 'See your email address',
  roles: 'See your roles',
  offline_access: 'Stay signed in to the app when you are away (refresh tokens)',
};

export async function loadInteraction(ctx: Context, deps: InteractionDeps): Promise<Details> {
  const details = await deps.provider().interactionDetails(ctx.req, ctx.res);
  // The uid in the path must be the one this browser's cookie is bound to.
  if (details.uid !== ctx.params.uid) throw new errors.SessionNotFound('interaction mismatch');
  return details;
}

export async function clientName(deps: InteractionDeps, details: Details): Promise<string> {
  const client = await deps.provider().Client.find(String(details.params.client_id));
  return client?.clientName ?? client?.clientId ?? 'the application';
}

export async function renderPrompt(
  ctx: Context,
  deps: InteractionDeps,
  details: Details,
  extra: { error?: string; username?: string } = {},
) {
  const common = {
    uid: details.uid,
    csrf: csrfToken(deps.csrfKey, details.uid),
    clientName: await clientName(deps, details),
  };
  if (details.prompt.name === 'create' && deps.registrationPages && !extra.error)
    return renderRegister(ctx, deps.registrationPages, details);
  // A session that signed in with a password only, now asked for a second factor: that page, not a new login.
  if (deps.mfa && isStepUp(details)) return showStepUp(ctx, mfaPages(deps, deps.mfa), details);
  if (details.prompt.name === 'login' || details.prompt.name === 'create') {
    const username = extra.username ?? (typeof details.params.login_hint === 'string' ? details.params.login_hint : '');
    // Someone already signed in here (asked to sign in again, prompt=login) sees the way to their account page.
    const accountLink = details.session?.accountId ? textsFor().pages.signedInFooter : undefined;
    const recovery = deps.recoveryLinks ? textsFor().pages.recovery : undefined;
    const signUp = deps.registrationOpen ? textsFor().pages.login : undefined;
    const passkey = deps.passkeyScripts ? { passkey: textsFor().pages.passkeyLogin, scripts: deps.passkeyScripts } : {};
    sendPage(
      ctx,
      deps.views,
      'login',
      { ...common, username, error: extra.error, accountLink, recovery, signUp, ...passkey },
      extra.error ? 401 : 200,
    );
    return;
  }
  const account = await deps.accounts.findById(String(details.session?.accountId));
  const scopes = (details.prompt.details.missingOIDCScope as string[] | undefined) ?? [];
  const resources = Object.entries((details.prompt.details.missingResourceScopes ?? {}) as Record<string, string[]>);
  const items = [
    ...scopes.map((s) => SCOPE_TEXT[s] ?? `Use the "${s}" permission`),
    ...resources.flatMap(([resource, list]) => list.map((s) => `Call ${resource} with "${s}"`)),
  ];
  sendPage(ctx, deps.views, 'consent', {
    ...common,
    username: account?.username ?? '',
    items: items.length ? items : ['Confirm your sign-in'],
  });
}

export async function finish(ctx: Context, deps: InteractionDeps, result: InteractionResults): Promise<void> {
  const returnTo = await deps
    .provider()
    .interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  ctx.status = 303;
  ctx.redirect(returnTo);
}

export async function postedForm(
  ctx: Context,
  deps: InteractionDeps,
): Promise<{ details: Details; form: Record<string, string> }> {
  const details = await loadInteraction(ctx, deps);
  const form = await readForm(ctx);
  if (!checkCsrf(deps.csrfKey, details.uid, form.csrf))
    throw new errors.InvalidRequest('the form has expired; please start again', 403);
  return { details, form };
}

/** Prompt Create 1.0 §4: the create step is done however the person got in (a new account, or signing in instead). */
export function loginResult(details: Details, login: InteractionResults['login']): InteractionResults {
  const prompts = String(details.params.prompt ?? '').split(' ');
  return { login, ...(prompts.includes('create') ? { create: {} } : {}) };
}

/** Ends the interaction signed in as an account that just verified its address in this browser. */
export async function signInTo(ctx: Context, deps: InteractionDeps, details: Details, account: Account): Promise<void> {
  if (account.disabled) return renderPrompt(ctx, deps, details, { error: LOGIN_FAILED_MESSAGE });
  // The password was given in this interaction (registration, or the sign-in that was refused as unverified).
  if (deps.mfa && (await secondFactorAfterPassword(ctx, mfaPages(deps, deps.mfa), details, account, false))) return;
  await finish(
    ctx,
    deps,
    loginResult(details, { accountId: account.id, amr: ['pwd'], acr: ACR_PASSWORD, remember: false }),
  );
}

/** The sign-in form, also for a prompt=create interaction whose person has an account already. */
function showLogin(ctx: Context, deps: InteractionDeps, details: Details) {
  if (details.prompt.name !== 'create') return renderPrompt(ctx, deps, details);
  return renderPrompt(ctx, deps, { ...details, prompt: { ...details.prompt, name: 'login' } } as Details);
}

async function login(ctx: Context, deps: InteractionDeps): Promise<void> {
  const { details, form } = await postedForm(ctx, deps);
  if (details.prompt.name !== 'login' && details.prompt.name !== 'create') return renderPrompt(ctx, deps, details);
  const username = (form.username ?? '').trim();
  const outcome = await deps.signIn.attempt({
    login: username,
    password: form.password ?? '',
    ip: ctx.ip,
    userAgent: ctx.get('user-agent'),
    clientId: String(details.params.client_id),
    devices: readDevices(ctx),
  });
  if (outcome.kind === 'throttled') {
    ctx.set('Retry-After', String(outcome.retryAfterSeconds));
    const minutes = Math.ceil(outcome.retryAfterSeconds / 60);
    return sendPage(
      ctx,
      deps.views,
      'error',
      {
        heading: 'Too many attempts',
        message: `Too many failed sign-ins came from your network. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`,
        code: 'too_many_attempts',
        requestId: ctx.state.requestId,
      },
      429,
    );
  }
  if (outcome.kind === 'unverified' && deps.registrationPages) {
    // The password is proven: this browser may now verify the account's address and go on.
    rememberPending(ctx, deps.registrationPages, details.uid, outcome.account.id);
    return renderUnverified(ctx, deps.registrationPages, details);
  }
  if (outcome.kind !== 'success') {
    const error = outcome.kind === 'locked' && deps.revealLockout ? LOCKED_MESSAGE : LOGIN_FAILED_MESSAGE;
    return renderPrompt(ctx, deps, details, { error, username });
  }
  // remember=false makes the session cookie last only as long as the browser.
  const remember = form.remember === 'yes';
  // A second step to come: the device cookie and the success wait for it (mfaPages complete).
  if (
    deps.mfa &&
    (await secondFactorAfterPassword(ctx, mfaPages(deps, deps.mfa), details, outcome.account, remember))
  ) {
    deps.signIn.secondStepPending({
      accountId: outcome.account.id,
      ip: ctx.ip,
      userAgent: ctx.get('user-agent'),
      clientId: String(details.params.client_id),
      trustedDevice: outcome.device !== undefined,
    });
    return;
  }
  await completeSignIn(ctx, deps, details, {
    accountId: outcome.account.id,
    amr: ['pwd'],
    acr: ACR_PASSWORD,
    remember,
  });
}

/**
 * Every step of the sign-in was given: this browser becomes a trusted device of the account,
 * the success is recorded (login.succeeded, last_login_at), and the interaction ends.
 */
async function completeSignIn(
  ctx: Context,
  deps: InteractionDeps,
  details: Details,
  login: NonNullable<InteractionResults['login']>,
  secondFactor?: string,
): Promise<void> {
  const known = readDevices(ctx).find((d) => d.accountId === login.accountId);
  rememberDevice(ctx, login.accountId, known, deps.secureCookies, deps.basePath);
  await deps.signIn.completed({
    accountId: login.accountId,
    ip: ctx.ip,
    userAgent: ctx.get('user-agent'),
    clientId: String(details.params.client_id),
    trustedDevice: known !== undefined,
    ...(secondFactor ? { secondFactor, stepUp: isStepUp(details) } : {}),
  });
  await finish(ctx, deps, loginResult(details, login));
}

async function confirm(ctx: Context, deps: InteractionDeps): Promise<void> {
  const { details } = await postedForm(ctx, deps);
  if (details.prompt.name !== 'consent' || !details.session?.accountId) return renderPrompt(ctx, deps, details);
  const { Grant } = deps.provider();
  const grant =
    (details.grantId ? await Grant.find(details.grantId) : undefined) ??
    new Grant({ accountId: details.session.accountId, clientId: String(details.params.client_id) });
  const missing = details.prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope((missing.missingOIDCScope as string[]).join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims as string[]);
  for (const [resource, scopes] of Object.entries((missing.missingResourceScopes ?? {}) as Record<string, string[]>)) {
    grant.addResourceScope(resource, scopes.join(' '));
  }
  const grantId = await grant.save();
  await finish(ctx, deps, { consent: { grantId } });
}

async function abort(ctx: Context, deps: InteractionDeps): Promise<void> {
  await postedForm(ctx, deps);
  await finish(ctx, deps, { error: 'access_denied', error_description: 'The user cancelled the request' });
}

/** What the second-factor pages need from this module. */
function mfaPages(deps: InteractionDeps, mfa: NonNullable<InteractionDeps['mfa']>): MfaPageDeps {
  return {
    ...deps,
    mfa: mfa.service,
    policy: mfa.policy,
    clock: mfa.clock,
    clientName: (details) => clientName(deps, details),
    complete: (ctx, details, login) =>
      completeSignIn(
        ctx,
        deps,
        details,
        login,
        login.amr?.find((m) => m !== 'pwd' && m !== 'mfa'),
      ),
    posted: (ctx) => postedForm(ctx, deps),
    showLogin: (ctx, details) => showLogin(ctx, deps, details),
    ...(mfa.passkeys ? { passkeys: mfa.passkeys } : {}),
  };
}

export function interactionRoutes(deps: InteractionDeps): Router {
  const router = new Router({ prefix: '/interaction/:uid' });
  router.get('/', async (ctx) => renderPrompt(ctx, deps, await loadInteraction(ctx, deps)));
  router.get('/login', async (ctx) => showLogin(ctx, deps, await loadInteraction(ctx, deps)));
  router.post('/login', (ctx) => login(ctx, deps));
  router.post('/confirm', (ctx) => confirm(ctx, deps));
  router.post('/abort', (ctx) => abort(ctx, deps));
  if (deps.mfa) mountMfaPages(router, mfaPages(deps, deps.mfa));
  if (deps.mfa?.passkeys) mountPasskeySecondFactor(router, mfaPages(deps, deps.mfa), deps.mfa.passkeys);
  return router;
}
