// Scans started while discovery is still going on: as each namespace's workloads are known (and Trivy is ready),
// its images are handed over until each Trivy slot has been filled once (`budget`, SCAN_CONCURRENCY), so the slots
// are busy long before the last namespace is listed. No more than that: scans running beside discovery compete with
// it for CPU, and their reports and findings for memory while discovery's own data is still held (measured: starting
// scans throughout a 20,000-workload discovery doubled its time and raised the peak RSS by a quarter). A report is read
// as soon as its Trivy process is done. Once discovery is done and the plan made, the run's pool claims these scans
// instead of starting them again; what follows a scan (its result counted for its namespaces, delivery) still goes
// through the pool and the plan.
import type { ScanResult, ScanTarget } from '../types.js';

/** The rest of a scan once its Trivy process is done: reading the report. */
export type FinishScan = () => Promise<ScanResult>;

export interface EarlyScan {
  /** The target as known when the scan started: the namespaces and pull-secret sources seen so far. */
  target: ScanTarget;
  /** Resolves when its Trivy process is done. */
  slot: Promise<void>;
  /** Its result, once its report is read. */
  result: Promise<ScanResult>;
}

export class EarlyScans {
  private readonly queue: ScanTarget[] = [];
  private readonly offered = new Set<string>();
  private readonly started = new Map<string, EarlyScan>();
  private starts = 0;
  private stopped = false;

  /** `start` returns undefined when no scan may start any more (shutdown, SCAN_DEADLINE). */
  constructor(
    private readonly budget: number,
    private readonly start: (target: ScanTarget) => Promise<FinishScan> | undefined,
  ) {}

  /** Images of one more namespace; those already offered are not scanned twice. */
  offer(targets: readonly ScanTarget[]): void {
    for (const target of targets) {
      if (this.offered.has(target.ref)) continue;
      this.offered.add(target.ref);
      this.queue.push(target);
    }
    this.pump();
  }

  /** No more early starts: from now on the pool hands scans over. Returns the refs started, in their order. */
  stop(): string[] {
    this.stopped = true;
    this.queue.length = 0;
    return [...this.started.keys()];
  }

  /** The early scan of this image, if there is one (each is claimed once). */
  take(ref: string): EarlyScan | undefined {
    const scan = this.started.get(ref);
    this.started.delete(ref);
    return scan;
  }

  has(ref: string): boolean {
    return this.started.has(ref);
  }

  private pump(): void {
    while (!this.stopped && this.starts < this.budget && this.queue.length > 0) {
      const target = this.queue.shift()!;
      const slot = this.start(target);
      if (!slot) {
        this.stop();
        return;
      }
      this.starts++;
      const result = slot.then((finish) => finish());
      result.catch(() => undefined); // a failure reaches whoever claims it; unclaimed, it is not an unhandled rejection
      const trivyDone = slot.then(
        () => undefined,
        () => undefined,
      );
      this.started.set(target.ref, { target, slot: trivyDone, result });
    }
  }
}
