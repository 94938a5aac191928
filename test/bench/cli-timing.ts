import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { Cleanup } from '../support/cleanup.ts';
import { postern } from '../support/postern-command.ts';
import { REDIRECT_URI } from '../support/relying-party.ts';
import { childEnv } from './child.ts';
import { median, range } from './stats.ts';

// The CLI row: wall time of the real `postern` binary (a fresh Node process each time,
// as an operator runs it), for read commands, on PostgreSQL and on the embedded database.

export const CLI_COMMANDS = [
  ['client', 'list'],
  ['user', 'list'],
] as const;

export interface CliTiming {
  readonly database: 'postgresql' | 'embedded';
  readonly command: string;
  readonly medianSeconds: number;
  readonly minSeconds: number;
  readonly maxSeconds: number;
  readonly runs: number;
}

async function timeCommand(args: readonly string[], env: Record<string, string>, runs: number): Promise<number[]> {
  const seconds: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await postern(args, env);
    seconds.push((performance.now() - start) / 1000);
  }
  return seconds;
}

async function timeAll(
  database: CliTiming['database'],
  env: Record<string, string>,
  runs: number,
): Promise<CliTiming[]> {
  const timings: CliTiming[] = [];
  for (const args of CLI_COMMANDS) {
    const seconds = await timeCommand(args, env, runs);
    const { min, max } = range(seconds);
    timings.push({
      database,
      command: `postern ${args.join(' ')}`,
      medianSeconds: median(seconds),
      minSeconds: min,
      maxSeconds: max,
      runs,
    });
  }
  return timings;
}

/**
 * `posternEnv` is the bench server's environment (PostgreSQL, with the bench's clients and
 * people). The embedded database is made for the occasion in a temporary directory: migrated and
 * given one client and one person by the first commands, which are not timed.
 */
export async function measureCli(options: {
  posternEnv: Record<string, string>;
  runs: number;
  cleanup: Cleanup;
  log: (line: string) => void;
}): Promise<CliTiming[]> {
  options.log(`postern client list / user list, ${options.runs} runs each, on PostgreSQL`);
  const onPostgres = await timeAll('postgresql', options.posternEnv, options.runs);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'postern-bench-embedded-'));
  options.cleanup.defer('remove the embedded database', async () => rmSync(dataDir, { recursive: true, force: true }));
  const embeddedEnv = childEnv({
    POSTERN_DATA_DIR: dataDir,
    POSTERN_SECRET: options.posternEnv.POSTERN_SECRET!,
    POSTERN_DEMO: 'false',
    LOG_LEVEL: 'warn',
  });
  options.log('embedded database: migrating and registering a client and a person (not timed)');
  await postern(
    [
      'client',
      'create',
      '--id',
      'cli-bench',
      '--grant-types',
      'authorization_code',
      '--redirect-uri',
      REDIRECT_URI,
      '--scope',
      'openid',
      '--json',
    ],
    embeddedEnv,
  );
  await postern(
    ['user', 'create', '--username', 'cli-bench', '--email', 'cli@example.com', '--password', 'a long cli passphrase'],
    embeddedEnv,
  );
  options.log(`postern client list / user list, ${options.runs} runs each, embedded`);
  return [...onPostgres, ...(await timeAll('embedded', embeddedEnv, options.runs))];
}
