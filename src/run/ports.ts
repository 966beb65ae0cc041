// What a scan run needs from the world, as small interfaces: runScan (run.ts) is given one RunDependencies object.
// The real adapters are wired in adapters.ts; tests pass fakes and run a whole scan run in-process. Adding a
// collaborator (a run lock, a metrics push) means adding a port here and its adapter there.
import type { BodyPart } from '../ephor/body.js';
import type { DeliveryResult } from '../ephor/client.js';
import type { RunLockHandle } from '../lock/index.js';
import type { Logger } from '../log.js';
import type { ShardsPort } from '../shard/index-zero.js';
import type { TrivySetup } from '../trivy/database.js';
import type { LayerCacheSummary } from '../trivy/layer-cache.js';
import type { ScanOutcome, TrivyRun } from '../trivy/scan.js';
import type { Discovery, SbomIngestRequest, SbomIngestResponse, ScanTarget } from '../types.js';
import type { SpooledPart } from './spool.js';
import type { ProcessResources, RunLockOutcome, RunSummary } from './summary.js';

/** Time and timers. The real one is the system clock; tests move a fake one by hand. */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** Calls `callback` once after `ms`; the timer never keeps the process alive on its own. */
  setTimer(callback: () => void, ms: number): Timer;
}

export interface Timer {
  cancel(): void;
}

/** The workloads of the configured namespaces (src/kube): failed list calls are in `errors`, never thrown. */
export interface DiscoveryPort {
  discover(): Promise<Discovery>;
}

/** Trivy, prepared once per run, then one image at a time (src/trivy). */
export interface TrivyPort {
  /** Version and databases; throws TrivyUnavailableError when no scan could succeed. */
  prepare(signal: AbortSignal): Promise<TrivySetup>;
  /** The runner of this run's image scans, writing under the run's directories. */
  imageScanner(setup: TrivySetup, dirs: RunDirectories): ImageScanner;
  /** After the last scan: stops what `prepare` started (the Trivy server) and reports the layer cache, when the run
   * has one. Safe to call twice; optional for runs that start nothing. */
  release?(setup: TrivySetup): Promise<LayerCacheSummary | undefined>;
}

export interface RunDirectories {
  /** The run's private temporary directory. */
  workDir: string;
  /** Where findings files are kept until every namespace that needs them is delivered. */
  findingsDir: string;
  /** Where SBOMs are kept until delivered, when SBOM_ENABLED. */
  sbomDir?: string;
}

/** One image scan in two steps: Trivy in a SCAN_CONCURRENCY slot, then its report read outside the slot. */
export interface ImageScanner {
  /** Resolves when Trivy ended; `onStarted` is called when its process started (it may first wait for a slot). */
  run(target: ScanTarget, signal: AbortSignal, onStarted: () => void): Promise<TrivyRun>;
  /** The report → a findings file (and an SBOM); the scan's own files are removed either way. */
  read(target: ScanTarget, run: Extract<TrivyRun, { ok: true }>, signal: AbortSignal): Promise<ScanOutcome>;
}

/** What every POST to Ephor obeys. */
export interface SendGuard {
  /** Aborted when delivering must stop (the shutdown grace period is over): the attempt in flight ends, no retry. */
  cutoff: AbortSignal;
  /**
   * Awaited before EVERY attempt, retries included: the run lock's fence. When it rejects (LockLostError), no attempt
   * is sent and the delivery call rejects with that error.
   */
  beforeAttempt: () => Promise<void>;
}

/** The Ephor API with its retry policy (src/ephor/client.ts), each call under a SendGuard. */
export interface EphorPort {
  deliverScan(namespace: string, part: BodyPart, guard: SendGuard): Promise<DeliveryResult>;
  /** A payload part written to disk earlier (the spool), sent as it is. */
  deliverFile(namespace: string, file: string, bytes: number, guard: SendGuard): Promise<DeliveryResult>;
  deliverSbom(request: SbomIngestRequest, guard: SendGuard): Promise<DeliveryResult<SbomIngestResponse>>;
}

/**
 * The run lock (src/lock): one run posting to Ephor at a time. acquire() is called before the first Trivy scan (in
 * fact before discovery), never in a dry run; the handle it gives fences every POST attempt and spool write and is
 * released after the last POST.
 */
export interface RunLockPort {
  /** Waits up to RUN_LOCK_WAIT while another live run holds the lock; `signal` (shutdown) ends the wait. */
  acquire(scanGroupId: string, signal: AbortSignal): Promise<LockAcquisition>;
}

/** `handle` absent: the lock was not acquired and the run must scan and post nothing. */
export interface LockAcquisition {
  handle?: RunLockHandle;
  outcome: RunLockOutcome;
}

/** Payloads that could not be delivered, kept for the next run (spool.ts). */
export interface SpoolPort {
  save(namespace: string, startedAt: number, scanGroupId: string, parts: BodyPart[]): Promise<void>;
  discard(namespace: string): Promise<void>;
  pending(now: number): Promise<Map<string, SpooledPart[]>>;
  remove(part: SpooledPart): Promise<void>;
}

/**
 * Where a run reports its metrics (src/metrics, a Prometheus Pushgateway): given when METRICS_PUSHGATEWAY_URL is set.
 * The run calls it once, after its summary, and not in a dry run. Never throws: a failed push is a warning, and the
 * run's exit code stays what the run decided. Ends within its own timeout, or at once when `signal` aborts.
 */
export interface MetricsPort {
  push(summary: RunSummary, startedAt: Date, signal: AbortSignal): Promise<void>;
}

export interface RunResources extends ProcessResources {
  /** The Trivy launcher process, when it ran: part of the scanner's own cost. */
  launcher?: ProcessResources;
}

export interface RunDependencies {
  discovery: DiscoveryPort;
  trivy: TrivyPort;
  ephor: EphorPort;
  lock: RunLockPort;
  /** Absent in a dry run: nothing is spooled. */
  spool?: SpoolPort;
  /** Absent without METRICS_PUSHGATEWAY_URL: no metrics. */
  metrics?: MetricsPort;
  /** Index 0 of a sharded run (SHARD_COUNT above 1): the other shards' results. Absent: a single process. */
  shards?: ShardsPort;
  clock: Clock;
  log: Logger;
  /** After a shutdown signal, how long finished work may still be delivered. */
  shutdownGraceMs: number;
  /** Where the run's temporary directory is made (TMPDIR). */
  tempRoot: string;
  /** The scanner's own CPU time and peak memory so far, for the summary. */
  resources(): Promise<RunResources>;
}
