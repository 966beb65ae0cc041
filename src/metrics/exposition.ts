// The run's metrics in the Prometheus text format, built with prom-client in a Registry of their own (no default
// process metrics, nothing global: each call starts empty, so two runs in one process cannot mix).
import { Gauge, Registry } from 'prom-client';
import { SEVERITIES } from '../types.js';
import { FAILURE_REASONS, METRICS, type MetricSpec } from './catalogue.js';
import type { RunMetricsInput } from './input.js';

export interface Exposition {
  text: string;
  contentType: string;
}

/**
 * Only metrics with a value are registered: the Pushgateway (POST) keeps whatever a push does not name, and an empty
 * family would not replace anything anyway. That is how the last success survives a failed run: it is left out.
 */
export async function buildExposition(input: RunMetricsInput): Promise<Exposition> {
  const registry = new Registry();
  const gauge = (spec: MetricSpec) =>
    new Gauge({ name: spec.name, help: spec.help, labelNames: spec.labelNames, registers: [registry] });

  const finished = seconds(input.finishedAt);
  gauge(METRICS.lastRunTimestamp).set(finished);
  if (input.exitCode === 0) gauge(METRICS.lastSuccessTimestamp).set(finished);
  gauge(METRICS.lastRunExitCode).set(input.exitCode);
  gauge(METRICS.runDuration).set(Math.max(0, finished - seconds(input.startedAt)));

  const failed = FAILURE_REASONS.map((reason) => [reason, input.images.failedByReason[reason] ?? 0] as const);
  const images = gauge(METRICS.images);
  images.set({ result: 'scanned' }, input.images.scanned);
  images.set(
    { result: 'failed' },
    failed.reduce((total, [, count]) => total + count, 0),
  );
  const imagesFailed = gauge(METRICS.imagesFailed);
  for (const [reason, count] of failed) imagesFailed.set({ reason }, count);

  const containers = gauge(METRICS.containers);
  containers.set({ result: 'delivered' }, input.containers.delivered);
  containers.set({ result: 'not_delivered' }, input.containers.notDelivered);
  const namespaces = gauge(METRICS.namespaces);
  namespaces.set({ result: 'delivered' }, input.namespaces.delivered);
  namespaces.set({ result: 'failed' }, input.namespaces.failed);

  if (input.findings.length > 0) {
    const findings = gauge(METRICS.findings);
    for (const { namespace, bySeverity } of input.findings) {
      for (const severity of SEVERITIES) findings.set({ namespace, severity }, bySeverity[severity]);
    }
  }
  gauge(METRICS.postedBytes).set(input.postedBytes);
  if (input.vulnerabilityDbUpdatedAt)
    gauge(METRICS.vulnerabilityDbUpdated).set(seconds(input.vulnerabilityDbUpdatedAt));
  if (input.incrementalCache) gauge(METRICS.incrementalCacheBytes).set(input.incrementalCache.bytes);
  gauge(METRICS.info).set({ version: input.scannerVersion, trivy_version: input.trivyVersion ?? 'unknown' }, 1);

  return { text: await registry.metrics(), contentType: registry.contentType };
}

function seconds(date: Date): number {
  return date.getTime() / 1000;
}
