import { createHmac, randomInt } from 'node:crypto';

// Recovery codes (issue 14 §1): ten single-use codes that stand in for a lost authenticator.
// Each carries 50 random bits, so a keyed fast hash is the right storage (DESIGN §5): a dump
// holds no usable code, and the hash is bound to its account.

export const RECOVERY_CODE_COUNT = 10;
// Lower-case base32 without look-alikes (0/o, 1/i/l): 10 characters carry 50 bits.
const ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';
const LENGTH = 10;

/** `abcde-fghjk`: two groups of five, easy to read out and type. */
export function newRecoveryCode(): string {
  let code = '';
  for (let i = 0; i < LENGTH; i += 1) code += ALPHABET[randomInt(ALPHABET.length)];
  return `${code.slice(0, 5)}-${code.slice(5)}`;
}

/** Case, spaces and dashes do not matter when typed. */
const normalize = (code: string) => code.toLowerCase().replace(/[\s-]/g, '');

export const looksLikeRecoveryCode = (code: string) => normalize(code).length === LENGTH;

/** HMAC-SHA-256 under a key derived from the installation key, of the account and the code. */
export function recoveryCodeHasher(key: Buffer): (accountId: string, code: string) => string {
  return (accountId, code) =>
    createHmac('sha256', key)
      .update(`${accountId}:${normalize(code)}`)
      .digest('base64url');
}
