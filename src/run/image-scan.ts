// One image, as the pool runs it: Trivy in a slot (its first phase), then its report read outside the slot, the
// outcome logged and turned into the ScanResult the ledger records. A scan stopped by SCAN_DEADLINE is `deadline`,
// not `cancelled`; its duration counts from its Trivy start (the time it waited for a slot is not the scan's).
import type { Logger } from '../log.js';
import type { ScanOutcome } from '../trivy/scan.js';
import type { ScanResult, ScanTarget } from '../types.js';
import type { Clock, ImageScanner } from './ports.js';
import type { ScanSchedule } from './schedule.js';

export const NO_TIME_LEFT = 'SCAN_DEADLINE left no time to scan this image';
export const NOT_SCANNED = 'the run stopped before this image was scanned';

export interface ImageScanInputs {
  scanner: ImageScanner;
  schedule: ScanSchedule;
  clock: Clock;
  log: Logger;
  shutdown: AbortSignal;
}

/** Runs Trivy on the image; resolves when it ended, with the rest of the work (reading its report). */
export async function scanImage(
  target: ScanTarget,
  signal: AbortSignal,
  inputs: ImageScanInputs,
): Promise<() => Promise<ScanResult>> {
  const { scanner, schedule, clock } = inputs;
  const handedOver = clock.now();
  const started = schedule.handedOver();
  const run = await scanner.run(target, signal, started);
  started();
  return async () => {
    const outcome = run.ok ? await scanner.read(target, run, signal) : run;
    const durationMs = clock.now() - (run.startedAt ?? handedOver);
    if (run.startedAt !== undefined) schedule.recordDuration(durationMs);
    return resultOf(target, outcome, durationMs, inputs);
  };
}

/** A target the pool never started: the run was stopped, or the deadline left no time for it. */
export function neverStarted(target: ScanTarget, shutdown: boolean): ScanResult {
  return shutdown
    ? { ok: false, ref: target.ref, reason: 'cancelled', detail: NOT_SCANNED, durationMs: 0 }
    : { ok: false, ref: target.ref, reason: 'deadline', detail: NO_TIME_LEFT, durationMs: 0 };
}

function resultOf(target: ScanTarget, outcome: ScanOutcome, durationMs: number, inputs: ImageScanInputs): ScanResult {
  const { log } = inputs;
  if (!outcome.ok) {
    const deadline = outcome.reason === 'cancelled' && inputs.schedule.deadlineReached && !inputs.shutdown.aborted;
    const reason = deadline ? 'deadline' : outcome.reason;
    const detail = !deadline ? outcome.detail : outcome.notStarted ? NO_TIME_LEFT : 'killed at SCAN_DEADLINE';
    const level = reason === 'cancelled' || reason === 'deadline' ? 'warn' : 'error';
    log[level]({ image: target.ref, reason, error: detail, duration_ms: durationMs }, 'image scan failed');
    return { ok: false, ref: target.ref, reason, detail, durationMs };
  }
  const image = outcome.findings;
  log.info({ image: target.ref, vulnerabilities: image.count, duration_ms: durationMs }, 'image scanned');
  if (image.skippedEntries > 0)
    log.warn(
      { image: target.ref, entries: image.skippedEntries },
      'report entries without a vulnerability ID or package name were skipped',
    );
  if (outcome.sbomError) log.warn({ image: target.ref, error: outcome.sbomError }, 'sbom could not be generated');
  return { ok: true, ref: target.ref, image, durationMs, sbomFile: outcome.sbomFile };
}
