// Node and PostgreSQL codes that mean "the database is not there right now": the network
// ones, class 08 (connection exception) and 57P0x (the server is shutting down or restarting).
// A classification of error codes, loading no driver: here, so the edge can answer 503
// without reaching into the storage layer.
const UNAVAILABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08003',
  '08006',
  '08001',
  '08004',
]);

export function isDatabaseUnavailable(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown; errors?: unknown[] } | undefined;
  if (!e) return false;
  if (typeof e.code === 'string' && UNAVAILABLE.has(e.code)) return true;
  // pg reports an unreachable host as an AggregateError of the attempts.
  if (Array.isArray(e.errors) && e.errors.some(isDatabaseUnavailable)) return true;
  return (
    typeof e.message === 'string' &&
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connection is closed/i.test(
      e.message,
    )
  );
}
