// The run lock: one writer to Ephor at a time, across runs, releases and hosts, on a coordination.k8s.io Lease.
//
//   acquire()  before the first Trivy scan: taken, not taken within RUN_LOCK_WAIT, or unavailable (old RBAC: the run
//              goes on unlocked, as before, with one warning).
//   fence()    before EVERY POST attempt (scan or SBOM, retries included): renews the lease, and resolves only if it
//              stays valid by this run's own clock for at least EPHOR_TIMEOUT more, so no other run can take it over
//              while this POST may still be running. Otherwise it rejects with a LockLostError, and every later
//              call does too: the run must post nothing more, write nothing to the spool, and exit 1.
//   release()  after the last POST: the next run takes the lock at once instead of waiting out the duration.
//
// Between POSTs a background timer renews the lease (scans take hours); it never keeps the process alive.
//
// What the lock cannot do: a process frozen past its lease (a long GC pause, a stopped container, a host cut off
// from the Kubernetes API but not from Ephor) can still send a POST after another run took over, and Ephor has no
// fencing token to refuse it. client-go says the same of its leader election ("does not guarantee that only one
// client is acting as a leader (a.k.a. fencing)"). The lock makes concurrent POSTs a rare failure instead of a
// routine one; only Ephor can rule them out.
import type { Logger } from '../log.js';
import { acquireLease, type HeldLease, type NotAcquired, type Unavailable } from './acquire.js';
import { systemClock, type LockClock } from './clock.js';
import { failureText, type LeaseObject, type LeasePort, type LeaseResult, type LeaseSpec } from './lease-api.js';
import { describeHolder, formatDuration, leaseRef } from './messages.js';
import { formatMicroTime } from './micro-time.js';
import { releasedSpec, takenSpec, type LockTiming } from './policy.js';

export interface RunLockOptions {
  api: LeasePort;
  /** spec.holderIdentity: names this run (see holderIdentity()). */
  identity: string;
  /** From lockTiming(EPHOR_TIMEOUT, KUBE_TIMEOUT). */
  timing: LockTiming;
  /** RUN_LOCK_WAIT: how long acquire() waits while another live run holds the lock. */
  waitLimitMs: number;
  /** How often a waiting run says who it waits for (the run's progress interval, 30 s). */
  progressIntervalMs: number;
  log: Logger;
  clock?: LockClock;
}

export type Acquired = {
  outcome: 'acquired';
  identity: string;
  leaseDurationSeconds: number;
  leaseTransitions: number;
  /** Set when the lock was taken over from another holder (expired or stale), not created or released. */
  previousHolder?: string;
};
export type AcquireOutcome = Acquired | NotAcquired | Unavailable;
export type { NotAcquired, Unavailable };

/** What the run holds: a RunLock, or noRunLock for RUN_LOCK=none. */
export interface RunLockHandle {
  fence(): Promise<void>;
  release(options?: ReleaseOptions): Promise<void>;
  /** Aborted (with the LockLostError) once the lock is lost, whether a fence or a background renewal found out. */
  readonly lost: AbortSignal;
}

export interface ReleaseOptions {
  /**
   * The last POST attempt got no answer (timeout, connection lost): Ephor may still be processing it, so the lease is
   * left to expire instead of being released, and no other run starts posting while that request may still run.
   */
  lastPostUnanswered?: boolean;
}

export class LockLostError extends Error {
  constructor(
    message: string,
    /**
     * taken: another run holds the Lease now; renewals-failed: it could not be renewed in time; released: used after
     * release().
     */
    readonly reason: 'taken' | 'renewals-failed' | 'released',
    readonly holder?: string,
  ) {
    super(message);
    this.name = 'LockLostError';
  }
}

/** RUN_LOCK=none: every POST goes ahead. */
export const noRunLock: RunLockHandle = {
  fence: () => Promise.resolve(),
  release: () => Promise.resolve(),
  lost: new AbortController().signal,
};

type RenewResult = 'renewed' | 'failed' | 'lost';

export class RunLock implements RunLockHandle {
  private state: 'new' | 'held' | 'unlocked' | 'lost' | 'released' = 'new';
  private lease: LeaseObject | undefined;
  /** Monotonic time the last successful write was sent: the lease is valid until then + the duration. */
  private renewedAtMs = -Infinity;
  private lostError: LockLostError | undefined;
  private failures = 0;
  private lastFailure = '';
  private lastFailureLogMs = -Infinity;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly background = new AbortController();
  private readonly lostController = new AbortController();
  private readonly clock: LockClock;

  constructor(private readonly options: RunLockOptions) {
    this.clock = options.clock ?? systemClock;
  }

  get lost(): AbortSignal {
    return this.lostController.signal;
  }

