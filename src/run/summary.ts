// The run's final summary: one structured record (JSON logs), plus a table of namespaces × severities for text logs,
// and the most frequent failure reasons with what to do about them. Containers and findings are counted as
// delivered: a namespace that was not delivered counts none of them, in its row, in the TOTAL row, in the record
// and in the metrics (deliveredTotals is the one definition).
import type { NamespaceStats } from '../ephor/payload.js';
import type { LayerCacheSummary } from '../trivy/layer-cache.js';
import { SEVERITIES, type NotDeliveredReason, type Severity } from '../types.js';
import { denialSentence, type ForbiddenList } from './permission-gaps.js';

export interface NamespaceOutcome {
  namespace: string;
  delivered: boolean;
  status?: 'completed' | 'failed';
  scanId?: number;
  autoResolved?: number;
  reopened?: number;
  bytes?: number;
  /** Number of POSTs the namespace took (EPHOR_MAX_PAYLOAD_BYTES). */
  parts?: number;
  /** Not delivered, but written to the spool for the next run. */
  spooled?: boolean;
  error?: string;
  stats: NamespaceStats;
}

export interface SbomCounts {
  delivered: number;
  failed: number;
  skipped: number;
}

export interface ProcessResources {
  cpuUserMs: number;
  cpuSystemMs: number;
  maxRssKiB: number;
}

function resourceFields(resources: ProcessResources) {
  return {
    cpu_user_s: resources.cpuUserMs / 1000,
    cpu_system_s: resources.cpuSystemMs / 1000,
    max_rss_mib: Math.round(resources.maxRssKiB / 102.4) / 10,
  };
}

/** What became of the run lock (README "Run lock"), for the summary. */
export interface RunLockOutcome {
  /**
   * acquired: held from before discovery to after the last POST; unlocked: the Lease API refused it (an older
   * chart's RBAC) and the run went on without it; off: RUN_LOCK=none; dry-run: a dry run posts nothing and takes no
   * lock; not-acquired: not taken within RUN_LOCK_WAIT (or the API failed): nothing was scanned or posted; lost:
   * another run took it, or it could not be renewed in time: nothing more was posted or spooled.
   */
  state: 'acquired' | 'unlocked' | 'off' | 'dry-run' | 'not-acquired' | 'lost';
  /** `namespace/name` of the Lease. */
  lease?: string;
  /** The other run that held the lock (not-acquired) or took it (lost). */
  holder?: string;
  /** Why, in one line (not-acquired, lost, unlocked). */
  message?: string;
}

export interface RunSummary {
  exitCode: number;
  /** The run lock; absent only when the run stopped before it was asked for (no temporary directory). */
  lock?: RunLockOutcome;
  /** The Trivy layer cache (TRIVY_CACHE_DIR/fanal) before and after the run, in the modes that keep one there. */
  layerCache?: LayerCacheSummary;
  /** Discovery's duration (ms). */
  discoveryMs?: number;
  /** The scanner process's own CPU time and peak memory (Trivy processes excluded). */
  resources?: ProcessResources & {
    /** The Trivy launcher process (src/trivy/launcher), when it ran: part of the scanner's own cost. */
    launcher?: ProcessResources;
  };
  /** Payloads of earlier runs delivered from the spool (or still failing). */
  spooled?: { delivered: number; failed: number };
  /** Present when SBOM_ENABLED. */
  sboms?: SbomCounts;
  durationMs: number;
  interrupted: boolean;
  namespaces: NamespaceOutcome[];
  images: {
    total: number;
    scanned: number;
    failed: number;
    failedByReason: Partial<Record<NotDeliveredReason, number>>;
  };
  discoveryErrors: number;
  /** Lists RBAC refused during discovery, each with its missing rule (absent: none, or no discovery). */
  forbidden?: ForbiddenList[];
  /** Trivy as the run prepared it (absent when the run stopped before, or Trivy could not be used). */
  trivy?: TrivyFacts;
}

export interface TrivyFacts {
  version?: string;
  /** The vulnerability DB's build time (its metadata's UpdatedAt, RFC 3339). */
  dbUpdatedAt?: string;
}

/** What the run delivered, summed over the namespaces it delivered: the TOTAL row, the record and the metrics. */
export interface DeliveredTotals {
  namespaces: number;
  containers: number;
  findings: Record<Severity, number>;
  bytes: number;
}

