import type { GrantCheck } from './checks.ts';
import type { OutageReport, RotationReport } from './faults.ts';
import type { LogSummary } from './postern.ts';
import type { ResourceServer } from './resource-server.ts';
import { percentile, sumTallies, type Recorder, type Tally } from './stats.ts';
import type { LoadState } from './workload.ts';

export const RECOVERY_LIMIT_MS = 5000;

export interface InstanceResult {
  readonly label: string;
  readonly url: string;
  /** RSS in MB at the start of the load, the middle, the end; the highest sample. */
  readonly rss: { start?: number; middle?: number; end?: number; max?: number };
  readonly exit: string | undefined;
  readonly log: LogSummary;
}

export interface SoakResult {
  readonly settings: {
    seconds: number;
    workers: number;
    outageSeconds: number;
    rssGrowthLimitMb: number;
    database: string;
    outageMode: string;
  };
  readonly recorder: Recorder;
  readonly resourceServer: ResourceServer;
  readonly load: LoadState;
  readonly outage: OutageReport | undefined;
  readonly rotation: RotationReport | undefined;
  readonly grants: GrantCheck | undefined;
  readonly instances: InstanceResult[];
}

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);
const ms = (v: number | undefined) => (v === undefined ? '-' : v < 10 ? v.toFixed(1) : v.toFixed(0));
const sec = (v: number) => `+${(v / 1000).toFixed(1)} s`;
const mb = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(0));
const tallyText = (t: Tally) =>
  `2xx/ok ${t.ok}, 503 ${t['503']}, other 5xx ${t['5xx']}, other non-2xx ${t.other}, no answer ${t.net}`;

function operationTable(recorder: Recorder): string[] {
  const head = [
    pad('operation', 28),
    ...['count', 'ok', '503', '5xx!=503', 'other', 'no answer', 'p50 ms', 'p99 ms'].map((h) => lpad(h, 9)),
  ].join(' ');
  const rows = [...recorder.ops.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([op, s]) => {
      const t = s.tally;
      const n = t.ok + t['503'] + t['5xx'] + t.other + t.net;
      return [
        pad(op, 28),
        ...[n, t.ok, t['503'], t['5xx'], t.other, t.net].map((v) => lpad(String(v), 9)),
        lpad(ms(percentile(s.histogram, 50)), 9),
        lpad(ms(percentile(s.histogram, 99)), 9),
      ].join(' ');
    });
  const total = sumTallies([...recorder.ops.values()].map((s) => s.tally));
  const count = total.ok + total['503'] + total['5xx'] + total.other + total.net;
  return [
    head,
    ...rows,
    [
      pad('total', 28),
      ...[count, total.ok, total['503'], total['5xx'], total.other, total.net].map((v) => lpad(String(v), 9)),
    ].join(' '),
  ];
}

/** The seconds of the run (by request start) that belong to the outage, with a second of slack each side. */
function outageSeconds(result: SoakResult): [number, number] | undefined {
  const { outage, recorder } = result;
  if (!outage) return undefined;
  return [
    Math.floor((outage.downAt - recorder.startedAt) / 1000) - 1,
    Math.ceil((outage.windowEnd - recorder.startedAt) / 1000) + 1,
  ];
}

/** Where the sections write: report lines, and the reasons the run fails. */
interface Sink {
  out(line?: string): void;
  fail(reason: string): void;
}