  async acquire(signal?: AbortSignal): Promise<AcquireOutcome> {
    if (this.state !== 'new') throw new Error(`RunLock.acquire(): called twice (state ${this.state})`);
    const { api, identity, timing, log } = this.options;
    const result = await acquireLease({ ...this.options, clock: this.clock, ...(signal && { signal }) });
    if (!('lease' in result)) {
      this.state = result.outcome === 'unavailable' ? 'unlocked' : 'released';
      if (result.outcome === 'not-acquired') log.error({ lease: leaseRef(api), reason: result.reason }, result.message);
      return result;
    }
    this.hold(result);
    void this.renewInBackground();
    const outcome: Acquired = {
      outcome: 'acquired',
      identity,
      leaseDurationSeconds: timing.leaseDurationSeconds,
      leaseTransitions: result.lease.spec.leaseTransitions ?? 0,
      ...(result.previousHolder !== undefined && { previousHolder: result.previousHolder }),
    };
    log.info(
      {
        lease: leaseRef(api),
        holder: identity,
        lease_duration_s: timing.leaseDurationSeconds,
        how: result.reason,
        previous_holder: result.previousHolder,
        lease_transitions: outcome.leaseTransitions,
      },
      'run lock acquired',
    );
    return outcome;
  }

  /** Before each POST attempt: resolves when the attempt may start; rejects with LockLostError when it must not. */
  async fence(): Promise<void> {
    if (this.state === 'unlocked') return;
    if (this.lostError) throw this.lostError;
    if (this.state !== 'held')
      throw new LockLostError(`run lock ${leaseRef(this.options.api)}: fence() without the lock held`, 'released');
    const renewal = await this.serialized(() => this.renew());
    if (renewal === 'lost') throw this.currentLoss();
    const validForMs = this.validForMs();
    if (validForMs >= this.options.timing.fenceMs) return;
    const lost = new LockLostError(this.renewalsFailedMessage(validForMs), 'renewals-failed');
    this.lose(lost);
    throw lost;
  }

  /** Why fence() refuses: the loss, or a release() that happened while it waited. */
  private currentLoss(): LockLostError {
    return this.lostError ?? new LockLostError(`run lock ${leaseRef(this.options.api)} was released`, 'released');
  }

  /** How much longer the lease is valid by this run's clock (negative once expired). */
  validForMs(): number {
    return this.renewedAtMs + this.options.timing.leaseDurationMs - this.clock.monotonicMs();
  }

  /** Gives the lease up (as client-go's release does) so that the next run need not wait; never throws. */
  async release(options: ReleaseOptions = {}): Promise<void> {
    this.background.abort();
    await this.chain;
    if (this.state !== 'held') {
      if (this.state === 'new') this.state = 'released';
      return;
    }
    this.state = 'released';
    const { api, log } = this.options;
    if (options.lastPostUnanswered) {
      log.warn(
        { lease: leaseRef(api), valid_for_s: Math.round(this.validForMs() / 1000) },
        'run lock left to expire instead of released: the last POST got no answer and Ephor may still be processing it',
      );
      return;
    }
    await this.releaseLease();
  }

  private hold(held: HeldLease): void {
    this.state = 'held';
    this.lease = held.lease;
    this.renewedAtMs = held.sentAtMs;
  }

