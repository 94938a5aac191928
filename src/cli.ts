#!/usr/bin/env node
import { readFileSync } from 'node:fs';

import { parseCommandArgs, UsageError } from './cli/args.ts';
import { commandHelp } from './cli/command.ts';
import { COMMANDS } from './cli/commands.ts';
import { describeError, exitCodeFor, type CliContext, type CliIo, type Command } from './cli/runtime.ts';

// `postern`: the admin command. An entry point like main.ts: it alone binds stdio and the exit code.
const HINT = '(run "postern help" for usage)';

function usage(group?: string): string {
  const shown = COMMANDS.filter((c) => group === undefined || c.name.split(' ')[0] === group);
  const rows: [string, string][] = shown.map((c) => [c.name, c.summary]);
  rows.push(['help [command]', "this text, or a command's options (also: postern <command> --help)"]);
  const width = Math.max(...rows.map(([name]) => name.length));
  return [
    group ? `Usage: postern ${group} <action> [options]` : 'Usage: postern <command> [options]',
    '',
    'Commands:',
    ...rows.map(([name, summary]) => `  ${name.padEnd(width)}  ${summary}`),
    '',
    'Settings come from the environment, as for the server: DATABASE_URL (or POSTERN_DATA_DIR for',
    'the embedded database), POSTERN_SECRET, LOG_LEVEL (commands log warnings only unless it is set).',
  ].join('\n');
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return `postern ${pkg.version}`;
}

const isHelp = (word: string | undefined) => word === 'help' || word === '--help' || word === '-h';

/** Finds the command named by the first one or two words; `rest` is what follows them. */
function resolve(argv: readonly string[]): { command: Command; rest: string[] } {
  const [first, second] = argv;
  const group = COMMANDS.filter((c) => c.name.split(' ')[0] === first);
  if (group.length === 0) {
    const what = first?.startsWith('-') ? `unknown option ${first}` : `unknown command "${first}"`;
    throw new UsageError(`${what} ${HINT}`);
  }
  const single = group.find((c) => c.name === first);
  if (single) return { command: single, rest: argv.slice(1) };
  if (second === undefined || second.startsWith('-')) {
    throw new UsageError(
      `"${first}" needs an action: ${group.map((c) => c.name.split(' ')[1]).join(', ')} (run "postern ${first} --help")`,
    );
  }
  const command = group.find((c) => c.name === `${first} ${second}`);
  if (!command) throw new UsageError(`unknown command "${first} ${second}" ${HINT}`);
  return { command, rest: argv.slice(2) };
}

function helpFor(topic: readonly string[]): string {
  if (topic.length === 0) return usage();
  const exact = COMMANDS.find((c) => c.name === topic.slice(0, 2).join(' ') || c.name === topic[0]);
  if (exact) return commandHelp(exact);
  if (COMMANDS.some((c) => c.name.split(' ')[0] === topic[0])) return usage(topic[0]);
  throw new UsageError(`unknown command "${topic.join(' ')}" ${HINT}`);
}

/** Runs one invocation; returns the exit status. Never throws and never prints a stack. */
export async function runCli(argv: readonly string[], ctx: CliContext): Promise<number> {
  try {
    if (argv.length === 0) {
      ctx.io.err(usage());
      return 2;
    }
    if (isHelp(argv[0])) {
      ctx.io.out(helpFor(argv.slice(1)));
      return 0;
    }
    if (argv[0] === '--version' || argv[0] === 'version') {
      ctx.io.out(version());
      return 0;
    }
    if (isHelp(argv[1]) && !COMMANDS.some((c) => c.name === argv[0])) {
      ctx.io.out(helpFor([argv[0]!])); // `postern user --help`: the group's actions
      return 0;
    }
    const { command, rest } = resolve(argv);
    const parsed = parseCommandArgs(command, rest);
    if (parsed.help) {
      ctx.io.out(commandHelp(command));
      return 0;
    }
    await command.run(parsed, ctx);
    return 0;
  } catch (error) {
    ctx.io.err(`postern: ${describeError(error)}`);
    if (/^(debug|trace)$/.test(ctx.env.LOG_LEVEL ?? '') && error instanceof Error && error.stack)
      ctx.io.err(error.stack);
    return exitCodeFor(error);
  }
}

function processIo(): CliIo {
  return {
    out: (text) => {
      process.stdout.write(`${text}\n`);
    },
    err: (text) => {
      process.stderr.write(`${text}\n`);
    },
    async readStdin() {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
  };
}

if (import.meta.main) {
  const code = await runCli(process.argv.slice(2), { env: process.env, io: processIo() });
  // `serve` keeps running after runCli returns and sets its own exit code on failure.
  if (code !== 0) process.exitCode = code;
}
