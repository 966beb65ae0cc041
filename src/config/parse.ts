// Pure parsers for configuration values. Each returns the value or throws a ValueError saying what is allowed;
// the config loader adds the variable name and the offending value.
import path from 'node:path';

export class ValueError extends Error {}

/** Go-compatible durations: bare integers are seconds (the Go scanner's rule), otherwise units ns…h. */
const GO_DURATION = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|μs|ms|s|m|h))+$/;
const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};
/** Node timers overflow above 2^31-1 ms (they then fire after 1 ms), so longer timeouts are refused. */
export const MAX_DURATION_MS = 24 * 3_600_000;

export function parseDurationMs(text: string, maxMs = MAX_DURATION_MS): number {
  let ms: number;
  if (/^\d+$/.test(text)) {
    ms = Number(text) * 1000;
  } else if (GO_DURATION.test(text)) {
    ms = 0;
    for (const [, amount, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|μs|ms|s|m|h)/g)) {
      ms += Number(amount) * UNIT_MS[unit!]!;
    }
  } else {
    throw new ValueError('must be integer seconds (300) or a duration such as 90s, 10m or 1h30m');
  }
  if (!(ms >= 1)) throw new ValueError('must be at least 1ms (a timeout of zero would fail everything)');
  if (ms > maxMs) throw new ValueError(`must be at most ${maxMs / 3_600_000}h`);
  return Math.round(ms);
}

export function parseInteger(text: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(text)) throw new ValueError(`must be an integer from ${min} to ${max}`);
  const n = Number(text);
  if (n < min || n > max) throw new ValueError(`must be an integer from ${min} to ${max}`);
  return n;
}

const TRUE_WORDS = new Set(['true', 't', '1', 'yes', 'y', 'on']);
const FALSE_WORDS = new Set(['false', 'f', '0', 'no', 'n', 'off']);

export function parseBoolean(text: string): boolean {
  const word = text.trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  throw new ValueError('must be true or false');
}

/** Splits a comma list, trims items and drops repeats; an empty item is an error (a stray comma is a typo). */
export function parseList(text: string): string[] {
  const items = text.split(',').map((item) => item.trim());
  const empty = items.findIndex((item) => item === '');
  if (empty >= 0) throw new ValueError(`has an empty item at position ${empty + 1}; separate names with single commas`);
  return [...new Set(items)];
}

/** Matches items case-insensitively against the allowed words and returns them in their canonical spelling. */
export function parseChoiceList<T extends string>(text: string, allowed: readonly T[]): T[] {
  const byLower = new Map(allowed.map((word) => [word.toLowerCase(), word]));
  const chosen: T[] = [];
  for (const item of parseList(text)) {
    const word = byLower.get(item.toLowerCase());
    if (!word) throw new ValueError(`contains "${item}"; allowed: ${allowed.join(', ')}`);
    if (!chosen.includes(word)) chosen.push(word);
  }
  return chosen;
}

export function parseChoice<T extends string>(text: string, allowed: readonly T[]): T {
  const word = allowed.find((candidate) => candidate.toLowerCase() === text.trim().toLowerCase());
  if (!word) throw new ValueError(`must be one of ${allowed.join(', ')}`);
  return word;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function parseNamespaces(text: string): string[] | 'all' {
  const items = parseList(text);
  if (items.includes('*')) {
    if (items.length > 1) throw new ValueError('"*" (every namespace) cannot be combined with names');
    return 'all';
  }
  for (const name of items) {
    if (name.length > 63 || !DNS1123_LABEL.test(name)) {
      throw new ValueError(
        `contains "${name}", which is not a namespace name ` +
          "(lowercase letters, digits and '-', at most 63 characters, starting and ending with a letter or digit)",
      );
    }
  }
  return items;
}

/** Base URL of the Ephor API, normalised without a trailing slash. */
export function parseApiUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new ValueError('must be an absolute http:// or https:// URL, e.g. http://ephor-api:8080');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ValueError('must use http:// or https://');
  if (url.username || url.password) {
    throw new ValueError('must not contain credentials; use EPHOR_AUTH_HEADER and EPHOR_AUTH_VALUE');
  }
  if (url.search || url.hash) throw new ValueError('must not have a query string or fragment');
  return url.toString().replace(/\/+$/, '');
}

