// Everything sent to Ephor goes through one queue, one POST at a time (concurrent ingests corrupt Ephor's data):
// each namespace as soon as all its images are scanned (namespace-delivery.ts), then the SBOMs (sbom-delivery.ts),
// then what earlier runs left in the spool (spooled-delivery.ts). After a shutdown the queue keeps delivering what
// is finished until the grace period ends; after that nothing more is sent, and what is left is recorded as not
// delivered. A step that fails unexpectedly is recorded too (the namespace as not delivered, with the reason), so
// the run can never end 0 with something undelivered. Every POST attempt and spool write is fenced by the run lock:
// once it is lost nothing more is posted or spooled, and every namespace left is recorded as not delivered.
import { rm } from 'node:fs/promises';
import type { Config } from '../config/index.js';
import type { RunFacts } from '../ephor/payload.js';
import type { DeliveryResult } from '../ephor/client.js';
import { messageOf } from '../errors.js';
import type { LockLostError } from '../lock/index.js';
import type { ScanPlan } from '../images/plan.js';
import type { Logger } from '../log.js';
import type { Discovery, Workload } from '../types.js';
import type { RunLedger, SbomSource } from './ledger.js';
import { deliverNamespace } from './namespace-delivery.js';
import type { Clock, EphorPort, SendGuard, SpoolPort, Timer } from './ports.js';
import { fencedSpool, isLockLost } from './run-lock.js';
import { deliverSboms } from './sbom-delivery.js';
import { deliverSpooled } from './spooled-delivery.js';
import type { NamespaceOutcome } from './summary.js';

/** After SIGTERM, how long finished work may still be delivered (Kubernetes kills the pod 30 s after SIGTERM). */
export const SHUTDOWN_DELIVERY_MS = 20_000;

export const GRACE_OVER = 'not sent: the shutdown grace period is over';

export interface DeliveryInputs {
  config: Config;
  log: Logger;
  ephor: EphorPort;
  spool?: SpoolPort;
  clock: Clock;
  /** After a shutdown, how long finished work may still be delivered. */
  graceMs: number;
  shutdown: AbortSignal;
  /** The run lock's fence: awaited before every POST attempt and spool write; rejects with LockLostError. */
  fence: () => Promise<void>;
  run: RunFacts;
  discovery: Discovery;
  plan: ScanPlan;
  ledger: RunLedger;
  /** The run's temporary directory (findings unions are written there). */
  workDir: string;
}

/** What every delivery step works with. */
export interface DeliveryContext extends Omit<DeliveryInputs, 'graceMs' | 'shutdown' | 'fence'> {
  /** Aborted when the grace period after a shutdown is over. */
  cutoff: AbortSignal;
  /** What every POST is sent under: the cutoff and the run lock's fence. */
  guard: SendGuard;
  /** A step that caught a LockLostError itself (it still has something to report) says so here. */
  lockLost(error: LockLostError): void;
  workloadsOf(namespace: string): readonly Workload[];
}

export class DeliveryQueue {
  private chain: Promise<void> = Promise.resolve();
  private readonly queued = new Set<string>();
  private readonly cutoff = new AbortController();
  private graceTimer?: Timer;
  private readonly context: DeliveryContext;
  private lockLostError?: LockLostError;
  private lastAttemptUnanswered = false;
  private readonly onShutdown = () => {
    this.inputs.log.warn(
      { grace_s: this.inputs.graceMs / 1000 },
      'shutdown requested: no new scans; delivering what is finished',
    );
    this.graceTimer = this.inputs.clock.setTimer(() => {
      this.cutoff.abort();
    }, this.inputs.graceMs);
  };

  constructor(private readonly inputs: DeliveryInputs) {
    const { graceMs: _graceMs, shutdown, fence, ...shared } = inputs;
    const workloads = groupByNamespace(inputs.discovery.workloads);
    const answered = recordingAnswers(inputs.ephor, (result) => {
      if (result.attempts > 0) this.lastAttemptUnanswered = !result.ok && result.status === undefined;
    });
    this.context = {
      ...shared,
      ephor: sendingUntil(this.cutoff.signal, answered),
      spool: inputs.spool && fencedSpool(inputs.spool, fence),
      cutoff: this.cutoff.signal,
      guard: { cutoff: this.cutoff.signal, beforeAttempt: fence },
      lockLost: (error) => {
        this.recordLockLost(error);
      },
      workloadsOf: (namespace) => workloads.get(namespace) ?? [],
    };
    if (shutdown.aborted) this.onShutdown();
    else shutdown.addEventListener('abort', this.onShutdown, { once: true });
  }

  /** Queues the namespace's delivery (once; later calls for it change nothing). */
  enqueueNamespace(namespace: string): void {
    if (this.queued.has(namespace)) return;
    this.queued.add(namespace);
    this.enqueue(async () => {
      const outcome = this.lockLostError
        ? this.notDelivered(namespace, `not sent: ${this.lockLostError.message}`)
        : await deliverNamespace(this.context, namespace).catch((error: unknown) =>
            this.namespaceFailed(namespace, error),
          );
      this.inputs.ledger.recordDelivery(outcome);
      await this.release(namespace);
    });
  }

  /** After the scans: every namespace not queued yet, then the SBOMs, then the spool of earlier runs. */
  enqueueTheRest(): void {
    for (const namespace of this.inputs.discovery.namespaces) this.enqueueNamespace(namespace);
    for (const [scanKey, source] of this.inputs.ledger.sbomSources) this.enqueueSbom(scanKey, source);
    if (this.inputs.spool) this.enqueueSpooled();
  }

