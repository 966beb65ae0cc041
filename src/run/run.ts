// One scan run: wires the stages (discover → plan → scan → build payloads → deliver) and owns the run's
// scan_group_id, its temporary directory and its shutdown. Namespaces are delivered, one POST at a time, as soon
// as all their images are scanned, while the other scans go on.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Config, Env } from '../config/index.js';
import { deliverScan } from '../ephor/client.js';
import { buildNamespacePayload, type RunFacts } from '../ephor/payload.js';
import { isInvalid, planScans, type ScanPlan } from '../images/plan.js';
import { createKubeClient, loadKubeConfig } from '../kube/client.js';
import { discoverWorkloads } from '../kube/discover.js';
import type { Logger } from '../log.js';
import { mapReport } from '../report/map-image.js';
import { TrivyUnavailableError, prepareTrivy, type TrivySetup } from '../trivy/database.js';
import { scanAll } from '../trivy/pool.js';
import { scanImage } from '../trivy/scan.js';
import type { Discovery, NotDeliveredReason, ScanResult, ScanTarget, Workload } from '../types.js';
import { SCAN_LABEL, VERSION } from '../version.js';
import { Progress } from './progress.js';
import { summaryRecord, summaryTable, type NamespaceOutcome, type RunSummary } from './summary.js';

/** After SIGTERM, how long finished namespaces may still be delivered (Kubernetes kills the pod after 30 s). */
export const SHUTDOWN_DELIVERY_MS = 20_000;

export interface RunContext {
  config: Config;
  env: Env;
  log: Logger;
  scanGroupId: string;
  startedAt: Date;
  /** Aborted on SIGTERM/SIGINT: no new scan starts, running ones are killed, finished work is still delivered. */
  shutdown: AbortSignal;
}

