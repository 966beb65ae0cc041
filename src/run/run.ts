// One scan run: wires the stages (discover → plan → scan → build payloads → deliver) and owns the run's
// scan_group_id, its temporary directory, its deadline and its shutdown. Namespaces are delivered, one POST at a
// time, as soon as all their images are scanned, while the other scans go on.
import { setMaxListeners } from 'node:events';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Config, Env } from '../config/index.js';
import type { RunFacts } from '../ephor/payload.js';
import { isInvalid, planScans, type ScanPlan } from '../images/plan.js';
import { createKubeClient, loadKubeConfig } from '../kube/client.js';
import { discoverWorkloads } from '../kube/discover.js';
import { PullSecretResolver } from '../kube/pull-secrets.js';
import type { Logger, SecretRegistry } from '../log.js';
import { TrivyUnavailableError, prepareTrivy, type TrivySetup } from '../trivy/database.js';
import { describeWriteError } from '../trivy/failure.js';
import { launcherUsage } from '../trivy/launcher/client.js';
import { runPool } from '../trivy/pool.js';
import { readImageScan, runImageScan, type ScanContext } from '../trivy/scan.js';
import type { Discovery, NotDeliveredReason, ScanResult, ScanTarget, Workload } from '../types.js';
import { SCAN_LABEL, VERSION } from '../version.js';
import { DeliveryQueue } from './deliveries.js';
import { Progress } from './progress.js';
import { Spool } from './spool.js';
import { summaryRecord, summaryTable, type RunSummary } from './summary.js';

export { SHUTDOWN_DELIVERY_MS } from './deliveries.js';

const NO_TIME_LEFT = 'SCAN_DEADLINE left no time to scan this image';

export interface RunContext {
  config: Config;
  env: Env;
  log: Logger;
  secrets: SecretRegistry;
  scanGroupId: string;
  startedAt: Date;
  /** Aborted on SIGTERM/SIGINT: no new scan starts, running ones are killed, finished work is still delivered. */
  shutdown: AbortSignal;
}

