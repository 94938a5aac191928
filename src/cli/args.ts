import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';

/** Bad command-line input: shown as one line, exit status 2, no stack. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface CommandSpec {
  /** The words that select the command, e.g. "user create". */
  readonly name: string;
  readonly summary: string;
  /** Help text shown by `postern <name> --help`. */
  readonly usage: string;
  readonly options: ParseArgsOptionsConfig;
  /** Names of the positional arguments, all required, in order. */
  readonly positionals?: readonly string[];
}

export type Values = Readonly<Record<string, string | boolean | string[] | undefined>>;

export interface ParsedArgs {
  readonly values: Values;
  readonly positionals: readonly string[];
  readonly help: boolean;
}

export function helpHint(name: string): string {
  return `(see "postern ${name} --help")`;
}

// node:util's messages are sentences over several lines; an operator needs one line that names the flag.
function describeParseError(error: unknown): string {
  const { code, message } = error as { code?: string; message?: string };
  const flag = /'(-{1,2}[^' ]+)/.exec(message ?? '')?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && flag) return `unknown option ${flag}`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && flag) {
    if (message?.includes('does not take an argument')) return `option ${flag} does not take a value`;
    if (message?.includes('ambiguous'))
      return `option ${flag} needs a value (write ${flag}=VALUE for a value that starts with "-")`;
    return `option ${flag} needs a value`;
  }
  return (message ?? String(error)).split('\n')[0]!;
}

// What an option looks like here: --lower-case-name[=value] or -x. Anything else starting with
// "-" is a value: key ids are base64url and may start with "-" (or "--").
const OPTION_LIKE = /^(--[a-z][a-z-]*(=.*)?|-[A-Za-z])$/;

/**
 * Puts positional values that start with "-" (a key id like "-8Jq...") after "--", where
 * parseArgs takes them as positionals, keeping every positional in its order. Option values
 * stay with their option; real options, known or not, are left to parseArgs.
 */
function separatePositionals(spec: CommandSpec, args: readonly string[]): string[] {
  const options: string[] = [];
  const positionals: string[] = [];
  let dashValue = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (OPTION_LIKE.test(arg)) {
      options.push(arg);
      const option = spec.options[arg.slice(2)];
      if (option?.type === 'string' && i + 1 < args.length) options.push(args[++i]!);
    } else if (arg.startsWith('-')) {
      dashValue = true;
      positionals.push(arg);
    } else {
      positionals.push(arg);
    }
  }
  return dashValue ? [...options, '--', ...positionals] : [...args];
}

/** Strict parsing: unknown flags, missing values and extra arguments are usage errors. */
export function parseCommandArgs(spec: CommandSpec, args: readonly string[]): ParsedArgs {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: separatePositionals(spec, args),
      options: { ...spec.options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw new UsageError(`${describeParseError(error)} ${helpHint(spec.name)}`);
  }
  const values = parsed.values as Values;
  if (values.help) return { values, positionals: parsed.positionals, help: true };
  const expected = spec.positionals ?? [];
  const missing = expected[parsed.positionals.length];
  if (missing) throw new UsageError(`missing ${missing} ${helpHint(spec.name)}`);
  const extra = parsed.positionals[expected.length];
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}" ${helpHint(spec.name)}`);
  return { values, positionals: parsed.positionals, help: false };
}

export function optionalString(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

export function requiredString(spec: CommandSpec, values: Values, name: string): string {
  const value = optionalString(values, name);
  if (value === undefined || value.trim() === '')
    throw new UsageError(`missing required option --${name} ${helpHint(spec.name)}`);
  return value;
}

export function flag(values: Values, name: string): boolean {
  return values[name] === true;
}

/** A repeatable flag whose values may also be comma-separated: `--role a,b --role c`. */
export function commaList(values: Values, name: string): string[] {
  const raw = values[name];
  const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
  return items
    .flatMap((item) => item.split(','))
    .map((item) => item.trim())
    .filter(Boolean);
}

/** A repeatable flag taken as given (URIs may contain commas). */
export function repeated(values: Values, name: string): string[] {
  const raw = values[name];
  return Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
}

export function exclusive(spec: CommandSpec, values: Values, a: string, b: string): void {
  if (values[a] !== undefined && values[b] !== undefined) {
    throw new UsageError(`use --${a} or --${b}, not both ${helpHint(spec.name)}`);
  }
}
