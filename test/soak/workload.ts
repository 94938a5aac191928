import { setTimeout as sleep } from 'node:timers/promises';

import { basicAuth, call } from './http.ts';
import { expiresAt, signIn, tokenSet, WEB_CLIENT, type WebContext } from './sign-in.ts';

export const API = 'https://api.soak.local';
export const API_SCOPE = 'orders:read';
export const SERVICE_CLIENT = 'soak-svc';

/** One signed-in person's refresh token chain: the load always keeps the newest token. */
export interface Chain {
  readonly id: number;
  readonly sub: string;
  refreshToken: string;
  accessToken: string;
  accessExpiresAt: number;
  refreshes: number;
  busy: boolean;
  /** The last refresh got no clear answer (503, 5xx, timeout): the server may or may not have rotated. */
  uncertain: boolean;
  lost?: string;
}

export interface LoadContext extends WebContext {
  readonly svcSecret: string;
  readonly users: readonly { username: string; password: string }[];
}

export interface LoadState {
  readonly chains: Chain[];
  readonly signIns: { ok: number; failed: number; failedPastResume: number; failedSteps: Map<string, number> };
  /** Exceptions in the soak's own code (a bug here, not in Postern). */
  readonly internalErrors: string[];
}

// The mix: what a fleet of services, browsers and web apps would send, by weight.
const MIX: readonly [Op, number][] = [
  ['client credentials', 35],
  ['refresh', 25],
  ['sign-in', 12],
  ['userinfo', 15],
  ['jwks', 13],
];
type Op = 'client credentials' | 'refresh' | 'sign-in' | 'userinfo' | 'jwks';
const TOTAL_WEIGHT = MIX.reduce((sum, [, w]) => sum + w, 0);
/** A worker that got "unavailable" waits this long before its next request, as a client honouring Retry-After would (shortened). */
const BACKOFF_MS = 250;

function pickOp(): Op {
  let r = Math.random() * TOTAL_WEIGHT;
  for (const [op, weight] of MIX) {
    r -= weight;
    if (r < 0) return op;
  }
  return 'client credentials';
}

export function createLoadState(): LoadState {
  return { chains: [], signIns: { ok: 0, failed: 0, failedPastResume: 0, failedSteps: new Map() }, internalErrors: [] };
}

/** Client credentials at `instance`, the JWT verified by the resource server. Returns whether it all worked. */
export async function clientCredentials(
  ctx: LoadContext,
  instance: number,
  op = 'token: client credentials',
  timeoutMs?: number,
): Promise<boolean> {
  const answer = await call(ctx.recorder, op, `${ctx.instances[instance]}/token`, {
    form: { grant_type: 'client_credentials', scope: API_SCOPE, resource: API },
    headers: { authorization: basicAuth(SERVICE_CLIENT, ctx.svcSecret) },
    expect: tokenSet,
    ...(timeoutMs ? { timeoutMs } : {}),
  });
  if (!answer.ok) return false;
  const token = (JSON.parse(answer.text) as { access_token: string }).access_token;
  return (
    (await ctx.resourceServer.verifyAccessToken(token, instance, {
      audience: API,
      clientId: SERVICE_CLIENT,
      scope: API_SCOPE,
    })) !== undefined
  );
}

export type RefreshResult = 'ok' | 'unavailable' | 'lost';

/** Refreshes a chain once at `instance` and keeps the newest tokens; a 4xx means the grant is gone. */
export async function refreshChain(
  ctx: LoadContext,
  chain: Chain,
  instance: number,
  op = 'token: refresh',
): Promise<RefreshResult> {
  const answer = await call(ctx.recorder, op, `${ctx.instances[instance]}/token`, {
    form: { grant_type: 'refresh_token', refresh_token: chain.refreshToken },
    headers: { authorization: basicAuth(WEB_CLIENT, ctx.webSecret) },
    expect: tokenSet,
  });
  if (!answer.ok) {
    if (answer.status >= 400 && answer.status < 500) {
      chain.lost = `${answer.status} ${answer.text.slice(0, 200)} (after ${chain.refreshes} refreshes${chain.uncertain ? ', the previous one unanswered' : ''})`;
      return 'lost';
    }
    chain.uncertain = true;
    return 'unavailable';
  }
  const body = JSON.parse(answer.text) as Record<string, string | undefined>;
  chain.accessToken = body.access_token!;
  chain.accessExpiresAt = expiresAt(body);
  if (body.refresh_token) chain.refreshToken = body.refresh_token;
  chain.refreshes++;
  chain.uncertain = false;
  if (body.id_token)
    await ctx.resourceServer.verifyIdToken(body.id_token, instance, { audience: WEB_CLIENT, sub: chain.sub });
  return 'ok';
}

