import argon2 from 'argon2';

// The ceiling of password sign-in: how many argon2id verifications one core does per CPU-second
// with the parameters Postern is run with (OWASP's m=19 MiB, t=2, p=1). Measured in this
// process, one verification at a time (argon2 runs on a libuv thread; process.cpuUsage counts
// every thread), while no load runs.

export const OWASP_ARGON2ID = { memoryKiB: 19_456, iterations: 2, parallelism: 1 } as const;

export interface Argon2Ceiling {
  readonly verifications: number;
  readonly cpuSeconds: number;
  readonly perCpuSecond: number;
}

export async function measureArgon2Ceiling(seconds: number): Promise<Argon2Ceiling> {
  const password = 'bench user has a long passphrase';
  const hash = await argon2.hash(password, {
    type: argon2.argon2id,
    memoryCost: OWASP_ARGON2ID.memoryKiB,
    timeCost: OWASP_ARGON2ID.iterations,
    parallelism: OWASP_ARGON2ID.parallelism,
  });
  await argon2.verify(hash, password); // warm: the first call allocates
  const cpuBefore = process.cpuUsage();
  const end = performance.now() + seconds * 1000;
  let verifications = 0;
  while (performance.now() < end) {
    if (!(await argon2.verify(hash, password))) throw new Error('argon2id did not verify its own hash');
    verifications++;
  }
  const used = process.cpuUsage(cpuBefore);
  const cpuSeconds = (used.user + used.system) / 1e6;
  return { verifications, cpuSeconds, perCpuSecond: verifications / cpuSeconds };
}
