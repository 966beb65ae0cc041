// Progress lines while scanning: `done/total`, failures so far and an ETA, at most every few seconds when scans
// complete and at least every 30 s while a long scan runs.
import type { Logger } from '../log.js';

const HEARTBEAT_MS = 30_000;
const MIN_INTERVAL_MS = 5_000;

export class Progress {
  private done = 0;
  private failed = 0;
  private lastLog = 0;
  private readonly started = Date.now();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly total: number,
    private readonly log: Logger,
  ) {
    this.timer = setInterval(() => {
      this.report();
    }, HEARTBEAT_MS);
    this.timer.unref();
  }

  record(ok: boolean): void {
    this.done++;
    if (!ok) this.failed++;
    if (this.done === this.total || Date.now() - this.lastLog >= MIN_INTERVAL_MS) this.report();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private report(): void {
    this.lastLog = Date.now();
    const elapsed = this.lastLog - this.started;
    const remaining = this.total - this.done;
    const eta = this.done > 0 && remaining > 0 ? Math.round(((elapsed / this.done) * remaining) / 1000) : undefined;
    this.log.info(
      { done: this.done, total: this.total, failed: this.failed, elapsed_s: Math.round(elapsed / 1000), eta_s: eta },
      'scan progress',
    );
  }
}
