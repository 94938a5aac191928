import type Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import QRCode from 'qrcode';

import type { Account } from '../accounts/account.ts';
import {
  ACR_MFA,
  acrAsksForMfa,
  amrWith,
  decideSecondFactor,
  type MfaMethod,
  type MfaPolicy,
} from '../accounts/mfa-policy.ts';
import type { MfaService, TotpEnrollment } from '../accounts/mfa.service.ts';
import type { Passkeys } from '../accounts/passkeys.ts';
import { textsFor } from '../i18n/texts.ts';
import type { Clock } from '../shared/clock.ts';
import { isPosternError } from '../shared/errors.ts';
import { csrfToken } from './csrf.ts';
import { isMfaRemembered, rememberMfaDevice } from './device-cookie.ts';
import type { PageScript } from './passkey-scripts.ts';
import { sendPage, type Views } from './views.ts';

// The second step of signing in (issue 14): after the password, or for a session that signed in
// with a password only and is now asked for more (step-up, oidc/mfa-step-up.ts). One page offers
// the account's methods (it.methods); a person who must use MFA and has no factor sets up TOTP
// here and goes on, so no policy locks anyone out.

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;
type Login = NonNullable<InteractionResults['login']>;

export interface MfaPageDeps {
  readonly provider: () => Provider;
  readonly mfa: MfaService;
  readonly policy: MfaPolicy & { readonly rememberDays: number };
  /** When a "don't ask again" pass is issued and checked (POSTERN_MFA_REMEMBER_DAYS). */
  readonly clock: Clock;
  readonly views: Views;
  readonly csrfKey: Buffer;
  readonly secureCookies: boolean;
  readonly basePath?: string;
  /** POSTERN_PUBLIC_NAME's otpauth issuer is the service's; the page only shows the app's name. */
  readonly clientName: (details: Details) => Promise<string>;
  /** Ends the interaction with this login (interaction.routes.ts). */
  readonly complete: (ctx: Context, details: Details, login: Login) => Promise<void>;
  /** The interaction of a POST whose form token checked out. */
  readonly posted: (ctx: Context) => Promise<{ details: Details; form: Record<string, string> }>;
  /** The sign-in page again (nobody is half-way through this interaction). */
  readonly showLogin: (ctx: Context, details: Details) => Promise<void>;
  /** Passkeys are served: the page offers "Use a passkey" to whoever has one (mfa-passkey.routes.ts). */
  readonly passkeys?: Passkeys;
  readonly passkeyScripts?: readonly PageScript[];
}

/** Who is half-way through signing in, in this interaction. */
export interface Pending {
  readonly accountId: string;
  readonly remember: boolean;
  /** What was given so far (RFC 8176): ['pwd'], or the step-up session's own. */
  readonly amr: readonly string[];
  /** TOTP was set up in this interaction and its recovery codes shown. */
  readonly enrolled: boolean;
  /**
   * The decision after the password was "enroll" (MFA required, no factor): only then may this
   * interaction set up TOTP. Anyone else holding the password must give the factor they have.
   */
  readonly enrollDue: boolean;
  /** The password was given in this interaction (false at a step-up: the session's was earlier). */
  readonly passwordGiven: boolean;
}

const PENDING_COOKIE = 'postern_mfa';
/** The engine's reasons for a login prompt that a second factor alone can satisfy. */
const STEP_UP_REASONS = new Set(['mfa_required', 'essential_acr', 'essential_acrs']);
const LOCKED = 'Too many wrong codes. Wait a few minutes, then try again.';
const WRONG_PASSWORD = 'That password is not right, or there were too many wrong ones. Try again.';
const WRONG = 'That code is not right. Check the time on your phone, or wait for the next code.';

