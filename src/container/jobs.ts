import { sweepAdminState } from '../admin/idempotency.ts';
import { sweepAuditEvents } from '../audit/audit-retention.ts';
import { hashLegacyRecords } from '../oidc/legacy-records.ts';
import { startSweeper } from '../oidc/sweeper.ts';
import type { Metrics } from '../shared/metrics.ts';
import type { Domain } from './domain.ts';
import type { Protocol } from './protocol.ts';
import type { Storage } from './storage.ts';

// Stage 5 of the composition root, the server's only: what runs in the background. Every job
// starts here and stops in `stop`, in reverse order. A new background job goes here.

export interface Jobs {
  stop(): Promise<void>;
}

export async function startJobs(
  storage: Storage,
  domain: Domain,
  protocol: Protocol,
  options: { metrics: Metrics },
): Promise<Jobs> {
  const { config, clock, logger } = storage;
  const db = storage.db.db;
  const { protect, rotation, keyRing } = protocol;
  // Rows from before ids were hashed: converted before this server answers (oidc/legacy-records.ts).
  const converted = await hashLegacyRecords(db, protect, { maxBatches: Number.MAX_SAFE_INTEGER });
  if (converted) logger.info({ converted }, 'stored engine records converted to hashed ids');
  // Follows key changes made by other instances and commands, and rotates when due.
  keyRing.watch();
  const sweeper = startSweeper({
    db,
    clock,
    logger,
    intervalSeconds: config.sweepIntervalSeconds,
    protect,
    rotation,
    throttleRetentionSeconds: config.lockout.maxLockSeconds + config.lockout.windowSeconds,
    onSwept: (n) => options.metrics.sweptRecords.inc(n),
    retention: [
      (now) => sweepAuditEvents(db, now, config.auditRetentionDays),
      (now) => domain.mail.outbox.sweep(now),
      (now) => domain.tokens.sweep(db, now),
      (now) => sweepAdminState(db, now, config.admin.rateWindowSeconds),
      (now) => domain.passkeys.sweep(now),
      (now) => domain.mfa.sweep(now),
    ],
  });
  // Delivers the outbox on every instance (mail/sender.ts); none when mail is off.
  const mailSender = domain.mail.startSender();
  return {
    async stop() {
      await mailSender?.stop();
      await sweeper.stop();
      await keyRing.stop();
    },
  };
}
