// Pushes the run's metrics to a Prometheus Pushgateway at the end of the run. Metrics are a report about the run,
// never part of its outcome: an unreachable or erroring Pushgateway costs one warning and at most `timeoutMs`, and
// this function never throws, so the run's exit code is whatever the run decided.
import { messageOf } from '../errors.js';
import { send } from '../http.js';
import type { Logger } from '../log.js';
import { buildExposition } from './exposition.js';
import { groupUrl } from './grouping.js';
import type { RunMetricsInput } from './input.js';

export const PUSH_TIMEOUT_MS = 10_000;

export interface PushOptions {
  /** Pushgateway base URL (parsePushgatewayUrl). */
  url: string;
  /** The `job` label; DEFAULT_JOB unless set. */
  job: string;
  /** Further grouping labels, e.g. { cluster: 'prod-eu' } (parseGroupingLabels). */
  groupingLabels: Readonly<Record<string, string>>;
  log: Logger;
  /** Whole exchange, connection included (default PUSH_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Aborting ends the push at once: one that fires when the shutdown grace period is over, not the SIGTERM signal
   * itself (an interrupted run still reports itself; it is already aborted by then). */
  signal?: AbortSignal;
}

export type PushOutcome = { pushed: true; url: string } | { pushed: false; url: string; error: string };

/**
 * POST, not PUT: POST replaces only the metrics it names within the group, PUT the whole group. A failed run leaves
 * `ephor_scanner_last_success_timestamp_seconds` out of its push, so the previous success stays on the Pushgateway
 * and "no success for 13h" can be alerted on; every other metric is in every push and so always the last run's.
 */
export async function pushRunMetrics(input: RunMetricsInput, options: PushOptions): Promise<PushOutcome> {
  const url = safeGroupUrl(options);
  const timeoutMs = options.timeoutMs ?? PUSH_TIMEOUT_MS;
  let error: string;
  try {
    const exposition = await buildExposition(input);
    const body = Buffer.from(exposition.text, 'utf8');
    const answer = await send({
      method: 'POST',
      url: groupUrl(options.url, options.job, options.groupingLabels),
      headers: { 'Content-Type': exposition.contentType },
      body: { bytes: body.length, open: () => body },
      timeoutMs,
      cutoff: options.signal,
      maxAnswerBytes: 4096,
    });
    if (answer.status >= 200 && answer.status < 300) {
      options.log.info({ pushgateway: url, bytes: body.length }, 'metrics pushed to the Pushgateway');
      return { pushed: true, url };
    }
    error = `HTTP ${answer.status}${answer.text.trim() ? `: ${answer.text.trim().slice(0, 500)}` : ''}`;
  } catch (caught) {
    error = messageOf(caught);
  }
  options.log.warn(
    { pushgateway: url, error, timeout_ms: timeoutMs },
    "metrics not pushed to the Pushgateway (the run's result and exit code are unaffected)",
  );
  return { pushed: false, url, error };
}

/** The group URL for logs: never throws, never shows credentials. */
function safeGroupUrl(options: PushOptions): string {
  try {
    const url = new URL(groupUrl(options.url, options.job, options.groupingLabels));
    url.username = '';
    url.password = '';
    return url.toString();
  } catch {
    return '(not a valid URL)';
  }
}
