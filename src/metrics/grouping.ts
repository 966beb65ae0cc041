// Where the metrics go: the Pushgateway's base URL and the grouping key (job plus labels such as cluster), as
// `<url>/metrics/job/<job>/<label>/<value>...`. The parsers are pure, for the settings table: each throws a
// ValueError saying what is allowed; the config loader adds the variable's name.
import { ValueError } from '../config/parse.js';
import { METRIC_LABEL_NAMES } from './catalogue.js';

export const DEFAULT_JOB = 'ephor-scanner';

/** Base URL of a Pushgateway, normalised without a trailing slash (a path prefix such as /pushgateway is kept). */
export function parsePushgatewayUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new ValueError('must be an absolute http:// or https:// URL, e.g. http://pushgateway.monitoring:9091');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ValueError('must use http:// or https://');
  // The scanner sends no credentials to the Pushgateway; in the URL they would end up in its logs.
  if (url.username || url.password) throw new ValueError('must not contain credentials (user:password@)');
  if (url.search || url.hash) throw new ValueError('must not have a query string or fragment');
  return url.toString().replace(/\/+$/, '');
}

/** The `job` label of the pushed group; any non-empty text (a `/` is sent base64-encoded). */
export function parseJobName(text: string): string {
  const job = text.trim();
  if (job === '') throw new ValueError('must not be empty (the Pushgateway requires a job name)');
  if (/[\p{Cc}]/u.test(job)) throw new ValueError('must not contain control characters');
  return job;
}

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** `cluster=prod-eu,region=eu-west-1` → ordered labels. Values are sent as they are; none may be empty. */
export function parseGroupingLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  if (text.trim() === '') return labels;
  for (const [index, item] of text.split(',').entries()) {
    if (item.trim() === '') throw new ValueError(`has an empty item at position ${index + 1}; write k=v,k=v`);
    const equals = item.indexOf('=');
    if (equals < 0) throw new ValueError(`item ${index + 1} ("${item.trim()}") is not name=value; write k=v,k=v`);
    const name = item.slice(0, equals).trim();
    const value = item.slice(equals + 1).trim();
    checkLabelName(name);
    if (name in labels) throw new ValueError(`names the label "${name}" twice`);
    if (value === '') throw new ValueError(`gives the label "${name}" an empty value`);
    if (/[\p{Cc}]/u.test(value)) throw new ValueError(`gives the label "${name}" a value with control characters`);
    labels[name] = value;
  }
  return labels;
}

function checkLabelName(name: string): void {
  if (!LABEL_NAME.test(name) || name.startsWith('__')) {
    throw new ValueError(
      `has the label name "${name}": a label name is letters, digits and _, not starting with a digit or __`,
    );
  }
  if (name === 'job') throw new ValueError('must not set "job": the job name has its own setting');
  // The Pushgateway overwrites a pushed label with the grouping label of the same name: the metric would lie.
  if (METRIC_LABEL_NAMES.includes(name)) {
    throw new ValueError(
      `must not use "${name}": the scanner's metrics use that label (${METRIC_LABEL_NAMES.join(', ')})`,
    );
  }
}

/**
 * `<url>/metrics/job/<job>/<name>/<value>...`. A value with a `/` (or an empty one) cannot be a path segment even
 * URI-encoded, so it is sent as `<name>@base64/<base64url>`, as the Pushgateway's README specifies.
 */
export function groupUrl(baseUrl: string, job: string, labels: Readonly<Record<string, string>>): string {
  const segments = [segment('job', job), ...Object.entries(labels).map(([name, value]) => segment(name, value))];
  return `${baseUrl.replace(/\/+$/, '')}/metrics/${segments.join('/')}`;
}

function segment(name: string, value: string): string {
  if (value === '') return `${name}@base64/=`;
  if (value.includes('/')) return `${name}@base64/${Buffer.from(value, 'utf8').toString('base64url')}`;
  return `${name}/${encodeURIComponent(value)}`;
}
