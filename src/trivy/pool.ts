// Runs the scans of all targets with at most `concurrency` Trivy processes at a time, in plan order. When the
// signal aborts (shutdown) no further scan starts; the running ones are stopped by the same signal.
import type { ScanResult, ScanTarget } from '../types.js';

export interface PoolOptions {
  concurrency: number;
  signal: AbortSignal;
  scan: (target: ScanTarget, signal: AbortSignal) => Promise<ScanResult>;
  onResult: (target: ScanTarget, result: ScanResult) => void;
}

export async function scanAll(targets: readonly ScanTarget[], options: PoolOptions): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < targets.length && !options.signal.aborted) {
      const target = targets[next++]!;
      options.onResult(target, await options.scan(target, options.signal));
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, targets.length) }, worker));
}
