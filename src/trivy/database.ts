// Prepares Trivy once per run: the TRIVY_* variables it will not see are named, its version is read (a known-malicious
// release stops the run here), then the vulnerability DB and the Java DB are downloaded as two independent steps into
// TRIVY_CACHE_DIR (each mirror tried in order). Scans then never download anything themselves. A run with no usable
// DB stops here instead of starting N scans that would all fail.
import { mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/index.js';
import { messageOf } from '../errors.js';
import type { Logger } from '../log.js';
import { withheldTrivyVariables } from './environment.js';
import { classifyFailure } from './failure.js';
import { KNOWN_BAD_FIX, knownBadMessage, knownBadTrivy } from './known-bad.js';
import type { LayerCacheState } from './layer-cache.js';
import { runTrivy, type RunOutcome } from './process.js';
import type { ScanServer } from './server.js';

export interface DbState {
  /** A usable database is in the cache (downloaded now or by an earlier run). */
  ready: boolean;
  updatedAt?: string;
  downloadedAt?: string;
  nextUpdate?: string;
  /** Why this run could not download it, when it tried and failed. */
  downloadError?: string;
}

export interface TrivySetup {
  version?: string;
  db: DbState;
  javaDb: DbState;
  /** `--skip-version-check` and `--disable-telemetry` exist since Trivy 0.63. */
  supportsVersionCheckFlags: boolean;
  /** `--db-repository` takes several repositories since Trivy 0.56. */
  supportsRepositoryList: boolean;
  /** Server mode: the server every scan is a client of (absent: scans run locally, in `cacheMode`). */
  server?: ScanServer;
  /**
   * The layer cache in TRIVY_CACHE_DIR/fanal, in the modes that use it (shared, own server): measured and kept clean.
   */
  layerCache?: LayerCacheState;
  /** The mode scans actually run in (scan_config.cache_mode): `server`, `external_server`, or the configured local
   * mode (`ephemeral` when the own server could not be started). Absent: the configured TRIVY_CACHE_MODE. */
  cacheMode?: string;
}

export class TrivyUnavailableError extends Error {}

const VERSION_TIMEOUT_MS = 30_000;
/** Trivy's own --timeout fires first; the process group is killed this much later if it is still there. */
export const KILL_GRACE_MS = 2_000;

type DbKind = 'db' | 'java-db';
const DB_FILES: Record<DbKind, string> = { db: 'trivy.db', 'java-db': 'trivy-java.db' };

export async function prepareTrivy(
  config: Config,
  env: Record<string, string | undefined>,
  log: Logger,
  signal?: AbortSignal,
): Promise<TrivySetup> {
  const { trivy } = config;
  warnWithheldVariables(env, log);
  // The version first: a known-malicious Trivy must not run anything else (the downloads reach the network with
  // Trivy's environment). A version that cannot be read is logged and the run goes on, as before.
  const version = await trivyVersion(config, env, log, signal);
  const bad = version === undefined ? undefined : knownBadTrivy(version);
  if (version !== undefined && bad)
    throw new TrivyUnavailableError(`${knownBadMessage(version, bad)}: ${KNOWN_BAD_FIX}`);
  try {
    await mkdir(trivy.cacheDir, { recursive: true });
  } catch (error) {
    throw new TrivyUnavailableError(`TRIVY_CACHE_DIR=${trivy.cacheDir} cannot be created: ${messageOf(error)}`, {
      cause: error,
    });
  }
  // The two downloads share TRIVY_CACHE_DIR, one after the other. An external server has its own vulnerability DB
  // (a client never opens one: pkg/commands/artifact/run.go initDB returns before DownloadDB when --server is set),
  // but jar analysis runs on the client, with the Java DB of the client's --cache-dir (initJavaDB), so that one is
  // still prepared here.
  const external = trivy.externalServer !== undefined;
  const db = external ? { ready: false } : await prepareDatabase('db', config, env, log, signal);
  const javaDb = await prepareDatabase('java-db', config, env, log, signal);
  const supportsVersionCheckFlags = version === undefined || atLeast(version, [0, 63]);
  const supportsRepositoryList = version === undefined || atLeast(version, [0, 56]);
  if (!db.ready && !external) {
    const cause = trivy.skipDbUpdate
      ? `TRIVY_SKIP_DB_UPDATE=true but ${path.join(trivy.cacheDir, 'db')} holds no database; run once without it, ` +
        'or pre-populate the cache'
      : `the download failed (${db.downloadError}) and ${path.join(trivy.cacheDir, 'db')} holds no earlier copy; ` +
        'check network access to the DB repository or set TRIVY_DB_REPO to a reachable mirror';
    throw new TrivyUnavailableError(`no usable vulnerability database: ${cause}`);
  }
  if (!javaDb.ready) {
    log.warn(
      { error: javaDb.downloadError },
      'Java DB unavailable: images with Java packages will download it during their own scan',
    );
  }
  return { version, db, javaDb, supportsVersionCheckFlags, supportsRepositoryList };
}

/** One warning per TRIVY_* variable of the scanner's environment that Trivy will not see: its name, never its value. */
function warnWithheldVariables(env: Record<string, string | undefined>, log: Logger): void {
  for (const { name, reason } of withheldTrivyVariables(env)) {
    log.warn({ variable: name, reason }, `${name} is not passed to Trivy`);
  }
}

async function trivyVersion(
  config: Config,
  env: Record<string, string | undefined>,
  log: Logger,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const outcome = await runTrivy({
    binary: config.trivy.binary,
    args: ['version', '--format', 'json'],
    env,
    timeoutMs: VERSION_TIMEOUT_MS,
    signal,
    captureStdout: true,
  });
  const version = parseVersionOutput(outcome.stdout);
  if (outcome.exitCode === 0 && version) {
    log.info({ trivy_version: version }, 'trivy found');
    return version;
  }
  log.warn(
    { exit_code: outcome.exitCode, error: outcome.spawnError ?? failureText(outcome) },
    'trivy version could not be read; trivy_version will be missing from payloads',
  );
  return undefined;
}

/** `trivy version --format json` prints one compact JSON line; anything else around it is ignored. */
export function parseVersionOutput(stdout: string): string | undefined {
  for (const line of stdout.split('\n').reverse()) {
    try {
      const data = JSON.parse(line) as { Version?: unknown };
      if (typeof data.Version === 'string' && data.Version.trim() !== '') return data.Version.trim();
    } catch {
      // not the JSON line
    }
  }
  return undefined;
}

async function prepareDatabase(
  kind: DbKind,
  config: Config,
  env: Record<string, string | undefined>,
  log: Logger,
  signal?: AbortSignal,
): Promise<DbState> {
  const { trivy } = config;
  const label = kind === 'db' ? 'vulnerability DB' : 'Java DB';
  let downloadError: string | undefined;
  if (trivy.skipDbUpdate) {
    log.info({ database: kind }, `TRIVY_SKIP_DB_UPDATE=true: using the ${label} already in the cache`);
  } else {
    downloadError = await downloadDatabase(kind, config, env, log, signal);
  }
  const state: DbState = { ...(await readDbMetadata(trivy.cacheDir, kind)), downloadError };
  if (state.ready && downloadError) {
    log.warn(
      { database: kind, updated_at: state.updatedAt, age_hours: ageHours(state.updatedAt) },
      `${label} download failed; scanning with the copy already in the cache`,
    );
  } else if (state.ready) {
    log.info({ database: kind, updated_at: state.updatedAt, age_hours: ageHours(state.updatedAt) }, `${label} ready`);
  }
  return state;
}

/**
 * Tries each configured repository in order (Trivy's default when none is set); returns the last error, if all failed.
 */
async function downloadDatabase(
  kind: DbKind,
  config: Config,
  env: Record<string, string | undefined>,
  log: Logger,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const { trivy } = config;
  const repositories = kind === 'db' ? trivy.dbRepositories : trivy.javaDbRepositories;
  let lastError: string | undefined;
  for (const repository of repositories.length > 0 ? repositories : [undefined]) {
    const args = [
      'image',
      kind === 'db' ? '--download-db-only' : '--download-java-db-only',
      '--cache-dir',
      trivy.cacheDir,
      '--timeout',
      trivyDuration(trivy.dbUpdateTimeoutMs),
      '--no-progress',
      ...(repository ? [kind === 'db' ? '--db-repository' : '--java-db-repository', repository] : []),
    ];
    const started = Date.now();
    const outcome = await runTrivy({
      binary: trivy.binary,
      args,
      env,
      timeoutMs: trivy.dbUpdateTimeoutMs + KILL_GRACE_MS,
      signal,
    });
    if (outcome.exitCode === 0) {
      log.info(
        { database: kind, repository: repository ?? 'trivy default', duration_ms: Date.now() - started },
        'database downloaded',
      );
      return undefined;
    }
    lastError = failureText(outcome);
    log.warn(
      { database: kind, repository: repository ?? 'trivy default', error: lastError },
      'database download failed',
    );
    if (outcome.cancelled) break;
  }
  return lastError;
}

function failureText(outcome: RunOutcome): string {
  if (outcome.spawnError) return outcome.spawnError;
  if (outcome.cancelled) return 'cancelled by shutdown';
  const { reason, detail } = classifyFailure(outcome);
  return `${reason}: ${detail}`;
}

/** Reads `<cache>/<db>/metadata.json` (Trivy's own layout) and checks the database file is there and not empty. */
export async function readDbMetadata(cacheDir: string, kind: DbKind): Promise<DbState> {
  const dir = path.join(cacheDir, kind);
  try {
    const [metadata, file] = await Promise.all([
      readFile(path.join(dir, 'metadata.json'), 'utf8'),
      stat(path.join(dir, DB_FILES[kind])),
    ]);
    if (file.size === 0) return { ready: false };
    const data = JSON.parse(metadata) as Record<string, unknown>;
    const text = (key: string) => (typeof data[key] === 'string' ? data[key] : undefined);
    return {
      ready: true,
      updatedAt: text('UpdatedAt'),
      downloadedAt: text('DownloadedAt'),
      nextUpdate: text('NextUpdate'),
    };
  } catch {
    return { ready: false };
  }
}

/** Trivy takes Go durations; whole seconds are written as such, anything finer in milliseconds. */
export function trivyDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

export function ageHours(iso: string | undefined, now = Date.now()): number | undefined {
  const time = iso ? Date.parse(iso) : NaN;
  return Number.isFinite(time) ? Math.round(((now - time) / 3_600_000) * 10) / 10 : undefined;
}

/** `0.69.3` ≥ [0, 63]; development builds ("dev") count as new. */
export function atLeast(version: string, minimum: [number, number]): boolean {
  const match = /^v?(\d+)\.(\d+)/.exec(version);
  if (!match) return true;
  const [major, minor] = [Number(match[1]), Number(match[2])];
  return major !== minimum[0] ? major > minimum[0] : minor >= minimum[1];
}
