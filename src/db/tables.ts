import type { ColumnType, Insertable, Selectable, Updateable } from 'kysely';

// One interface per table (Kysely's example app); columns are snake_case and are mapped to
// camelCase domain fields only in repositories.

type Timestamp = ColumnType<Date, Date | string, Date | string>;
type DefaultedTimestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type Json<T> = ColumnType<T, string, string>;

export interface OidcPayloadTable {
  kind: string;
  id: string;
  payload: Json<Record<string, unknown>>;
  grant_id: string | null;
  uid: string | null;
  user_code: string | null;
  expires_at: Timestamp | null;
  consumed_at: Timestamp | null;
  grace_uses: ColumnType<number, number | undefined, number>;
  /** false only for rows written before ids were hashed (converted by oidc/legacy-records.ts). */
  id_hashed: ColumnType<boolean, boolean | undefined, boolean>;
  /** A rotated refresh token's successor response, sealed, kept for the grace window only. */
  successor_sealed: string | null;
}

export interface ClientTable {
  client_id: string;
  secret_hash: string | null;
  metadata: Json<Record<string, unknown>>;
  first_party: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: DefaultedTimestamp;
  updated_at: DefaultedTimestamp;
}

export interface AccountTable {
  id: string;
  username: string;
  email: string;
  email_verified: ColumnType<boolean, boolean | undefined, boolean>;
  password_hash: string | null;
  profile: Json<Record<string, unknown>>;
  roles: ColumnType<string[], string[] | undefined, string[]>;
  disabled: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: DefaultedTimestamp;
  updated_at: DefaultedTimestamp;
  last_login_at: Timestamp | null;
}

export type KeyState = 'next' | 'current' | 'retired';

export interface SigningKeyTable {
  kid: string;
  alg: string;
  state: KeyState;
  public_jwk: Json<Record<string, unknown>>;
  private_jwk_encrypted: string;
  created_at: DefaultedTimestamp;
  activated_at: Timestamp | null;
  retire_after: Timestamp | null;
}

/**
 * one_time_code: guesses at the 6-digit code that stands in for a verification link.
 * register_ip, register_email: registrations per client address and per email address.
 * verify_resend: verification mails sent again, per account.
 */
export type ThrottleScope =
  | 'account_ip'
  | 'account'
  | 'device'
  | 'ip'
  | 'one_time_code'
  | 'recovery_account'
  | 'recovery_ip'
  | 'register_ip'
  | 'register_email'
  | 'verify_resend'
  /** mfa_code: wrong TOTP and recovery codes, per account (issue 14). */
  | 'mfa_code';

export interface LoginThrottleTable {
  scope: ThrottleScope;
  key: string;
  account_id: string | null;
  failures: ColumnType<number, number | undefined, number>;
  window_started_at: Timestamp;
  locked_until: Timestamp | null;
  lockouts: ColumnType<number, number | undefined, number>;
  updated_at: Timestamp;
}

export interface AuditEventTable {
  id: ColumnType<string, never, never>;
  at: Timestamp;
  type: string;
  account_id: string | null;
  client_id: string | null;
  ip: string | null;
  user_agent: string | null;
  details: Json<Record<string, unknown>>;
}

export interface InstallationSecretTable {
  name: string;
  sealed: string;
  created_at: DefaultedTimestamp;
}

export interface ResourceServerTable {
  identifier: string;
  scopes: ColumnType<string[], string[] | undefined, string[]>;
  access_token_ttl: number;
  token_format: 'jwt' | 'opaque';
  signing_alg: string;
  claims: ColumnType<string[], string[] | undefined, string[]>;
  created_at: DefaultedTimestamp;
  updated_at: DefaultedTimestamp;
}

export interface GrantActivityTable {
  grant_id: string;
  account_id: string;
  client_id: string;
  session_uid: string | null;
  created_at: DefaultedTimestamp;
  ip: string | null;
  user_agent: string | null;
}

export type MailStatus = 'pending' | 'sent' | 'failed';

