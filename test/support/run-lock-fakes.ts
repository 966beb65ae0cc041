// A run lock for in-process runs (src/run/ports.ts RunLockPort): acquired, unavailable or not acquired as the test
// says, counting its fences and recording its calls, and lost (another holder) from a chosen fence on, or at once
// when the test calls lose(). The lock module itself is tested against an in-memory Lease store (test/lock) and the
// Kubernetes stand-in; this fake tests how the run uses it.
import { LockLostError, type ReleaseOptions, type RunLockHandle } from '../../src/lock/index.js';
import type { LockAcquisition, RunLockPort } from '../../src/run/ports.js';

export type FakeLockEvent =
  | { kind: 'acquire'; scanGroupId: string }
  | { kind: 'fence'; n: number; refused: boolean }
  | { kind: 'release'; options: ReleaseOptions };

export const FAKE_LEASE = 'ephor/ephor-scanner';
export const OTHER_HOLDER = 'ephor-scanner-manual-x7k2p_0b6c3b0e-93a5-4d0e-9e59-4f7f3a9b1c11';

export class FakeRunLock implements RunLockPort, RunLockHandle {
  readonly events: FakeLockEvent[] = [];
  /** How acquire() ends. */
  acquisition: 'acquired' | 'unavailable' | 'not-acquired' = 'acquired';
  /** Fence number n (1-based) and every later one refuse: another run took the lock. */
  loseAtFence?: number;
  /** Called on every call, before it returns (to look at the run's state at that moment). */
  onEvent?: (event: FakeLockEvent) => void;
  private fences = 0;
  private lostError?: LockLostError;
  private readonly lostController = new AbortController();

  get lost(): AbortSignal {
    return this.lostController.signal;
  }

  get fenceCount(): number {
    return this.fences;
  }

  acquire(scanGroupId: string): Promise<LockAcquisition> {
    this.note({ kind: 'acquire', scanGroupId });
    if (this.acquisition === 'acquired')
      return Promise.resolve({ handle: this, outcome: { state: 'acquired', lease: FAKE_LEASE } });
    if (this.acquisition === 'unavailable')
      return Promise.resolve({
        handle: this,
        outcome: { state: 'unlocked', lease: FAKE_LEASE, message: 'run lock unavailable: HTTP 403 (fake)' },
      });
    return Promise.resolve({
      outcome: {
        state: 'not-acquired',
        lease: FAKE_LEASE,
        holder: OTHER_HOLDER,
        message: `run lock ${FAKE_LEASE} not acquired: another run holds it (fake): nothing was scanned or posted`,
      },
    });
  }

  fence(): Promise<void> {
    this.fences++;
    if (this.loseAtFence !== undefined && this.fences >= this.loseAtFence) this.lose();
    this.note({ kind: 'fence', n: this.fences, refused: this.lostError !== undefined });
    return this.lostError ? Promise.reject(this.lostError) : Promise.resolve();
  }

  release(options: ReleaseOptions = {}): Promise<void> {
    this.note({ kind: 'release', options });
    return Promise.resolve();
  }

  /** Another run takes the lock now (as a background renewal would find out). */
  lose(): void {
    if (this.lostError) return;
    this.lostError = new LockLostError(
      `run lock lost: the Lease ${FAKE_LEASE} is now held by "${OTHER_HOLDER}"`,
      'taken',
      OTHER_HOLDER,
    );
    this.lostController.abort(this.lostError);
  }

  private note(event: FakeLockEvent): void {
    this.events.push(event);
    this.onEvent?.(event);
  }
}
