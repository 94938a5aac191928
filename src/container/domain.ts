import type Provider from 'oidc-provider';

import { createAccountPageService, type AccountPageService } from '../accounts/account-page.service.ts';
import { hasAccounts } from '../accounts/account.repository.ts';
import { createAccountService, type AccountService } from '../accounts/account.service.ts';
import { createMfaService, type MfaService } from '../accounts/mfa.service.ts';
import { createOneTimeTokens, type OneTimeTokens } from '../accounts/one-time-tokens.ts';
import { createPasswordHasher } from '../accounts/password-hasher.ts';
import { createPasskeys, type Passkeys } from '../accounts/passkeys.ts';
import { createRecoveryService, type RecoveryService } from '../accounts/recovery.service.ts';
import { createRegistrationService, type RegistrationService } from '../accounts/registration.service.ts';
import { createSignInService, type SignInService } from '../accounts/sign-in.service.ts';
import type { AuditEventInput } from '../audit/audit-event.ts';
import { createAuditLog, type AuditLog } from '../audit/audit-log.ts';
import { createClientDirectory, type ClientDirectory } from '../clients/client-directory.ts';
import { hasClients } from '../clients/client.repository.ts';
import { createClientService, type ClientService } from '../clients/client.service.ts';
import type { ResourceServer } from '../clients/resource-server.ts';
import {
  createResourceServerService,
  MAX_RESOURCE_TOKEN_TTL,
  type ResourceServerService,
} from '../clients/resource-server.service.ts';
import type { Config } from '../config/config.ts';
import { createKeyService, type KeyService } from '../keys/key.service.ts';
import { createMail, type Mail } from '../mail/mail.ts';
import { createSessionAdmin, type LogoutResult, type SessionAdmin } from '../oidc/session-admin.ts';
import { createTtlCache } from '../shared/ttl-cache.ts';
import type { EngineLink } from './engine-link.ts';
import type { Storage } from './storage.ts';

// Stage 2 of the composition root: the services the server, the commands (and later the admin
// API) share. Needs the storage stage; reaches the engine only through the link.

export interface Domain {
  readonly audit: AuditLog;
  readonly accounts: AccountService<LogoutResult>;
  readonly signIn: SignInService;
  readonly keys: KeyService;
  readonly resources: ResourceServerService;
  /** Client records as the engine's adapter reads them (built before the engine, which needs it). */
  readonly clientDirectory: ClientDirectory;
  readonly clients: ClientService;
  readonly sessions: SessionAdmin;
  /** The outbox any part writes to in the transaction of the event that causes a message, and its sender. */
  readonly mail: Mail;
  /** Single-use links and codes (accounts/one-time-tokens.ts). */
  readonly tokens: OneTimeTokens;
  /** What people do to their own account from the account page (issue 13 §4). */
  readonly accountPage: AccountPageService;
  /** Password reset, unlock by email, invitations (accounts/recovery.service.ts). */
  readonly recovery: RecoveryService<LogoutResult>;
  /** Self-service registration and email verification (accounts/registration.service.ts). */
  readonly registration: RegistrationService;
  /** TOTP and recovery codes (issue 14). */
  readonly mfa: MfaService;
  /** Passkeys: registering them, and verifying their assertions (accounts/passkeys.ts). */
  readonly passkeys: Passkeys;
  /** No account and no client yet: a new installation (the demo is seeded only then). */
  isNewInstallation(): Promise<boolean>;
}

/**
 * Where the "someone tried to register with your address" mail sends its owner: the account
 * page (which signs in) and the password-reset request page (issue 13 §3, §4).
 */
const REGISTRATION_LINKS = { signIn: '/account', reset: '/forgot-password' } as const;

/** A retired key stays published until the longest-lived token it signed has expired. */
const CLOCK_TOLERANCE_SECONDS = 60;

function keyRetireSeconds(config: Config): number {
  // ID tokens, access tokens, and the JWTs of resource servers, whose lifetime is theirs to set.
  return Math.max(config.ttl.idToken, config.ttl.accessToken, MAX_RESOURCE_TOKEN_TTL) + CLOCK_TOLERANCE_SECONDS;
}

