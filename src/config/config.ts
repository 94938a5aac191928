import path from 'node:path';

import type { LockoutPolicy } from '../accounts/lockout-policy.ts';
import type { UserVerification } from '../accounts/passkeys.ts';
import type { Argon2Params } from '../accounts/password-hasher.ts';
import type { RegistrationSettings } from '../accounts/registration.service.ts';
import type { KeyPolicy } from '../keys/key-lifecycle.ts';
import type { RefreshPolicy } from '../oidc/refresh-policy.ts';
import { ConfigError } from '../shared/errors.ts';

/** STARTTLS on an smtp:// URL (RFC 3207); smtps:// is TLS from the first byte (RFC 8314 §3.3). */
export type StartTlsPolicy = 'required' | 'opportunistic' | 'never';

export interface SmtpSettings {
  readonly secure: boolean;
  readonly host: string;
  readonly port: number;
  readonly startTls: StartTlsPolicy;
  /** From the URL's userinfo, percent-decoded; never logged (see describeSmtp). */
  readonly user: string | undefined;
  readonly password: string | undefined;
}

export interface MailSettings {
  /**
   * 'smtp': delivered over SMTP. 'log': no SMTP server outside production: each message is
   * written to the log with its link and kept for `postern mail list`. 'off': production
   * without SMTP: the features that need mail are disabled (check `enabled`).
   */
  readonly mode: 'smtp' | 'log' | 'off';
  /** Features that need mail (registration, reset, unlock, invitations) may run. */
  readonly enabled: boolean;
  readonly smtp: SmtpSettings | undefined;
  readonly from: string;
  /** Delivered and failed messages are deleted this long after they finished. */
  readonly retentionDays: number;
  /** Back-off between attempts doubles from 2 s up to this. */
  readonly retryMaxSeconds: number;
  /** A message not delivered this long after it was written is marked failed. */
  readonly giveUpSeconds: number;
}

export interface Config {
  readonly nodeEnv: string;
  readonly production: boolean;
  readonly issuer: string;
  readonly port: number;
  readonly host: string;
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  /** undefined only in embedded mode, where it is read from or generated into the data dir. */
  readonly secret: string | undefined;
  readonly logLevel: string;
  readonly migrateOnStart: boolean;
  readonly demo: boolean;
  readonly trustProxy: boolean;
  /**
   * OIDC Core §3.1.2.1: accept authorization requests by POST. Needs a SameSite=None session
   * cookie, so https issuers only; off by default (see README).
   */
  readonly authorizationPost: boolean;
  readonly argon2: Argon2Params;
  readonly sweepIntervalSeconds: number;
  readonly ttl: TokenLifetimes;
  readonly lockout: LockoutPolicy;
  readonly keys: KeyPolicy;
  /** How long instances may serve client and resource-server records from memory. */
  readonly cacheSeconds: number;
  readonly refresh: RefreshPolicy;
  /**
   * Let outbound requests (back-channel logout, a client's jwks_uri) reach loopback and private
   * addresses; off by default, as protection against server-side request forgery.
   */
  readonly outboundPrivateNetwork: boolean;
  readonly metrics: {
    readonly port: number | undefined;
    readonly token: string | undefined;
    readonly perClient: boolean;
  };
  /** How long a SIGTERM waits for requests in flight before closing what is left. */
  readonly shutdownSeconds: number;
  /** Audit events older than this are swept. */
  readonly auditRetentionDays: number;
  /** The product name shown in mails and on pages. */
  readonly publicName: string;
  readonly mail: MailSettings;
  /** Reset and unlock requests an hour: over either limit the page looks the same and no mail goes out. */
  readonly recovery: { readonly accountLimit: number; readonly ipLimit: number };
  readonly admin: AdminApiSettings;
  /** POSTERN_ACCOUNT_DELETION=on: people may delete their own account from the account page. */
  readonly accountDeletion: boolean;
  readonly registration: RegistrationSettings;
  /** Refuse password sign-in until the account's email address is verified. */
  readonly requireVerifiedEmail: boolean;
  /** Multi-factor sign-in (README: Multi-factor sign-in). */
  readonly mfa: MfaSettings;
  readonly passkeys: PasskeySettings;
}