function setPending(ctx: Context, deps: MfaPageDeps, uid: string, p: Omit<Pending, 'amr' | 'passwordGiven'>): void {
  const flags = `${p.remember ? 'r' : ''}${p.enrolled ? 'e' : ''}${p.enrollDue ? 'n' : ''}`;
  ctx.cookies.set(PENDING_COOKIE, `${uid}.${p.accountId}.${flags}`, {
    signed: true,
    httpOnly: true,
    sameSite: 'lax',
    secure: deps.secureCookies,
    path: `${deps.basePath ?? ''}/interaction/${uid}`,
  });
}

/**
 * The acr an essential `claims` request names (OIDC Core §5.5.1.1; the engine passes it as the
 * prompt's details.acr): a second factor can satisfy it only when urn:postern:mfa is among them.
 */
function essentialAcrAsksForMfa(details: Details): boolean {
  const acr = details.prompt.details.acr as { value?: unknown; values?: unknown } | undefined;
  const values = Array.isArray(acr?.values) ? acr.values : [acr?.value];
  return values.includes(ACR_MFA);
}

/** A session that exists but is asked only for a second factor (its amr lacks one). */
export function isStepUp(details: Details): boolean {
  const reasons = details.prompt.reasons;
  const essentialAcr = reasons.some((r) => r.startsWith('essential_acr'));
  return (
    details.prompt.name === 'login' &&
    Boolean(details.session?.accountId) &&
    reasons.length > 0 &&
    reasons.every((r) => STEP_UP_REASONS.has(r)) &&
    // Any other essential acr (urn:postern:pwd, or one we do not know) is a new login, not a step-up.
    (!essentialAcr || essentialAcrAsksForMfa(details))
  );
}

export function pending(ctx: Context, details: Details): Pending | undefined {
  const [uid, accountId, flags = ''] = ctx.cookies.get(PENDING_COOKIE, { signed: true })?.split('.') ?? [];
  if (uid === details.uid && accountId)
    return {
      accountId,
      remember: flags.includes('r'),
      enrolled: flags.includes('e'),
      enrollDue: flags.includes('n'),
      amr: ['pwd'],
      passwordGiven: true,
    };
  if (!isStepUp(details)) return undefined;
  const session = details.session as { accountId: string; amr?: string[] };
  // A step-up changes nothing about how long the session lasts; a browser-length one is the safe default.
  // The relying party asked for MFA: enrolling is due if the account has no factor (checked where used).
  return {
    accountId: session.accountId,
    remember: false,
    enrolled: false,
    enrollDue: true,
    amr: session.amr ?? ['pwd'],
    passwordGiven: false,
  };
}

/** The account's methods this installation can offer (passkeys only where they are served). */
async function methodsOf(deps: MfaPageDeps, accountId: string): Promise<MfaMethod[]> {
  const methods = await deps.mfa.methods(accountId);
  return deps.passkeys ? methods : methods.filter((m) => m !== 'passkey');
}

/** Recovery codes alone are no factor (mfa-policy.ts). */
const factorsIn = (methods: readonly MfaMethod[]) => methods.filter((m) => m !== 'recovery_code');

async function clientRequiresMfa(deps: MfaPageDeps, details: Details): Promise<boolean> {
  const client = await deps.provider().Client.find(String(details.params.client_id));
  return client?.metadata().require_mfa === true;
}

export async function showVerify(
  ctx: Context,
  deps: MfaPageDeps,
  details: Details,
  methods: readonly MfaMethod[],
  error?: string,
): Promise<void> {
  sendPage(
    ctx,
    deps.views,
    'second-factor',
    {
      uid: details.uid,
      csrf: csrfToken(deps.csrfKey, details.uid),
      clientName: await deps.clientName(details),
      methods,
      rememberDays: deps.policy.rememberDays,
      error,
      ...(methods.includes('passkey') && deps.passkeyScripts
        ? { passkey: textsFor().pages.passkeySecondFactor, scripts: deps.passkeyScripts }
        : {}),
    },
    error ? (error === LOCKED ? 429 : 401) : 200,
  );
}