  async drained(): Promise<void> {
    await this.chain;
    this.inputs.shutdown.removeEventListener('abort', this.onShutdown);
    this.graceTimer?.cancel();
  }

  /** The run lock's loss that stopped delivering, if any. */
  get lockLost(): LockLostError | undefined {
    return this.lockLostError;
  }

  /** The last POST attempt made got no answer (timeout, connection lost): Ephor may still be processing it. */
  get lastPostUnanswered(): boolean {
    return this.lastAttemptUnanswered;
  }

  /** After a loss of the run lock an SBOM is not sent: it counts as failed. */
  private enqueueSbom(scanKey: string, source: SbomSource): void {
    const failed = () => {
      this.inputs.ledger.sboms.failed++;
    };
    this.enqueue(
      async () => {
        if (this.lockLostError) failed();
        else await deliverSboms(this.context, scanKey, source);
      },
      `sbom of ${scanKey}`,
      failed,
    );
  }

  /** After a loss of the run lock the spool is not touched: what earlier runs left stays for the next holder. */
  private enqueueSpooled(): void {
    this.enqueue(
      () => (this.lockLostError ? Promise.resolve() : deliverSpooled(this.context)),
      'spooled payloads of earlier runs',
    );
  }

  /**
   * Runs `task` after the steps before it; a step that throws is recorded, and the next one runs. A step stopped by
   * the run lock's loss counts as failed (`onFailure`); the lock's own line says why, once.
   */
  private enqueue(task: () => Promise<void>, step = 'delivery', onFailure?: () => void): void {
    this.chain = this.chain.then(task).catch((error: unknown) => {
      if (isLockLost(error)) {
        this.recordLockLost(error);
        onFailure?.();
        return;
      }
      this.inputs.ledger.stepFailures.push(`${step}: ${messageOf(error)}`);
      onFailure?.();
      this.inputs.log.error({ step, error: messageOf(error) }, 'delivery step failed unexpectedly: the run exits 1');
      this.inputs.log.debug({ err: error }, 'the unexpected error');
    });
  }

  private namespaceFailed(namespace: string, error: unknown): NamespaceOutcome {
    if (isLockLost(error)) {
      this.recordLockLost(error);
      return this.notDelivered(namespace, `not delivered: ${error.message}`);
    }
    const { log } = this.inputs;
    log.error({ namespace, error: messageOf(error) }, 'namespace not delivered: its delivery step failed unexpectedly');
    log.debug({ namespace, err: error }, 'the unexpected error');
    return this.notDelivered(namespace, `unexpected error: ${messageOf(error)}`);
  }

  /** The lock's own line (src/lock) says why once; the ledger keeps it so that the run cannot end 0. */
  private recordLockLost(error: LockLostError): void {
    this.lockLostError ??= error;
    this.inputs.ledger.lockLost ??= error.message;
  }

  private notDelivered(namespace: string, error: string): NamespaceOutcome {
    const containers = this.context.workloadsOf(namespace).reduce((n, w) => n + w.containers.length, 0);
    return {
      namespace,
      delivered: false,
      error,
      stats: {
        workloads: 0,
        containersDelivered: 0,
        containersNotDelivered: containers,
        findings: { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 },
      },
    };
  }

  /** The findings files no namespace needs any more (a failed removal only leaves the file to the run's cleanup). */
  private async release(namespace: string): Promise<void> {
    for (const file of this.inputs.ledger.releaseNamespace(namespace)) {
      await rm(file, { force: true }).catch((error: unknown) => {
        this.inputs.log.warn({ file, error: messageOf(error) }, 'findings file could not be removed');
      });
    }
  }
}

/** Once `cutoff` aborts, nothing more is sent: each call ends at once as not delivered. */
function sendingUntil(cutoff: AbortSignal, ephor: EphorPort): EphorPort {
  const notSent = (bytes: number) => Promise.resolve({ ok: false as const, error: GRACE_OVER, attempts: 0, bytes });
  return {
    deliverScan: (namespace, part, guard) =>
      cutoff.aborted ? notSent(part.bytes) : ephor.deliverScan(namespace, part, guard),
    deliverFile: (namespace, file, bytes, guard) =>
      cutoff.aborted ? notSent(bytes) : ephor.deliverFile(namespace, file, bytes, guard),
    deliverSbom: (request, guard) => (cutoff.aborted ? notSent(0) : ephor.deliverSbom(request, guard)),
  };
}

/** Tells `record` the result of every delivery (to know whether the last POST attempt was answered). */
function recordingAnswers(ephor: EphorPort, record: (result: DeliveryResult<unknown>) => void): EphorPort {
  const noted = async <R>(delivery: Promise<DeliveryResult<R>>) => {
    const result = await delivery;
    record(result);
    return result;
  };
  return {
    deliverScan: (namespace, part, guard) => noted(ephor.deliverScan(namespace, part, guard)),
    deliverFile: (namespace, file, bytes, guard) => noted(ephor.deliverFile(namespace, file, bytes, guard)),
    deliverSbom: (request, guard) => noted(ephor.deliverSbom(request, guard)),
  };
}

function groupByNamespace(workloads: readonly Workload[]): Map<string, Workload[]> {
  const byNamespace = new Map<string, Workload[]>();
  for (const workload of workloads) {
    const list = byNamespace.get(workload.namespace);
    if (list) list.push(workload);
    else byNamespace.set(workload.namespace, [workload]);
  }
  return byNamespace;
}