export interface MailOutboxTable {
  /** bigserial: read as text (select id::text), as pg and PGlite return int8 differently. */
  id: ColumnType<string, never, never>;
  recipient: string;
  template: string;
  /** subject, text and html, sealed (AES-256-GCM) as one JSON document. */
  sealed: string;
  status: ColumnType<MailStatus, MailStatus | undefined, MailStatus>;
  attempts: ColumnType<number, number | undefined, number>;
  last_error: string | null;
  created_at: Timestamp;
  next_attempt_at: Timestamp;
  give_up_at: Timestamp;
  /** A sender's lease: nobody else claims the row before this. */
  claimed_until: Timestamp | null;
  claim_token: string | null;
  finished_at: Timestamp | null;
}

export type OneTimeTokenPurpose = 'verify_email' | 'reset_password' | 'unlock' | 'invite' | 'email_change';

export interface OneTimeTokenTable {
  token_hash: string;
  purpose: OneTimeTokenPurpose;
  account_id: string;
  payload_sealed: string | null;
  code_hash: string | null;
  created_at: Timestamp;
  expires_at: Timestamp;
  consumed_at: Timestamp | null;
}

/** An admin API write, by its caller's Idempotency-Key (admin/idempotency.ts). */
export interface AdminIdempotencyTable {
  caller: string;
  key: string;
  fingerprint: string;
  /** null while the first request is still being answered. */
  status: number | null;
  response_sealed: string | null;
  created_at: DefaultedTimestamp;
  expires_at: Timestamp;
}

/** One fixed-window request counter per admin API caller (admin/rate-limit.ts). */
export interface AdminRateLimitTable {
  caller: string;
  window_start: Timestamp;
  count: number;
}

/** An account's TOTP factor (issue 14); the secret is sealed under the installation key. */
export interface TotpFactorTable {
  account_id: string;
  secret_sealed: string;
  confirmed_at: Timestamp | null;
  /** bigint: read back as a string by pg, so compared in SQL only. */
  last_used_step: ColumnType<string | null, number | null | undefined, number | null>;
  created_at: Timestamp;
}

/** One recovery code, stored as a keyed hash; single-use (used_at). */
export interface RecoveryCodeTable {
  code_hash: string;
  account_id: string;
  created_at: Timestamp;
  used_at: Timestamp | null;
}

export interface Database {
  oidc_payloads: OidcPayloadTable;
  clients: ClientTable;
  accounts: AccountTable;
  signing_keys: SigningKeyTable;
  login_throttles: LoginThrottleTable;
  audit_events: AuditEventTable;
  installation_secrets: InstallationSecretTable;
  resource_servers: ResourceServerTable;
  grant_activity: GrantActivityTable;
  mail_outbox: MailOutboxTable;
  one_time_tokens: OneTimeTokenTable;
  admin_idempotency: AdminIdempotencyTable;
  admin_rate_limits: AdminRateLimitTable;
  totp_factors: TotpFactorTable;
  recovery_codes: RecoveryCodeTable;
  webauthn_credentials: WebauthnCredentialTable;
  webauthn_challenges: WebauthnChallengeTable;
}

export type AccountRow = Selectable<AccountTable>;
export type NewAccountRow = Insertable<AccountTable>;
export type AccountUpdate = Updateable<AccountTable>;
export type ClientRow = Selectable<ClientTable>;
export type SigningKeyRow = Selectable<SigningKeyTable>;
export type LoginThrottleRow = Selectable<LoginThrottleTable>;
export type AuditEventRow = Selectable<AuditEventTable>;
export type ResourceServerRow = Selectable<ResourceServerTable>;

/** A passkey (WebAuthn credential); several per account (accounts/passkey.repository.ts). */
export interface WebauthnCredentialTable {
  /** base64url credential id. */
  id: string;
  account_id: string;
  /** base64url COSE public key. */
  public_key: string;
  /** bigint: read as text and converted in the repository (pg and PGlite return int8 differently). */
  counter: ColumnType<string | number, number | undefined, number>;
  transports: ColumnType<string[], string[] | undefined, string[]>;
  device_type: 'singleDevice' | 'multiDevice';
  backed_up: ColumnType<boolean, boolean | undefined, boolean>;
  name: string;
  created_at: Timestamp;
  last_used_at: Timestamp | null;
}

export type WebauthnChallengePurpose = 'register' | 'authenticate';

/** A WebAuthn ceremony under way: the challenge as a keyed hash, one per binding and purpose. */
export interface WebauthnChallengeTable {
  binding_hash: string;
  purpose: WebauthnChallengePurpose;
  challenge_hash: string;
  account_id: string | null;
  expires_at: Timestamp;
}
