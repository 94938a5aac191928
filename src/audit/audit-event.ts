/** Every security event Postern records (README: Audit log). */
export const AUDIT_EVENT_TYPES = [
  'login.succeeded',
  'login.failed',
  'lockout.started',
  'lockout.ended',
  'ip.throttled',
  'account.created',
  'account.disabled',
  'account.enabled',
  'account.unlocked',
  'account.password_changed',
  'account.logged_out',
  'refresh_token.reused',
  'client.created',
  'client.deleted',
  'resource.created',
  'resource.deleted',
  'key.created',
  'key.rotated',
  'key.revoked',
  'key.deleted',
  'keys.reencrypted',
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
  readonly type?: string;
  readonly since?: Date;
  readonly limit?: number;
}
