// What the metrics stage needs from a run: plain data, filled from the run's summary by one adapter, so that the
// stage knows nothing of the run's internals and the run knows nothing of Prometheus.
import { deliveredTotals, type RunSummary } from '../run/summary.js';
import { SEVERITIES, type NotDeliveredReason, type Severity } from '../types.js';

export interface RunMetricsInput {
  /** 0 (everything delivered) or 1 (something was not); runs that stop at configuration (2) push nothing. */
  exitCode: number;
  startedAt: Date;
  finishedAt: Date;
  images: {
    scanned: number;
    failedByReason: Partial<Record<NotDeliveredReason, number>>;
  };
  /** Containers of the delivered namespaces, and containers whose image was not scanned (the summary's figures). */
  containers: { delivered: number; notDelivered: number };
  namespaces: { delivered: number; failed: number };
  /** Findings delivered to Ephor, per delivered namespace (a namespace that was not delivered has no entry). */
  findings: Array<{ namespace: string; bySeverity: Record<Severity, number> }>;
  /** Bytes of the scan bodies of the delivered namespaces (a dry run: written instead of posted). */
  postedBytes: number;
  /** When the vulnerability DB in use was built (its metadata's UpdatedAt); absent when unknown this run. */
  vulnerabilityDbUpdatedAt?: Date;
  /** The incremental cache, when the run has one: the layer cache of server and shared modes (its entries are not
   * counted: Trivy keeps them in one bbolt file). */
  incrementalCache?: { bytes: number };
  scannerVersion: string;
  trivyVersion?: string;
}

/** Facts of the run that its summary does not hold. */
export interface RunFactsForMetrics {
  startedAt: Date;
  scannerVersion: string;
}

/**
 * The run's summary → the metrics input. Containers, findings and bytes are the summary's delivered figures
 * (deliveredTotals: the TOTAL row's), so that a graph and the run's log never disagree.
 */
export function metricsInputFromSummary(summary: RunSummary, facts: RunFactsForMetrics): RunMetricsInput {
  const delivered = summary.namespaces.filter((n) => n.delivered);
  const totals = deliveredTotals(summary.namespaces);
  const dbUpdatedAt = summary.trivy?.dbUpdatedAt;
  const dbTime = dbUpdatedAt ? new Date(dbUpdatedAt) : undefined;
  return {
    exitCode: summary.exitCode,
    startedAt: facts.startedAt,
    finishedAt: new Date(facts.startedAt.getTime() + summary.durationMs),
    images: { scanned: summary.images.scanned, failedByReason: summary.images.failedByReason },
    containers: {
      delivered: totals.containers,
      notDelivered: sum(summary.namespaces.map((n) => n.stats.containersNotDelivered)),
    },
    namespaces: { delivered: totals.namespaces, failed: summary.namespaces.length - totals.namespaces },
    findings: delivered.map((n) => ({ namespace: n.namespace, bySeverity: copySeverities(n.stats.findings) })),
    postedBytes: totals.bytes,
    vulnerabilityDbUpdatedAt: dbTime && Number.isFinite(dbTime.getTime()) ? dbTime : undefined,
    // The layer cache of server and shared modes is the incremental cache: its size as measured after the run.
    incrementalCache: summary.layerCache ? { bytes: summary.layerCache.bytesAfter } : undefined,
    scannerVersion: facts.scannerVersion,
    trivyVersion: summary.trivy?.version,
  };
}

function copySeverities(counts: Record<Severity, number>): Record<Severity, number> {
  return Object.fromEntries(SEVERITIES.map((s) => [s, counts[s]])) as Record<Severity, number>;
}

function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0);
}
