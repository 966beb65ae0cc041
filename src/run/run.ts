// One scan run, as a pipeline: run lock → discover (beside preparing Trivy) → plan → scan → deliver →
// release → summary. It owns the run's scan_group_id, its temporary directory, its deadline and its shutdown.
// Namespaces are delivered, one POST at a time, as soon as all their images are scanned, while the other scans go on.
// The run lock (run-lock.ts) keeps other runs from posting meanwhile. In a sharded run (src/shard) this is index 0: it
// scans its part while the other shards hand over theirs, and delivers everything as a single process would. Every
// collaborator comes in through RunDependencies (ports.ts): adapters.ts wires the real ones, tests pass fakes.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/index.js';
import { EXIT_NOT_DELIVERED, EXIT_OK } from '../exit-codes.js';
import type { RunFacts } from '../ephor/payload.js';
import { planScans, type ScanPlan } from '../images/plan.js';
import { formatOwnerKind } from '../kube/owner-kinds.js';
import type { Logger } from '../log.js';
import { TrivyUnavailableError, type TrivySetup } from '../trivy/database.js';
import { describeWriteError } from '../trivy/failure.js';
import type { Discovery, ScanResult, ScanTarget } from '../types.js';
import { SCAN_LABEL, VERSION } from '../version.js';
import type { RunLockHandle } from '../lock/index.js';
import { DeliveryQueue } from './deliveries.js';
import { neverStarted, scanImage } from './image-scan.js';
import { RunLedger } from './ledger.js';
import { logInvalidReferences, logPlan } from './plan-log.js';
import type { RunDependencies, RunDirectories } from './ports.js';
import { forbiddenLists } from './permission-gaps.js';
import { Progress } from './progress.js';
import { reportMetrics, ShutdownGrace } from './report-metrics.js';
import { lostOutcome, takeRunLock } from './run-lock.js';
import { scanImages } from './scans.js';
import { notScannedForLostShard } from '../shard/index-zero.js';
import { ScanSchedule } from './schedule.js';
import { summaryRecord, summaryTable, type RunLockOutcome, type RunSummary } from './summary.js';

export interface RunContext {
  config: Config;
  scanGroupId: string;
  startedAt: Date;
  /** Aborted on SIGTERM/SIGINT: no new scan starts, running ones are killed, finished work is still delivered. */
  shutdown: AbortSignal;
}

type Outcome = Pick<RunSummary, 'namespaces' | 'images' | 'sboms' | 'spooled' | 'exitCode' | 'layerCache'>;
type Finished = Outcome & Pick<RunSummary, 'discoveryErrors' | 'discoveryMs' | 'forbidden' | 'trivy' | 'lock'>;

export async function runScan(context: RunContext, deps: RunDependencies): Promise<RunSummary> {
  if (!deps.shards) return runOnce(context, deps);
  try {
    return await runOnce(context, deps);
  } finally {
    // The other shards wait for this word, whatever way the run ended (src/shard).
    await deps.shards.finish();
  }
}

