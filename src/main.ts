#!/usr/bin/env node
import { type Config, loadConfig } from './config/config.ts';
import { type RunningServer, startServer } from './server.ts';
import { isPosternError } from './shared/errors.ts';
import { createLogger } from './shared/logger.ts';

// The process entry: reads the environment, listens, handles signals, sets the exit code.
export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (error) {
    console.error(`postern: ${(error as Error).message}`);
    process.exitCode = 1;
    return;
  }
  const logger = createLogger({ level: config.logLevel, pretty: process.stdout.isTTY && env.LOG_FORMAT !== 'json' });
  let running: RunningServer;
  try {
    running = await startServer(config, logger);
  } catch (error) {
    const message = isPosternError(error) ? error.message : `could not start: ${(error as Error).message}`;
    logger.fatal({ code: (error as { code?: string }).code }, message);
    logger.flush();
    console.error(`postern: ${message}`);
    process.exitCode = 1;
    return;
  }
  const { container } = running;
  if (container.secretGenerated) {
    logger.warn(
      { file: container.secretGenerated },
      'POSTERN_SECRET is not set: generated one into the data dir (fine for trying Postern; set POSTERN_SECRET in production)',
    );
  }
  logger.info(
    { issuer: config.issuer, listen: running.server.address(), database: container.db.engine },
    'Postern is ready',
  );
  // A bug must not take every sign-in down with it: log loudly, keep serving.
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'));
  if (container.demoSeed) printDemo(config.issuer, container.demoSeed);

  const shutdown = (signal: string) => {
    logger.info({ signal, graceSeconds: config.shutdownSeconds }, 'shutting down: finishing requests in flight');
    running
      .close()
      .then(
        () => logger.info('stopped'),
        (error: Error) => {
          logger.error({ err: error }, 'shutdown failed');
          process.exitCode = 1;
        },
      )
      .finally(() => {
        logger.flush();
        // Everything is closed; should a stray handle keep the loop alive, do not hang the pod.
        setTimeout(() => process.exit(), 1000).unref();
      });
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

function printDemo(issuer: string, seed: { username: string; password: string }): void {
  // Shown once, on the terminal only: it is never written to the log.
  console.log(
    [
      '',
      '  Postern created a demo user and a demo app (shown once):',
      `    open       ${issuer}/demo`,
      `    username   ${seed.username}`,
      `    password   ${seed.password}`,
      '',
    ].join('\n'),
  );
}

if (import.meta.main) await main();
