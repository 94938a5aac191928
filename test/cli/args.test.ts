import { describe, expect, it } from 'vitest';

import { parseCommandArgs, UsageError, type CommandSpec } from '../../src/cli/args.ts';

// Key ids are base64url: about one in 64 starts with "-", and `postern keys revoke KID` must
// still take it as the key id (a CI run met one).
const revoke = {
  name: 'keys revoke',
  summary: '',
  options: { alg: { type: 'string', description: '' }, json: { type: 'boolean', description: '' } },
  positionals: [{ name: 'KID', description: '' }],
} as const satisfies CommandSpec;
const pair = { ...revoke, positionals: [revoke.positionals[0], { name: 'B', description: '' }] } as const;

describe('parseCommandArgs', () => {
  it.each(['-8Jq0TQdc', '--8Jq_TQdc', '-Ab', 'plain'])('takes %j as the positional it is', (kid) => {
    expect(parseCommandArgs(revoke, [kid]).positionals).toEqual([kid]);
    expect(parseCommandArgs(revoke, ['--json', kid]).values.json).toBe(true);
  });

  it('keeps positionals in order and option values with their options', () => {
    const parsed = parseCommandArgs(pair, ['-first', '--alg', 'ES256', 'second']);
    expect(parsed.positionals).toEqual(['-first', 'second']);
    expect(parsed.values.alg).toBe('ES256');
    expect(parseCommandArgs(pair, ['--alg=RS256', 'a', '-bc']).positionals).toEqual(['a', '-bc']);
    expect(parseCommandArgs(revoke, ['--', '--json']).positionals).toEqual(['--json']);
  });

  it('still refuses what looks like an unknown option', () => {
    expect(() => parseCommandArgs(revoke, ['--bogus', 'k'])).toThrow(UsageError);
    expect(() => parseCommandArgs(revoke, ['--bogus', 'k'])).toThrow(/unknown option --bogus/);
    expect(() => parseCommandArgs(revoke, ['-x'])).toThrow(/unknown option -x/);
    expect(() => parseCommandArgs(revoke, ['a', 'b'])).toThrow(/unexpected argument "b"/);
  });

  // A client secret may start with "-": written --secret=VALUE it is taken whole (issue 10, point 9).
  const create = {
    name: 'client create',
    summary: '',
    options: { secret: { type: 'string', description: '' }, id: { type: 'string', description: '' } },
  } as const satisfies CommandSpec;
  it.each(['-starts-with-a-dash-0123456789abcdef', '--two-dashes=and-an-equals-sign-0123456789'])(
    'takes --secret=%s whole',
    (secret) => {
      expect(parseCommandArgs(create, [`--secret=${secret}`, '--id', 'x']).values).toMatchObject({ secret, id: 'x' });
    },
  );

  it('refuses --secret VALUE when VALUE starts with "-", naming the --secret=VALUE form', () => {
    expect(() => parseCommandArgs(create, ['--secret', '-abc', '--id', 'x'])).toThrow(
      /option --secret needs a value \(write --secret=VALUE for a value that starts with "-"\)/,
    );
  });
});
