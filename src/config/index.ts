// Environment (plus flags, already merged into it by the CLI) → a validated, typed Config, or a ConfigError that
// names every bad variable, its value and what is allowed. Nothing is silently replaced by a default.
import path from 'node:path';
import { SEVERITIES, WORKLOAD_KINDS, type Severity, type WorkloadKind } from '../types.js';
import { SETTINGS } from './settings.js';
import {
  ValueError,
  parseApiUrl,
  parseBoolean,
  parseByteSize,
  parseChoice,
  parseChoiceList,
  parseDurationMs,
  parseHeaderName,
  parseHeaderValue,
  parseInteger,
  parseLabelSelector,
  parseLogLevel,
  parseNamespacePatterns,
  parseNamespaces,
  parseRedisUrl,
  parseRepositoryList,
} from './parse.js';
import { findExecutable } from './executable.js';
import { matchesAny } from '../kube/namespaces.js';

export type CacheMode = 'ephemeral' | 'shared' | 'redis';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'text';

export interface Config {
  ephor: {
    apiUrl: string;
    auth?: { header: string; value: string };
    timeoutMs: number;
    maxRetries: number;
    maxPayloadBytes: number;
    /** Write payloads to outputDir instead of posting them. */
    dryRun: boolean;
    outputDir: string;
  };
  /** Where undeliverable payloads wait for the next run, and how old they may get. */
  spool: { dir: string; maxAgeMs: number };
  scan: {
    namespaces: string[] | 'all';
    /** Names or globs removed from `*` or from the selector's result. */
    excludeNamespaces: string[];
    namespaceSelector?: string;
    concurrency: number;
    /** Run-time budget from the start; no scan starts when the time left cannot fit it. */
    deadlineMs?: number;
    severities: Severity[];
    workloadKinds: WorkloadKind[];
  };
  kube: { timeoutMs: number };
  /** Read imagePullSecrets (Pod and ServiceAccount) to pull private images. */
  registryAuth: boolean;
  trivy: {
    /** Absolute path of the executable, resolved from TRIVY_BINARY. */
    binary: string;
    cacheDir: string;
    cacheMode: CacheMode;
    cacheBackend?: string;
    timeoutMs: number;
    dbUpdateTimeoutMs: number;
    dbRepositories: string[];
    javaDbRepositories: string[];
    skipDbUpdate: boolean;
  };
  sbom: { enabled: boolean; format: 'cyclonedx' | 'spdx-json' };
  log: { level: LogLevel; format: LogFormat };
  /** Values the scanner must never print (redacted from every log line). */
  secrets: string[];
  /** Non-fatal remarks to log once the logger exists. */
  warnings: string[];
}

export interface ConfigProblem {
  variable: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: ConfigProblem[]) {
    super(`invalid configuration: ${problems.map((p) => p.message).join('; ')}`);
    this.name = 'ConfigError';
  }
}

export type Env = Record<string, string | undefined>;

export interface LoadOptions {
  /** Looks up an executable; injectable for tests. */
  resolveExecutable?: (name: string, env: Env) => string | undefined;
}

const SECRET_VARIABLES = new Set(SETTINGS.filter((s) => s.secret).map((s) => s.env));
const DEFAULTS = new Map(SETTINGS.filter((s) => s.default !== undefined).map((s) => [s.env, s.default!]));

