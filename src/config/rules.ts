// Rules that involve more than one setting, each a small named function over the values read from the table. They
// add problems (the run stops, exit code 2) or warnings (logged once the logger exists); none replaces a bad value.
import { matchesAny } from '../kube/namespaces.js';
import { rawValue, requiredProblem, type ConfigProblem, type Env } from './read.js';
import type { SettingValues } from './settings.js';

export interface Findings {
  problems: ConfigProblem[];
  warnings: string[];
}

type Values = Partial<SettingValues>;

/** A dry run posts nothing, so it needs no API (trying the scanner before Ephor exists). */
export function dryRunNeedsNoApi(name: string, values: Values): boolean {
  return name === 'EPHOR_API_URL' && values.EPHOR_DRY_RUN === true;
}

/** The Redis URL is read only in redis mode; in the others it is ignored (see redisBackend). */
export function backendUnusedOutsideRedis(name: string, values: Values): boolean {
  return name === 'TRIVY_CACHE_BACKEND' && values.TRIVY_CACHE_MODE !== 'redis';
}

/** The auth header is sent only with its value: both or neither. */
export function checkAuthPair(env: Env, found: Findings): void {
  const header = rawValue(env, 'EPHOR_AUTH_HEADER') !== undefined;
  if (header === (rawValue(env, 'EPHOR_AUTH_VALUE') !== undefined)) return;
  const [set, missing] = header ? ['EPHOR_AUTH_HEADER', 'EPHOR_AUTH_VALUE'] : ['EPHOR_AUTH_VALUE', 'EPHOR_AUTH_HEADER'];
  found.problems.push({
    variable: missing,
    message: `${set} is set but ${missing} is not; set both (the header is sent only with its value) or neither`,
  });
}

/** An exclusion must not remove a namespace named explicitly; with an explicit list it does nothing at all. */
export function checkExclusions(values: Values, found: Findings): void {
  const namespaces = values.SCAN_NAMESPACES;
  const excluded = values.SCAN_EXCLUDE_NAMESPACES ?? [];
  if (!Array.isArray(namespaces)) return;
  const excludedByName = namespaces.filter((ns) => matchesAny(ns, excluded));
  if (excludedByName.length > 0) {
    found.problems.push({
      variable: 'SCAN_EXCLUDE_NAMESPACES',
      message:
        `SCAN_EXCLUDE_NAMESPACES excludes ${excludedByName.join(', ')}, ` +
        'which SCAN_NAMESPACES names explicitly; remove one or the other',
    });
  } else if (excluded.length > 0 && !values.SCAN_NAMESPACE_SELECTOR) {
    found.warnings.push(
      'SCAN_EXCLUDE_NAMESPACES has no effect with an explicit SCAN_NAMESPACES list ' +
        '(it applies to * and to SCAN_NAMESPACE_SELECTOR)',
    );
  }
}

type CacheMode = NonNullable<Values['TRIVY_CACHE_MODE']>;

/**
 * TRIVY_SERVER_URL makes every scan a client of that server, whatever TRIVY_CACHE_MODE says: the server keeps the
 * layer cache. A mode set to something else is named in a warning (the chart can set both), never used.
 */
export function effectiveCacheMode(values: Values, env: Env, found: Findings): CacheMode | undefined {
  const mode = values.TRIVY_CACHE_MODE;
  if (values.TRIVY_SERVER_URL === undefined) return mode;
  if (rawValue(env, 'TRIVY_CACHE_MODE') !== undefined && mode !== 'server') {
    found.warnings.push(
      `TRIVY_CACHE_MODE=${mode} is not used because TRIVY_SERVER_URL is set: ` +
        'every scan is a client of that server, which keeps the layer cache',
    );
  }
  return 'server';
}

/** The token is sent only to an external server; without one it would be read for nothing. */
export function serverTokenUnusedWithoutUrl(values: Values, env: Env, found: Findings): void {
  if (values.TRIVY_SERVER_URL !== undefined || rawValue(env, 'TRIVY_SERVER_TOKEN') === undefined) return;
  found.warnings.push(
    'TRIVY_SERVER_TOKEN is ignored because TRIVY_SERVER_URL is not set ' +
      '(the token is sent only to an external Trivy server)',
  );
}

/**
 * The layer cache bound applies where the layer cache is TRIVY_CACHE_DIR/fanal: shared mode and the scanner's own
 * server.
 */
