// Time for the run lock, injected so that tests drive it: a monotonic clock for every decision about validity (wall
// clocks jump and differ between hosts), the wall clock only for the timestamps written into the Lease.
import { setTimeout as delay } from 'node:timers/promises';

export interface LockClock {
  /** Monotonic milliseconds (performance.now()): how long something took or has been unchanged. */
  monotonicMs(): number;
  /** Epoch milliseconds: renewTime and acquireTime, and the stale-renewTime rule. */
  wallMs(): number;
  /**
   * Resolves after `ms`, or as soon as `signal` aborts. `keepAlive: false` does not keep the process alive meanwhile
   * (the background renewal must not hold a finished run open); a wait the run is blocked on must keep it alive.
   */
  sleep(ms: number, options?: { signal?: AbortSignal; keepAlive?: boolean }): Promise<void>;
}

export const systemClock: LockClock = {
  monotonicMs: () => performance.now(),
  wallMs: () => Date.now(),
  async sleep(ms, { signal, keepAlive = true } = {}) {
    if (signal?.aborted) return;
    try {
      // setTimeout cannot wait longer than 2^31-1 ms; the lock never sleeps longer than a poll or renewal period
      await delay(Math.min(Math.max(0, ms), 2 ** 31 - 1), undefined, { signal, ref: keepAlive });
    } catch (error) {
      if (!signal?.aborted) throw error;
    }
  },
};