const HEADER_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers the scanner sets itself, or that would make Ephor register the scanner as a user (X-Forwarded-*). */
const RESERVED_HEADERS = new Set([
  'content-type',
  'content-length',
  'content-encoding',
  'host',
  'user-agent',
  'x-request-id',
  'connection',
  'transfer-encoding',
]);

export function parseHeaderName(text: string): string {
  const name = text.trim();
  if (!HEADER_TOKEN.test(name)) throw new ValueError('must be an HTTP header name (letters, digits and -)');
  const lower = name.toLowerCase();
  if (RESERVED_HEADERS.has(lower)) throw new ValueError('is set by the scanner itself; choose another header');
  if (lower.startsWith('x-forwarded-')) {
    throw new ValueError('must not be an X-Forwarded-* identity header (Ephor would register the scanner as a user)');
  }
  return name;
}

export function parseHeaderValue(text: string): string {
  if (/[\r\n\0]/.test(text)) throw new ValueError('must not contain line breaks or NUL characters');
  if (text.trim() === '') throw new ValueError('must not be blank');
  return text;
}

export function parseRedisUrl(text: string): string {
  const value = text.trim();
  if (!/^rediss?:\/\/[^\s]+$/.test(value))
    throw new ValueError('must be a redis://host:port or rediss://host:port URL');
  return value;
}

/** OCI repository references for DB mirrors, e.g. registry.local:5000/aquasec/trivy-db:2. */
export function parseRepositoryList(text: string): string[] {
  const repos = parseList(text);
  for (const repo of repos) {
    if (/\s/.test(repo) || /^[a-z]+:\/\//i.test(repo)) {
      throw new ValueError(
        `contains "${repo}"; give repositories without a scheme, e.g. registry.local:5000/aquasec/trivy-db:2`,
      );
    }
  }
  return repos;
}

export function parseLogLevel(text: string): 'debug' | 'info' | 'warn' | 'error' {
  const level = parseChoice(text, ['debug', 'info', 'warn', 'warning', 'error'] as const);
  return level === 'warning' ? 'warn' : level;
}

const GLOB = /^[a-z0-9*?]([-a-z0-9*?]*[a-z0-9*?])?$/;

/** Namespace names or globs (`kube-*`, `team-?`). */
export function parseNamespacePatterns(text: string): string[] {
  const patterns = parseList(text);
  for (const pattern of patterns) {
    if (pattern.length > 63 || !GLOB.test(pattern)) {
      throw new ValueError(
        `contains "${pattern}", which is neither a namespace name nor a glob of one ` +
          "(lowercase letters, digits, '-', '*' and '?')",
      );
    }
  }
  return patterns;
}

const LABEL_NAME = '[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?';
const LABEL_KEY = new RegExp(`^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?${LABEL_NAME}$`);
const LABEL_VALUE = new RegExp(`^(${LABEL_NAME})?$`);

/**
 * A Kubernetes label selector: requirements separated by commas, each `key`, `!key`, `key=value`, `key==value`,
 * `key!=value`, `key in (a,b)` or `key notin (a,b)`. Checked here so that a typo is a configuration error, not a
 * 400 from the API server in the middle of the run.
 */
export function parseLabelSelector(text: string): string {
  const selector = text.trim();
  for (const requirement of splitRequirements(selector)) {
    const set = /^(\S+)\s+(in|notin)\s+\(([^()]*)\)$/.exec(requirement);
    const equality = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(requirement);
    const exists = /^!?\s*([^=!\s(),]+)$/.exec(requirement);
    const [key, values] = set
      ? [set[1]!, set[3]!.split(',').map((v) => v.trim())]
      : equality
        ? [equality[1]!, [equality[3]!]]
        : exists
          ? [exists[1]!, []]
          : [undefined, []];
    if (key === undefined)
      throw new ValueError(
        `has "${requirement}", which is not a label requirement ` +
          '(key, !key, key=value, key!=value, key in (a,b), key notin (a,b))',
      );
    if (!LABEL_KEY.test(key)) throw new ValueError(`has the invalid label key "${key}"`);
    const bad = values.find((v) => !LABEL_VALUE.test(v));
    if (bad !== undefined) throw new ValueError(`has the invalid label value "${bad}"`);
    if (set && values.some((v) => v === '')) throw new ValueError(`has an empty value in "${requirement}"`);
  }
  return selector;
}

