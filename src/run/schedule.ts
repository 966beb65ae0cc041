// When scans may start: SCAN_DEADLINE, and the shutdown signal. A scan starts only when the time left can fit one
// more of the average duration seen so far, counting the scans handed over before it that still wait for a slot (it
// starts after them); at the deadline the scans still running are stopped.
import { setMaxListeners } from 'node:events';
import type { Clock, Timer } from './ports.js';

export interface StartQuestion {
  /** Epoch ms. */
  now: number;
  /** Epoch ms; undefined when the run has no SCAN_DEADLINE. */
  deadline?: number;
  /** The average duration of the scans finished so far, from their Trivy start (0 before the first one). */
  averageMs: number;
  /** Scans handed over that still wait for a slot. */
  waiting: number;
  /** SCAN_CONCURRENCY: the waiting scans start this many at a time. */
  concurrency: number;
}

/** May one more scan start? Pure: the whole deadline rule. */
export function mayStartScan(question: StartQuestion): boolean {
  const { now, deadline, averageMs, waiting, concurrency } = question;
  if (deadline === undefined) return true;
  return now + averageMs * (1 + waiting / concurrency) < deadline;
}

export interface ScheduleOptions {
  /** Epoch ms of the deadline, if any. */
  deadline?: number;
  concurrency: number;
  clock: Clock;
  shutdown: AbortSignal;
}

export class ScanSchedule {
  /** Aborted on shutdown or at the deadline: no new scan starts, running ones are stopped. */
  readonly signal: AbortSignal;
  private reached = false;
  private readonly stopAtDeadline = new AbortController();
  private readonly timer?: Timer;
  private totalMs = 0;
  private finished = 0;
  private waiting = 0;

  constructor(private readonly options: ScheduleOptions) {
    this.signal = AbortSignal.any([options.shutdown, this.stopAtDeadline.signal]);
    // One listener per Trivy call in flight (twice SCAN_CONCURRENCY handed over, plus SBOM conversions, which are
    // not limited): more than Node's default of 10 is expected, not a leak.
    setMaxListeners(0, this.signal);
    const { deadline, clock } = options;
    if (deadline === undefined) return;
    this.timer = clock.setTimer(
      () => {
        this.reached = true;
        this.stopAtDeadline.abort();
      },
      Math.max(deadline - clock.now(), 0),
    );
  }

  /** True once the deadline passed, or once it refused a scan for lack of time. */
  get deadlineReached(): boolean {
    return this.reached;
  }

  mayStart(): boolean {
    const fits = mayStartScan({
      now: this.options.clock.now(),
      deadline: this.options.deadline,
      averageMs: this.finished > 0 ? this.totalMs / this.finished : 0,
      waiting: this.waiting,
      concurrency: this.options.concurrency,
    });
    if (!fits) this.reached = true;
    return fits;
  }

  /** A scan is handed over and waits for a slot; the returned function says it started (once counts). */
  handedOver(): () => void {
    this.waiting++;
    let waiting = true;
    return () => {
      if (!waiting) return;
      waiting = false;
      this.waiting--;
    };
  }

  /** A scan that ran ended: its duration from its Trivy start counts in the average. */
  recordDuration(ms: number): void {
    this.totalMs += ms;
    this.finished++;
  }

  dispose(): void {
    this.timer?.cancel();
  }
}
