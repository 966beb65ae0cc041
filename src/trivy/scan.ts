// One image scan: `trivy image REF --format json --output FILE …`, the report read back from the file (never from
// an unbounded stdout buffer), every failure classified.
import { access, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/index.js';
import type { ScanFailureReason } from '../types.js';
import { KILL_GRACE_MS, trivyDuration, type TrivySetup } from './database.js';
import { classifyFailure } from './failure.js';
import { runTrivy } from './process.js';
import { InvalidReportError, readReport, type TrivyReport } from './report.js';

export type ScanOutcome =
  | { ok: true; report: TrivyReport }
  | { ok: false; reason: ScanFailureReason | 'cancelled'; detail: string };

export interface ScanContext {
  config: Config;
  setup: TrivySetup;
  env: Record<string, string | undefined>;
  /** The run's private temporary directory (reports and per-scan caches go here). */
  workDir: string;
}

export async function scanImage(ref: string, context: ScanContext, signal?: AbortSignal): Promise<ScanOutcome> {
  const { config } = context;
  const scanDir = await mkdtemp(path.join(context.workDir, 'scan-'));
  try {
    const cacheDir = config.trivy.cacheMode === 'ephemeral' ? await ephemeralCache(scanDir, config.trivy.cacheDir) : config.trivy.cacheDir;
    const outputFile = path.join(scanDir, 'report.json');
    const outcome = await runTrivy({
      binary: config.trivy.binary,
      args: scanArgs({ ref, outputFile, cacheDir, config, setup: context.setup }),
      env: context.env,
      extraEnv: config.trivy.cacheMode === 'redis' && config.trivy.cacheBackend ? { TRIVY_CACHE_BACKEND: config.trivy.cacheBackend } : undefined,
      timeoutMs: config.trivy.timeoutMs + KILL_GRACE_MS,
      signal,
    });
    if (outcome.cancelled) return { ok: false, reason: 'cancelled', detail: 'scan stopped by shutdown' };
    if (outcome.spawnError) return { ok: false, reason: 'other', detail: `trivy could not be started: ${outcome.spawnError}` };
    if (outcome.exitCode !== 0 || outcome.timedOut) return { ok: false, ...classifyFailure(outcome) };
    try {
      return { ok: true, report: await readReport(outputFile) };
    } catch (error) {
      if (error instanceof InvalidReportError) return { ok: false, reason: 'invalid_output', detail: error.message };
      throw error;
    }
  } finally {
    await rm(scanDir, { recursive: true, force: true });
  }
}

export interface ScanArgsInput {
  ref: string;
  outputFile: string;
  cacheDir: string;
  config: Config;
  setup: TrivySetup;
}

export function scanArgs({ ref, outputFile, cacheDir, config, setup }: ScanArgsInput): string[] {
  const { trivy, scan } = config;
  const args = [
    'image',
    '--format', 'json',
    '--output', outputFile,
    '--scanners', 'vuln',
    '--list-all-pkgs=false',
    // In a pod there is no Docker or containerd socket; asking only the registry gives one clear error, not four.
    '--image-src', 'remote',
    '--no-progress',
    '--cache-dir', cacheDir,
    '--timeout', trivyDuration(trivy.timeoutMs),
    '--severity', scan.severities.join(','),
  ];
  if (setup.db.ready) args.push('--skip-db-update');
  if (setup.javaDb.ready) {
    args.push('--skip-java-db-update');
  } else {
    const mirrors = setup.supportsRepositoryList ? trivy.javaDbRepositories : trivy.javaDbRepositories.slice(0, 1);
    for (const repository of mirrors) args.push('--java-db-repository', repository);
  }
  if (setup.supportsVersionCheckFlags) args.push('--skip-version-check', '--disable-telemetry');
  args.push(ref);
  return args;
}

/**
 * A private cache directory per scan, so concurrent Trivy processes never contend for the layer cache's lock;
 * the databases of TRIVY_CACHE_DIR are linked in (Trivy opens them read-only when it skips the update).
 */
async function ephemeralCache(scanDir: string, sharedCacheDir: string): Promise<string> {
  const cacheDir = path.join(scanDir, 'cache');
  await mkdir(cacheDir);
  for (const database of ['db', 'java-db']) {
    const source = path.join(sharedCacheDir, database);
    if (await exists(source)) await symlink(source, path.join(cacheDir, database), 'dir');
  }
  return cacheDir;
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
