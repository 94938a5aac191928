import {
  HELP_OPTION,
  type CommandSpec,
  type OptionSpec,
  type OptionSpecs,
  type ParsedArgs,
  type PositionalSpec,
  type PositionalSpecs,
} from './args.ts';
import type { CliContext, Command } from './runtime.ts';

/** A command as written: its declaration, and a `run` whose arguments are typed from it. */
export interface CommandDefinition<O extends OptionSpecs, P extends PositionalSpecs> extends CommandSpec<O, P> {
  run(args: ParsedArgs<O, P>, ctx: CliContext): Promise<void>;
}

/**
 * Declares a command: options and positionals once, with their descriptions, and `run` with
 * `values` and `positionals` inferred from them, so reading an undeclared option does not
 * compile. Parsing, the required checks and `--help` all come from the same declaration.
 */
export function defineCommand<const O extends OptionSpecs, const P extends PositionalSpecs = []>(
  definition: CommandDefinition<O, P>,
): Command {
  return definition;
}

/** `--json`, for commands with nothing more to say about their JSON than this. */
export const JSON_OPTION = { type: 'boolean', description: 'print the result as JSON' } as const satisfies OptionSpec;

const WIDTH = 100;

/** Words of `text` in lines at most `width` wide; line breaks written in the text are kept. */
function wrap(text: string, width: number): string[] {
  return text.split('\n').flatMap((paragraph) => {
    const lines: string[] = [];
    let line = '';
    for (const word of paragraph.split(' ')) {
      if (line && line.length + 1 + word.length > width) {
        lines.push(line);
        line = word;
      } else {
        line = line ? `${line} ${word}` : word;
      }
    }
    return [...lines, line];
  });
}

function optionLabel(name: string, option: OptionSpec): string {
  const flag = option.short ? `-${option.short}, --${name}` : `--${name}`;
  return option.type === 'string' ? `${flag} ${option.value ?? 'VALUE'}` : flag;
}

function optionNote(option: OptionSpec): string {
  const notes = [...(option.required ? ['required'] : []), ...(option.multiple ? ['repeatable'] : [])];
  return notes.length ? ` (${notes.join(', ')})` : '';
}

/** Two columns, the second wrapped and indented under itself. */
function rows(entries: readonly (readonly [string, string])[]): string[] {
  const width = Math.max(...entries.map(([label]) => label.length));
  return entries.flatMap(([label, text]) =>
    wrap(text, WIDTH - width - 4).map((line, i) => `  ${(i === 0 ? label : '').padEnd(width)}  ${line}`.trimEnd()),
  );
}

function usageLine(spec: CommandSpec): string {
  const options = Object.entries(spec.options);
  const words = [
    `postern ${spec.name}`,
    ...(spec.positionals ?? []).map((p) => (p.optional ? `[${p.name}]` : p.name)),
    ...options.filter(([, o]) => o.required).map(([name, o]) => optionLabel(name, o)),
    '[options]',
  ];
  return `Usage: ${words.join(' ')}`;
}

/** `postern <command> --help`, generated from the command's declaration. */
export function commandHelp(spec: CommandSpec): string {
  const positionals = spec.positionals ?? [];
  const options: [string, OptionSpec][] = [...Object.entries(spec.options), ['help', HELP_OPTION]];
  return [
    usageLine(spec),
    '',
    ...(spec.description ? [...wrap(spec.description, WIDTH), ''] : []),
    ...(positionals.length ? ['Arguments:', ...rows(positionals.map((p) => [p.name, p.description])), ''] : []),
    'Options:',
    ...rows(options.map(([name, o]) => [optionLabel(name, o), `${o.description}${optionNote(o)}`])),
  ].join('\n');
}

/** The USER argument of the `user` commands. */
export const USER_ARGUMENT = {
  name: 'USER',
  description: 'a username, an email address or an account id',
} as const satisfies PositionalSpec;