/** The key in groups of four, as authenticator apps show it. */
export const groupSecret = (secret: string) => secret.replace(/(.{4})/g, '$1 ').trim();

export async function enrollmentView(enrollment: TotpEnrollment) {
  const qrSvg = await QRCode.toString(enrollment.uri, { type: 'svg', margin: 1, errorCorrectionLevel: 'M' });
  return { qrSvg, secretGroups: groupSecret(enrollment.secret) };
}

/** askPassword: adding a factor to a session signed in earlier (step-up) asks for its password again. */
async function showEnroll(
  ctx: Context,
  deps: MfaPageDeps,
  details: Details,
  accountId: string,
  error?: string,
  askPassword = false,
) {
  // Checked on the server each time, whatever the cookie says: an account with a factor (TOTP or
  // a passkey) proves it; it never gets a new secret that would let a password alone through.
  const methods = await methodsOf(deps, accountId);
  if (factorsIn(methods).length > 0) return showVerify(ctx, deps, details, methods);
  const enrollment = (await deps.mfa.pendingTotp(accountId)) ?? (await deps.mfa.startTotp(accountId));
  sendPage(
    ctx,
    deps.views,
    'mfa-enroll',
    {
      ...(await enrollmentView(enrollment)),
      action: `${deps.basePath ?? ''}/interaction/${details.uid}/mfa/enroll`,
      csrf: csrfToken(deps.csrfKey, details.uid),
      clientName: await deps.clientName(details),
      required: true,
      askPassword,
      error,
    },
    error ? 400 : 200,
  );
}

/** The second-factor page for whoever is pending: ask for a code, or set one up. */
async function showStep(ctx: Context, deps: MfaPageDeps, details: Details, accountId: string): Promise<void> {
  const methods = await methodsOf(deps, accountId);
  // Whoever has no factor but recovery codes sets up TOTP.
  if (factorsIn(methods).length > 0) return showVerify(ctx, deps, details, methods);
  // Only a step-up comes here: the password was given in an earlier sign-in, so it is asked again.
  return showEnroll(ctx, deps, details, accountId, undefined, true);
}

/**
 * After the password: ends the sign-in (returns false) or shows the second step (returns true).
 * The decision is accounts/mfa-policy.ts's, over the account's methods, its roles, the client,
 * the request's acr_values and this browser's "remembered" cookie.
 */
export async function secondFactorAfterPassword(
  ctx: Context,
  deps: MfaPageDeps,
  details: Details,
  account: Account,
  remember: boolean,
): Promise<boolean> {
  const methods = await methodsOf(deps, account.id);
  const stamp = deps.policy.rememberDays > 0 ? await deps.mfa.factorStamp(account.id) : undefined;
  const decision = decideSecondFactor(deps.policy, {
    roles: account.roles,
    methods,
    clientRequiresMfa: await clientRequiresMfa(deps, details),
    acrRequested: acrAsksForMfa(details.params.acr_values),
    deviceRemembered: isMfaRemembered(ctx, account.id, stamp, deps.clock.now(), deps.policy.rememberDays),
  });
  if (decision.kind === 'none') return false;
  const enrollDue = decision.kind === 'enroll';
  setPending(ctx, deps, details.uid, { accountId: account.id, remember, enrolled: false, enrollDue });
  if (decision.kind === 'verify') await showVerify(ctx, deps, details, decision.methods);
  else await showEnroll(ctx, deps, details, account.id);
  return true;
}

/** The page for a session asked to step up (interaction.routes.ts renderPrompt). */
export async function showStepUp(ctx: Context, deps: MfaPageDeps, details: Details): Promise<void> {
  await showStep(ctx, deps, details, String(details.session?.accountId));
}

const origin = (ctx: Context, details: Details) => ({
  ip: ctx.ip,
  userAgent: ctx.get('user-agent') || null,
  clientId: String(details.params.client_id),
});

