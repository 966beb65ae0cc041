// The metrics stage: at the end of a run that got past configuration, its summary → Prometheus metrics → one POST
// to a Pushgateway. See README "Metrics".
export { METRICS, FAILURE_REASONS, type MetricSpec } from './catalogue.js';
export { buildExposition, type Exposition } from './exposition.js';
export { DEFAULT_JOB, groupUrl, parseGroupingLabels, parseJobName, parsePushgatewayUrl } from './grouping.js';
export { metricsInputFromSummary, type RunFactsForMetrics, type RunMetricsInput } from './input.js';
export { PUSH_TIMEOUT_MS, pushRunMetrics, type PushOptions, type PushOutcome } from './push.js';
