import { describe, expect, expectTypeOf, it } from 'vitest';

import { parseCommandArgs, UsageError } from '../../src/cli/args.ts';
import { commandHelp, defineCommand, JSON_OPTION } from '../../src/cli/command.ts';
import { COMMANDS } from '../../src/cli/commands.ts';
import type { CliContext } from '../../src/cli/runtime.ts';

const oneLine = (text: string) => text.replace(/\s+/g, ' ');

describe('generated help', () => {
  it.each(COMMANDS.map((c) => [c.name, c] as const))(
    '"postern %s --help" lists every declared option and argument with its description',
    (_name, command) => {
      const help = commandHelp(command);
      const flat = oneLine(help);
      for (const [name, option] of Object.entries(command.options)) {
        expect(help).toMatch(new RegExp(`^ {2}(-\\w, )?--${name}\\b`, 'm'));
        expect(flat).toContain(oneLine(option.description));
        if (option.required) expect(help.split('\n')[0]).toContain(`--${name}`);
      }
      for (const positional of command.positionals ?? []) {
        expect(help.split('\n')[0]).toContain(positional.optional ? ` [${positional.name}]` : ` ${positional.name}`);
        expect(flat).toContain(`${positional.name} ${oneLine(positional.description)}`);
      }
      expect(help).toMatch(/^ {2}-h, --help\b/m);
    },
  );

  // `serve` prints no result: it logs (LOG_FORMAT=json for JSON lines).
  it('gives every command but serve a --json option', () => {
    const without = COMMANDS.filter((c) => c.options.json?.type !== 'boolean').map((c) => c.name);
    expect(without).toEqual(['serve']);
  });
});

describe('defineCommand', () => {
  const seen: unknown[] = [];
  const example = defineCommand({
    name: 'example run',
    summary: 'an example',
    options: {
      id: { type: 'string', required: true, description: 'an id' },
      note: { type: 'string', description: 'a note' },
      role: { type: 'string', multiple: true, description: 'a role' },
      json: JSON_OPTION,
    },
    positionals: [{ name: 'USER', description: 'a user' }],
    async run({ values, positionals: [user] }) {
      // Checked by `npm run typecheck` (test/ is in tsconfig.json): each option has the type its
      // declaration gives it, and a name that is not declared does not compile.
      expectTypeOf(values.id).toEqualTypeOf<string>();
      expectTypeOf(values.note).toEqualTypeOf<string | undefined>();
      expectTypeOf(values.role).toEqualTypeOf<string[]>();
      expectTypeOf(values.json).toEqualTypeOf<boolean>();
      expectTypeOf(user).toEqualTypeOf<string>();
      // @ts-expect-error: a misspelt option name is not a property of `values`
      seen.push(values.jsno);
      seen.push(values, user);
    },
  });
  const ctx = {} as CliContext; // example.run touches no context

  it('hands run the values its types promise: booleans false and repeatables [] when absent', async () => {
    seen.length = 0;
    await example.run(parseCommandArgs(example, ['-alice', '--id', 'x']), ctx);
    expect(seen).toEqual([undefined, { id: 'x', note: undefined, role: [], json: false }, '-alice']);
    seen.length = 0;
    await example.run(parseCommandArgs(example, ['bob', '--id=y', '--role', 'a', '--role', 'b', '--json']), ctx);
    expect(seen[1]).toEqual({ id: 'y', note: undefined, role: ['a', 'b'], json: true });
  });

  it('refuses a missing or blank required option, and a missing argument, before run', () => {
    expect(() => parseCommandArgs(example, ['bob'])).toThrow(
      new UsageError('missing required option --id (see "postern example run --help")'),
    );
    expect(() => parseCommandArgs(example, ['bob', '--id', ' '])).toThrow(/missing required option --id/);
    expect(() => parseCommandArgs(example, ['--id', 'x'])).toThrow(/^missing USER /);
    expect(parseCommandArgs(example, ['--help']).help).toBe(true);
  });
});