function signedInWithSecondFactor(p: Pending): Login {
  // RFC 8176 §2: otp for a TOTP or recovery code; mfa as more than one factor was used.
  return { accountId: p.accountId, amr: amrWith(p.amr, 'otp'), acr: ACR_MFA, remember: p.remember };
}

async function verifyCode(ctx: Context, deps: MfaPageDeps): Promise<void> {
  const { details, form } = await deps.posted(ctx);
  const p = pending(ctx, details);
  if (!p) return deps.showLogin(ctx, details);
  const result = await deps.mfa.verify(p.accountId, form.code ?? '', origin(ctx, details));
  if (!result.ok)
    return showVerify(
      ctx,
      deps,
      details,
      await methodsOf(deps, p.accountId),
      result.reason === 'locked' ? LOCKED : WRONG,
    );
  const stamp = await deps.mfa.factorStamp(p.accountId);
  if (form.remember_device === 'yes' && deps.policy.rememberDays > 0 && stamp)
    rememberMfaDevice(
      ctx,
      { accountId: p.accountId, stamp, days: deps.policy.rememberDays, now: deps.clock.now() },
      deps.secureCookies,
      deps.basePath,
    );
  await deps.complete(ctx, details, signedInWithSecondFactor(p));
}

async function enrollmentAllowed(deps: MfaPageDeps, p: Pending): Promise<boolean> {
  return p.enrollDue && factorsIn(await methodsOf(deps, p.accountId)).length === 0;
}

async function confirmEnrollment(ctx: Context, deps: MfaPageDeps): Promise<void> {
  const { details, form } = await deps.posted(ctx);
  const p = pending(ctx, details);
  if (!p) return deps.showLogin(ctx, details);
  // Finding 1 of the review: setting up is for whoever the decision sent here and has no factor.
  if (!(await enrollmentAllowed(deps, p))) return showVerify(ctx, deps, details, await methodsOf(deps, p.accountId));
  const ask = !p.passwordGiven;
  let result: Awaited<ReturnType<MfaService['confirmTotp']>>;
  try {
    const input = { code: form.code ?? '', ...(ask ? { password: form.password ?? '' } : {}) };
    result = await deps.mfa.confirmTotp(p.accountId, input, origin(ctx, details));
  } catch (error) {
    if (!isPosternError(error, 'ERR_INVALID_INPUT')) throw error;
    return showEnroll(ctx, deps, details, p.accountId, WRONG_PASSWORD, ask);
  }
  if (!result.ok) return showEnroll(ctx, deps, details, p.accountId, result.reason === 'locked' ? LOCKED : WRONG, ask);
  // Shown once, then the person goes on; the cookie says this interaction enrolled.
  setPending(ctx, deps, details.uid, { ...p, enrolled: true });
  sendPage(ctx, deps.views, 'recovery-codes', {
    codes: result.recoveryCodes ?? [],
    action: `${deps.basePath ?? ''}/interaction/${details.uid}/mfa/continue`,
    csrf: csrfToken(deps.csrfKey, details.uid),
  });
}

async function continueAfterEnrollment(ctx: Context, deps: MfaPageDeps): Promise<void> {
  const { details } = await deps.posted(ctx);
  const p = pending(ctx, details);
  if (!p?.enrolled) return deps.showLogin(ctx, details);
  // The TOTP just set up is the account's only factor; a passkey would have had to be used instead.
  const methods = await methodsOf(deps, p.accountId);
  if (!p.enrollDue || methods.includes('passkey')) return showVerify(ctx, deps, details, methods);
  await deps.complete(ctx, details, signedInWithSecondFactor(p));
}

/** Mounted on the interaction router (prefix /interaction/:uid). */
export function mountMfaPages(router: Router, deps: MfaPageDeps): void {
  router.post('/mfa', (ctx) => verifyCode(ctx, deps));
  router.post('/mfa/enroll', (ctx) => confirmEnrollment(ctx, deps));
  router.post('/mfa/continue', (ctx) => continueAfterEnrollment(ctx, deps));
}