/** A chain no other worker is using; one whose last refresh went unanswered first, so it is retried soon. */
function takeChain(state: LoadState): Chain | undefined {
  const live = state.chains.filter((c) => !c.busy && !c.lost);
  const chain = live.find((c) => c.uncertain) ?? live[Math.floor(Math.random() * live.length)];
  if (chain) chain.busy = true;
  return chain;
}

/** One operation at `instance`; false when the answer said "unavailable" (the worker backs off). */
async function runOp(ctx: LoadContext, state: LoadState, op: Op, instance: number, turn: number): Promise<boolean> {
  const { recorder, instances } = ctx;
  if (op === 'client credentials') return clientCredentials(ctx, instance);
  if (op === 'jwks')
    return (
      await call(recorder, 'jwks', `${instances[instance]}/jwks`, {
        expect: (a) => (a.status === 200 && a.text.includes('"keys"') ? true : `${a.status}`),
      })
    ).ok;
  if (op === 'sign-in') {
    const user = ctx.users[turn % ctx.users.length]!;
    const outcome = await signIn(ctx, user, instance, Math.floor(Math.random() * instances.length));
    if (outcome.ok) {
      state.signIns.ok++;
      state.chains.push({ id: state.chains.length, ...outcome.tokens, refreshes: 0, busy: false, uncertain: false });
      return true;
    }
    state.signIns.failed++;
    if (outcome.pastResume) state.signIns.failedPastResume++;
    state.signIns.failedSteps.set(outcome.step, (state.signIns.failedSteps.get(outcome.step) ?? 0) + 1);
    return false;
  }
  const chain = takeChain(state);
  if (!chain) return clientCredentials(ctx, instance);
  try {
    // An app refreshes an access token about to expire (long soaks outlive the 1 h default) instead of using it.
    if (op === 'refresh' || chain.accessExpiresAt < Date.now() + 60_000)
      return (await refreshChain(ctx, chain, instance)) === 'ok';
    const answer = await call(recorder, 'userinfo', `${instances[instance]}/me`, {
      headers: { authorization: `Bearer ${chain.accessToken}` },
      expect: (a) =>
        a.status === 200 && (JSON.parse(a.text) as { sub?: string }).sub === chain.sub
          ? true
          : `${a.status} ${a.text.slice(0, 200)}`,
    });
    return answer.ok;
  } finally {
    chain.busy = false;
  }
}

/**
 * `workers` closed-loop workers until `deadline`, each sending one operation at a time to the
 * instances in turn (round robin over all workers). Bounded: every request has a timeout.
 */
export async function runLoad(
  ctx: LoadContext,
  state: LoadState,
  options: { workers: number; deadline: number; pauseMs: number; signal: AbortSignal },
): Promise<void> {
  let turn = 0;
  const worker = async () => {
    while (Date.now() < options.deadline && !options.signal.aborted) {
      const mine = turn++;
      let fine = false;
      try {
        fine = await runOp(ctx, state, pickOp(), mine % ctx.instances.length, mine);
      } catch (error) {
        if (state.internalErrors.length < 20) state.internalErrors.push((error as Error).stack ?? String(error));
      }
      const pause = fine ? options.pauseMs : BACKOFF_MS;
      if (pause > 0) await sleep(Math.min(pause, Math.max(0, options.deadline - Date.now())));
    }
  };
  await Promise.all(Array.from({ length: options.workers }, worker));
}