export const FIXES: Record<NotDeliveredReason, string> = {
  not_found: "the image or tag does not exist in its registry: fix the workload's image reference",
  platform_not_found:
    'the image has no variant for the platform it was scanned for: when nodes could not be listed, Trivy picks ' +
    "linux/amd64 (grant list on nodes, see scan_config.platforms); else the image does not support its node's platform",
  unauthorized: "the registry refused the pull: add the registry's pull secret, or give Trivy credentials for it",
  rate_limited: 'the registry throttled pulls: authenticate pulls, use a registry mirror, or lower SCAN_CONCURRENCY',
  timeout: 'the scan took longer than TRIVY_TIMEOUT: raise it, or give the pod more CPU',
  killed: "Trivy was killed (out of memory?): raise the pod's memory limit or lower SCAN_CONCURRENCY",
  db_error:
    'Trivy could not use its vulnerability database: check TRIVY_CACHE_DIR, TRIVY_DB_REPO and TRIVY_SKIP_DB_UPDATE',
  invalid_output: 'Trivy wrote no readable report: check the Trivy version and the free space of TMPDIR',
  no_space:
    'the pod ran out of temporary disk space: give it a larger /tmp ' +
    '(chart value tmp.sizeLimit) or lower SCAN_CONCURRENCY',
  deadline: 'SCAN_DEADLINE left no time to scan it: raise activeDeadlineSeconds, or SCAN_CONCURRENCY',
  other: 'see the "image scan failed" log line of that image',
  invalid_reference: "the workload's image reference is not valid: fix it in the workload spec",
  cancelled: 'the run stopped before this image was scanned: it is scanned in the next run',
  shard_lost:
    'the shard that had it stopped answering: ' +
    'see that Pod (kubectl describe, its logs); raise SHARD_TIMEOUT if it is just slow',
};

export function summaryRecord(summary: RunSummary): Record<string, unknown> {
  const delivered = deliveredTotals(summary.namespaces);
  const forbidden = summary.forbidden ?? [];
  return {
    exit_code: summary.exitCode,
    duration_s: Math.round(summary.durationMs / 100) / 10,
    interrupted: summary.interrupted || undefined,
    namespaces: {
      total: summary.namespaces.length,
      delivered: delivered.namespaces,
      failed: summary.namespaces.length - delivered.namespaces,
    },
    images: {
      total: summary.images.total,
      scanned: summary.images.scanned,
      failed: summary.images.failed,
      failed_by_reason: summary.images.failedByReason,
    },
    containers: {
      delivered: delivered.containers,
      not_delivered: sum(summary.namespaces, (n) => n.stats.containersNotDelivered),
      by_platform: containersByPlatform(summary.namespaces),
    },
    findings: delivered.findings,
    run_lock: summary.lock,
    discovery_errors: summary.discoveryErrors,
    discovery_ms: summary.discoveryMs,
    forbidden: forbidden.length > 0 ? forbidden.map(forbiddenEntry) : undefined,
    trivy: summary.trivy && { version: summary.trivy.version, db_updated_at: summary.trivy.dbUpdatedAt },
    sboms: summary.sboms,
    layer_cache: summary.layerCache && {
      bytes_before: summary.layerCache.bytesBefore,
      bytes_after: summary.layerCache.bytesAfter,
      cleared: summary.layerCache.cleared,
    },
    spooled_earlier_runs: summary.spooled,
    resources: summary.resources && {
      ...resourceFields(summary.resources),
      launcher: summary.resources.launcher && resourceFields(summary.resources.launcher),
    },
    top_failures: topFailures(summary.images.failedByReason),
    per_namespace: summary.namespaces.map((n) => namespaceEntry(n, forbidden)),
  };
}

function namespaceEntry(n: NamespaceOutcome, forbidden: readonly ForbiddenList[]): Record<string, unknown> {
  const gaps = forbidden.filter((gap) => gap.namespace === n.namespace);
  return {
    namespace: n.namespace,
    delivered: n.delivered,
    status: n.status,
    scan_id: n.scanId,
    workloads: n.stats.workloads,
    containers_delivered: n.delivered ? n.stats.containersDelivered : 0,
    containers_not_delivered: n.stats.containersNotDelivered,
    findings: n.delivered ? n.stats.findings : noFindings(),
    // Found but not delivered (spooled for the next run, when `spooled`): not counted as findings.
    findings_not_delivered: n.delivered ? undefined : n.stats.findings,
    forbidden:
      gaps.length > 0
        ? gaps.map(({ resource, missingRule }) => ({ list: resource, missing_rbac: missingRule }))
        : undefined,
    auto_resolved: n.autoResolved,
    reopened: n.reopened,
    bytes: n.bytes,
    parts: n.parts,
    spooled: n.spooled,
    error: n.error,
  };
}

function forbiddenEntry(gap: ForbiddenList): Record<string, unknown> {
  return { namespace: gap.namespace || undefined, list: gap.resource, missing_rbac: gap.missingRule };
}

export function topFailures(
  byReason: Partial<Record<NotDeliveredReason, number>>,
  limit = 3,
): Array<{ reason: string; images: number; fix: string }> {
  return (Object.entries(byReason) as Array<[NotDeliveredReason, number]>)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, limit)
    .map(([reason, images]) => ({ reason, images, fix: FIXES[reason] }));
}

