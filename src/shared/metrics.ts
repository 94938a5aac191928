import type { ServerResponse } from 'node:http';

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

// Prometheus metrics, one registry per container (no module state: two containers can live in
// one process). Labels stay bounded: routes are templates, never ids; client ids only with
// POSTERN_METRICS_PER_CLIENT=true.

export interface MetricsSources {
  /** The PostgreSQL pool (absent for the embedded database). */
  pool(): { total: number; idle: number; waiting: number } | undefined;
}

export interface Metrics {
  readonly registry: Registry;
  readonly perClient: boolean;
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  readonly tokensIssued: Counter<'grant_type' | 'client_id'>;
  readonly signIns: Counter<'result'>;
  readonly lockouts: Counter<'scope'>;
  readonly ipThrottles: Counter;
  readonly refreshReuse: Counter;
  readonly sweptRecords: Counter;
  readonly auditEvents: Counter<'type'>;
  /**
   * The route template each response answered, recorded by the part that routed it. The engine
   * routes in a Koa context of its own (`ctx.oidc.route` is not visible from ours), so its
   * middleware records it here, keyed by the raw response: the one object both contexts share
   * (the request is not: the engine may get a copy whose body was read first).
   */
  readonly routes: WeakMap<ServerResponse, string>;
  readonly mailSent: Counter;
  readonly mailFailed: Counter;
}

export function createMetrics(options: { perClient: boolean; sources: MetricsSources }): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'postern_' });
  const registers = [registry];
  const { sources } = options;
  new Gauge({
    name: 'postern_db_pool_connections',
    help: 'PostgreSQL pool connections by state',
    labelNames: ['state'],
    registers,
    collect() {
      const pool = sources.pool();
      if (!pool) return;
      this.set({ state: 'in_use' }, pool.total - pool.idle);
      this.set({ state: 'idle' }, pool.idle);
      this.set({ state: 'waiting' }, pool.waiting);
    },
  });
  return {
    registry,
    perClient: options.perClient,
    routes: new WeakMap(),
    httpRequests: new Counter({
      name: 'postern_http_requests_total',
      help: 'HTTP requests by route and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    }),
    httpDuration: new Histogram({
      name: 'postern_http_request_duration_seconds',
      help: 'HTTP request latency by route and status',
      labelNames: ['method', 'route', 'status'],
      registers,
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    }),
    tokensIssued: new Counter({
      name: 'postern_tokens_issued_total',
      help: 'Token responses by grant type',
      labelNames: ['grant_type', 'client_id'],
      registers,
    }),
    signIns: new Counter({
      name: 'postern_sign_ins_total',
      help: 'Sign-in attempts by result',
      labelNames: ['result'],
      registers,
    }),
    lockouts: new Counter({
      name: 'postern_lockouts_total',
      help: 'Lockouts started, by scope',
      labelNames: ['scope'],
      registers,
    }),
    ipThrottles: new Counter({
      name: 'postern_ip_throttles_total',
      help: 'Client IPs throttled for failed sign-ins',
      registers,
    }),
    refreshReuse: new Counter({
      name: 'postern_refresh_token_reuse_total',
      help: 'Rotated refresh tokens presented after the grace window (grant revoked)',
      registers,
    }),
    sweptRecords: new Counter({
      name: 'postern_sweeper_deleted_total',
      help: 'Expired records deleted by the sweeper',
      registers,
    }),
    auditEvents: new Counter({
      name: 'postern_audit_events_total',
      help: 'Audit events by type',
      labelNames: ['type'],
      registers,
    }),
    mailSent: new Counter({
      name: 'postern_mail_sent_total',
      help: 'Messages delivered to the SMTP server (or, without one, to the log) by this instance',
      registers,
    }),
    mailFailed: new Counter({
      name: 'postern_mail_failed_total',
      help: 'Messages given up by this instance (refused, or undelivered until POSTERN_MAIL_GIVE_UP_SECONDS)',
      registers,
    }),
  };
}

/**
 * Seconds since each current signing key was activated, by algorithm. Registered by the part
 * that holds the keys, once it exists (the keys are loaded after the metrics are made).
 */
export function watchSigningKeyAges(metrics: Metrics, keyAges: () => { alg: string; seconds: number }[]): void {
  new Gauge({
    name: 'postern_signing_key_age_seconds',
    help: 'Age of the current signing key, by algorithm',
    labelNames: ['alg'],
    registers: [metrics.registry],
    collect() {
      this.reset();
      for (const { alg, seconds } of keyAges()) this.set({ alg }, seconds);
    },
  });
}

/** Audit events are the source of the security series. */
export function observeAuditEvent(
  metrics: Metrics,
  event: { type: string; details?: Readonly<Record<string, unknown>> },
): void {
  metrics.auditEvents.inc({ type: event.type });
  if (event.type === 'login.succeeded') metrics.signIns.inc({ result: 'success' });
  if (event.type === 'login.failed')
    metrics.signIns.inc({ result: event.details?.reason === 'locked' ? 'locked' : 'failure' });
  if (event.type === 'lockout.started') metrics.lockouts.inc({ scope: String(event.details?.scope ?? 'unknown') });
  if (event.type === 'ip.throttled') metrics.ipThrottles.inc();
  if (event.type === 'refresh_token.reused') metrics.refreshReuse.inc();
}

/** Messages in the mail outbox not yet delivered or given up (one count query per scrape). */
export function watchMailOutbox(metrics: Metrics, pending: () => Promise<number>): void {
  new Gauge({
    name: 'postern_mail_outbox_pending',
    help: 'Messages in the mail outbox waiting to be delivered (all instances)',
    registers: [metrics.registry],
    async collect() {
      // A scrape while the database is away still answers, without this series' value.
      const count = await pending().catch(() => undefined);
      if (count !== undefined) this.set(count);
    },
  });
}
