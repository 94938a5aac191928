import { dictionary } from '@zxcvbn-ts/language-common';

import { PosternError } from '../shared/errors.ts';

export interface PasswordPolicy {
  readonly minLength: number;
  readonly maxLength: number;
}

export const DEFAULT_PASSWORD_POLICY: PasswordPolicy = { minLength: 8, maxLength: 128 };

// NIST SP 800-63B §5.1.1.2: length limits and a blocklist of known passwords, no composition rules.
// The list is zxcvbn-ts's common-passwords dictionary (about 49,000 entries), lower-cased.
let commonPasswords: Set<string> | undefined;
function isCommon(password: string): boolean {
  commonPasswords ??= new Set((dictionary['passwords-common'] as string[]).map((p) => p.toLowerCase()));
  return commonPasswords.has(password.toLowerCase());
}

/** Throws ERR_WEAK_PASSWORD with a message a person can act on. */
export function checkPassword(
  password: string,
  identity: { username?: string; email?: string },
  policy: PasswordPolicy = DEFAULT_PASSWORD_POLICY,
): void {
  const length = [...password].length;
  const reject = (why: string) => {
    throw new PosternError('ERR_WEAK_PASSWORD', `password rejected: ${why}`);
  };
  if (length < policy.minLength) reject(`it must be at least ${policy.minLength} characters`);
  if (length > policy.maxLength) reject(`it must be at most ${policy.maxLength} characters`);
  const lower = password.toLowerCase();
  if (
    (identity.username && lower === identity.username.toLowerCase()) ||
    (identity.email && lower === identity.email.toLowerCase())
  ) {
    reject('it must not be the username or email');
  }
  if (isCommon(password)) reject('it is on a list of commonly used passwords');
}