function outageSection(result: SoakResult, { out, fail }: Sink): void {
  const { outage, recorder } = result;
  const window = outageSeconds(result);
  if (!outage || !window) {
    fail('the outage did not happen');
    return;
  }
  out(
    `Outage: PostgreSQL went away at ${sec(outage.downAt - recorder.startedAt)} and accepted connections again ${((outage.upAt - outage.downAt) / 1000).toFixed(2)} s later`,
  );
  result.instances.forEach((inst, i) => {
    const r = outage.recoveryMs[i];
    const text = r === undefined ? 'never (gave up after 30 s)' : `${(r / 1000).toFixed(2)} s`;
    out(
      `  recovery of ${inst.label}: ${text} to the first 2xx client-credentials token (limit ${RECOVERY_LIMIT_MS / 1000} s)`,
    );
    if (r === undefined || r > RECOVERY_LIMIT_MS)
      fail(`${inst.label} recovered in ${text} (limit ${RECOVERY_LIMIT_MS / 1000} s)`);
  });
  const inside = sumTallies(recorder.seconds.slice(Math.max(0, window[0]), window[1] + 1));
  const outside = sumTallies(recorder.seconds.filter((_, s) => s < window[0] || s > window[1]));
  out(
    `  during the outage window (${sec(window[0] * 1000)} .. ${sec(window[1] * 1000)}, by request start): ${tallyText(inside)}`,
  );
  out(`  the rest of the run: ${tallyText(outside)}`);
  const without = [...recorder.ops.entries()]
    .filter(([, st]) => st.noRetryAfter > 0)
    .map(([op, st]) => `${op} ${st.noRetryAfter}`);
  out(`  503 answers without Retry-After: ${without.length ? without.join(', ') : 'none'}`);
  out('  per second around the outage (ok / 503 / other 5xx / other non-2xx / no answer):');
  for (let s = Math.max(0, window[0] - 1); s <= Math.min(recorder.seconds.length - 1, window[1] + 1); s++) {
    const t = recorder.seconds[s]!;
    out(
      `    ${lpad(sec(s * 1000), 9)}  ${[t.ok, t['503'], t['5xx'], t.other, t.net].map((v) => lpad(String(v), 5)).join(' ')}`,
    );
  }
  const steadyBad = outside['503'] + outside['5xx'] + outside.other + outside.net;
  if (steadyBad > 0) fail(`${steadyBad} unexpected answer(s) outside the outage window`);
}

function keysSection({ rotation, recorder, resourceServer: rs, instances }: SoakResult, { out, fail }: Sink): void {
  if (!rotation) fail('the key rotation did not happen');
  else {
    out(
      `Key rotation: postern keys rotate --force ran ${sec(rotation.at - recorder.startedAt)} .. ${sec(rotation.doneAt - recorder.startedAt)}: ${rotation.ok ? `${rotation.activated.join(', ')} began to sign` : `FAILED: ${rotation.output}`}`,
    );
    if (!rotation.ok) fail('postern keys rotate --force failed');
    instances.forEach((inst, i) => {
      const seen = rotation.activated.map((kid) => ({ alg: kid.split(':')[0], at: rs.kids[i]?.get(kid)?.first }));
      out(
        `  ${inst.label}: ${seen.map((s) => `${s.alg} ${s.at === undefined ? 'never seen' : `first verified at ${sec(s.at)}`}`).join(', ')}`,
      );
      if (rotation.ok && seen.some((s) => s.at === undefined))
        fail(`${inst.label}: no token signed by a rotated-in key was verified`);
    });
  }
  out(
    `Tokens verified by the resource server: ${rs.verified}, failed: ${rs.failed} (verified only after a JWKS re-fetch wait: ${rs.retried})`,
  );
  for (const f of rs.failures) out(`  ${f}`);
  if (rs.failed > 0) fail(`${rs.failed} token(s) the resource server could not verify`);
}

