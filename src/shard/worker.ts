// A shard other than index 0 (JOB_COMPLETION_INDEX > 0): it posts nothing, takes no lock and pushes no metrics. It
// waits until index 0 says it holds the run lock, discovers the cluster itself (read-only), plans as every shard
// does, scans its part (partition.ts) with its own SCAN_CONCURRENCY, and hands each result to index 0 as soon as it
// is done (handover.ts). It exits 0 once index 0 has acknowledged everything and says the run is done; 1 when index
// 0 cannot be reached within SHARD_TIMEOUT, refuses the token, or this shard could not scan.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { EXIT_NOT_DELIVERED, EXIT_OK } from '../exit-codes.js';
import { planScans } from '../images/plan.js';
import type { Logger } from '../log.js';
import { neverStarted, scanImage } from '../run/image-scan.js';
import type { RunDependencies } from '../run/ports.js';
import type { RunContext } from '../run/run.js';
import { scanImages } from '../run/scans.js';
import { ScanSchedule } from '../run/schedule.js';
import { TrivyUnavailableError } from '../trivy/database.js';
import type { ScanTarget } from '../types.js';
import { Handover, ShardFatal } from './handover.js';
import { shardTargets } from './partition.js';
import type { ShardConfig } from './settings.js';

type WorkerConfig = Extract<ShardConfig, { coordinatorUrl: string }>;
export type WorkerDependencies = Pick<RunDependencies, 'discovery' | 'trivy' | 'clock' | 'log' | 'tempRoot'> &
  Partial<Pick<RunDependencies, 'shutdownGraceMs'>>;

export async function runShard(context: RunContext, deps: WorkerDependencies): Promise<number> {
  const shard = context.config.shard as WorkerConfig;
  const { log, clock } = deps;
  const { coordinatorUrl: url, token, index, timeoutMs } = shard;
  const handover = new Handover({ url, token, shard: index, timeoutMs, clock, log });
  const loops = handover.run();
  log.info(
    { shard: shard.index, shards: shard.count, coordinator: shard.coordinatorUrl },
    `shard ${shard.index} of ${shard.count}: waiting for index 0 to hold the run lock`,
  );
  try {
    if ((await handover.until('scan', context.shutdown)) !== 'scan' || context.shutdown.aborted) {
      log.info('index 0 ended the run before this shard scanned anything');
      return context.shutdown.aborted ? EXIT_NOT_DELIVERED : EXIT_OK;
    }
    const scanned = await scanPart(context, deps, handover);
    // Stopped (SIGTERM) while scanning: what it scanned was handed over, the rest is `cancelled` in index 0's ledger.
    const stopped = (signal: AbortSignal) => signal.aborted;
    return scanned && !stopped(context.shutdown) ? EXIT_OK : EXIT_NOT_DELIVERED;
  } catch (error) {
    if (!(error instanceof ShardFatal)) throw error;
    log.error({ error: error.message, unacknowledged: handover.unacknowledged() }, 'shard stopped');
    return EXIT_NOT_DELIVERED;
  } finally {
    handover.stop();
    await loops;
  }
}

/** Waits for index 0's "done" (after a shutdown: only for the grace period); logs what was left. */
async function handoverAll(context: RunContext, deps: WorkerDependencies, handover: Handover): Promise<void> {
  const stop = context.shutdown.aborted
    ? AbortSignal.timeout(deps.shutdownGraceMs ?? 30_000)
    : new AbortController().signal;
  await handover.until('done', stop);
  const left = handover.unacknowledged();
  const fields = { shard: (context.config.shard as WorkerConfig).index, handed_over: handover.handedOver };
  if (left === 0) deps.log.info(fields, 'shard completed: index 0 acknowledged every result and ended the run');
  else deps.log.warn({ ...fields, not_handed_over: left }, 'shard ended with results index 0 did not take');
}

/** Discovers, plans, scans this shard's part and hands over each result; false when it could not scan. */
async function scanPart(context: RunContext, deps: WorkerDependencies, handover: Handover): Promise<boolean> {
  const { log, clock } = deps;
  const shard = context.config.shard as WorkerConfig;
  const [discovery, trivy] = await Promise.all([
    deps.discovery.discover(),
    deps.trivy.prepare(context.shutdown).catch((error: unknown) => {
      if (error instanceof TrivyUnavailableError) return error;
      throw error;
    }),
  ]);
  if (trivy instanceof TrivyUnavailableError || discovery.successfulLists === 0) {
    const error = trivy instanceof TrivyUnavailableError ? trivy.message : 'every list call of discovery failed';
    log.error({ error }, 'this shard cannot scan: index 0 scans its part instead');
    handover.setPlanned(0);
    handover.finishScanning();
    await handoverAll(context, deps, handover);
    return false;
  }
  const workDir = await mkdtemp(path.join(deps.tempRoot, 'ephor-scanner-shard-'));
  try {
    const plan = planScans(discovery.namespaces, discovery.workloads, {
      tagPlatform: discovery.platforms?.clusterPlatform,
    });
    const part = shardTargets(plan.targets, shard.index, shard.count);
    handover.setPlanned(part.length);
    log.info(
      { shard: shard.index, shards: shard.count, images: part.length, of: plan.targets.length },
      `shard ${shard.index} scans ${part.length} of ${plan.targets.length} images`,
    );
    const findingsDir = path.join(workDir, 'findings');
    await mkdir(findingsDir, { mode: 0o700 });
    const sbomDir = context.config.sbom.enabled ? path.join(workDir, 'sboms') : undefined;
    if (sbomDir) await mkdir(sbomDir, { mode: 0o700 });
    const scanner = deps.trivy.imageScanner(trivy, { workDir, findingsDir, sbomDir });
    await scanTargets(part, { context, clock, log, handover, scanner });
    await deps.trivy.release?.(trivy);
    // Kept until index 0 says the run is done: a restarted index 0 needs them again.
    await handoverAll(context, deps, handover);
    return true;
  } finally {
    await deps.trivy.release?.(trivy);
    await rm(workDir, { recursive: true, force: true });
  }
}

interface PartInputs {
  context: RunContext;
  clock: WorkerDependencies['clock'];
  log: Logger;
  handover: Handover;
  scanner: ReturnType<WorkerDependencies['trivy']['imageScanner']>;
}

async function scanTargets(part: ScanTarget[], inputs: PartInputs): Promise<void> {
  const { context, clock, log, handover, scanner } = inputs;
  const { deadlineMs, concurrency } = context.config.scan;
  const deadline = deadlineMs === undefined ? undefined : context.startedAt.getTime() + deadlineMs;
  const shutdown = context.shutdown;
  const schedule = new ScanSchedule({ deadline, concurrency, clock, shutdown });
  const notStarted = await scanImages(part, {
    concurrency,
    schedule,
    scan: (target, signal) => scanImage(target, signal, { scanner, schedule, clock, log, shutdown }),
    onResult: (target, result) => {
      handover.add(target, result);
    },
    log,
  });
  for (const target of notStarted) handover.add(target, neverStarted(target, shutdown.aborted));
  schedule.dispose();
  handover.finishScanning();
}
