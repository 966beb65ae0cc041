// Every image of the plan through the pool, then the OOM retry: a Trivy killed by a signal (the OOM killer, most
// likely, with several scans at once) is tried once more, alone, once the others are done. Killed again, it is
// recorded as `killed`.
import type { Logger } from '../log.js';
import { runPool } from '../trivy/pool.js';
import type { ScanResult, ScanTarget } from '../types.js';
import type { ScanSchedule } from './schedule.js';

export interface ScanImagesOptions {
  /** SCAN_CONCURRENCY. */
  concurrency: number;
  schedule: ScanSchedule;
  /** One image's first phase (Trivy in a slot), returning the rest of its work. */
  scan: (target: ScanTarget, signal: AbortSignal) => Promise<() => Promise<ScanResult>>;
  /** Each final result, once per target. */
  onResult: (target: ScanTarget, result: ScanResult) => void;
  log: Logger;
}

/** Resolves when every started scan has its result; returns the targets never started (shutdown, deadline). */
export async function scanImages(targets: readonly ScanTarget[], options: ScanImagesOptions): Promise<ScanTarget[]> {
  const { schedule, scan, onResult, log } = options;
  const killed: ScanTarget[] = [];
  const notStarted = await runPool(targets, {
    // Each slot has one more scan handed over behind it, which starts the moment the slot frees (start-gate.ts).
    concurrency: options.concurrency * 2,
    signal: schedule.signal,
    mayStart: () => schedule.mayStart(),
    run: scan,
    onResult: (target, result) => {
      if (!result.ok && result.reason === 'killed') killed.push(target);
      else onResult(target, result);
    },
  });
  if (killed.length > 0)
    log.warn(
      { images: killed.map((t) => t.ref) },
      'trivy was killed (out of memory?): scanning these images again, one at a time',
    );
  const retryNotStarted = await runPool(killed, {
    concurrency: 1,
    signal: schedule.signal,
    mayStart: () => schedule.mayStart(),
    run: scan,
    onResult,
  });
  return [...notStarted, ...retryNotStarted];
}