/** Who must use a second factor, and how long a device may skip it (README: Multi-factor sign-in). */
export interface MfaSettings {
  /** POSTERN_MFA=required: everyone; optional: those who enrolled a factor (and per role or client). */
  readonly required: boolean;
  /** POSTERN_MFA_REQUIRED_ROLES: people with any of these roles must use a second factor. */
  readonly requiredRoles: readonly string[];
  /** POSTERN_MFA_REMEMBER_DAYS: "don't ask again on this device" for so many days; 0 = not offered. */
  readonly rememberDays: number;
}

/** README: Passkeys. */
export interface PasskeySettings {
  /** WebAuthn user verification: asked of the authenticator, and enforced when 'required'. */
  readonly userVerification: UserVerification;
}

/** The admin API under /admin/v1 (README: Admin API). */
export interface AdminApiSettings {
  /** Requests each calling client may make per window. */
  readonly rateLimit: number;
  readonly rateWindowSeconds: number;
  /** Browser origins allowed to call it (CORS); none by default. */
  readonly corsOrigins: readonly string[];
  /** How long an Idempotency-Key and the answer it gave are kept. */
  readonly idempotencySeconds: number;
}

export interface TokenLifetimes {
  readonly accessToken: number;
  readonly idToken: number;
  readonly session: number;
  readonly interaction: number;
  readonly authorizationCode: number;
  readonly grant: number;
}

type Env = Readonly<Record<string, string | undefined>>;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
export const MIN_SECRET_LENGTH = 32;

class Reader {
  readonly problems: string[] = [];
  readonly env: Env;
  constructor(env: Env) {
    this.env = env;
  }