/** A fixed-width table for text logs, with what its figures mean, the forbidden lists and the top failures. */
export function summaryTable(summary: RunSummary): string {
  const header = ['NAMESPACE', 'RESULT', 'WORKLOADS', 'CONTAINERS', 'NOT SCANNED', ...SEVERITIES];
  const forbidden = summary.forbidden ?? [];
  const partly = new Set(forbidden.map((gap) => gap.namespace));
  const rows = summary.namespaces.map((n) => [
    n.namespace,
    `${resultOf(n)}${partly.has(n.namespace) ? '*' : ''}`,
    String(n.stats.workloads),
    // "-": nothing of the namespace was delivered, so none of its containers or findings are counted.
    n.delivered ? String(n.stats.containersDelivered) : '-',
    String(n.stats.containersNotDelivered),
    ...SEVERITIES.map((s) => (n.delivered ? String(n.stats.findings[s]) : '-')),
  ]);
  const totals = deliveredTotals(summary.namespaces);
  rows.push([
    'TOTAL',
    `${totals.namespaces}/${summary.namespaces.length}`,
    String(sum(summary.namespaces, (n) => n.stats.workloads)),
    String(totals.containers),
    String(sum(summary.namespaces, (n) => n.stats.containersNotDelivered)),
    ...SEVERITIES.map((s) => String(totals.findings[s])),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const lines = [line(header), ...rows.map(line)];
  lines.push('', 'CONTAINERS and findings: delivered by this run ("-": namespace not delivered); TOTAL sums the rows.');
  lines.push(...forbiddenLines(forbidden));
  const platforms = Object.entries(containersByPlatform(summary.namespaces) ?? {});
  if (platforms.length > 0)
    lines.push('', `Containers by platform: ${platforms.map(([p, n]) => `${p} ${n}`).join(', ')}`);
  const lock = lockLine(summary.lock);
  if (lock) lines.push('', lock);
  const failures = topFailures(summary.images.failedByReason);
  if (failures.length > 0) {
    lines.push('', 'Images not scanned, by reason:');
    for (const f of failures) lines.push(`  ${f.reason} (${f.images}): ${f.fix}`);
  }
  return lines.join('\n');
}

function resultOf(n: NamespaceOutcome): string {
  if (!n.delivered) return 'NOT DELIVERED';
  return n.status === 'failed' ? 'sent as failed' : 'delivered';
}

const LOCK_WORDS: Partial<Record<RunLockOutcome['state'], string>> = {
  'not-acquired': 'NOT ACQUIRED',
  lost: 'LOST',
  unlocked: 'UNAVAILABLE',
};

/** A line under the table when the lock is worth a look: not taken, lost, or not available. */
function lockLine(lock: RunLockOutcome | undefined): string | undefined {
  const word = lock && LOCK_WORDS[lock.state];
  if (!lock || !word) return undefined;
  const lease = lock.lease ? ` ${lock.lease}` : '';
  return `Run lock${lease} ${word}${lock.message ? `: ${lock.message}` : ''}`;
}

/**
 * The containers of the bodies by the platform they were scanned for (delivered namespaces only, as
 * `containers.delivered`).
 */
function containersByPlatform(namespaces: NamespaceOutcome[]): Record<string, number> | undefined {
  const totals: Record<string, number> = {};
  for (const n of namespaces) {
    if (!n.delivered) continue;
    for (const [platform, count] of Object.entries(n.stats.byPlatform ?? {}))
      totals[platform] = (totals[platform] ?? 0) + count;
  }
  const sorted = Object.keys(totals).sort();
  return sorted.length > 0 ? Object.fromEntries(sorted.map((p) => [p, totals[p]!])) : undefined;
}

/** Each refused list in check's words, with its rule; `*` marks the namespaces in the table. */
function forbiddenLines(forbidden: readonly ForbiddenList[]): string[] {
  if (forbidden.length === 0) return [];
  const lines = ['', '* partly forbidden: RBAC refused these lists, and the run went on without them:'];
  for (const gap of forbidden) {
    lines.push(`  ${denialSentence({ verb: 'list', ...gap })}`);
    lines.push(`    fix: ${gap.missingRule}`);
  }
  return lines;
}

/** Containers and findings of the delivered namespaces only (a dry run: written). */
export function deliveredTotals(namespaces: readonly NamespaceOutcome[]): DeliveredTotals {
  const delivered = namespaces.filter((n) => n.delivered);
  const findings = noFindings();
  for (const n of delivered) for (const s of SEVERITIES) findings[s] += n.stats.findings[s];
  return {
    namespaces: delivered.length,
    containers: sum(delivered, (n) => n.stats.containersDelivered),
    findings,
    bytes: sum(delivered, (n) => n.bytes ?? 0),
  };
}

function noFindings(): Record<Severity, number> {
  return { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 };
}

function sum<T>(items: readonly T[], pick: (item: T) => number): number {
  return items.reduce((total, item) => total + pick(item), 0);
}
