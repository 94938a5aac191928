import { dictionary } from '@zxcvbn-ts/language-common';
import { describe, expect, it } from 'vitest';

import { checkPassword, DEFAULT_PASSWORD_POLICY } from '../../src/accounts/password-policy.ts';
import { PosternError } from '../../src/shared/errors.ts';

const GOOD = 'glacier lantern orbit pickle 42';

/** The reason checkPassword gives for rejecting, or undefined when it accepts. */
function rejection(...args: Parameters<typeof checkPassword>): string | undefined {
  try {
    checkPassword(...args);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(PosternError);
    expect((error as PosternError).code).toBe('ERR_WEAK_PASSWORD');
    return (error as Error).message;
  }
}

describe('checkPassword', () => {
  it('has the NIST SP 800-63B limits by default', () => {
    expect(DEFAULT_PASSWORD_POLICY).toEqual({ minLength: 8, maxLength: 128 });
  });

  it('accepts a good long passphrase', () => {
    expect(rejection(GOOD, { username: 'alice', email: 'alice@example.com' })).toBeUndefined();
  });

  describe('length', () => {
    it('rejects a password shorter than 8 characters and accepts 8', () => {
      expect(rejection('zq8#Lm2', {})).toMatch(/at least 8 characters/);
      expect(rejection('zq8#Lm2!', {})).toBeUndefined();
    });

    it('rejects a password longer than 128 characters and accepts 128', () => {
      const long = 'correct-horse-battery-staple-'.repeat(5);

      expect(rejection(long.slice(0, 129), {})).toMatch(/at most 128 characters/);
      expect(rejection(long.slice(0, 128), {})).toBeUndefined();
    });

    it('counts characters, not UTF-16 code units', () => {
      // Each emoji is two code units: seven of them are 14 units but only 7 characters.
      expect(rejection('🔑'.repeat(7), {})).toMatch(/at least 8 characters/);
      expect(rejection('🔑'.repeat(8), {})).toBeUndefined();
      expect(rejection('🔑'.repeat(128), {})).toBeUndefined();
      expect(rejection('🔑'.repeat(129), {})).toMatch(/at most 128 characters/);
    });

    // NIST SP 800-63B §5.1.1.2: "each Unicode code point SHALL be counted as a single character",
    // so a letter written with a combining accent counts twice, as it is typed and stored.
    it('counts code points, so a combining accent counts apart from its letter', () => {
      const composed = '\u00e9'; // é, one code point
      const combining = 'e\u0301'; // é, two code points

      expect(rejection(composed.repeat(7), {})).toMatch(/at least 8 characters/);
      expect(rejection(combining.repeat(4), {})).toBeUndefined();
      expect(rejection(combining.repeat(64), {})).toBeUndefined();
      expect(rejection(`${combining.repeat(64)}x`, {})).toMatch(/at most 128 characters/);
    });

    it('checks the length before anything else, so a short listed password is told it is short', () => {
      expect(dictionary['passwords-common']).toContain('123456');
      expect(rejection('123456', {})).toMatch(/at least 8 characters/);
      expect(rejection('alice', { username: 'alice' })).toMatch(/at least 8 characters/);
    });

    it('follows a custom policy', () => {
      const policy = { minLength: 12, maxLength: 16 };

      expect(rejection('zq8#Lm2!abc', {}, policy)).toMatch(/at least 12 characters/);
      expect(rejection('zq8#Lm2!abcdefghi', {}, policy)).toMatch(/at most 16 characters/);
      expect(rejection('zq8#Lm2!abcd', {}, policy)).toBeUndefined();
    });
  });

  describe('identity', () => {
    it('rejects the username, whatever the case', () => {
      const identity = { username: 'Marguerite.Zhou', email: 'mz@example.com' };

      expect(rejection('mARGUERITE.zHOU', identity)).toMatch(/must not be the username or email/);
      expect(rejection('Marguerite.Zhou!', identity)).toBeUndefined();
    });

    it('rejects the email address, whatever the case', () => {
      const identity = { username: 'mz', email: 'Marguerite.Zhou@Example.com' };

      expect(rejection('marguerite.zhou@EXAMPLE.COM', identity)).toMatch(/must not be the username or email/);
      expect(rejection('marguerite.zhou@example.org', identity)).toBeUndefined();
    });

    it('folds case beyond ASCII', () => {
      // Each side has capitals the other has in lower case, so both sides must be folded.
      const identity = { username: 'Åsa.öberg-lindqvist', email: 'Élodie.müller@example.com' };

      expect(rejection('åSA.ÖBERG-LINDQVIST', identity)).toMatch(/must not be the username or email/);
      expect(rejection('élodie.MÜLLER@example.com', identity)).toMatch(/must not be the username or email/);
    });

    it('rejects only the whole username or email, not a password that contains one', () => {
      const identity = { username: 'marguerite', email: 'mz@example.com' };

      expect(rejection('marguerite keeps bees on the roof', identity)).toBeUndefined();
      expect(rejection('mz@example.com is where I read mail', identity)).toBeUndefined();
    });

    it('compares with the username alone when there is no email, and the reverse', () => {
      expect(rejection('Marguerite.Zhou', { username: 'marguerite.zhou' })).toMatch(/must not be/);
      expect(rejection('MZ@example.com', { email: 'mz@example.com' })).toMatch(/must not be/);
      expect(rejection('Marguerite.Zhou', {})).toBeUndefined();
    });
  });

  describe('common passwords', () => {
    const common = dictionary['passwords-common'] as string[];

    it.each(['password1', 'qwerty123', 'iloveyou'])('rejects %j, which is on the list', (password) => {
      expect(common).toContain(password);
      expect(rejection(password, {})).toMatch(/commonly used passwords/);
    });

    it('rejects a listed password in other case', () => {
      expect(common).toContain('qwerty123');
      expect(common).not.toContain('QWERTY123');
      expect(rejection('QWERTY123', {})).toMatch(/commonly used passwords/);
    });

    it('checks the whole list, to its last entry', () => {
      const last = common.filter((p) => [...p].length >= 8).at(-1)!;

      expect(rejection(last, {})).toMatch(/commonly used passwords/);
    });

    it('does not reject a password for being merely similar to a listed one', () => {
      expect(common).not.toContain('password1-but-longer-and-mine');
      expect(rejection('password1-but-longer-and-mine', {})).toBeUndefined();
    });
  });
});
