// Every metric the scanner pushes. All are gauges: a batch run reports the state it ended in, and each push replaces
// the previous values (a counter would reset with every new process and `rate()` over one sample per run means
// nothing). Units are in the names (seconds, bytes); counts have none. Labels have bounded values only: results and
// reasons are fixed sets, severities are Trivy's five, namespaces are bounded by SCAN_NAMESPACES; no image, CVE or
// workload ever becomes a label value (an image label would create a new series for every tag ever deployed).
import { NOT_DELIVERED_REASONS, type NotDeliveredReason } from '../types.js';

export interface MetricSpec {
  name: string;
  help: string;
  labelNames: readonly string[];
}

function metric(name: string, help: string, labelNames: readonly string[] = []): MetricSpec {
  return { name: `ephor_scanner_${name}`, help, labelNames };
}

export const METRICS = {
  lastRunTimestamp: metric('last_run_timestamp_seconds', 'Unix time the last run finished, whatever its result.'),
  lastSuccessTimestamp: metric(
    'last_success_timestamp_seconds',
    'Unix time the last successful run (exit code 0) finished; a failed run leaves it unchanged.',
  ),
  lastRunExitCode: metric('last_run_exit_code', 'Exit code of the last run: 0 everything delivered, 1 something not.'),
  runDuration: metric('run_duration_seconds', 'Duration of the last run.'),
  images: metric('images', 'Unique images of the last run, by result (scanned or failed).', ['result']),
  imagesFailed: metric('images_failed', 'Images of the last run that could not be scanned, by reason.', ['reason']),
  containers: metric(
    'containers',
    'Containers of the last run, by result: ' +
      'delivered (with their findings, in a delivered namespace), or not_delivered (image not scanned).',
    ['result'],
  ),
  namespaces: metric('namespaces', 'Namespaces of the last run, by result (delivered or failed).', ['result']),
  findings: metric(
    'findings',
    'Findings delivered by the last run, by namespace and severity (namespaces it delivered only).',
    ['namespace', 'severity'],
  ),
  postedBytes: metric('posted_bytes', 'Bytes of the scan bodies the last run delivered to Ephor.'),
  vulnerabilityDbUpdated: metric(
    'vulnerability_db_updated_timestamp_seconds',
    'Unix time the vulnerability DB used by the last run was built (its age is time() minus this).',
  ),
  incrementalCacheBytes: metric('incremental_cache_bytes', "Size of Trivy's layer cache after the last run."),
  info: metric('info', 'Always 1; the versions of the scanner and of Trivy that made the last run.', [
    'version',
    'trivy_version',
  ]),
} as const satisfies Record<string, MetricSpec>;

/** Every reason an image is not scanned: each is pushed, 0 included, so a graph shows a reason going back to 0. */
export const FAILURE_REASONS: readonly NotDeliveredReason[] = NOT_DELIVERED_REASONS;

/** Label names the metrics use themselves: a grouping label of the same name would overwrite them. */
export const METRIC_LABEL_NAMES: readonly string[] = [...new Set(Object.values(METRICS).flatMap((m) => m.labelNames))];
