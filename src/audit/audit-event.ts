/** Every security event Postern records (README: Audit log). */
export const AUDIT_EVENT_TYPES = [
  'login.succeeded',
  'login.failed',
  'login.password_ok',
  'lockout.started',
  'lockout.ended',
  'ip.throttled',
  'account.created',
  'account.disabled',
  'account.enabled',
  'account.updated',
  'account.unlocked',
  'account.password_changed',
  'account.password_reset',
  'account.invited',
  'recovery.requested',
  'account.logged_out',
  'account.profile_updated',
  'account.email_change_requested',
  'account.email_changed',
  'account.session_ended',
  'account.app_revoked',
  'account.deleted',
  'refresh_token.reused',
  'client.created',
  'client.updated',
  'client.secret_rotated',
  'client.deleted',
  'resource.created',
  'resource.deleted',
  'key.created',
  'key.rotated',
  'key.revoked',
  'key.deleted',
  'keys.reencrypted',
  'account.registered',
  'registration.existing_email',
  'registration.throttled',
  'email.verification_sent',
  'email.verified',
  'login.unverified',
  'mfa.totp_enrolled',
  'mfa.totp_disabled',
  'mfa.succeeded',
  'mfa.failed',
  'mfa.recovery_code_used',
  'mfa.recovery_codes_regenerated',
  'mfa.reset',
  'passkey.registered',
  'passkey.removed',
  'passkey.used',
  'passkey.refused',
] as const;

export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

export interface AuditEventInput {
  readonly type: AuditEventType;
  readonly accountId?: string | null;
  readonly clientId?: string | null;
  readonly ip?: string | null;
  readonly userAgent?: string | null;
  readonly details?: Readonly<Record<string, unknown>>;
}

export interface AuditEvent extends Required<AuditEventInput> {
  readonly id: string;
  readonly at: Date;
}

export interface AuditQuery {
  readonly accountId?: string;
  readonly clientId?: string;
  readonly type?: string;
  readonly since?: Date;
  /** Events before this time. */
  readonly until?: Date;
  /** Events older than this one (keyset pagination by id, newest first). */
  readonly beforeId?: string;
  /** Newest first by id, for pages that follow one another with beforeId. */
  readonly paged?: boolean;
  readonly limit?: number;
}

/** Who made a change through the admin API: the calling client, and the person if a person called. */
export interface AuditActor {
  readonly clientId: string;
  readonly accountId?: string;
}
