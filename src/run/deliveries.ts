// Everything sent to Ephor goes through one queue, one POST at a time (concurrent ingests corrupt Ephor's data):
// each namespace as soon as all its images are scanned (namespace-delivery.ts), then the SBOMs (sbom-delivery.ts),
// then what earlier runs left in the spool (spooled-delivery.ts). After a shutdown the queue keeps delivering what
// is finished until the grace period ends; after that nothing more is sent, and what is left is recorded as not
// delivered. A step that fails unexpectedly is recorded too (the namespace as not delivered, with the reason), so
// the run can never end 0 with something undelivered.
import { rm } from 'node:fs/promises';
import type { Config } from '../config/index.js';
import type { RunFacts } from '../ephor/payload.js';
import { messageOf } from '../errors.js';
import type { ScanPlan } from '../images/plan.js';
import type { Logger } from '../log.js';
import type { Discovery, Workload } from '../types.js';
import type { RunLedger, SbomSource } from './ledger.js';
import { deliverNamespace } from './namespace-delivery.js';
import type { Clock, EphorPort, SpoolPort, Timer } from './ports.js';
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
  run: RunFacts;
  discovery: Discovery;
  plan: ScanPlan;
  ledger: RunLedger;
  /** The run's temporary directory (findings unions are written there). */
  workDir: string;
}

/** What every delivery step works with. */
export interface DeliveryContext extends Omit<DeliveryInputs, 'graceMs' | 'shutdown'> {
  /** Aborted when the grace period after a shutdown is over. */
  cutoff: AbortSignal;
  workloadsOf(namespace: string): readonly Workload[];
}

export class DeliveryQueue {
  private chain: Promise<void> = Promise.resolve();
  private readonly queued = new Set<string>();
  private readonly cutoff = new AbortController();
  private graceTimer?: Timer;
  private readonly context: DeliveryContext;
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
    const { graceMs: _graceMs, shutdown, ...shared } = inputs;
    const workloads = groupByNamespace(inputs.discovery.workloads);
    this.context = {
      ...shared,
      ephor: sendingUntil(this.cutoff.signal, inputs.ephor),
      cutoff: this.cutoff.signal,
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
      const outcome = await deliverNamespace(this.context, namespace).catch((error: unknown) =>
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
    if (this.inputs.spool) this.enqueue(() => deliverSpooled(this.context), 'spooled payloads of earlier runs');
  }

  async drained(): Promise<void> {
    await this.chain;
    this.inputs.shutdown.removeEventListener('abort', this.onShutdown);
    this.graceTimer?.cancel();
  }

  private enqueueSbom(scanKey: string, source: SbomSource): void {
    this.enqueue(
      () => deliverSboms(this.context, scanKey, source),
      `sbom of ${scanKey}`,
      () => {
        this.inputs.ledger.sboms.failed++;
      },
    );
  }

  /** Runs `task` after the steps before it; a step that throws is recorded, and the next one runs. */
  private enqueue(task: () => Promise<void>, step = 'delivery', onFailure?: () => void): void {
    this.chain = this.chain.then(task).catch((error: unknown) => {
      this.inputs.ledger.stepFailures.push(`${step}: ${messageOf(error)}`);
      onFailure?.();
      this.inputs.log.error({ step, error: messageOf(error) }, 'delivery step failed unexpectedly: the run exits 1');
      this.inputs.log.debug({ err: error }, 'the unexpected error');
    });
  }

  private namespaceFailed(namespace: string, error: unknown): NamespaceOutcome {
    const { log } = this.inputs;
    log.error({ namespace, error: messageOf(error) }, 'namespace not delivered: its delivery step failed unexpectedly');
    log.debug({ namespace, err: error }, 'the unexpected error');
    const containers = this.context.workloadsOf(namespace).reduce((n, w) => n + w.containers.length, 0);
    return {
      namespace,
      delivered: false,
      error: `unexpected error: ${messageOf(error)}`,
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
    deliverScan: (namespace, part, signal) =>
      cutoff.aborted ? notSent(part.bytes) : ephor.deliverScan(namespace, part, signal),
    deliverFile: (namespace, file, bytes, signal) =>
      cutoff.aborted ? notSent(bytes) : ephor.deliverFile(namespace, file, bytes, signal),
    deliverSbom: (request, signal) => (cutoff.aborted ? notSent(0) : ephor.deliverSbom(request, signal)),
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
