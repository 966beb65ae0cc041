// The run's final summary: one structured record (JSON logs), plus a table of namespaces × severities for text logs,
// and the most frequent failure reasons with what to do about them.
import type { NamespaceStats } from '../ephor/payload.js';
import type { LayerCacheSummary } from '../trivy/layer-cache.js';
import { SEVERITIES, type NotDeliveredReason, type Severity } from '../types.js';

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

export interface RunSummary {
  exitCode: number;
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
}

export const FIXES: Record<NotDeliveredReason, string> = {
  not_found: "the image or tag does not exist in its registry: fix the workload's image reference",
  unauthorized: "the registry refused the pull: add the registry's pull secret, or give Trivy credentials for it",
  rate_limited: 'the registry throttled pulls: authenticate pulls, use a registry mirror, or lower SCAN_CONCURRENCY',
  timeout: 'the scan took longer than TRIVY_TIMEOUT: raise it, or give the pod more CPU',
  killed: "Trivy was killed (out of memory?): raise the pod's memory limit or lower SCAN_CONCURRENCY",
  db_error:
    'Trivy could not use its vulnerability database: check TRIVY_CACHE_DIR, TRIVY_DB_REPO and TRIVY_SKIP_DB_UPDATE',
  invalid_output: 'Trivy wrote no readable report: check the Trivy version and the free space of TMPDIR',
  no_space:
    'the pod ran out of temporary disk space: give it a larger /tmp (chart value tmp.sizeLimit) or lower SCAN_CONCURRENCY',
  deadline: 'SCAN_DEADLINE left no time to scan it: raise activeDeadlineSeconds, or SCAN_CONCURRENCY',
  other: 'see the "image scan failed" log line of that image',
  invalid_reference: "the workload's image reference is not valid: fix it in the workload spec",
  cancelled: 'the run stopped before this image was scanned: it is scanned in the next run',
};

export function summaryRecord(summary: RunSummary): Record<string, unknown> {
  const findings = totalFindings(summary.namespaces);
  const delivered = summary.namespaces.filter((n) => n.delivered).length;
  return {
    exit_code: summary.exitCode,
    duration_s: Math.round(summary.durationMs / 100) / 10,
    interrupted: summary.interrupted || undefined,
    namespaces: { total: summary.namespaces.length, delivered, failed: summary.namespaces.length - delivered },
    images: {
      total: summary.images.total,
      scanned: summary.images.scanned,
      failed: summary.images.failed,
      failed_by_reason: summary.images.failedByReason,
    },
    containers: {
      delivered: sum(summary.namespaces, (n) => n.stats.containersDelivered),
      not_delivered: sum(summary.namespaces, (n) => n.stats.containersNotDelivered),
    },
    findings,
    discovery_errors: summary.discoveryErrors,
    discovery_ms: summary.discoveryMs,
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
    per_namespace: summary.namespaces.map((n) => ({
      namespace: n.namespace,
      delivered: n.delivered,
      status: n.status,
      scan_id: n.scanId,
      workloads: n.stats.workloads,
      containers_delivered: n.stats.containersDelivered,
      containers_not_delivered: n.stats.containersNotDelivered,
      findings: n.stats.findings,
      auto_resolved: n.autoResolved,
      reopened: n.reopened,
      bytes: n.bytes,
      parts: n.parts,
      spooled: n.spooled,
      error: n.error,
    })),
  };
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

/** A fixed-width table for text logs. */
export function summaryTable(summary: RunSummary): string {
  const header = ['NAMESPACE', 'RESULT', 'WORKLOADS', 'CONTAINERS', 'NOT SCANNED', ...SEVERITIES];
  const rows = summary.namespaces.map((n) => [
    n.namespace,
    n.delivered ? (n.status === 'failed' ? 'sent as failed' : 'delivered') : 'NOT DELIVERED',
    String(n.stats.workloads),
    String(n.stats.containersDelivered),
    String(n.stats.containersNotDelivered),
    ...SEVERITIES.map((s) => String(n.stats.findings[s])),
  ]);
  const totals = totalFindings(summary.namespaces);
  rows.push([
    'TOTAL',
    `${summary.namespaces.filter((n) => n.delivered).length}/${summary.namespaces.length}`,
    String(sum(summary.namespaces, (n) => n.stats.workloads)),
    String(sum(summary.namespaces, (n) => n.stats.containersDelivered)),
    String(sum(summary.namespaces, (n) => n.stats.containersNotDelivered)),
    ...SEVERITIES.map((s) => String(totals[s])),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const lines = [line(header), ...rows.map(line)];
  const failures = topFailures(summary.images.failedByReason);
  if (failures.length > 0) {
    lines.push('', 'Images not scanned, by reason:');
    for (const f of failures) lines.push(`  ${f.reason} (${f.images}): ${f.fix}`);
  }
  return lines.join('\n');
}

function totalFindings(namespaces: NamespaceOutcome[]): Record<Severity, number> {
  const totals: Record<Severity, number> = { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 };
  for (const n of namespaces) for (const s of SEVERITIES) totals[s] += n.delivered ? n.stats.findings[s] : 0;
  return totals;
}

function sum<T>(items: T[], pick: (item: T) => number): number {
  return items.reduce((total, item) => total + pick(item), 0);
}