export async function runScan(context: RunContext): Promise<RunSummary> {
  const { config, log } = context;
  const started = Date.now();
  const { kubeConfig, source } = loadKubeConfig(context.env);
  const kube = createKubeClient(kubeConfig, config.kube.timeoutMs);
  log.info({ source, server: kube.server }, 'kubernetes configured');

  const workDir = await mkdtemp(path.join(os.tmpdir(), 'ephor-scanner-'));
  try {
    const [discovery, trivy] = await Promise.all([
      discoverWorkloads(kube, { namespaces: config.scan.namespaces, kinds: config.scan.workloadKinds }, log),
      prepareTrivy(config, context.env, log, context.shutdown).catch((error: unknown) => error as Error),
    ]);
    const summaryBase = { durationMs: 0, interrupted: context.shutdown.aborted, discoveryErrors: discovery.errors.length };
    log.info({ namespaces: discovery.namespaces.length, workloads: discovery.workloads.length, discovery_errors: discovery.errors.length }, 'discovery completed');

    if (trivy instanceof Error) {
      if (!(trivy instanceof TrivyUnavailableError)) throw trivy;
      log.error({ error: trivy.message }, 'trivy cannot scan: nothing was scanned or delivered');
      return finish(context, started, { ...summaryBase, exitCode: 1, namespaces: [], images: emptyImages() });
    }
    if (discovery.successfulLists === 0) {
      log.error({ errors: discovery.errors.length }, 'discovery returned nothing: every list call failed, so nothing is delivered');
      return finish(context, started, { ...summaryBase, exitCode: 1, namespaces: [], images: emptyImages() });
    }

    const plan = planScans(discovery.namespaces, discovery.workloads);
    const invalid = logInvalidReferences(plan, discovery.workloads, log);
    log.info({ unique_images: plan.targets.length, invalid_references: invalid, containers: countContainers(discovery.workloads) }, 'image deduplication completed');
    const outcome = await scanAndDeliver(context, discovery, plan, trivy, workDir);
    const exitCode = outcome.namespaces.every((n) => n.delivered) && !context.shutdown.aborted ? 0 : 1;
    return finish(context, started, { ...summaryBase, interrupted: context.shutdown.aborted, exitCode, ...outcome });
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

async function scanAndDeliver(context: RunContext, discovery: Discovery, plan: ScanPlan, trivy: TrivySetup, workDir: string): Promise<Pick<RunSummary, 'namespaces' | 'images'>> {
  const { config, log } = context;
  const results = new Map<string, ScanResult>();
  const run = runFacts(context, trivy);
  const workloadsOf = groupByNamespace(discovery.workloads);
  const pending = new Map(discovery.namespaces.map((ns) => [ns, 0]));
  const users = new Map<string, number>();
  for (const target of plan.targets) {
    users.set(target.ref, target.namespaces.length);
    for (const ns of target.namespaces) pending.set(ns, (pending.get(ns) ?? 0) + 1);
  }

  // Deliveries run one after another (concurrent POSTs corrupt Ephor's data), in the order namespaces complete.
  const cutoff = new AbortController();
  const onShutdown = () => {
    log.warn({ grace_s: SHUTDOWN_DELIVERY_MS / 1000 }, 'shutdown requested: no new scans; delivering what is finished');
    setTimeout(() => cutoff.abort(), SHUTDOWN_DELIVERY_MS).unref();
  };
  if (context.shutdown.aborted) onShutdown();
  else context.shutdown.addEventListener('abort', onShutdown, { once: true });

  const outcomes: NamespaceOutcome[] = [];
  const queued = new Set<string>();
  let chain = Promise.resolve();
  const enqueue = (namespace: string) => {
    if (queued.has(namespace)) return;
    queued.add(namespace);
    chain = chain.then(async () => {
      outcomes.push(await deliverNamespace(namespace));
    });
  };

  const deliverNamespace = async (namespace: string): Promise<NamespaceOutcome> => {
    const errors = discovery.errors.filter((e) => e.namespace === namespace);
    const built = buildNamespacePayload({
      namespace,
      workloads: workloadsOf.get(namespace) ?? [],
      plan,
      resultOf: (key) => results.get(key),
      discoveryErrors: errors,
      discoveredNothing: errors.length >= config.scan.workloadKinds.length,
      run,
      completedAt: new Date().toISOString(),
    });
    for (const key of built.scanKeys) release(key);
    const { payload, stats } = built;
    const result = await deliverScan(payload, {
      apiUrl: config.ephor.apiUrl,
      auth: config.ephor.auth,
      timeoutMs: config.ephor.timeoutMs,
      maxRetries: config.ephor.maxRetries,
      log,
      cutoff: cutoff.signal,
    });
    if (result.ok) {
      const r = result.response;
      log.info(
        { namespace, scan_id: r.scan_id, status: payload.status, workloads: r.workloads, vulnerabilities: r.vulnerabilities, critical: r.critical_vulns, auto_resolved: r.auto_resolved, reopened: r.reopened, not_delivered_containers: stats.containersNotDelivered, bytes: result.bytes, attempts: result.attempts },
        'scan results delivered',
      );
      return { namespace, delivered: true, status: payload.status, scanId: r.scan_id, autoResolved: r.auto_resolved, reopened: r.reopened, bytes: result.bytes, stats };
    }
    const problem = result.problem;
    log.error(
      { namespace, error: result.error, status: result.status, attempts: result.attempts, bytes: result.bytes, problem_type: problem?.type, trace_id: problem?.trace_id, field_errors: problem?.errors?.slice(0, 20) },
      'failed to deliver scan results',
    );
    return { namespace, delivered: false, status: payload.status, error: result.error, bytes: result.bytes, stats };
  };

  const release = (key: string) => {
    const left = (users.get(key) ?? 1) - 1;
    users.set(key, left);
    if (left <= 0) results.delete(key); // every namespace that needed these findings has been built
  };

  for (const namespace of discovery.namespaces) if (pending.get(namespace) === 0) enqueue(namespace);

  const failedByReason: Partial<Record<NotDeliveredReason, number>> = {};
  const invalid = [...plan.images.values()].filter(isInvalid).length;
  if (invalid > 0) failedByReason.invalid_reference = invalid;
  let scanned = 0;
  let settled = 0;
  const progress = new Progress(plan.targets.length, log);
  await scanAll(plan.targets, {
    concurrency: config.scan.concurrency,
    signal: context.shutdown,
    scan: (target, signal) => scanTarget(target, { context, trivy, workDir, signal }),
    onResult: (target, result) => {
      results.set(target.ref, result);
      settled++;
      progress.record(result.ok);
      if (result.ok) scanned++;
      else failedByReason[result.reason] = (failedByReason[result.reason] ?? 0) + 1;
      for (const namespace of target.namespaces) {
        const left = (pending.get(namespace) ?? 1) - 1;
        pending.set(namespace, left);
        if (left === 0) enqueue(namespace);
      }
    },
  });
  progress.stop();

  // After a shutdown some images were never scanned; their namespaces are delivered with what is finished.
  const notStarted = plan.targets.length - settled;
  if (notStarted > 0) failedByReason.cancelled = (failedByReason.cancelled ?? 0) + notStarted;
  for (const namespace of discovery.namespaces) enqueue(namespace);
  await chain;
  context.shutdown.removeEventListener('abort', onShutdown);

  const order = new Map(discovery.namespaces.map((ns, i) => [ns, i]));
  outcomes.sort((a, b) => order.get(a.namespace)! - order.get(b.namespace)!);
  const failed = Object.values(failedByReason).reduce((a, b) => a + (b ?? 0), 0);
  return { namespaces: outcomes, images: { total: plan.targets.length + invalid, scanned, failed, failedByReason } };
}

async function scanTarget(
  target: ScanTarget,
  { context, trivy, workDir, signal }: { context: RunContext; trivy: TrivySetup; workDir: string; signal: AbortSignal },
): Promise<ScanResult> {
  const started = Date.now();
  const outcome = await scanImage(target.ref, { config: context.config, setup: trivy, env: context.env, workDir }, signal);
  const durationMs = Date.now() - started;
  if (!outcome.ok) {
    const level = outcome.reason === 'cancelled' ? 'warn' : 'error';
    context.log[level]({ image: target.ref, reason: outcome.reason, error: outcome.detail, duration_ms: durationMs }, 'image scan failed');
    return { ok: false, ref: target.ref, reason: outcome.reason, detail: outcome.detail, durationMs };
  }
  const image = mapReport(outcome.report, context.config.scan.severities);
  context.log.info({ image: target.ref, vulnerabilities: image.vulnerabilities.length, duration_ms: durationMs }, 'image scanned');
  if (image.skippedEntries > 0) context.log.warn({ image: target.ref, entries: image.skippedEntries }, 'report entries without a vulnerability ID or package name were skipped');
  return { ok: true, ref: target.ref, image, durationMs };
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
      vulnerability_db: { updated_at: trivy.db.updatedAt ?? null, downloaded_at: trivy.db.downloadedAt ?? null, download_error: trivy.db.downloadError },
      java_db: { ready: trivy.javaDb.ready, updated_at: trivy.javaDb.updatedAt ?? null },
      severities: config.scan.severities,
      workload_types: config.scan.workloadKinds,
      cache_mode: config.trivy.cacheMode,
    },
  };
}

