import * as oidc from 'openid-client';

import { exchange, newBrowser, signIn } from '../support/relying-party.ts';
import type { Meters } from './load.ts';
import { BENCH_USERS, WEB_CLIENT } from './scenario.ts';

// Full sign-ins as a person's browser and the web app make them: the authorization request,
// the login page and its form (argon2id), consent, the redirect back, and the code exchange
// (code + PKCE) that returns the tokens.

export type Person = (typeof BENCH_USERS)[number];

export function webAppConfig(issuer: string, secret: string): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(issuer), WEB_CLIENT.id, secret, oidc.ClientSecretBasic(secret), {
    execute: [oidc.allowInsecureRequests],
  });
}

/** One full sign-in; returns its refresh token (the start of a refresh chain). */
export async function signInOnce(config: oidc.Configuration, person: Person): Promise<string> {
  const auth = await signIn(newBrowser(), config, person, { scope: WEB_CLIENT.scope, prompt: 'consent' });
  const result = await exchange(config, auth);
  if (!result.refresh_token) throw new Error('a sign-in got no refresh token');
  return result.refresh_token;
}

export interface SignInThroughput {
  readonly signIns: number;
  readonly seconds: number;
  readonly posternCpuSeconds: number;
  readonly databaseCpuSeconds: number;
  /** Sign-ins per CPU-second of Postern and its PostgreSQL together. */
  readonly perServerCpuSecond: number;
}

/**
 * One worker per person signing in back to back for `seconds`: enough to keep argon2id's
 * threads and the event loop busy on two cores. The rate is per server-CPU-second (Postern +
 * PostgreSQL), so the load generator sharing the cores does not bend it.
 */
export async function measureSignIns(options: {
  config: oidc.Configuration;
  seconds: number;
  meters: Meters;
}): Promise<SignInThroughput> {
  const { meters } = options;
  const cpuBefore = meters.server.read();
  const databaseBefore = meters.database?.read() ?? 0;
  const start = performance.now();
  const end = start + options.seconds * 1000;
  let signIns = 0;
  await Promise.all(
    BENCH_USERS.map(async (person) => {
      while (performance.now() < end) {
        await signInOnce(options.config, person);
        signIns++;
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const posternCpuSeconds = meters.server.read() - cpuBefore;
  const databaseCpuSeconds = (meters.database?.read() ?? 0) - databaseBefore;
  return {
    signIns,
    seconds,
    posternCpuSeconds,
    databaseCpuSeconds,
    perServerCpuSecond: signIns / (posternCpuSeconds + databaseCpuSeconds),
  };
}