function grantsSection({ load, grants }: SoakResult, { out, fail }: Sink): void {
  const steps = [...load.signIns.failedSteps.entries()].map(([step, n]) => `${step} ${n}`).join(', ');
  out(
    `Sign-ins: ${load.signIns.ok} completed, ${load.signIns.failed} failed${steps ? ` (at: ${steps})` : ''}, ${load.signIns.failedPastResume} of them after the grant-saving request was sent`,
  );
  if (!grants) {
    fail('the grant check did not run');
    return;
  }
  out(
    `Grants: ${grants.chains} refresh chains kept, ${grants.lostDuringRun.length} lost during the run, ${grants.chains - grants.finalRefreshFailures.length}/${grants.chains} refreshed once more at the end`,
  );
  out(
    `  live Grant rows ${grants.grantRows}; held by no chain ${grants.extraGrants} (explainable: ${grants.explainableExtra}); shared ${grants.sharedGrants}; missing ${grants.missingGrants}; newest refresh tokens not found ${grants.missingTokens}, stored in clear ${grants.clearTokens}`,
  );
  out(
    `  audit events: ${Object.entries(grants.auditCounts)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  for (const line of [...grants.lostDuringRun, ...grants.finalRefreshFailures].slice(0, 10)) out(`  ${line}`);
  for (const problem of grants.problems) fail(problem);
}

function processSection({ instances, settings, load }: SoakResult, { out, fail }: Sink): void {
  out(`RSS (MB)          start  middle     end     max   growth middle->end (limit ${settings.rssGrowthLimitMb} MB)`);
  for (const inst of instances) {
    const { start, middle, end, max } = inst.rss;
    const growth = middle !== undefined && end !== undefined ? end - middle : undefined;
    out(
      `  ${pad(inst.label, 14)} ${[start, middle, end, max].map((v) => lpad(mb(v), 7)).join(' ')}   ${growth === undefined ? '-' : growth.toFixed(1)}`,
    );
    if (growth !== undefined && growth > settings.rssGrowthLimitMb)
      fail(`${inst.label} RSS grew ${growth.toFixed(0)} MB between the middle and the end`);
  }
  const top = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([k, v]) => `${v}x ${k}`);
  for (const inst of instances) {
    if (inst.exit) fail(`${inst.label} ${inst.exit} during the run`);
    if (inst.log.crashes.length) fail(`${inst.label} logged an unhandled rejection or uncaught exception`);
    out(`${inst.label} log:${inst.log.errors.size ? '' : ' no error lines'}`);
    for (const line of top(inst.log.errors)) out(`  error: ${line}`);
    for (const line of top(inst.log.warnings)) out(`  warn:  ${line}`);
    for (const line of inst.log.crashes.slice(0, 5)) out(`  CRASH: ${line}`);
  }
  if (load.internalErrors.length) fail(`${load.internalErrors.length} error(s) in the soak's own code`);
  for (const e of load.internalErrors.slice(0, 3)) out(`soak error: ${e}`);
}

/** Up to 25 unexpected answers: 5xx other than 503 first, then 503s without Retry-After, then by time. */
function samplesSection({ recorder }: SoakResult, { out }: Sink): void {
  if (!recorder.samples.length) return;
  out('Examples of unexpected answers (time into the run, operation, status, detail):');
  const rank = (s: { status: number; detail: string }) =>
    s.status >= 500 && s.status !== 503 ? 0 : s.detail.startsWith('NO Retry-After') ? 1 : 2;
  const samples = [...recorder.samples].sort((a, b) => rank(a) - rank(b) || a.at - b.at);
  for (const s of samples.slice(0, 25))
    out(
      `  ${lpad(sec(s.at), 9)} ${pad(s.op, 26)} ${lpad(String(s.status), 3)} ${s.detail.replace(/\s+/g, ' ').slice(0, 160)}`,
    );
}

/** The report, and why the run fails (nothing: it passes). */
export function evaluate(result: SoakResult): { lines: string[]; failures: string[] } {
  const lines: string[] = [];
  const failures: string[] = [];
  const sink: Sink = { out: (line = '') => lines.push(line), fail: (reason) => failures.push(reason) };
  const { settings, recorder } = result;
  sink.out(
    `Postern soak: ${settings.seconds} s, ${settings.workers} workers, ${result.instances.map((i) => `${i.label} ${i.url}`).join(', ')} (issuer: ${result.instances[0]?.url})`,
  );
  sink.out(
    `PostgreSQL: ${settings.database}; outage by ${settings.outageMode === 'restart' ? 'a real restart (pg_ctl stop -m fast, then start on the same port)' : 'cutting the TCP proxy'}`,
  );
  sink.out();
  for (const line of operationTable(recorder)) sink.out(line);
  sink.out(
    '  ok: the wanted answer (2xx, or the redirect a login step should give); p50/p99 over every answer of the operation',
  );
  const all = sumTallies([...recorder.ops.values()].map((s) => s.tally));
  if (all['5xx'] > 0) sink.fail(`${all['5xx']} answer(s) with a 5xx other than 503`);
  for (const section of [outageSection, keysSection, grantsSection, processSection, samplesSection]) {
    sink.out();
    section(result, sink);
  }
  sink.out();
  sink.out(failures.length ? `FAIL (${failures.length}):` : 'PASS');
  for (const f of failures) sink.out(`  - ${f}`);
  return { lines, failures };
}
