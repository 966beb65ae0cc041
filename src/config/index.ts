// Environment (plus flags, already merged into it by the CLI) → a validated, typed Config, or a ConfigError that
// names every bad variable, its value and what is allowed. Nothing is silently replaced by a default. Each setting
// is parsed as the settings table says (read.ts); rules across settings are the named functions of rules.ts.
import path from 'node:path';
import type { OtherControllers } from '../kube/owner-kinds.js';
import type { LockMode } from '../lock/settings.js';
import type { Severity, WorkloadKind } from '../types.js';
import { findExecutable } from './executable.js';
import { inTableOrder, readSettings, type ConfigProblem, type Env } from './read.js';
import {
  backendUnusedOutsideRedis,
  checkAuthPair,
  checkExclusions,
  concurrencyForCacheMode,
  dryRunNeedsNoApi,
  lockWaitWithinDeadline,
  effectiveCacheMode,
  redisBackend,
  resolveLogFormat,
  resolveTrivyBinary,
  scanCacheBound,
  secretValues,
  serverTokenUnusedWithoutUrl,
  type Findings,
  type ResolveExecutable,
} from './rules.js';
import type { SettingValues } from './settings.js';
import { shardConfig, type ShardConfig } from '../shard/settings.js';

export type { ConfigProblem, Env } from './read.js';
export type CacheMode = 'ephemeral' | 'shared' | 'redis' | 'server';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
/** The format lines are written in; LOG_FORMAT=auto is resolved to one of them when the configuration is loaded. */
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
    /** Pods of controllers without an Ephor kind: reported under their owner (as kind Pod), except the excluded. */
    otherControllers: OtherControllers;
  };
  kube: {
    timeoutMs: number;
    /** KUBECONFIG / --kubeconfig, as given (src/kube/client.ts reads the files). */
    kubeconfig?: string[];
    /** KUBE_CONTEXT / --context: the kubeconfig context to use instead of its current-context. */
    context?: string;
  };
  /** The run lock (src/lock): one run posting to Ephor at a time. */
  lock: {
    mode: LockMode;
    name: string;
    /** RUN_LOCK_NAMESPACE; unset: the Pod's own namespace, else the kubeconfig context's, else default. */
    namespace?: string;
    /** RUN_LOCK_WAIT; 0: give up at once when another run holds the lock. */
    waitMs: number;
  };
  /** Read imagePullSecrets (Pod and ServiceAccount) to pull private images. */
  registryAuth: boolean;
  trivy: {
    /** Absolute path of the executable, resolved from TRIVY_BINARY. */
    binary: string;
    cacheDir: string;
    /**
     * `server` with `externalServer`: TRIVY_SERVER_URL (whatever TRIVY_CACHE_MODE said); else the scanner starts one.
     */
    cacheMode: CacheMode;
    cacheBackend?: string;
    /** TRIVY_SERVER_URL: every scan is a client of this server; the scanner starts none. */
    externalServer?: ExternalServer;
    /** How long the scanner's own server may take to answer /healthz (TRIVY_SERVER_START_TIMEOUT). */
    serverStartTimeoutMs: number;
    /**
     * TRIVY_SCAN_CACHE_MAX_SIZE, where the layer cache is TRIVY_CACHE_DIR/fanal (shared, own server); unset: no bound.
     */
    scanCacheMaxBytes?: number;
    timeoutMs: number;
    dbUpdateTimeoutMs: number;
    dbRepositories: string[];
    javaDbRepositories: string[];
    skipDbUpdate: boolean;
  };
  sbom: { enabled: boolean; format: 'cyclonedx' | 'spdx-json' };
  /** Where each run pushes its metrics; no URL: no metrics. */
  metrics: { pushgatewayUrl?: string; job: string; groupingLabels: Record<string, string> };
  log: { level: LogLevel; format: LogFormat };
  /** SHARD_COUNT and the rest (README "Scaling out"): this process's part in a sharded run. */
  shard: ShardConfig;
  /** Values the scanner must never print (redacted from every log line). */
  secrets: string[];
  /** Non-fatal remarks to log once the logger exists. */
  warnings: string[];
}