export async function runScan(context: RunContext): Promise<RunSummary> {
  const { config, log } = context;
  const started = context.startedAt.getTime();
  const { kubeConfig, source } = loadKubeConfig(context.env);
  const kube = createKubeClient(kubeConfig, config.kube.timeoutMs);
  log.info({ source, server: kube.server }, 'kubernetes configured');

  let workDir: string;
  try {
    workDir = await mkdtemp(path.join(os.tmpdir(), 'ephor-scanner-'));
  } catch (error) {
    log.error(
      { error: describeWriteError(error, os.tmpdir()) },
      "the run's temporary directory cannot be created: nothing was scanned or delivered",
    );
    return await finish(context, started, {
      durationMs: 0,
      interrupted: false,
      discoveryErrors: 0,
      exitCode: 1,
      namespaces: [],
      images: emptyImages(),
    });
  }
  try {
    const discoveryStarted = Date.now();
    const [discovery, trivy] = await Promise.all([
      discoverWorkloads(
        kube,
        {
          namespaces: config.scan.namespaces,
          excludeNamespaces: config.scan.excludeNamespaces,
          namespaceSelector: config.scan.namespaceSelector,
          kinds: config.scan.workloadKinds,
        },
        log,
      ).then((result) => ({ ...result, durationMs: Date.now() - discoveryStarted })),
      prepareTrivy(config, context.env, log, context.shutdown).catch((error: unknown) => error as Error),
    ]);
    const summaryBase = {
      durationMs: 0,
      interrupted: context.shutdown.aborted,
      discoveryErrors: discovery.errors.length,
      discoveryMs: discovery.durationMs,
    };
    log.info(
      {
        namespaces: discovery.namespaces.length,
        workloads: discovery.workloads.length,
        discovery_errors: discovery.errors.length,
        duration_ms: discovery.durationMs,
      },
      'discovery completed',
    );

    if (trivy instanceof Error) {
      if (!(trivy instanceof TrivyUnavailableError)) throw trivy;
      log.error({ error: trivy.message }, 'trivy cannot scan: nothing was scanned or delivered');
      return await finish(context, started, { ...summaryBase, exitCode: 1, namespaces: [], images: emptyImages() });
    }
    if (discovery.successfulLists === 0) {
      log.error(
        { errors: discovery.errors.length },
        'discovery returned nothing: every list call failed, so nothing is delivered',
      );
      return await finish(context, started, { ...summaryBase, exitCode: 1, namespaces: [], images: emptyImages() });
    }

    const plan = planScans(discovery.namespaces, discovery.workloads);
    const invalid = logInvalidReferences(plan, discovery.workloads, log);
    logPlan(plan, discovery.workloads, invalid, log);
    const scanContext: ScanContext = {
      config,
      setup: trivy,
      env: context.env,
      workDir,
      findingsDir: await makeDir(workDir, 'findings'),
      sbomDir: config.sbom.enabled ? await makeDir(workDir, 'sboms') : undefined,
    };
    if (config.registryAuth) {
      const resolver = new PullSecretResolver(kube, context.secrets, log);
      scanContext.credentials = (target) => resolver.credentialsFor(target);
    }
    const outcome = await scanAndDeliver(context, discovery, plan, trivy, scanContext, invalid);
    const exitCode = outcome.namespaces.every((n) => n.delivered) && !context.shutdown.aborted ? 0 : 1;
    return await finish(context, started, {
      ...summaryBase,
      interrupted: context.shutdown.aborted,
      exitCode,
      ...outcome,
    });
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

async function scanAndDeliver(
  context: RunContext,
  discovery: Discovery,
  plan: ScanPlan,
  trivy: TrivySetup,
  scanContext: ScanContext,
  invalid: number,
): Promise<Pick<RunSummary, 'namespaces' | 'images' | 'sboms' | 'spooled'>> {
  const { config, log } = context;
  const results = new Map<string, ScanResult>();
  // How many namespaces still need each image's findings, and how many images each namespace still waits for.
  const users = new Map(plan.targets.map((t) => [t.ref, t.namespaces.length]));
  const pending = new Map(discovery.namespaces.map((ns) => [ns, 0]));
  for (const target of plan.targets) for (const ns of target.namespaces) pending.set(ns, (pending.get(ns) ?? 0) + 1);

  const deliveries = new DeliveryQueue({
    config,
    log,
    run: runFacts(context, trivy),
    discovery,
    plan,
    resultOf: (key) => results.get(key),
    onDone: async (keys) => {
      for (const key of keys) {
        const left = (users.get(key) ?? 1) - 1;
        users.set(key, left);
        const result = results.get(key);
        if (left > 0 || !result) continue;
        results.delete(key); // every namespace that needed these findings is done with them
        if (result.ok) await rm(result.image.file, { force: true });
      }
    },
    shutdown: context.shutdown,
    spool: config.ephor.dryRun ? undefined : new Spool(config.spool.dir, config.spool.maxAgeMs, log),
    workDir: scanContext.workDir,
  });
  for (const namespace of discovery.namespaces)
    if (pending.get(namespace) === 0) deliveries.enqueueNamespace(namespace);

  const failedByReason: Partial<Record<NotDeliveredReason, number>> = {};
  if (invalid > 0) failedByReason.invalid_reference = invalid;
  const sbomSources = new Map<string, { file: string; digestRef?: string }>();
  let scanned = 0;
  const progress = new Progress(plan.targets.length, log);
  const settle = (target: ScanTarget, result: ScanResult) => {
    results.set(target.ref, result);
    progress.record(result.ok);
    if (result.ok) {
      scanned++;
      if (result.sbomFile)
        sbomSources.set(target.ref, {
          file: result.sbomFile,
          digestRef: target.ref.includes('@') ? target.ref : result.image.repoDigests[0],
        });
    } else {
      failedByReason[result.reason] = (failedByReason[result.reason] ?? 0) + 1;
    }
    for (const namespace of target.namespaces) {
      const left = (pending.get(namespace) ?? 1) - 1;
      pending.set(namespace, left);
      if (left === 0) deliveries.enqueueNamespace(namespace);
    }
  };

  const schedule = new ScanSchedule(context, scanContext);
  const killed: ScanTarget[] = [];
  const notStarted = await runPool(plan.targets, {
    // Each slot has one more scan handed over behind it, which starts the moment the slot frees (start-gate.ts).
    concurrency: config.scan.concurrency * 2,
    signal: schedule.signal,
    mayStart: () => schedule.mayStart(),
    run: (target, signal) => schedule.scan(target, signal),
    // A Trivy killed by a signal (the OOM killer) is tried once more, alone, once the others are done.
    onResult: (target, result) => {
      if (!result.ok && result.reason === 'killed') killed.push(target);
      else settle(target, result);
    },
  });
  if (killed.length > 0)
    log.warn(
      { images: killed.map((t) => t.ref) },
      'trivy was killed (out of memory?): scanning these images again, one at a time',
    );
  const retryNotStarted = await runPool(killed, {
    concurrency: 1,
    signal: schedule.signal,
    mayStart: () => schedule.mayStart(),
    run: (t, s) => schedule.scan(t, s),
    onResult: settle,
  });
  progress.stop();

  // Images never started: the run was stopped, or the deadline left no time for them.
  for (const target of [...notStarted, ...retryNotStarted]) {
    const reason = context.shutdown.aborted ? 'cancelled' : 'deadline';
    const detail = reason === 'cancelled' ? 'the run stopped before this image was scanned' : NO_TIME_LEFT;
    settle(target, { ok: false, ref: target.ref, reason, detail, durationMs: 0 });
  }
  if (schedule.deadlineReached)
    log.warn({ not_scanned: failedByReason.deadline ?? 0 }, 'SCAN_DEADLINE reached: delivering what is done');
  schedule.dispose();

  for (const namespace of discovery.namespaces) deliveries.enqueueNamespace(namespace);
  for (const [key, source] of sbomSources) deliveries.enqueueSbom(key, source);
  if (!config.ephor.dryRun) deliveries.enqueueSpooled();
  await deliveries.drained();

  const failed = Object.values(failedByReason).reduce((a, b) => a + b, 0);
  return {
    namespaces: deliveries.namespaces,
    images: { total: plan.targets.length + invalid, scanned, failed, failedByReason },
    sboms: config.sbom.enabled ? deliveries.sboms : undefined,
    spooled: deliveries.spooled.delivered + deliveries.spooled.failed > 0 ? deliveries.spooled : undefined,
  };
}

/** When scans may start (SCAN_DEADLINE), and one scan: Trivy in a slot, then its report read outside it. */
class ScanSchedule {
  readonly signal: AbortSignal;
  deadlineReached = false;
  private readonly deadline?: number;
  private readonly timer?: NodeJS.Timeout;
  private readonly stopAtDeadline = new AbortController();
  private readonly durations: number[] = [];
  /** Scans handed over that wait for a slot (no Trivy process started for them yet). */
  private waiting = 0;

  constructor(
    private readonly context: RunContext,
    private readonly scanContext: ScanContext,
  ) {
    const { deadlineMs } = context.config.scan;
    this.signal = AbortSignal.any([context.shutdown, this.stopAtDeadline.signal]);
    // One listener per Trivy call in flight (twice SCAN_CONCURRENCY handed over, plus SBOM conversions, which are
    // not limited): more than Node's default of 10 is expected, not a leak.
    setMaxListeners(0, this.signal);
    if (deadlineMs === undefined) return;
    this.deadline = context.startedAt.getTime() + deadlineMs;
    this.timer = setTimeout(
      () => {
        this.deadlineReached = true;
        this.stopAtDeadline.abort();
      },
      Math.max(this.deadline - Date.now(), 0),
    );
  }

  /** False when the time left cannot fit one more scan of the average duration seen so far, counting the scans
   * handed over before it that still wait for a slot (it starts after them). */
  mayStart(): boolean {
    if (this.deadline === undefined) return true;
    const average = this.durations.length > 0 ? this.durations.reduce((a, b) => a + b, 0) / this.durations.length : 0;
    const fits = Date.now() + average * (1 + this.waiting / this.context.config.scan.concurrency) < this.deadline;
    if (!fits) this.deadlineReached = true;
    return fits;
  }

  async scan(target: ScanTarget, signal: AbortSignal): Promise<() => Promise<ScanResult>> {
    const { log } = this.context;
    const handedOver = Date.now();
    this.waiting++;
    let waiting = true;
    const started = () => {
      if (!waiting) return;
      waiting = false;
      this.waiting--;
    };
    const run = await runImageScan(target, this.scanContext, signal, started);
    started();
    return async () => {
      const outcome = run.ok ? await readImageScan(target, run, this.scanContext, signal) : run;
      // From its Trivy start: the time it waited for a slot is not the scan's.
      const durationMs = Date.now() - (run.startedAt ?? handedOver);
      if (run.startedAt !== undefined) this.durations.push(durationMs);
      if (!outcome.ok) {
        const reason =
          outcome.reason === 'cancelled' && this.deadlineReached && !this.context.shutdown.aborted
            ? 'deadline'
            : outcome.reason;
        const level = reason === 'cancelled' || reason === 'deadline' ? 'warn' : 'error';
        const detail =
          reason !== 'deadline' ? outcome.detail : outcome.notStarted ? NO_TIME_LEFT : 'killed at SCAN_DEADLINE';
        log[level]({ image: target.ref, reason, error: detail, duration_ms: durationMs }, 'image scan failed');
        return { ok: false, ref: target.ref, reason, detail, durationMs };
      }
      const image = outcome.findings;
      log.info({ image: target.ref, vulnerabilities: image.count, duration_ms: durationMs }, 'image scanned');
      if (image.skippedEntries > 0)
        log.warn(
          { image: target.ref, entries: image.skippedEntries },
          'report entries without a vulnerability ID or package name were skipped',
        );
      if (outcome.sbomError) log.warn({ image: target.ref, error: outcome.sbomError }, 'sbom could not be generated');
      return { ok: true, ref: target.ref, image, durationMs, sbomFile: outcome.sbomFile };
    };
  }

  dispose(): void {
    clearTimeout(this.timer);
  }
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
      cache_mode: config.trivy.cacheMode,
    },
  };
}