async function runOnce(context: RunContext, deps: RunDependencies): Promise<RunSummary> {
  const grace = new ShutdownGrace(context.shutdown, deps.clock, deps.shutdownGraceMs);
  const workDir = await makeWorkDir(deps);
  if (workDir === undefined) return finish(context, deps, grace, { ...nothingDone(), discoveryErrors: 0 });
  let finished: Finished;
  try {
    finished = await underRunLock(context, deps, workDir);
  } catch (error) {
    grace.dispose();
    throw error;
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
  return finish(context, deps, grace, finished);
}

/** The lock and what the run did while holding it. */
interface HeldLock {
  handle: RunLockHandle;
  outcome: RunLockOutcome;
  lastPostUnanswered: boolean;
}

/** Takes the run lock (or stops, having done nothing), runs, and releases it, whatever happened meanwhile. */
async function underRunLock(context: RunContext, deps: RunDependencies, workDir: string): Promise<Finished> {
  const { handle, outcome } = await takeRunLock(context, deps);
  if (!handle) return { ...nothingDone(), discoveryErrors: 0, lock: outcome };
  deps.shards?.startScanning();
  const held: HeldLock = { handle, outcome, lastPostUnanswered: false };
  try {
    const finished = await discoverScanDeliver(context, deps, workDir, held);
    return { ...finished, lock: held.outcome };
  } finally {
    await handle.release({ lastPostUnanswered: held.lastPostUnanswered });
  }
}

async function discoverScanDeliver(
  context: RunContext,
  deps: RunDependencies,
  workDir: string,
  lock: HeldLock,
): Promise<Finished> {
  const { discovery, trivy } = await discoverAndPrepare(context, deps);
  try {
    const base = summaryFacts(context.config, discovery, trivy);
    if (!canScan(discovery, trivy, deps.log)) return { ...base, ...nothingDone() };
    const plan = planScans(discovery.namespaces, discovery.workloads, {
      tagPlatform: discovery.platforms?.clusterPlatform,
    });
    const invalid = logInvalidReferences(plan, discovery.workloads, deps.log);
    logPlan(plan, discovery.workloads, invalid, deps.log);
    const dirs = await runDirectories(workDir, context.config);
    const outcome = await scanAndDeliver({ context, deps, discovery, plan, invalid, trivy, dirs, lock });
    return { ...base, ...outcome };
  } finally {
    // What prepare started (the Trivy server) stops with the run, whichever way it ends; after the scans it was
    // already stopped (scanAndDeliver), and a second release changes nothing.
    if (!(trivy instanceof TrivyUnavailableError)) await deps.trivy.release?.(trivy);
  }
}

interface ScanAndDeliverInputs {
  context: RunContext;
  deps: RunDependencies;
  discovery: Discovery;
  plan: ScanPlan;
  invalid: number;
  trivy: TrivySetup;
  dirs: RunDirectories;
  lock: HeldLock;
}

/** Scans every image while delivering each namespace as soon as its images are done; then the rest is delivered. */
async function scanAndDeliver(inputs: ScanAndDeliverInputs): Promise<Outcome> {
  const { context, deps, discovery, plan, lock } = inputs;
  const { config, shutdown } = context;
  const ledger = new RunLedger(discovery.namespaces, plan.targets, inputs.invalid);
  const deliveries = new DeliveryQueue({
    config,
    log: deps.log,
    ephor: deps.ephor,
    spool: deps.spool,
    clock: deps.clock,
    graceMs: deps.shutdownGraceMs,
    shutdown,
    fence: () => lock.handle.fence(),
    run: runFacts(context, inputs.trivy),
    discovery,
    plan,
    ledger,
    workDir: inputs.dirs.workDir,
  });
  for (const namespace of ledger.namespacesReady()) deliveries.enqueueNamespace(namespace);
  await scanAll(inputs, ledger, (namespace) => {
    deliveries.enqueueNamespace(namespace);
  });
  // The Trivy server is needed no more: stopped before the remaining deliveries, its cache then measured.
  const layerCache = await deps.trivy.release?.(inputs.trivy);
  deliveries.enqueueTheRest();
  await deliveries.drained();
  lock.lastPostUnanswered = deliveries.lastPostUnanswered;
  if (deliveries.lockLost) lock.outcome = lostOutcome(lock.outcome, deliveries.lockLost);
  return {
    exitCode: ledger.exitCode(shutdown.aborted),
    namespaces: ledger.namespaceOutcomes(),
    images: ledger.images(),
    sboms: config.sbom.enabled ? ledger.sboms : undefined,
    spooled: ledger.spooled.delivered + ledger.spooled.failed > 0 ? ledger.spooled : undefined,
    layerCache,
  };
}

/** Every image of the plan, recorded in the ledger; `ready` gets each namespace whose last image it was. */
async function scanAll(
  inputs: ScanAndDeliverInputs,
  ledger: RunLedger,
  ready: (namespace: string) => void,
): Promise<void> {
  const { context, deps, plan } = inputs;
  const { config } = context;
  // A lost lock ends the scans as a shutdown does: nothing they find could be posted any more.
  const shutdown = AbortSignal.any([context.shutdown, inputs.lock.handle.lost]);
  const { clock, log } = deps;
  const { deadlineMs, concurrency } = config.scan;
  const deadline = deadlineMs === undefined ? undefined : context.startedAt.getTime() + deadlineMs;
  const schedule = new ScanSchedule({ deadline, concurrency, clock, shutdown });
  const scanner = deps.trivy.imageScanner(inputs.trivy, inputs.dirs);
  const progress = new Progress(plan.targets.length, log);
  const settle = (target: ScanTarget, result: ScanResult) => {
    progress.record(result.ok);
    for (const namespace of ledger.recordScan(target, result)) ready(namespace);
  };
  const scanHere = (targets: readonly ScanTarget[]) =>
    scanImages(targets, {
      concurrency,
      schedule,
      scan: (target, signal) => scanImage(target, signal, { scanner, schedule, clock, log, shutdown }),
      onResult: settle,
      log,
    });
  const { notStarted, lost } = deps.shards
    ? await deps.shards.scan({ ...inputs.dirs, targets: plan.targets, settle, scanHere, shutdown, deadline })
    : { notStarted: await scanHere(plan.targets), lost: [] };
  progress.stop();
  for (const target of notStarted)
    settle(target, notScannedForLostShard(target, lost, shutdown.aborted) ?? neverStarted(target, shutdown.aborted));
  if (schedule.deadlineReached)
    log.warn({ not_scanned: ledger.failedByReason.deadline ?? 0 }, 'SCAN_DEADLINE reached: delivering what is done');
  schedule.dispose();
}

async function makeWorkDir(deps: RunDependencies): Promise<string | undefined> {
  try {
    return await mkdtemp(path.join(deps.tempRoot, 'ephor-scanner-'));
  } catch (error) {
    deps.log.error(
      { error: describeWriteError(error, deps.tempRoot) },
      "the run's temporary directory cannot be created: nothing was scanned or delivered",
    );
    return undefined;
  }
}

/** Discovery and Trivy's preparation (its DB downloads) run side by side. */
async function discoverAndPrepare(
  context: RunContext,
  deps: RunDependencies,
): Promise<{ discovery: Discovery & { durationMs: number }; trivy: TrivySetup | TrivyUnavailableError }> {
  const { clock, log } = deps;
  const discoveryStarted = clock.now();
  const [discovery, trivy] = await Promise.all([
    deps.discovery.discover().then((result) => ({ ...result, durationMs: clock.now() - discoveryStarted })),
    deps.trivy.prepare(context.shutdown).catch((error: unknown) => {
      if (error instanceof TrivyUnavailableError) return error;
      throw error;
    }),
  ]);
  log.info(
    {
      namespaces: discovery.namespaces.length,
      workloads: discovery.workloads.length,
      discovery_errors: discovery.errors.length,
      duration_ms: discovery.durationMs,
    },
    'discovery completed',
  );
  return { discovery, trivy };
}

/** False (logged) when nothing can be scanned or nothing was discovered: the run stops before scanning. */
function canScan(discovery: Discovery, trivy: TrivySetup | TrivyUnavailableError, log: Logger): trivy is TrivySetup {
  if (trivy instanceof TrivyUnavailableError) {
    log.error({ error: trivy.message }, 'trivy cannot scan: nothing was scanned or delivered');
    return false;
  }
  if (discovery.successfulLists === 0) {
    log.error(
      { errors: discovery.errors.length },
      'discovery returned nothing: every list call failed, so nothing is delivered',
    );
    return false;
  }
  return true;
}

async function runDirectories(workDir: string, config: Config): Promise<RunDirectories> {
  const makeDir = async (name: string) => {
    const dir = path.join(workDir, name);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return dir;
  };
  return {
    workDir,
    findingsDir: await makeDir('findings'),
    sbomDir: config.sbom.enabled ? await makeDir('sboms') : undefined,
  };
}

function nothingDone(): Outcome {
  return {
    exitCode: EXIT_NOT_DELIVERED,
    namespaces: [],
    images: { total: 0, scanned: 0, failed: 0, failedByReason: {} },
  };
}

function runFacts(context: RunContext, trivy: TrivySetup): RunFacts {
  const { config } = context;
  return {
    scanGroupId: context.scanGroupId,
    scanLabel: SCAN_LABEL,
    startedAt: context.startedAt.toISOString(),
    trivyVersion: trivy.version,
    scanConfig: {
      scanner: 'ephor-scanner',
      scanner_version: VERSION,
      trivy_version: trivy.version ?? null,
      vulnerability_db: {
        updated_at: trivy.db.updatedAt ?? null,
        downloaded_at: trivy.db.downloadedAt ?? null,
        download_error: trivy.db.downloadError,
      },
      java_db: { ready: trivy.javaDb.ready, updated_at: trivy.javaDb.updatedAt ?? null },
      severities: config.scan.severities,
      workload_types: config.scan.workloadKinds,
      other_controllers: {
        enabled: config.scan.otherControllers.enabled,
        exclude: config.scan.otherControllers.exclude.map(formatOwnerKind),
      },
      cache_mode: trivy.cacheMode ?? config.trivy.cacheMode,
    },
  };
}

type SummaryFacts = Pick<RunSummary, 'discoveryErrors' | 'discoveryMs' | 'forbidden' | 'trivy'>;

/** What the summary reports of discovery and Trivy, whatever the run does next. */
function summaryFacts(
  config: Config,
  discovery: Discovery & { durationMs: number },
  trivy: TrivySetup | TrivyUnavailableError,
): SummaryFacts {
  return {
    discoveryErrors: discovery.errors.length,
    discoveryMs: discovery.durationMs,
    forbidden: forbiddenLists(discovery.errors, config.scan.workloadKinds.includes('Pod')),
    trivy:
      trivy instanceof TrivyUnavailableError ? undefined : { version: trivy.version, dbUpdatedAt: trivy.db.updatedAt },
  };
}

/** The summary, logged once as the run's last line (a table for text logs); then the metrics, pushed once. */
async function finish(
  context: RunContext,
  deps: RunDependencies,
  grace: ShutdownGrace,
  outcome: Finished,
): Promise<RunSummary> {
  const summary: RunSummary = {
    ...outcome,
    interrupted: context.shutdown.aborted,
    durationMs: deps.clock.now() - context.startedAt.getTime(),
    resources: await deps.resources(),
  };
  const record = summaryRecord(summary);
  const fields =
    context.config.log.format === 'text'
      ? { ...record, per_namespace: undefined, table: summaryTable(summary) }
      : record;
  deps.log[summary.exitCode === EXIT_OK ? 'info' : 'error'](fields, 'ephor-scanner completed');
  const { config, startedAt } = context;
  await reportMetrics(summary, { config, metrics: deps.metrics, log: deps.log, grace, startedAt });
  grace.dispose();
  return summary;
}
