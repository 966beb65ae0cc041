// One scan run, as a pipeline: discover (beside preparing Trivy) → plan → scan → deliver → summary. It owns the
// run's scan_group_id, its temporary directory, its deadline and its shutdown. Namespaces are delivered, one POST at
// a time, as soon as all their images are scanned, while the other scans go on. Every collaborator comes in through
// RunDependencies (ports.ts): adapters.ts wires the real ones, tests pass fakes.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/index.js';
import { EXIT_NOT_DELIVERED, EXIT_OK } from '../exit-codes.js';
import type { RunFacts } from '../ephor/payload.js';
import { planScans, type ScanPlan } from '../images/plan.js';
import type { Logger } from '../log.js';
import { TrivyUnavailableError, type TrivySetup } from '../trivy/database.js';
import { describeWriteError } from '../trivy/failure.js';
import type { Discovery, ScanResult, ScanTarget } from '../types.js';
import { SCAN_LABEL, VERSION } from '../version.js';
import { DeliveryQueue } from './deliveries.js';
import { neverStarted, scanImage } from './image-scan.js';
import { RunLedger } from './ledger.js';
import { logInvalidReferences, logPlan } from './plan-log.js';
import type { RunDependencies, RunDirectories } from './ports.js';
import { Progress } from './progress.js';
import { scanImages } from './scans.js';
import { ScanSchedule } from './schedule.js';
import { summaryRecord, summaryTable, type RunSummary } from './summary.js';

export interface RunContext {
  config: Config;
  scanGroupId: string;
  startedAt: Date;
  /** Aborted on SIGTERM/SIGINT: no new scan starts, running ones are killed, finished work is still delivered. */
  shutdown: AbortSignal;
}

type Outcome = Pick<RunSummary, 'namespaces' | 'images' | 'sboms' | 'spooled' | 'exitCode' | 'layerCache'>;

export async function runScan(context: RunContext, deps: RunDependencies): Promise<RunSummary> {
  const workDir = await makeWorkDir(deps);
  if (workDir === undefined) return finish(context, deps, { ...nothingDone(), discoveryErrors: 0 });
  let prepared: TrivySetup | undefined;
  try {
    const { discovery, trivy } = await discoverAndPrepare(context, deps);
    if (!(trivy instanceof TrivyUnavailableError)) prepared = trivy;
    const base = { discoveryErrors: discovery.errors.length, discoveryMs: discovery.durationMs };
    if (!canScan(discovery, trivy, deps.log)) return await finish(context, deps, { ...base, ...nothingDone() });
    const plan = planScans(discovery.namespaces, discovery.workloads);
    const invalid = logInvalidReferences(plan, discovery.workloads, deps.log);
    logPlan(plan, discovery.workloads, invalid, deps.log);
    const dirs = await runDirectories(workDir, context.config);
    const outcome = await scanAndDeliver({ context, deps, discovery, plan, invalid, trivy, dirs });
    return await finish(context, deps, { ...base, ...outcome });
  } finally {
    // What prepare started (the Trivy server) stops with the run, whichever way it ends; after the scans it was
    // already stopped (scanAndDeliver), and a second release changes nothing.
    if (prepared) await deps.trivy.release?.(prepared);
    await rm(workDir, { recursive: true, force: true });
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
}

/** Scans every image while delivering each namespace as soon as its images are done; then the rest is delivered. */
async function scanAndDeliver(inputs: ScanAndDeliverInputs): Promise<Outcome> {
  const { context, deps, discovery, plan } = inputs;
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
  const { config, shutdown } = context;
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
  const notStarted = await scanImages(plan.targets, {
    concurrency,
    schedule,
    scan: (target, signal) => scanImage(target, signal, { scanner, schedule, clock, log, shutdown }),
    onResult: settle,
    log,
  });
  progress.stop();
  for (const target of notStarted) settle(target, neverStarted(target, shutdown.aborted));
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
      cache_mode: trivy.cacheMode ?? config.trivy.cacheMode,
    },
  };
}

/** The summary: logged once, as the run's last line (a table for text logs). */
async function finish(
  context: RunContext,
  deps: RunDependencies,
  outcome: Outcome & Pick<RunSummary, 'discoveryErrors' | 'discoveryMs'>,
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
  return summary;
}
