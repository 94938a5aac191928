import { pino, type DestinationStream } from 'pino';

import { loadConfig, type Config } from '../config/config.ts';
import { createCommandContainer, type CommandContainer } from '../container/command.ts';
import { connectDatabase, type DatabaseHandle } from '../db/connect.ts';
import { ConfigError, isPosternError } from '../shared/errors.ts';
import { createLogger, type Logger } from '../shared/logger.ts';
import { UsageError, type CommandSpec, type ParsedArgs } from './args.ts';

type Env = Readonly<Record<string, string | undefined>>;

/** Where a command writes; the entry point binds it to the process, nothing else touches stdio. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** All of standard input, as text. */
  readStdin(): Promise<string>;
}

export interface CliContext {
  readonly env: Env;
  readonly io: CliIo;
}

export interface Command extends CommandSpec {
  run(args: ParsedArgs, ctx: CliContext): Promise<void>;
}

/**
 * Commands are quiet: warnings and errors only, on stderr, so stdout carries just the result
 * (and `--json` stays parseable). LOG_LEVEL, when set, wins.
 */
export function createCliLogger(config: Config, env: Env, io?: CliIo): Logger {
  const level = env.LOG_LEVEL ? config.logLevel : 'warn';
  // Not pino-pretty: it is a dev dependency, and a transport thread would print after the result.
  // Through the command's io when it has one, so a command run in-process (tests) logs where it
  // writes its errors; written synchronously either way, before the result.
  const toStderr = (text: string) => (io ? io.err(text) : process.stderr.write(`${text}\n`));
  if (process.stderr.isTTY && env.LOG_FORMAT !== 'json')
    return createLogger({ level, destination: terminalLines(toStderr) });
  const destination: DestinationStream = io
    ? { write: (line: string) => io.err(line.replace(/\n$/, '')) }
    : pino.destination({ fd: 2, sync: true });
  return createLogger({ level, destination });
}

const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warning',
  50: 'error',
  60: 'fatal',
};

/** One readable line per log record, for a person at a terminal. */
function terminalLines(write: (text: string) => void): DestinationStream {
  return {
    write(line: string) {
      const { level, msg, time: _t, pid: _p, hostname: _h, ...rest } = JSON.parse(line) as Record<string, unknown>;
      const extra = Object.entries(rest)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      write(`postern: ${LEVEL_NAMES[level as number] ?? 'log'}: ${String(msg ?? '')}${extra ? ` (${extra})` : ''}`);
    },
  };
}

/** What a command's services are: every domain service, over an open database. */
export type Services = CommandContainer;

/**
 * Config, logger and every domain service, for commands that read or change data; always
 * closed. The protocol engine (key ring, provider) is built only if an operation needs it
 * (back-channel logout, checking a new client), so reads never load it or make a key.
 */
export function withServices<T>(ctx: CliContext, fn: (services: Services) => Promise<T>): Promise<T> {
  return withContainer(ctx, 'on-demand', fn);
}

/** The same, with the engine built first: for commands about the signing keys it completes. */
export function withEngine<T>(ctx: CliContext, fn: (services: Services) => Promise<T>): Promise<T> {
  return withContainer(ctx, 'now', fn);
}

async function withContainer<T>(
  ctx: CliContext,
  engine: 'on-demand' | 'now',
  fn: (services: Services) => Promise<T>,
): Promise<T> {
  const config = loadConfig(ctx.env);
  const logger = createCliLogger(config, ctx.env, ctx.io);
  const container = await createCommandContainer(config, { logger, engine });
  try {
    if (container.secretGenerated) {
      logger.warn(
        { file: container.secretGenerated },
        'POSTERN_SECRET is not set: generated one into the data dir (fine for trying Postern; set POSTERN_SECRET in production)',
      );
    }
    return await fn(container);
  } finally {
    await container.close();
    logger.flush();
  }
}

/** Just the database, without the schema check the services need: for `postern migrate`. */
export async function withDatabase<T>(
  ctx: CliContext,
  purpose: string,
  fn: (db: DatabaseHandle) => Promise<T>,
): Promise<T> {
  const config = loadConfig(ctx.env);
  const logger = createCliLogger(config, ctx.env, ctx.io);
  const db = await connectDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    logger,
    purpose,
    poolSize: 1,
  });
  try {
    return await fn(db);
  } finally {
    await db.close();
    logger.flush();
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

// pg reports an unreachable host as an AggregateError with an empty message.
function innermostMessage(error: unknown): string {
  if (error instanceof AggregateError && !error.message && error.errors.length > 0)
    return innermostMessage(error.errors[0]);
  if (error instanceof Error) return error.message || (error as { code?: string }).code || error.name;
  return String(error);
}

/** The single line printed after "postern: " for any failure. */
export function describeError(error: unknown): string {
  if (error instanceof ConfigError) return `invalid configuration: ${error.problems.join('; ')}`;
  if (error instanceof UsageError || isPosternError(error)) return oneLine(error.message);
  const message = oneLine(innermostMessage(error));
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && /^(ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH|28P01|3D000)$/.test(code)) {
    return `cannot use the database: ${message}`;
  }
  return message;
}

export function exitCodeFor(error: unknown): number {
  return error instanceof UsageError ? 2 : 1;
}