export interface ExternalServer {
  url: string;
  /** TRIVY_SERVER_TOKEN: reaches Trivy only as TRIVY_TOKEN in its environment. */
  token?: string;
  tokenHeader: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: ConfigProblem[]) {
    super(`invalid configuration: ${problems.map((p) => p.message).join('; ')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadOptions {
  /** Looks up an executable; injectable for tests. */
  resolveExecutable?: ResolveExecutable;
  /** Whether stdout is a terminal, for LOG_FORMAT=auto; process.stdout's by default. */
  stdoutIsTerminal?: boolean;
}

/** What the cross-setting rules decided, beyond the values of the table. */
interface Derived {
  concurrency: number;
  cacheMode: CacheMode;
  cacheBackend?: string;
  scanCacheMaxBytes?: number;
  binary: string;
  logFormat: LogFormat;
  shard: ShardConfig;
  warnings: string[];
}

export function loadConfig(env: Env, options: LoadOptions = {}): Config {
  const { values, problems } = readSettings(env, {
    notRequired: dryRunNeedsNoApi,
    unused: backendUnusedOutsideRedis,
  });
  const found: Findings = { problems, warnings: [] };
  checkAuthPair(env, found);
  checkExclusions(values, found);
  lockWaitWithinDeadline(values, found);
  const cacheMode = effectiveCacheMode(values, env, found);
  const concurrency = concurrencyForCacheMode(values, cacheMode, found);
  const cacheBackend = redisBackend(values, env, cacheMode, found);
  const scanCacheMaxBytes = scanCacheBound(values, env, cacheMode, found);
  serverTokenUnusedWithoutUrl(values, env, found);
  const binary = resolveTrivyBinary(values.TRIVY_BINARY, env, options.resolveExecutable ?? findExecutable, found);
  const shard = shardConfig(values, found.problems);
  if (found.problems.length > 0) throw new ConfigError(inTableOrder(found.problems));

  // No problem: every setting with a default has its value, and so has every required one (unless exempted).
  const all = values as SettingValues;
  const stdoutIsTerminal = options.stdoutIsTerminal ?? process.stdout.isTTY;
  return buildConfig(all, {
    concurrency: concurrency ?? all.SCAN_CONCURRENCY,
    cacheMode: cacheMode ?? all.TRIVY_CACHE_MODE,
    cacheBackend,
    scanCacheMaxBytes,
    binary: binary ?? all.TRIVY_BINARY,
    logFormat: resolveLogFormat(all.LOG_FORMAT, stdoutIsTerminal),
    shard,
    warnings: found.warnings,
  });
}

/** A best-effort LOG_FORMAT for reporting a configuration error, which may concern LOG_FORMAT itself. */
export function logFormatOf(env: Env, stdoutIsTerminal: boolean = process.stdout.isTTY): LogFormat {
  const word = env.LOG_FORMAT?.trim().toLowerCase();
  return resolveLogFormat(word === 'json' || word === 'text' ? word : 'auto', stdoutIsTerminal);
}

function buildConfig(v: SettingValues, derived: Derived): Config {
  const { EPHOR_AUTH_HEADER: header, EPHOR_AUTH_VALUE: value } = v;
  return {
    ephor: {
      // Unset only in a dry run, which posts nothing.
      apiUrl: v.EPHOR_API_URL ?? '',
      auth: header !== undefined && value !== undefined ? { header, value } : undefined,
      timeoutMs: v.EPHOR_TIMEOUT,
      maxRetries: v.EPHOR_MAX_RETRIES,
      maxPayloadBytes: v.EPHOR_MAX_PAYLOAD_BYTES,
      dryRun: v.EPHOR_DRY_RUN,
      outputDir: v.EPHOR_OUTPUT_DIR,
    },
    spool: { dir: v.SPOOL_DIR ?? path.join(v.TRIVY_CACHE_DIR, 'spool'), maxAgeMs: v.SPOOL_MAX_AGE },
    scan: {
      namespaces: v.SCAN_NAMESPACES!,
      excludeNamespaces: v.SCAN_EXCLUDE_NAMESPACES ?? [],
      namespaceSelector: v.SCAN_NAMESPACE_SELECTOR,
      concurrency: derived.concurrency,
      deadlineMs: v.SCAN_DEADLINE,
      severities: v.SCAN_SEVERITY,
      workloadKinds: v.SCAN_WORKLOAD_TYPES,
      otherControllers: { enabled: v.SCAN_OTHER_CONTROLLERS, exclude: v.SCAN_OTHER_CONTROLLERS_EXCLUDE },
    },
    kube: { timeoutMs: v.KUBE_TIMEOUT, kubeconfig: v.KUBECONFIG, context: v.KUBE_CONTEXT },
    lock: { mode: v.RUN_LOCK, name: v.RUN_LOCK_NAME, namespace: v.RUN_LOCK_NAMESPACE, waitMs: v.RUN_LOCK_WAIT },
    registryAuth: v.REGISTRY_AUTH_ENABLED,
    trivy: {
      binary: derived.binary,
      cacheDir: v.TRIVY_CACHE_DIR,
      cacheMode: derived.cacheMode,
      cacheBackend: derived.cacheBackend,
      externalServer:
        v.TRIVY_SERVER_URL === undefined
          ? undefined
          : { url: v.TRIVY_SERVER_URL, token: v.TRIVY_SERVER_TOKEN, tokenHeader: v.TRIVY_SERVER_TOKEN_HEADER },
      serverStartTimeoutMs: v.TRIVY_SERVER_START_TIMEOUT,
      scanCacheMaxBytes: derived.scanCacheMaxBytes,
      timeoutMs: v.TRIVY_TIMEOUT,
      dbUpdateTimeoutMs: v.TRIVY_DB_UPDATE_TIMEOUT,
      dbRepositories: v.TRIVY_DB_REPO ?? [],
      javaDbRepositories: v.TRIVY_JAVA_DB_REPO ?? [],
      skipDbUpdate: v.TRIVY_SKIP_DB_UPDATE,
    },
    sbom: { enabled: v.SBOM_ENABLED, format: v.SBOM_FORMAT },
    metrics: {
      pushgatewayUrl: v.METRICS_PUSHGATEWAY_URL,
      job: v.METRICS_PUSHGATEWAY_JOB,
      groupingLabels: v.METRICS_PUSHGATEWAY_GROUPING ?? {},
    },
    log: { level: v.LOG_LEVEL, format: derived.logFormat },
    shard: derived.shard,
    secrets: [...secretValues(value, derived.cacheBackend, v.TRIVY_SERVER_TOKEN), ...shardSecret(derived.shard)],
    warnings: derived.warnings,
  };
}

function shardSecret(shard: ShardConfig): string[] {
  return 'token' in shard ? [shard.token] : [];
}
