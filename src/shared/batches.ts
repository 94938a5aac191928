/**
 * Repeats one bounded delete until a batch comes back short or `maxBatches` have run, so a
 * large backlog is worked off in short statements that hold no lock for long; what is left
 * waits for the next sweep.
 */
export async function deleteInBatches(
  deleteBatch: (limit: number) => Promise<number>,
  options: { batch?: number; maxBatches?: number } = {},
): Promise<number> {
  const batch = options.batch ?? 1000;
  const maxBatches = options.maxBatches ?? 100;
  let total = 0;
  for (let i = 0; i < maxBatches; i++) {
    const deleted = await deleteBatch(batch);
    total += deleted;
    if (deleted < batch) break;
  }
  return total;
}