function finish(context: RunContext, started: number, summary: RunSummary): RunSummary {
  summary.durationMs = Date.now() - started;
  const record = summaryRecord(summary);
  const fields = context.config.log.format === 'text' ? { ...record, per_namespace: undefined, table: summaryTable(summary) } : record;
  context.log[summary.exitCode === 0 ? 'info' : 'error'](fields, 'ephor-scanner completed');
  return summary;
}

function groupByNamespace(workloads: readonly Workload[]): Map<string, Workload[]> {
  const groups = new Map<string, Workload[]>();
  for (const workload of workloads) {
    const group = groups.get(workload.namespace);
    if (group) group.push(workload);
    else groups.set(workload.namespace, [workload]);
  }
  return groups;
}

/** Each distinct image string that is not a valid reference, once, with where it is used. */
function logInvalidReferences(plan: ScanPlan, workloads: readonly Workload[], log: Logger): number {
  let count = 0;
  for (const [image, planned] of plan.images) {
    if (!isInvalid(planned)) continue;
    count++;
    const usedBy = workloads.flatMap((w) => w.containers.filter((c) => c.specImage === image).map((c) => `${w.namespace}/${w.kind}/${w.name}/${c.name}`));
    log.error({ image, reason: planned.invalid, used_by: usedBy.slice(0, 10), uses: usedBy.length }, 'invalid image reference: not scanned');
  }
  return count;
}

function countContainers(workloads: readonly Workload[]): number {
  return workloads.reduce((n, w) => n + w.containers.length, 0);
}

function emptyImages(): RunSummary['images'] {
  return { total: 0, scanned: 0, failed: 0, failedByReason: {} };
}