  private serialized<T>(task: () => Promise<T>): Promise<T> {
    const run = this.chain.then(task);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async renewInBackground(): Promise<void> {
    try {
      await this.renewUntilStopped();
    } catch (error) {
      this.options.log.error({ lease: leaseRef(this.options.api), error: String(error) }, 'run lock renewal stopped');
    }
  }

  private async renewUntilStopped(): Promise<void> {
    const { timing } = this.options;
    const signal = this.background.signal;
    while (this.holding()) {
      const dueInMs =
        this.failures > 0
          ? timing.retryIntervalMs
          : this.renewedAtMs + timing.renewIntervalMs - this.clock.monotonicMs();
      if (dueInMs > 0) {
        await this.clock.sleep(dueInMs, { signal, keepAlive: false });
        // a fence may have renewed meanwhile: look again at when the next renewal is due
        if (this.failures === 0) continue;
      }
      if (!this.holding()) return;
      await this.serialized(() => this.renew());
    }
  }

  /** Read afresh each time: the state changes while the loop sleeps or awaits a renewal. */
  private holding(): boolean {
    return this.state === 'held' && !this.background.signal.aborted;
  }

  /** One renewal (a PUT with the last resourceVersion); on a 409, read again: still ours, or lost. */
  private async renew(): Promise<RenewResult> {
    if (this.state !== 'held' || !this.lease) return 'lost';
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const sentAtMs = this.clock.monotonicMs();
        const written = await this.options.api.update(this.lease, this.renewedSpec(this.lease.spec));
        if (written.kind === 'ok') return this.renewed(written.lease, sentAtMs);
        if (written.kind !== 'conflict' && written.kind !== 'not-found') return this.renewalFailed(written);
        const settled = await this.afterConflict();
        if (settled !== 'retry') return settled;
      }
      return this.renewalFailed({ kind: 'failed', transient: true, message: 'the Lease kept changing (409 Conflict)' });
    } catch (error) {
      return this.renewalFailed({ kind: 'failed', transient: true, message: String(error) });
    }
  }

  /**
   * Someone wrote the Lease since this run did. Still naming this run (e.g. its own renewal whose answer was lost):
   * adopt it and write again. Deleted: create it again (only one creator can win). Anyone else: lost.
   */
  private async afterConflict(): Promise<RenewResult | 'retry'> {
    const { api, identity, timing } = this.options;
    const read = await api.get();
    if (read.kind === 'ok' && read.lease.spec.holderIdentity === identity) {
      this.lease = read.lease;
      return 'retry';
    }
    if (read.kind === 'ok') {
      const holder = read.lease.spec.holderIdentity ?? '';
      const message = `run lock lost: the Lease ${leaseRef(api)} is now held by ${describeHolder(read.lease.spec)}`;
      this.lose(new LockLostError(message, 'taken', holder));
      return 'lost';
    }
    if (read.kind !== 'not-found') return this.renewalFailed(read);
    const sentAtMs = this.clock.monotonicMs();
    const created = await api.create(takenSpec(undefined, 'created', identity, timing, this.now()));
    if (created.kind === 'ok') return this.renewed(created.lease, sentAtMs);
    return created.kind === 'conflict' ? 'retry' : this.renewalFailed(created);
  }

  private renewedSpec(spec: LeaseSpec): LeaseSpec {
    const { identity, timing } = this.options;
    return {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds: timing.leaseDurationSeconds,
      renewTime: this.now(),
    };
  }

  private renewed(lease: LeaseObject, sentAtMs: number): RenewResult {
    this.lease = lease;
    this.renewedAtMs = sentAtMs;
    if (this.failures > 0)
      this.options.log.info(
        { lease: leaseRef(this.options.api), failed_renewals: this.failures },
        'run lock renewed again after failed renewals',
      );
    this.failures = 0;
    return 'renewed';
  }

  private renewalFailed(failure: Exclude<LeaseResult, { kind: 'ok' }>): RenewResult {
    this.failures++;
    this.lastFailure = failureText(failure);
    const nowMs = this.clock.monotonicMs();
    if (this.failures === 1 || nowMs - this.lastFailureLogMs >= this.options.progressIntervalMs) {
      this.lastFailureLogMs = nowMs;
      this.options.log.warn(
        {
          lease: leaseRef(this.options.api),
          failed_renewals: this.failures,
          valid_for_s: Math.round(this.validForMs() / 1000),
          error: this.lastFailure,
        },
        'run lock renewal failed; POSTs go on only while the lease stays valid for EPHOR_TIMEOUT more',
      );
    }
    return 'failed';
  }

  private renewalsFailedMessage(validForMs: number): string {
    const { api, timing } = this.options;
    const renewal =
      this.failures > 0
        ? `could not be renewed (${this.failures} failed renewals, last: ${this.lastFailure})`
        : 'was renewed too slowly';
    const validity =
      validForMs >= 0
        ? `the lease is valid only ${formatDuration(validForMs)} more by this run's clock`
        : `the lease expired ${formatDuration(-validForMs)} ago by this run's clock`;
    return (
      `run lock lost: the Lease ${leaseRef(api)} ${renewal}; ${validity}, less than one POST may take ` +
      `(EPHOR_TIMEOUT ${formatDuration(timing.fenceMs)}), so another run could take it over during the POST`
    );
  }

  private lose(error: LockLostError): void {
    if (this.lostError) return;
    this.lostError = error;
    this.state = 'lost';
    this.background.abort();
    this.options.log.error(
      { lease: leaseRef(this.options.api), reason: error.reason, holder: error.holder },
      `${error.message}; no further POST is made and nothing is written to the spool`,
    );
    // after the line above: listeners (the run stops its scans) log about what they stop
    this.lostController.abort(error);
  }

  private async releaseLease(): Promise<void> {
    const { api, identity, log } = this.options;
    const fields = { lease: leaseRef(api) };
    for (let attempt = 0; attempt < 3; attempt++) {
      const read = await api.get();
      if (read.kind !== 'ok') {
        log.warn({ ...fields, error: failureText(read) }, 'run lock not released: the next run waits until it expires');
        return;
      }
      if (read.lease.spec.holderIdentity !== identity) {
        log.warn({ ...fields, holder: read.lease.spec.holderIdentity }, 'run lock not released: another run holds it');
        return;
      }
      const written = await api.update(read.lease, releasedSpec(read.lease.spec, this.now()));
      if (written.kind === 'ok') {
        log.info(fields, 'run lock released');
        return;
      }
      if (written.kind !== 'conflict') {
        log.warn(
          { ...fields, error: failureText(written) },
          'run lock not released: the next run waits until it expires',
        );
        return;
      }
    }
    log.warn(fields, 'run lock not released: the Lease kept changing; the next run waits until it expires');
  }

  private now(): string {
    return formatMicroTime(this.clock.wallMs());
  }
}
