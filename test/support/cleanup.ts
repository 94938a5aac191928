/**
 * Undo steps, run last-in first-out exactly once: at the end of the run, on failure, or on
 * Ctrl-C. A step deferred after cleaning began runs at once, so nothing started late leaks.
 */
export interface Cleanup {
  defer(label: string, step: () => Promise<void>): void;
  run(): Promise<void>;
}

export function createCleanup(log: (line: string) => void): Cleanup {
  const steps: { label: string; step: () => Promise<void> }[] = [];
  let running: Promise<void> | undefined;

  async function runOne(label: string, step: () => Promise<void>): Promise<void> {
    try {
      await step();
    } catch (error) {
      log(`cleanup: ${label} failed: ${(error as Error).message}`);
    }
  }

  return {
    defer(label, step) {
      if (running) void running.then(() => runOne(label, step));
      else steps.push({ label, step });
    },
    run() {
      running ??= (async () => {
        for (let next = steps.pop(); next; next = steps.pop()) await runOne(next.label, next.step);
      })();
      return running;
    },
  };
}