function splitRequirements(selector: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of selector) {
    if (char === '(') depth++;
    if (char === ')') depth--;
    if (char === ',' && depth === 0) {
      parts.push(current.trim());
      current = '';
    } else {
      current += char;
    }
  }
  parts.push(current.trim());
  if (parts.some((p) => p === ''))
    throw new ValueError('has an empty requirement; separate requirements with single commas');
  return parts;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  k: 1000,
  ki: 1024,
  m: 1000 ** 2,
  mi: 1024 ** 2,
  g: 1000 ** 3,
  gi: 1024 ** 3,
};

/** A byte size: `8388608`, `8Mi`, `512Ki`, `10M` (Kubernetes quantity suffixes). */
export function parseByteSize(text: string, min: number, max: number): number {
  const match = /^(\d+)(|k|ki|m|mi|g|gi)$/i.exec(text.trim());
  if (!match) throw new ValueError('must be a number of bytes, optionally with a suffix such as 512Ki or 8Mi');
  const bytes = Number(match[1]) * SIZE_UNITS[match[2]!.toLowerCase()]!;
  if (bytes < min || bytes > max) throw new ValueError(`must be between ${min} bytes (64Ki) and ${max} bytes (1Gi)`);
  return bytes;
}

/**
 * A storage size: bytes, or a number with a Kubernetes quantity suffix (`512Mi`, `5Gi`, `1Ti`, `500M`, `2G`), at
 * least 1Mi; used for disk budgets, which are larger than payloads (parseByteSize stops at 1Gi).
 */
export function parseStorageSize(text: string): number {
  const match = /^(\d+)(|k|ki|m|mi|g|gi|t|ti)$/i.exec(text.trim());
  if (!match) throw new ValueError('must be a number of bytes, optionally with a suffix such as 512Mi, 5Gi or 1Ti');
  const units: Record<string, number> = { ...SIZE_UNITS, t: 1000 ** 4, ti: 1024 ** 4 };
  const bytes = Number(match[1]) * units[match[2]!.toLowerCase()]!;
  if (bytes < 1024 ** 2) throw new ValueError('must be at least 1Mi');
  if (!Number.isSafeInteger(bytes)) throw new ValueError('is too large');
  return bytes;
}

/**
 * The base URL of a Trivy server (`trivy image --server URL`): http(s), no credentials (the token goes in
 * TRIVY_SERVER_TOKEN), no query or fragment; a path prefix is kept (Trivy appends `/twirp/…` to it). Normalised
 * without a trailing slash.
 */
export function parseServerUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new ValueError('must be an absolute http:// or https:// URL, e.g. http://trivy-server.trivy:4954');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ValueError('must use http:// or https://');
  if (url.username || url.password) throw new ValueError('must not contain credentials; use TRIVY_SERVER_TOKEN');
  if (url.search || url.hash) throw new ValueError('must not have a query string or fragment');
  return url.toString().replace(/\/+$/, '');
}

/** A file or directory path, made absolute against the working directory. */
export function parsePath(text: string): string {
  return path.resolve(text.trim());
}

/** A list of kubeconfig files joined as in KUBECONFIG (`:` on Linux); the files are read by the Kubernetes client. */
export function parsePathList(text: string): string[] {
  return text
    .split(path.delimiter)
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

/** The name of a kubeconfig context: any text on one line (kubectl puts no other rule on it). */
export function parseContextName(text: string): string {
  const name = text.trim();
  if (/[\r\n\0]/.test(name)) throw new ValueError('must be a context name on one line');
  return name;
}