export function loadConfig(env: Env, options: LoadOptions = {}): Config {
  const problems: ConfigProblem[] = [];
  const warnings: string[] = [];

  /** The raw value, or undefined when unset; an empty or blank value counts as unset (as in the Go scanner). */
  const raw = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value;
  };
  const shown = (name: string, value: string) =>
    SECRET_VARIABLES.has(name) ? '(value hidden)' : JSON.stringify(value);

  function read<T>(name: string, parse: (text: string) => T): T | undefined {
    const value = raw(name) ?? DEFAULTS.get(name);
    if (value === undefined) return undefined;
    try {
      return parse(value);
    } catch (error) {
      if (!(error instanceof ValueError)) throw error;
      problems.push({ variable: name, message: `${name}=${shown(name, value)} ${error.message}` });
      return undefined;
    }
  }
  function required<T>(name: string, parse: (text: string) => T, example: string): T | undefined {
    if (raw(name) === undefined) {
      problems.push({ variable: name, message: `${name} is required (e.g. ${name}=${example})` });
      return undefined;
    }
    return read(name, parse);
  }

  const dryRun = read('EPHOR_DRY_RUN', parseBoolean);
  // A dry run posts nothing, so it needs no API (trying the scanner before Ephor exists).
  const apiUrl =
    dryRun && raw('EPHOR_API_URL') === undefined ? '' : required('EPHOR_API_URL', parseApiUrl, 'http://ephor-api:8080');
  const authHeader = read('EPHOR_AUTH_HEADER', parseHeaderName);
  const authValue = read('EPHOR_AUTH_VALUE', parseHeaderValue);
  if ((raw('EPHOR_AUTH_HEADER') === undefined) !== (raw('EPHOR_AUTH_VALUE') === undefined)) {
    const [set, missing] = raw('EPHOR_AUTH_HEADER')
      ? ['EPHOR_AUTH_HEADER', 'EPHOR_AUTH_VALUE']
      : ['EPHOR_AUTH_VALUE', 'EPHOR_AUTH_HEADER'];
    problems.push({
      variable: missing,
      message: `${set} is set but ${missing} is not; set both (the header is sent only with its value) or neither`,
    });
  }

  const namespaces = required('SCAN_NAMESPACES', parseNamespaces, 'default,production');
  const excludeNamespaces = read('SCAN_EXCLUDE_NAMESPACES', parseNamespacePatterns) ?? [];
  const namespaceSelector = read('SCAN_NAMESPACE_SELECTOR', parseLabelSelector);
  if (Array.isArray(namespaces)) {
    const excludedByName = namespaces.filter((ns) => matchesAny(ns, excludeNamespaces));
    if (excludedByName.length > 0) {
      problems.push({
        variable: 'SCAN_EXCLUDE_NAMESPACES',
        message: `SCAN_EXCLUDE_NAMESPACES excludes ${excludedByName.join(', ')}, which SCAN_NAMESPACES names explicitly; remove one or the other`,
      });
    } else if (excludeNamespaces.length > 0 && !namespaceSelector) {
      warnings.push(
        'SCAN_EXCLUDE_NAMESPACES has no effect with an explicit SCAN_NAMESPACES list (it applies to * and to SCAN_NAMESPACE_SELECTOR)',
      );
    }
  }
  const cacheMode = read('TRIVY_CACHE_MODE', (t) => parseChoice(t, ['ephemeral', 'shared', 'redis'] as const));
  let concurrency = read('SCAN_CONCURRENCY', (t) => parseInteger(t, 1, 64));
  if (cacheMode === 'shared' && concurrency !== undefined && concurrency > 1) {
    warnings.push(
      `TRIVY_CACHE_MODE=shared uses one locked cache directory, so scans run one at a time (SCAN_CONCURRENCY=${concurrency} lowered to 1)`,
    );
    concurrency = 1;
  }

  let cacheBackend: string | undefined;
  if (cacheMode === 'redis') {
    cacheBackend = required('TRIVY_CACHE_BACKEND', parseRedisUrl, 'redis://trivy-redis:6379');
  } else if (raw('TRIVY_CACHE_BACKEND') !== undefined) {
    warnings.push(
      `TRIVY_CACHE_BACKEND is ignored because TRIVY_CACHE_MODE=${cacheMode ?? 'ephemeral'} (it is used only with redis)`,
    );
  }

  const binaryName = read('TRIVY_BINARY', (t) => t.trim());
  const resolve = options.resolveExecutable ?? findExecutable;
  const binary = binaryName === undefined ? undefined : resolve(binaryName, env);
  if (binaryName !== undefined && binary === undefined) {
    const where = binaryName.includes('/') ? 'is not an executable file' : `was not found on PATH (${env.PATH ?? ''})`;
    problems.push({
      variable: 'TRIVY_BINARY',
      message: `TRIVY_BINARY=${JSON.stringify(binaryName)} ${where}; install Trivy or set TRIVY_BINARY to its path`,
    });
  }

  const sbomEnabled = read('SBOM_ENABLED', parseBoolean);
  const sbomFormat = read('SBOM_FORMAT', (t) => parseChoice(t, ['cyclonedx', 'spdx-json', 'spdx'] as const));
  const config = {
    ephor: {
      apiUrl: apiUrl!,
      auth: authHeader !== undefined && authValue !== undefined ? { header: authHeader, value: authValue } : undefined,
      timeoutMs: read('EPHOR_TIMEOUT', parseDurationMs)!,
      maxRetries: read('EPHOR_MAX_RETRIES', (t) => parseInteger(t, 0, 10))!,
      maxPayloadBytes: read('EPHOR_MAX_PAYLOAD_BYTES', (t) => parseByteSize(t, 64 * 1024, 1024 ** 3))!,
      dryRun: dryRun!,
      outputDir: path.resolve(read('EPHOR_OUTPUT_DIR', (t) => t.trim())!),
    },
    spool: {
      dir: path.resolve(
        read('SPOOL_DIR', (t) => t.trim()) ??
          path.join(
            read('TRIVY_CACHE_DIR', (t) => t.trim())!,
            'spool',
          ),
      ),
      maxAgeMs: read('SPOOL_MAX_AGE', (t) => parseDurationMs(t, 30 * 24 * 3_600_000))!,
    },
    scan: {
      namespaces: namespaces!,
      excludeNamespaces,
      namespaceSelector,
      concurrency: concurrency!,
      deadlineMs: read('SCAN_DEADLINE', parseDurationMs),
      severities: read('SCAN_SEVERITY', (t) => parseChoiceList(t, SEVERITIES))!,
      workloadKinds: read('SCAN_WORKLOAD_TYPES', (t) => parseChoiceList(t, WORKLOAD_KINDS))!,
    },
    kube: { timeoutMs: read('KUBE_TIMEOUT', parseDurationMs)! },
    registryAuth: read('REGISTRY_AUTH_ENABLED', parseBoolean)!,
    trivy: {
      binary: binary!,
      cacheDir: path.resolve(read('TRIVY_CACHE_DIR', (t) => t.trim())!),
      cacheMode: cacheMode!,
      cacheBackend,
      timeoutMs: read('TRIVY_TIMEOUT', parseDurationMs)!,
      dbUpdateTimeoutMs: read('TRIVY_DB_UPDATE_TIMEOUT', parseDurationMs)!,
      dbRepositories: read('TRIVY_DB_REPO', parseRepositoryList) ?? [],
      javaDbRepositories: read('TRIVY_JAVA_DB_REPO', parseRepositoryList) ?? [],
      skipDbUpdate: read('TRIVY_SKIP_DB_UPDATE', parseBoolean)!,
    },
    sbom: {
      enabled: sbomEnabled!,
      format: sbomFormat === 'cyclonedx' ? 'cyclonedx' : 'spdx-json',
    },
    log: {
      level: read('LOG_LEVEL', parseLogLevel)!,
      format: read('LOG_FORMAT', (t) => parseChoice(t, ['json', 'text'] as const))!,
    },
    secrets: secretValues(authValue, cacheBackend),
    warnings,
  } satisfies Config;

  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** The secrets to redact: the auth value, and the Redis URL together with its password on its own. */
function secretValues(authValue: string | undefined, cacheBackend: string | undefined): string[] {
  const secrets = [authValue, cacheBackend];
  if (cacheBackend) {
    try {
      const password = new URL(cacheBackend).password;
      if (password) secrets.push(password, decodeURIComponent(password));
    } catch {
      // parseRedisUrl accepted it; an unparsable URL simply has no separate password to add
    }
  }
  return [...new Set(secrets.filter((s): s is string => s !== undefined && s.length > 0))];
}
