import { parseArgs } from 'node:util';

/** Bad command-line input: shown as one line, exit status 2, no stack. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** One option, declared once: parsing, its type in `run`, the required check and the help line come from it. */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  /** One sentence or a few for the help text. */
  readonly description: string;
  /** The placeholder in the help text, e.g. "URI" in `--redirect-uri URI` (string options). */
  readonly value?: string;
  readonly required?: boolean;
  /** May be given several times; the value is then every occurrence, in order (string options). */
  readonly multiple?: boolean;
  readonly short?: string;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

export interface PositionalSpec {
  /** As shown in the help text, e.g. "USER". */
  readonly name: string;
  readonly description: string;
  /** May be left out (only after the required ones); `run` then reads undefined. */
  readonly optional?: boolean;
}

export type PositionalSpecs = readonly PositionalSpec[];

/** What a command's `run` reads of an option: booleans are never undefined, repeatables never absent. */
type ValueOf<O extends OptionSpec> = O['type'] extends 'boolean'
  ? boolean
  : O extends { readonly multiple: true }
    ? string[]
    : O extends { readonly required: true }
      ? string
      : string | undefined;

/** The parsed options, typed from their declaration: an undeclared name does not compile. */
export type Values<O extends OptionSpecs> = { readonly [K in keyof O]: ValueOf<O[K]> };

/** One string per declared positional, in order (string | undefined for an optional one). */
export type Positionals<P extends PositionalSpecs> = {
  readonly [K in keyof P]: P[K] extends { readonly optional: true } ? string | undefined : string;
};

export interface CommandSpec<O extends OptionSpecs = OptionSpecs, P extends PositionalSpecs = PositionalSpecs> {
  /** The words that select the command, e.g. "user create". */
  readonly name: string;
  /** One line for `postern help`. */
  readonly summary: string;
  /** Paragraphs shown by `postern <name> --help` between the usage line and the options. */
  readonly description?: string;
  readonly options: O;
  /** In order; optional ones (if any) last. */
  readonly positionals?: P;
}

export interface ParsedArgs<O extends OptionSpecs = OptionSpecs, P extends PositionalSpecs = PositionalSpecs> {
  readonly values: Values<O>;
  readonly positionals: Positionals<P>;
  readonly help: boolean;
}

/** Every command has these, declared here once. */
export const HELP_OPTION = { type: 'boolean', short: 'h', description: 'show this help' } as const satisfies OptionSpec;

export function helpHint(name: string): string {
  return `(see "postern ${name} --help")`;
}

export function missingOption(command: string, name: string): UsageError {
  return new UsageError(`missing required option --${name} ${helpHint(command)}`);
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

type RawValue = string | boolean | (string | boolean)[] | undefined;

/** parseArgs leaves absent options out; `run` gets false for a boolean and [] for a repeatable one. */
function withDefaults(specs: OptionSpecs, raw: Readonly<Record<string, RawValue>>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(specs).map(([name, spec]) => {
      const value = raw[name];
      if (spec.type === 'boolean') return [name, value === true];
      return [name, spec.multiple ? (value ?? []) : value];
    }),
  );
}

const isBlank = (value: unknown): boolean =>
  value === undefined ||
  (typeof value === 'string' && value.trim() === '') ||
  (Array.isArray(value) && value.every(isBlank));

function checkRequired(spec: CommandSpec, values: Readonly<Record<string, unknown>>): void {
  for (const [name, option] of Object.entries(spec.options)) {
    if (option.required && isBlank(values[name])) throw missingOption(spec.name, name);
  }
}

function checkPositionals(spec: CommandSpec, positionals: readonly string[]): void {
  const expected = spec.positionals ?? [];
  const missing = expected.filter((p) => !p.optional)[positionals.length];
  if (missing) throw new UsageError(`missing ${missing.name} ${helpHint(spec.name)}`);
  const extra = positionals[expected.length];
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}" ${helpHint(spec.name)}`);
}

/**
 * Strict parsing: unknown flags, missing values, missing required options and positionals, and
 * extra arguments are usage errors.
 */
export function parseCommandArgs<O extends OptionSpecs, P extends PositionalSpecs>(
  spec: CommandSpec<O, P>,
  args: readonly string[],
): ParsedArgs<O, P> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: separatePositionals(spec, args),
      options: { ...spec.options, help: HELP_OPTION },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw new UsageError(`${describeParseError(error)} ${helpHint(spec.name)}`);
  }
  const values = withDefaults(spec.options, parsed.values);
  const help = parsed.values.help === true;
  if (!help) {
    checkPositionals(spec, parsed.positionals);
    checkRequired(spec, values);
  }
  // The one place the declaration meets parseArgs's untyped result: withDefaults and the checks
  // above give every declared option the type Values<O> says, and P as many positionals as declared.
  return {
    values: values as Values<O>,
    positionals: parsed.positionals as Positionals<P>,
    help,
  };
}

const isGiven = (value: unknown): boolean =>
  value !== undefined && value !== false && !(Array.isArray(value) && value.length === 0);

/** Two options that cannot be given together; `command` names the command in the hint. */
export function exclusive<V extends Readonly<Record<string, unknown>>>(
  command: string,
  values: V,
  a: keyof V & string,
  b: keyof V & string,
): void {
  if (isGiven(values[a]) && isGiven(values[b])) {
    throw new UsageError(`use --${a} or --${b}, not both ${helpHint(command)}`);
  }
}

/** A repeatable option whose values may also be comma-separated: `--role a,b --role c`. */
export function commaList(items: readonly string[]): string[] {
  return items
    .flatMap((item) => item.split(','))
    .map((item) => item.trim())
    .filter(Boolean);
}

/** `--limit N` of the listing commands: 50 when left out, at most 10000. */
export function parseLimit(raw: string | undefined): number {
  if (raw === undefined) return 50;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > 10_000)
    throw new UsageError(`--limit must be a whole number from 1 to 10000 (got "${raw}")`);
  return n;
}