  string(name: string): string | undefined {
    const value = this.env[name]?.trim();
    return value === '' ? undefined : value;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const raw = this.string(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || value < min || value > max) {
      this.problems.push(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
      return fallback;
    }
    return value;
  }

  bool(name: string, fallback: boolean): boolean {
    const raw = this.string(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (['true', '1', 'yes', 'on'].includes(raw)) return true;
    if (['false', '0', 'no', 'off'].includes(raw)) return false;
    this.problems.push(`${name} must be true or false (got "${raw}")`);
    return fallback;
  }
}

function readIssuer(r: Reader, production: boolean): string {
  const raw = r.string('POSTERN_ISSUER') ?? 'http://localhost:3000';
  const url = URL.parse(raw);
  if (!url || !['http:', 'https:'].includes(url.protocol) || url.search || url.hash) {
    r.problems.push(`POSTERN_ISSUER must be an http(s) URL without query or fragment (got "${raw}")`);
    return 'http://localhost:3000';
  }
  if (production && url.protocol !== 'https:') {
    r.problems.push('POSTERN_ISSUER must use https when NODE_ENV=production');
  }
  return raw.replace(/\/+$/, '');
}

/** The issuer's path ('' at the root, else '/idp'): every route and link of ours lives under it. */
export function issuerBasePath(issuer: string): string {
  return new URL(issuer).pathname.replace(/\/+$/, '');
}

function readPublicName(r: Reader): string {
  const name = r.string('POSTERN_PUBLIC_NAME') ?? 'Postern';
  // It goes into mail subjects (a header) and page titles: one short line.
  if (name.length > 80 || [...name].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)) {
    r.problems.push('POSTERN_PUBLIC_NAME must be one line of at most 80 characters');
    return 'Postern';
  }
  return name;
}

function readSecret(r: Reader, production: boolean, databaseUrl: string | undefined): string | undefined {
  const secret = r.string('POSTERN_SECRET');
  if (secret === undefined) {
    if (production) r.problems.push('POSTERN_SECRET is required when NODE_ENV=production');
    else if (databaseUrl)
      r.problems.push('POSTERN_SECRET is required with DATABASE_URL (every instance must share it)');
    return undefined;
  }
  if (secret.length < MIN_SECRET_LENGTH) {
    r.problems.push(`POSTERN_SECRET must be at least ${MIN_SECRET_LENGTH} characters (try: openssl rand -base64 48)`);
  }
  return secret;
}

function readDatabaseUrl(r: Reader): string | undefined {
  const url = r.string('DATABASE_URL');
  if (url !== undefined && !/^postgres(ql)?:\/\//.test(url)) {
    r.problems.push('DATABASE_URL must start with postgres:// or postgresql://');
  }
  return url;
}

function readLifetimes(r: Reader): TokenLifetimes {
  const day = 86400;
  return {
    accessToken: r.int('POSTERN_ACCESS_TOKEN_TTL_SECONDS', 3600, 60, day),
    idToken: r.int('POSTERN_ID_TOKEN_TTL_SECONDS', 3600, 60, day),
    session: r.int('POSTERN_SESSION_TTL_SECONDS', 14 * day, 60, 365 * day),
    interaction: r.int('POSTERN_INTERACTION_TTL_SECONDS', 3600, 60, day),
    authorizationCode: 60,
    grant: r.int('POSTERN_GRANT_TTL_SECONDS', 365 * day, 60, 10 * 365 * day),
  };
}

function readLockout(r: Reader): LockoutPolicy {
  const day = 86400;
  const policy = {
    threshold: r.int('POSTERN_LOCKOUT_THRESHOLD', 5, 1, 1000),
    windowSeconds: r.int('POSTERN_LOCKOUT_WINDOW_SECONDS', 900, 1, 30 * day),
    lockSeconds: r.int('POSTERN_LOCKOUT_SECONDS', 900, 1, 30 * day),
    maxLockSeconds: r.int('POSTERN_LOCKOUT_MAX_SECONDS', day, 1, 365 * day),
    accountThreshold: r.int('POSTERN_ACCOUNT_LOCKOUT_THRESHOLD', 20, 1, 100_000),
    ipFailureLimit: r.int('POSTERN_IP_FAILURE_LIMIT', 50, 1, 1_000_000),
    reveal: r.bool('POSTERN_LOCKOUT_REVEAL', false),
  };
  if (policy.maxLockSeconds < policy.lockSeconds)
    r.problems.push('POSTERN_LOCKOUT_MAX_SECONDS must not be less than POSTERN_LOCKOUT_SECONDS');
  return policy;
}

function readRefresh(r: Reader): RefreshPolicy {
  const day = 86400;
  const policy = {
    idleSeconds: r.int('POSTERN_REFRESH_IDLE_SECONDS', 14 * day, 60, 365 * day),
    absoluteSeconds: r.int('POSTERN_REFRESH_ABSOLUTE_SECONDS', 90 * day, 60, 5 * 365 * day),
    graceSeconds: r.int('POSTERN_REFRESH_REUSE_GRACE_SECONDS', 10, 0, 300),
    graceMaxRepeats: r.int('POSTERN_REFRESH_REUSE_GRACE_MAX', 10, 0, 1000),
  };
  if (policy.absoluteSeconds < policy.idleSeconds)
    r.problems.push('POSTERN_REFRESH_ABSOLUTE_SECONDS must not be less than POSTERN_REFRESH_IDLE_SECONDS');
  return policy;
}

function readMetrics(r: Reader): Config['metrics'] {
  const port = r.string('POSTERN_METRICS_PORT') === undefined ? undefined : r.int('POSTERN_METRICS_PORT', 0, 1, 65535);
  const token = r.string('POSTERN_METRICS_TOKEN');
  if (token !== undefined && token.length < 16) r.problems.push('POSTERN_METRICS_TOKEN must be at least 16 characters');
  return { port, token, perClient: r.bool('POSTERN_METRICS_PER_CLIENT', false) };
}

const EXTRA_ALGS = ['PS256', 'EdDSA'];

function readKeys(r: Reader): KeyPolicy {
  const extra = (r.string('POSTERN_SIGNING_ALGS') ?? '')
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  for (const alg of extra) {
    if (!['RS256', 'ES256', ...EXTRA_ALGS].includes(alg))
      r.problems.push(
        `POSTERN_SIGNING_ALGS: "${alg}" is not supported (RS256 and ES256 are always on; add ${EXTRA_ALGS.join(' or ')})`,
      );
  }
  return {
    algs: [...new Set(['RS256', 'ES256', ...extra.filter((a) => EXTRA_ALGS.includes(a))])],
    rotationSeconds: r.int('POSTERN_KEY_ROTATION_SECONDS', 90 * 86400, 60, 10 * 365 * 86400),
    jwksCacheSeconds: r.int('POSTERN_JWKS_CACHE_SECONDS', 300, 0, 86400),
    pollSeconds: r.int('POSTERN_KEY_POLL_SECONDS', 5, 1, 300),
  };
}

const STARTTLS_POLICIES: readonly StartTlsPolicy[] = ['required', 'opportunistic', 'never'];

/** smtp://user:pass@host:587?starttls=required|opportunistic|never, or smtps://user:pass@host:465. */
function readSmtpUrl(r: Reader): SmtpSettings | undefined {
  const raw = r.string('POSTERN_SMTP_URL');
  if (raw === undefined) return undefined;
  // The message never repeats the value: it may hold the password.
  const problem = (what: string) => {
    r.problems.push(`POSTERN_SMTP_URL ${what}`);
    return undefined;
  };
  const url = URL.parse(raw);
  if (!url || !['smtp:', 'smtps:'].includes(url.protocol) || !url.hostname)
    return problem('must be smtp://[user:password@]host[:port] or smtps://...');
  if ((url.pathname && url.pathname !== '/') || url.hash) return problem('must have no path or fragment');
  const secure = url.protocol === 'smtps:';
  const params = [...url.searchParams.keys()];
  if (params.some((k) => k !== 'starttls')) return problem('accepts only the query parameter starttls');
  const startTls = url.searchParams.get('starttls') ?? (secure ? 'never' : 'required');
  if (!(STARTTLS_POLICIES as readonly string[]).includes(startTls))
    return problem(`starttls must be one of ${STARTTLS_POLICIES.join(', ')}`);
  if (secure && startTls !== 'never') return problem('smtps:// is TLS already: starttls does not apply');
  return {
    secure,
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port ? Number(url.port) : secure ? 465 : 587,
    startTls: startTls as StartTlsPolicy,
    user: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
  };
}

/** The SMTP server for a log line: everything but the password. */
export function describeSmtp(smtp: SmtpSettings): string {
  const user = smtp.user ? `${smtp.user}@` : '';
  return `${smtp.secure ? 'smtps' : 'smtp'}://${user}${smtp.host}:${smtp.port}${smtp.secure ? '' : ` (starttls ${smtp.startTls})`}`;
}

function readMail(r: Reader, production: boolean, issuer: string): MailSettings {
  const smtp = readSmtpUrl(r);
  const smtpSet = r.string('POSTERN_SMTP_URL') !== undefined;
  const from = r.string('POSTERN_MAIL_FROM') ?? `no-reply@${URL.parse(issuer)?.hostname ?? 'localhost'}`;
  if (/[\r\n]/.test(from) || !/@/.test(from))
    r.problems.push(
      'POSTERN_MAIL_FROM must be one address, e.g. no-reply@example.com or "Postern <no-reply@example.com>"',
    );
  if (smtpSet && r.string('POSTERN_MAIL_FROM') === undefined)
    r.problems.push(
      'POSTERN_MAIL_FROM is required with POSTERN_SMTP_URL (the sender address your mail server accepts)',
    );
  const mode = smtpSet ? 'smtp' : production ? 'off' : 'log';
  return {
    mode,
    enabled: mode !== 'off',
    smtp,
    from,
    retentionDays: r.int('POSTERN_MAIL_RETENTION_DAYS', 7, 1, 3650),
    retryMaxSeconds: r.int('POSTERN_MAIL_RETRY_MAX_SECONDS', 60, 2, 3600),
    giveUpSeconds: r.int('POSTERN_MAIL_GIVE_UP_SECONDS', 86400, 1, 30 * 86400),
  };
}

function readAdmin(r: Reader): AdminApiSettings {
  const origins = (r.string('POSTERN_ADMIN_CORS_ORIGINS') ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  for (const origin of origins) {
    // An origin is scheme://host[:port], exactly as a browser sends it in the Origin header.
    const url = URL.parse(origin);
    if (!url || !['http:', 'https:'].includes(url.protocol) || url.origin !== origin)
      r.problems.push(
        `POSTERN_ADMIN_CORS_ORIGINS: "${origin}" is not an origin (scheme://host[:port], no path or trailing slash)`,
      );
  }
  return {
    rateLimit: r.int('POSTERN_ADMIN_RATE_LIMIT', 600, 1, 1_000_000),
    rateWindowSeconds: r.int('POSTERN_ADMIN_RATE_WINDOW_SECONDS', 60, 1, 3600),
    corsOrigins: origins,
    idempotencySeconds: r.int('POSTERN_ADMIN_IDEMPOTENCY_SECONDS', 86400, 60, 7 * 86400),
  };
}

function readOnOff(r: Reader, name: string, fallback: boolean): boolean {
  const raw = r.string(name);
  if (raw === undefined) return fallback;
  if (raw !== 'on' && raw !== 'off') r.problems.push(`${name} must be on or off (got "${raw}")`);
  return raw === 'on';
}

function readRegistration(r: Reader, mail: MailSettings): RegistrationSettings {
  const raw = (r.string('POSTERN_REGISTRATION') ?? 'off').toLowerCase();
  if (raw !== 'off' && raw !== 'open') r.problems.push(`POSTERN_REGISTRATION must be off or open (got "${raw}")`);
  return {
    // Production without SMTP: sign-up stays off (mail.ts logs why at start), never failing at use time.
    open: raw === 'open' && mail.enabled,
    ipLimit: r.int('POSTERN_REGISTRATION_IP_LIMIT', 3, 1, 100_000),
    emailLimit: r.int('POSTERN_REGISTRATION_EMAIL_LIMIT', 3, 1, 100_000),
    windowSeconds: r.int('POSTERN_REGISTRATION_WINDOW_SECONDS', 3600, 60, 7 * 86400),
  };
}

/** Default: on when registration is open. Verifying needs mail, so it cannot be on without it. */
function readRequireVerifiedEmail(r: Reader, mail: MailSettings): boolean {
  const requested = (r.string('POSTERN_REGISTRATION') ?? 'off').toLowerCase() === 'open';
  const value = r.bool('POSTERN_REQUIRE_VERIFIED_EMAIL', requested && mail.enabled);
  if (value && !mail.enabled && r.string('POSTERN_REQUIRE_VERIFIED_EMAIL') !== undefined)
    r.problems.push(
      'POSTERN_REQUIRE_VERIFIED_EMAIL=true needs email (POSTERN_SMTP_URL): nobody could verify an address, so nobody could sign in',
    );
  return value && mail.enabled;
}

function readMfa(r: Reader): MfaSettings {
  const raw = (r.string('POSTERN_MFA') ?? 'optional').toLowerCase();
  if (raw !== 'optional' && raw !== 'required')
    r.problems.push(`POSTERN_MFA must be optional or required (got "${raw}")`);
  const roles = (r.string('POSTERN_MFA_REQUIRED_ROLES') ?? '')
    .split(',')
    .map((role) => role.trim())
    .filter(Boolean);
  for (const role of roles)
    if (!/^[A-Za-z0-9][A-Za-z0-9:._-]{0,63}$/.test(role))
      r.problems.push(`POSTERN_MFA_REQUIRED_ROLES: "${role}" is not a role name (letters, digits, ".", "_", ":", "-")`);
  return {
    required: raw === 'required',
    requiredRoles: roles,
    rememberDays: r.int('POSTERN_MFA_REMEMBER_DAYS', 0, 0, 365),
  };
}

const USER_VERIFICATION: readonly UserVerification[] = ['required', 'preferred', 'discouraged'];

function readPasskeys(r: Reader): PasskeySettings {
  const raw = (r.string('POSTERN_PASSKEY_USER_VERIFICATION') ?? 'required').toLowerCase();
  const userVerification = USER_VERIFICATION.find((v) => v === raw);
  if (!userVerification)
    r.problems.push(`POSTERN_PASSKEY_USER_VERIFICATION must be one of ${USER_VERIFICATION.join(', ')} (got "${raw}")`);
  return { userVerification: userVerification ?? 'required' };
}

/** Reads and checks every setting at once; throws one ConfigError listing every problem. */
export function loadConfig(env: Env): Config {
  const r = new Reader(env);
  const nodeEnv = r.string('NODE_ENV') ?? 'development';
  const production = nodeEnv === 'production';
  const databaseUrl = readDatabaseUrl(r);
  const logLevel = r.string('LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) r.problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);
  const issuer = readIssuer(r, production);
  const mail = readMail(r, production, issuer);
  const config: Config = {
    nodeEnv,
    production,
    issuer,
    port: r.int('PORT', 3000, 0, 65535),
    host: r.string('HOST') ?? '0.0.0.0',
    databaseUrl,
    dataDir: path.resolve(r.string('POSTERN_DATA_DIR') ?? './data'),
    secret: readSecret(r, production, databaseUrl),
    logLevel,
    migrateOnStart: r.bool('POSTERN_MIGRATE_ON_START', databaseUrl === undefined),
    demo: r.bool('POSTERN_DEMO', databaseUrl === undefined),
    trustProxy: r.bool('POSTERN_TRUST_PROXY', false),
    authorizationPost: r.bool('POSTERN_AUTHORIZATION_POST', false),
    argon2: {
      memoryKiB: r.int('POSTERN_ARGON2_MEMORY_KIB', 19456, 1024, 4 * 1024 * 1024),
      iterations: r.int('POSTERN_ARGON2_ITERATIONS', 2, 1, 100),
      parallelism: r.int('POSTERN_ARGON2_PARALLELISM', 1, 1, 64),
    },
    sweepIntervalSeconds: r.int('POSTERN_SWEEP_INTERVAL_SECONDS', 300, 1, 86400),
    ttl: readLifetimes(r),
    lockout: readLockout(r),
    keys: readKeys(r),
    cacheSeconds: r.int('POSTERN_CACHE_SECONDS', 5, 0, 300),
    refresh: readRefresh(r),
    outboundPrivateNetwork: r.bool('POSTERN_OUTBOUND_PRIVATE_NETWORK', false),
    metrics: readMetrics(r),
    shutdownSeconds: r.int('POSTERN_SHUTDOWN_SECONDS', 10, 1, 600),
    auditRetentionDays: r.int('POSTERN_AUDIT_RETENTION_DAYS', 400, 1, 36_500),
    publicName: readPublicName(r),
    mail,
    admin: readAdmin(r),
    accountDeletion: readOnOff(r, 'POSTERN_ACCOUNT_DELETION', false),
    recovery: {
      accountLimit: r.int('POSTERN_RECOVERY_ACCOUNT_LIMIT', 5, 1, 1000),
      ipLimit: r.int('POSTERN_RECOVERY_IP_LIMIT', 20, 1, 100_000),
    },
    registration: readRegistration(r, mail),
    requireVerifiedEmail: readRequireVerifiedEmail(r, mail),
    mfa: readMfa(r),
    passkeys: readPasskeys(r),
  };
  // Postern serves plain HTTP: an https issuer means a TLS-terminating proxy in front, whose
  // X-Forwarded-Proto must be trusted, or every secure cookie would be refused at sign-in.
  if (config.issuer.startsWith('https:') && !config.trustProxy) {
    r.problems.push(
      'POSTERN_ISSUER is https, so Postern runs behind a TLS-terminating proxy: set POSTERN_TRUST_PROXY=true',
    );
  }
  // Browsers keep a SameSite=None cookie only when it is Secure, which needs https.
  if (config.authorizationPost && !config.issuer.startsWith('https:')) {
    r.problems.push(
      'POSTERN_AUTHORIZATION_POST=true needs an https POSTERN_ISSUER: its session cookie must be SameSite=None, which browsers accept only with Secure',
    );
  }
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return Object.freeze(config);
}
