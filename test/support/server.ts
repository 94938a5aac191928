import net from 'node:net';
import { Writable } from 'node:stream';

import { loadConfig } from '../../src/config/config.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { createLogger } from '../../src/shared/logger.ts';
import type { TestDatabase } from './database.ts';

export const TEST_SECRET = 'test-secret-0123456789abcdefghijklmnopqrstuvwxyz';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

export interface TestServer extends RunningServer {
  readonly issuer: string;
  /** Every log line this server wrote, as JSON text. */
  readonly logs: string[];
}

/** Boots the real app (real database, real HTTP listener) the way `postern serve` does. */
export async function startTestServer(database: TestDatabase, env: Record<string, string> = {}): Promise<TestServer> {
  const port = Number(env.PORT ?? await freePort());
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
  const running = await startServer(config, logger);
  return Object.assign(running, { issuer, logs });
}
