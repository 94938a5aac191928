// One source of time for our own code, so tests can move it. oidc-provider reads Date.now()
// itself, which vitest's fake timers also control.
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

export function epochSeconds(clock: Clock): number {
  return Math.floor(clock.now().getTime() / 1000);
}
