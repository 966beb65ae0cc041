// Runs work items with at most `concurrency` of them in their first phase at a time, in order. Each item's first
// phase (its Trivy process: run.ts hands over twice SCAN_CONCURRENCY, the launcher's gate lets SCAN_CONCURRENCY run)
// returns the rest of its work, which finishes outside the pool, so the next item is handed over as soon as a Trivy
// process exits. Before each start `mayStart` is asked (the run's deadline); when the signal aborts (shutdown)
// nothing more starts.
export interface PoolOptions<T, R> {
  concurrency: number;
  signal: AbortSignal;
  mayStart?: () => boolean;
  run: (item: T, signal: AbortSignal) => Promise<() => Promise<R>>;
  onResult: (item: T, result: R) => void;
}

/** Resolves when every started item has its result; returns the items that were never started. */
export async function runPool<T, R>(items: readonly T[], options: PoolOptions<T, R>): Promise<T[]> {
  let next = 0;
  const finishing: Array<Promise<void>> = [];
  const worker = async () => {
    while (next < items.length && !options.signal.aborted && (options.mayStart?.() ?? true)) {
      const item = items[next++]!;
      const finish = await options.run(item, options.signal);
      finishing.push(
        finish().then((result) => {
          options.onResult(item, result);
        }),
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, items.length) }, worker));
  await Promise.all(finishing);
  return items.slice(next);
}
