import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  createRemoteJWKSet,
  customFetch,
  decodeProtectedHeader,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyOptions,
} from 'jose';

import type { Recorder } from './stats.ts';

// Verification failures that no JWKS refresh can fix: the token itself is bad.
const DEFINITIVE = new Set([
  'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  'ERR_JWT_CLAIM_VALIDATION_FAILED',
  'ERR_JWT_EXPIRED',
  'ERR_JWS_INVALID',
  'ERR_JWT_INVALID',
  'ERR_JOSE_ALG_NOT_ALLOWED',
  'ERR_JOSE_NOT_SUPPORTED',
]);
const COOLDOWN_MS = 1000;
const ATTEMPTS = 3;

export interface KidSeen {
  first: number;
  count: number;
}

/**
 * A resource server that verifies every token it is handed, offline, as the README tells APIs
 * to: jose's remote JWK Set per instance (cached for the published max-age, re-fetched on an
 * unknown kid after a short cooldown). A JWKS fetch that fails, or a kid not published yet, is
 * retried on the other instance after the cooldown; only then does the token count as failed.
 */
export interface ResourceServer {
  readonly verified: number;
  readonly failed: number;
  /** Tokens that verified only after waiting for a JWKS re-fetch. */
  readonly retried: number;
  readonly failures: string[];
  /** Per instance: each kid that signed its tokens, when first seen (ms into the run), how often. */
  readonly kids: Map<string, KidSeen>[];
  verifyAccessToken(
    token: string,
    instance: number,
    expected: { audience: string; clientId: string; scope: string },
  ): Promise<JWTPayload | undefined>;
  verifyIdToken(
    token: string,
    instance: number,
    expected: { audience: string; nonce?: string; sub?: string },
  ): Promise<JWTPayload | undefined>;
}

export function createResourceServer(options: {
  instances: readonly string[];
  issuer: string;
  recorder: Recorder;
  jwksCacheSeconds: number;
}): ResourceServer {
  const { recorder, issuer } = options;
  const fetchJwks = async (url: string, init: RequestInit): Promise<Response> => {
    const startedAt = Date.now();
    const t0 = performance.now();
    try {
      const response = await fetch(url, init);
      recorder.record(
        'jwks (resource server)',
        startedAt,
        performance.now() - t0,
        response.status,
        response.ok,
        response.ok ? '' : `${response.status}`,
      );
      return response;
    } catch (error) {
      recorder.record('jwks (resource server)', startedAt, performance.now() - t0, 0, false, (error as Error).message);
      throw error;
    }
  };
  const sets = options.instances.map((url) =>
    createRemoteJWKSet(new URL(`${url}/jwks`), {
      cooldownDuration: COOLDOWN_MS,
      cacheMaxAge: options.jwksCacheSeconds * 1000,
      timeoutDuration: 5000,
      [customFetch]: fetchJwks,
    }),
  );
  const state = {
    verified: 0,
    failed: 0,
    retried: 0,
    failures: [] as string[],
    kids: options.instances.map(() => new Map<string, KidSeen>()),
  };

  async function verify(
    token: string,
    instance: number,
    verifyOptions: JWTVerifyOptions,
    check: (p: JWTPayload) => string | undefined,
    label: string,
  ) {
    let lastError = '';
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const jwks = sets[(instance + attempt) % sets.length]!;
      try {
        const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer, ...verifyOptions });
        const problem = check(payload);
        if (problem) {
          lastError = problem;
          break;
        }
        state.verified++;
        if (attempt > 0) state.retried++;
        const kid = `${protectedHeader.alg}:${protectedHeader.kid}`;
        const seen = state.kids[instance]!.get(kid);
        if (seen) seen.count++;
        else state.kids[instance]!.set(kid, { first: Date.now() - recorder.startedAt, count: 1 });
        return payload;
      } catch (error) {
        const e = error as Error & { code?: string };
        lastError = `${e.code ?? e.name}: ${e.message}`;
        if (e.code && DEFINITIVE.has(e.code)) break;
        await sleep(COOLDOWN_MS + 100);
      }
    }
    state.failed++;
    if (state.failures.length < 20) {
      let header = '';
      try {
        header = JSON.stringify(decodeProtectedHeader(token));
      } catch {
        header = '(no header)';
      }
      state.failures.push(`${label} from instance ${instance}: ${lastError} ${header}`);
    }
    return undefined;
  }

  return {
    get verified() {
      return state.verified;
    },
    get failed() {
      return state.failed;
    },
    get retried() {
      return state.retried;
    },
    failures: state.failures,
    kids: state.kids,
    verifyAccessToken(token, instance, expected) {
      return verify(
        token,
        instance,
        { audience: expected.audience, typ: 'at+jwt' },
        (p) => {
          if (p.client_id !== expected.clientId || p.sub !== expected.clientId)
            return `client_id ${String(p.client_id)}, sub ${String(p.sub)}`;
          if (!String(p.scope).split(' ').includes(expected.scope)) return `scope ${String(p.scope)}`;
          return undefined;
        },
        'access token',
      );
    },
    verifyIdToken(token, instance, expected) {
      return verify(
        token,
        instance,
        { audience: expected.audience },
        (p) => {
          if (expected.nonce !== undefined && p.nonce !== expected.nonce) return 'nonce mismatch';
          if (expected.sub !== undefined && p.sub !== expected.sub) return 'sub changed';
          return undefined;
        },
        'ID token',
      );
    },
  };
}