async function finish(context: RunContext, started: number, summary: RunSummary): Promise<RunSummary> {
  summary.durationMs = Date.now() - started;
  const usage = process.resourceUsage();
  const launcher = await launcherUsage();
  summary.resources = {
    cpuUserMs: Math.round(usage.userCPUTime / 1000),
    cpuSystemMs: Math.round(usage.systemCPUTime / 1000),
    maxRssKiB: usage.maxRSS,
    launcher: launcher && {
      cpuUserMs: Math.round(launcher.userMs),
      cpuSystemMs: Math.round(launcher.systemMs),
      maxRssKiB: launcher.maxRssKiB,
    },
  };
  const record = summaryRecord(summary);
  const fields =
    context.config.log.format === 'text'
      ? { ...record, per_namespace: undefined, table: summaryTable(summary) }
      : record;
  context.log[summary.exitCode === 0 ? 'info' : 'error'](fields, 'ephor-scanner completed');
  return summary;
}

async function makeDir(parent: string, name: string): Promise<string> {
  const dir = path.join(parent, name);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** Each distinct image string that is not a valid reference, once, with where it is used. */
function logInvalidReferences(plan: ScanPlan, workloads: readonly Workload[], log: Logger): number {
  const byImage = new Map<string, { reason: string; usedBy: string[] }>();
  for (const workload of workloads) {
    for (const container of workload.containers) {
      const planned = plan.containers.get(container);
      if (!isInvalid(planned)) continue;
      const entry = byImage.get(container.specImage) ?? { reason: planned.invalid, usedBy: [] };
      entry.usedBy.push(`${workload.namespace}/${workload.kind}/${workload.name}/${container.name}`);
      byImage.set(container.specImage, entry);
    }
  }
  for (const [image, { reason, usedBy }] of byImage) {
    log.error(
      { image, reason, used_by: usedBy.slice(0, 10), uses: usedBy.length },
      'invalid image reference: not scanned',
    );
  }
  return byImage.size;
}

function logPlan(plan: ScanPlan, workloads: readonly Workload[], invalid: number, log: Logger): void {
  let byDigest = 0;
  let byTag = 0;
  for (const planned of plan.containers.values()) {
    if (isInvalid(planned)) continue;
    if (planned.tagReason) byTag++;
    else byDigest++;
  }
  const containers = workloads.reduce((n, w) => n + w.containers.length, 0);
  log.info(
    {
      unique_images: plan.targets.length,
      invalid_references: invalid,
      containers,
      containers_by_running_digest: byDigest,
      containers_by_spec_tag: byTag,
    },
    'image deduplication completed',
  );
}

function emptyImages(): RunSummary['images'] {
  return { total: 0, scanned: 0, failed: 0, failedByReason: {} };
}
