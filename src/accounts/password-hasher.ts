import argon2 from 'argon2';

/** argon2id cost (RFC 9106 §4; POSTERN_ARGON2_*). */
export interface Argon2Params {
  readonly memoryKiB: number;
  readonly iterations: number;
  readonly parallelism: number;
}

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** Checks the password; `needsRehash` is true when the hash was made with other parameters. */
  verify(hash: string, password: string): Promise<{ ok: boolean; needsRehash: boolean }>;
  /** Spends the same work as a real verification, for accounts that do not exist. */
  verifyDummy(password: string): Promise<void>;
}

export function createPasswordHasher(params: Argon2Params): PasswordHasher {
  const options = {
    type: argon2.argon2id,
    memoryCost: params.memoryKiB,
    timeCost: params.iterations,
    parallelism: params.parallelism,
  } as const;
  // Made lazily with the current parameters, so an unknown user costs exactly what a known one does.
  let dummy: Promise<string> | undefined;

  return {
    hash: (password) => argon2.hash(password, options),
    async verify(hash, password) {
      let ok = false;
      try {
        ok = await argon2.verify(hash, password);
      } catch {
        return { ok: false, needsRehash: false };
      }
      return { ok, needsRehash: ok && argon2.needsRehash(hash, options) };
    },
    async verifyDummy(password) {
      dummy ??= argon2.hash('postern dummy password for timing equality', options);
      await argon2.verify(await dummy, password).catch(() => false);
    },
  };
}
