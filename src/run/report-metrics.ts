// The run's last outside call: its metrics, after the summary. A report about the run, never part of its outcome:
// nothing here can change the exit code, and a stopping run (SIGTERM) still reports itself, but only within the
// grace period the pod has left after the signal (the shutdown signal itself is aborted by then, so the push takes
// a signal of its own that ends with the grace period).
import type { Config } from '../config/index.js';
import { messageOf } from '../errors.js';
import type { Logger } from '../log.js';
import type { Clock, MetricsPort, Timer } from './ports.js';
import type { RunSummary } from './summary.js';

/** Remembers when the shutdown came, so that a call made later gets what is left of the grace period. */
export class ShutdownGrace {
  private shutdownAt?: number;
  private readonly onShutdown = () => {
    this.shutdownAt = this.clock.now();
  };

  constructor(
    private readonly shutdown: AbortSignal,
    private readonly clock: Clock,
    private readonly graceMs: number,
  ) {
    if (shutdown.aborted) this.onShutdown();
    else shutdown.addEventListener('abort', this.onShutdown, { once: true });
  }

  /**
   * Runs `work` with a signal that never aborts while no shutdown comes, and aborts when the grace period after a
   * shutdown is over (at once when it is over already; a shutdown during the work starts it then).
   */
  async within<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const over = new AbortController();
    let timer: Timer | undefined;
    const arm = () => {
      const left = (this.shutdownAt ?? this.clock.now()) + this.graceMs - this.clock.now();
      if (left <= 0) over.abort();
      else
        timer = this.clock.setTimer(() => {
          over.abort();
        }, left);
    };
    if (this.shutdown.aborted) arm();
    else this.shutdown.addEventListener('abort', arm, { once: true });
    try {
      return await work(over.signal);
    } finally {
      this.shutdown.removeEventListener('abort', arm);
      timer?.cancel();
    }
  }

  dispose(): void {
    this.shutdown.removeEventListener('abort', this.onShutdown);
  }
}

export interface MetricsReport {
  config: Config;
  metrics?: MetricsPort;
  log: Logger;
  grace: ShutdownGrace;
  startedAt: Date;
}

/** One push of the run's metrics, unless there is no Pushgateway or this is a dry run. Never throws. */
export async function reportMetrics(summary: RunSummary, report: MetricsReport): Promise<void> {
  const { config, metrics, log } = report;
  if (!metrics) return;
  if (config.ephor.dryRun) {
    // A dry run delivers nothing: pushing its exit code 0 would move the last success forward and hide a scanner
    // whose real runs fail.
    log.info('dry run: metrics not pushed to the Pushgateway');
    return;
  }
  try {
    await report.grace.within((signal) => metrics.push(summary, report.startedAt, signal));
  } catch (error) {
    log.warn(
      { error: messageOf(error) },
      "metrics not pushed to the Pushgateway (the run's result and exit code are unaffected)",
    );
  }
}