export function scanCacheBound(
  values: Values,
  env: Env,
  mode: CacheMode | undefined,
  found: Findings,
): number | undefined {
  const usesDir = mode === 'shared' || (mode === 'server' && values.TRIVY_SERVER_URL === undefined);
  if (usesDir) return values.TRIVY_SCAN_CACHE_MAX_SIZE;
  if (rawValue(env, 'TRIVY_SCAN_CACHE_MAX_SIZE') !== undefined) {
    const why =
      values.TRIVY_SERVER_URL !== undefined ? 'TRIVY_SERVER_URL is set' : `TRIVY_CACHE_MODE=${mode ?? 'ephemeral'}`;
    found.warnings.push(
      `TRIVY_SCAN_CACHE_MAX_SIZE is ignored because ${why} (it bounds the layer cache in TRIVY_CACHE_DIR, ` +
        'used in server and shared modes)',
    );
  }
  return undefined;
}

/** The shared cache directory is locked by each scan, so scans run one at a time there. */
export function concurrencyForCacheMode(
  values: Values,
  mode: CacheMode | undefined,
  found: Findings,
): number | undefined {
  const concurrency = values.SCAN_CONCURRENCY;
  if (mode !== 'shared' || concurrency === undefined || concurrency <= 1) return concurrency;
  found.warnings.push(
    'TRIVY_CACHE_MODE=shared uses one locked cache directory, ' +
      `so scans run one at a time (SCAN_CONCURRENCY=${concurrency} lowered to 1)`,
  );
  return 1;
}

/** The Redis URL is required in redis mode and unused (with a warning) in the others. */
export function redisBackend(
  values: Values,
  env: Env,
  mode: CacheMode | undefined,
  found: Findings,
): string | undefined {
  if (mode === 'redis') {
    if (rawValue(env, 'TRIVY_CACHE_BACKEND') === undefined) found.problems.push(requiredProblem('TRIVY_CACHE_BACKEND'));
    return values.TRIVY_CACHE_BACKEND;
  }
  if (rawValue(env, 'TRIVY_CACHE_BACKEND') !== undefined) {
    const why =
      values.TRIVY_SERVER_URL !== undefined ? 'TRIVY_SERVER_URL is set' : `TRIVY_CACHE_MODE=${mode ?? 'ephemeral'}`;
    found.warnings.push(`TRIVY_CACHE_BACKEND is ignored because ${why} (it is used only with redis)`);
  }
  return undefined;
}

export type ResolveExecutable = (name: string, env: Env) => string | undefined;

/** TRIVY_BINARY as a shell would find it; not found is a configuration error (the run could scan nothing). */
export function resolveTrivyBinary(
  name: string | undefined,
  env: Env,
  resolve: ResolveExecutable,
  found: Findings,
): string | undefined {
  if (name === undefined) return undefined;
  const binary = resolve(name, env);
  if (binary === undefined) {
    const where = name.includes('/') ? 'is not an executable file' : `was not found on PATH (${env.PATH ?? ''})`;
    found.problems.push({
      variable: 'TRIVY_BINARY',
      message: `TRIVY_BINARY=${JSON.stringify(name)} ${where}; install Trivy or set TRIVY_BINARY to its path`,
    });
  }
  return binary;
}

/** A run that waits for the lock until SCAN_DEADLINE (measured from the same start) has no time left to scan. */
export function lockWaitWithinDeadline(values: Values, found: Findings): void {
  const { RUN_LOCK: mode, RUN_LOCK_WAIT: waitMs, SCAN_DEADLINE: deadlineMs } = values;
  if (mode !== 'lease' || waitMs === undefined || deadlineMs === undefined || waitMs < deadlineMs) return;
  found.warnings.push(
    `RUN_LOCK_WAIT (${waitMs / 1000} s) is not shorter than SCAN_DEADLINE (${deadlineMs / 1000} s): ` +
      'a run that waits that long for the lock has no time left to scan; lower RUN_LOCK_WAIT',
  );
}

/** LOG_FORMAT=auto: readable text for a person at a terminal, JSON lines for everything else (a CronJob's logs). */
export function resolveLogFormat(setting: 'auto' | 'json' | 'text', stdoutIsTerminal: boolean): 'json' | 'text' {
  if (setting !== 'auto') return setting;
  return stdoutIsTerminal ? 'text' : 'json';
}

/** The secrets to redact: the auth value, the server token, and the Redis URL together with its password on its own. */
export function secretValues(
  authValue: string | undefined,
  cacheBackend: string | undefined,
  serverToken?: string,
): string[] {
  const secrets = [authValue, cacheBackend, serverToken];
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
