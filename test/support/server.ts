import { Writable } from 'node:stream';

import { loadConfig } from '../../src/config/config.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import type { DatabaseHandle } from '../../src/db/connect.ts';
import type { Clock } from '../../src/shared/clock.ts';
import { createLogger } from '../../src/shared/logger.ts';
import type { TestDatabase } from './database.ts';
import { freePort } from './net.ts';

export { freePort };

export const TEST_SECRET = 'test-secret-0123456789abcdefghijklmnopqrstuvwxyz';

export interface TestServer extends RunningServer {
  readonly issuer: string;
  /** Every log line this server wrote, as JSON text. */
  readonly logs: string[];
}

/** Boots the real app (real database, real HTTP listener) the way `postern serve` does. */
export interface TestServerOptions {
  /** Our clock (lockouts, expiry); the protocol engine keeps reading Date.now(). */
  readonly clock?: Clock;
  /** Share another instance's open database (two instances over one embedded database). */
  readonly shareDatabaseOf?: TestServer;
  /** Use this open database (several instances over one embedded database, started at once). */
  readonly database?: DatabaseHandle;
}

/** A clock the test moves forward by hand, on top of the real time. */
export function createTestClock(): Clock & { advance(seconds: number): void } {
  let offsetMs = 0;
  return {
    now: () => new Date(Date.now() + offsetMs),
    advance(seconds) {
      offsetMs += seconds * 1000;
    },
  };
}

export async function startTestServer(
  database: TestDatabase,
  env: Record<string, string> = {},
  options: TestServerOptions = {},
): Promise<TestServer> {
  const port = Number(env.PORT ?? (await freePort()));
  const issuer = env.POSTERN_ISSUER ?? `http://127.0.0.1:${port}`;
  const config = loadConfig({
    POSTERN_SECRET: TEST_SECRET,
    POSTERN_DEMO: 'false',
    POSTERN_MIGRATE_ON_START: 'true',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'debug',
    HOST: '127.0.0.1',
    ...database.env,
    ...env,
    PORT: String(port),
    POSTERN_ISSUER: issuer,
  });
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      if (process.env.TEST_LOG_STDERR) process.stderr.write(chunk);
      callback();
    },
  });
  const logger = createLogger({ level: config.logLevel, destination });
  const running = await startServer(config, logger, {
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.shareDatabaseOf ? { database: options.shareDatabaseOf.container.db } : {}),
    ...(options.database ? { database: options.database } : {}),
  });
  return Object.assign(running, { issuer, logs });
}