export function buildDomain(
  storage: Storage,
  options: {
    engine: EngineLink<{ provider(): Provider }>;
    /** Sees every audit event (the server's metrics). */
    observe?: (event: AuditEventInput) => void;
    /** A command exits when it is done: it waits for back-channel logout, and reports it. */
    waitForBackchannelLogout: boolean;
    /** Sees every message delivered or given up (the server's metrics). */
    mailEvents?: { onSent(): void; onFailed(): void };
  },
): Domain {
  const { config, clock, logger, derived, keyEncryptionKey } = storage;
  const db = storage.db.db;
  const { engine } = options;
  const hasher = createPasswordHasher(config.argon2);
  const audit = createAuditLog({ db, clock, logger, ...(options.observe ? { observe: options.observe } : {}) });
  const sessions = createSessionAdmin({
    db,
    provider: engine.provider,
    audit,
    clock,
    logger,
    waitForBackchannelLogout: options.waitForBackchannelLogout,
  });
  // A changed password or a disabled account ends every session and grant.
  const accounts = createAccountService({
    db,
    hasher,
    audit,
    revokeAccess: (id, reason) => sessions.logout(id, { reason }),
  });
  const signIn = createSignInService({
    db,
    hasher,
    clock,
    audit,
    policy: config.lockout,
    throttleKey: derived.throttleKey,
    requireVerifiedEmail: config.requireVerifiedEmail,
  });
  const keys = createKeyService({
    db,
    keyEncryptionKey,
    clock,
    audit,
    policy: config.keys,
    retireSeconds: keyRetireSeconds(config),
    logger,
  });
  const cacheOptions = { ttlMs: config.cacheSeconds * 1000, max: 10_000, clock };
  const resources = createResourceServerService({
    db,
    audit,
    cache: createTtlCache<ResourceServer | undefined>(cacheOptions),
    signingAlgs: config.keys.algs,
  });
  const clientDirectory = createClientDirectory({ db, clock, ttlSeconds: config.cacheSeconds });
  const clients = createClientService({
    db,
    clientSecretKey: derived.clientSecretKey,
    // The engine checks a client's metadata when it loads it: check it the same way before storing.
    validate: async (metadata) => {
      const { Client } = await engine.provider();
      await Client.validate(metadata as never);
    },
    audit,
    resources,
    directory: clientDirectory,
  });
  const isNewInstallation = async () => !(await hasAccounts(db)) && !(await hasClients(db));
  const mail = createMail({
    config,
    db,
    clock,
    logger,
    sealKey: derived.mailSealKey,
    ...(options.mailEvents ?? {}),
  });
  const tokens = createOneTimeTokens({
    hmacKey: derived.oneTimeTokenKey,
    sealKey: derived.oneTimeTokenSealKey,
    clock,
  });
  const accountPage = createAccountPageService({
    db,
    hasher,
    audit,
    tokens,
    outbox: mail.outbox,
    // A password changed from the account page keeps this browser signed in, and ends the rest.
    sessions: {
      endOtherSessions: (id, keepSessionUid, reason) => sessions.endSessions(id, { keepSessionUid, reason }),
      endAllSessions: (id, reason) => sessions.logout(id, { reason }),
    },
    deletionEnabled: config.accountDeletion,
    clock,
    policy: config.lockout,
  });
  const recovery = createRecoveryService({
    db,
    accounts,
    tokens,
    outbox: mail.outbox,
    audit,
    clock,
    limits: config.recovery,
    throttleKey: derived.throttleKey,
  });
  const registration = createRegistrationService({
    db,
    hasher,
    clock,
    audit,
    tokens,
    outbox: mail.outbox,
    settings: config.registration,
    links: REGISTRATION_LINKS,
    throttleKey: derived.throttleKey,
  });
  const mfa = createMfaService({
    db,
    clock,
    audit,
    hasher,
    outbox: mail.outbox,
    policy: config.lockout,
    issuerName: config.publicName,
    sealKey: derived.mfaSealKey,
    hmacKey: derived.mfaHmacKey,
  });
  const passkeys = createPasskeys({
    db,
    clock,
    audit,
    outbox: mail.outbox,
    hasher,
    policy: config.lockout,
    issuer: config.issuer,
    publicName: config.publicName,
    challengeKey: derived.webauthnChallengeKey,
    userVerification: config.passkeys.userVerification,
  });
  return {
    mfa,
    audit,
    accounts,
    registration,
    passkeys,
    signIn,
    keys,
    resources,
    clientDirectory,
    clients,
    sessions,
    mail,
    tokens,
    accountPage,
    recovery,
    isNewInstallation,
  };
}
