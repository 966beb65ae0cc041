// One image scan, in two steps: `trivy image REF --format json --output FILE …` (it holds one of the
// SCAN_CONCURRENCY slots), then reading the report back from its file into a findings file (and the SBOM), which
// runs outside the slot so the next Trivy process can start. Every failure is classified.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/index.js';
import { dockerConfigFor, type RegistryCredential } from '../kube/pull-secrets.js';
import { writeImageFindings, type ImageFindings } from '../report/findings.js';
import type { ScanFailureReason, ScanTarget } from '../types.js';
import { KILL_GRACE_MS, trivyDuration, type TrivySetup } from './database.js';
import { classifyFailure, writeFailure } from './failure.js';
import { runTrivy, type RunOutcome } from './process.js';
import { InvalidReportError } from './report.js';
import { convertToSbom } from './sbom.js';
import type { ClientTarget } from './server.js';
import { trivyState } from './state.js';

/** `notStarted`: cancelled while it waited for a slot, before any Trivy process ran for it. */
export type ScanFailureOutcome = {
  ok: false;
  reason: ScanFailureReason | 'cancelled';
  detail: string;
  notStarted?: boolean;
};

/** Trivy exited 0 with a report file; dispose() removes the scan's directory once it is read. `startedAt`: when its
 * first Trivy process started (epoch ms). */
export type TrivyRun =
  | { ok: true; reportFile: string; startedAt: number; dispose(): Promise<void> }
  | (ScanFailureOutcome & { startedAt?: number });

export type ScanOutcome =
  { ok: true; findings: ImageFindings; sbomFile?: string; sbomError?: string } | ScanFailureOutcome;

export interface ScanContext {
  config: Config;
  setup: TrivySetup;
  env: Record<string, string | undefined>;
  /** The run's private temporary directory (reports and per-scan caches go here). */
  workDir: string;
  /** Where the findings files are kept until every namespace that needs them is delivered. */
  findingsDir: string;
  /** Where SBOMs are kept until delivered, when SBOM_ENABLED. */
  sbomDir?: string;
  /** Registry credentials for an image, when REGISTRY_AUTH_ENABLED. */
  credentials?: (target: ScanTarget) => Promise<{ candidates: RegistryCredential[]; secretsTried: string[] }>;
}

/**
 * Runs Trivy on one image. With pull secrets for its registry, each credential is tried in turn (the registry may
 * refuse one), then an anonymous pull; each attempt gets a private DOCKER_CONFIG holding only that registry's entry.
 */
export async function runImageScan(
  target: ScanTarget,
  context: ScanContext,
  signal?: AbortSignal,
  onStarted?: () => void,
): Promise<TrivyRun> {
  // The directories a scan needs are made synchronously: a few microseconds each, where awaiting each one in turn
  // would hold the slot for several round trips of a busy event loop between two Trivy processes.
  let scanDir: string;
  try {
    scanDir = mkdtempSync(path.join(context.workDir, 'scan-'));
  } catch (error) {
    return writeFailure(error, context.workDir);
  }
  const dispose = () => rm(scanDir, { recursive: true, force: true });
  try {
    const { candidates, secretsTried } = (await context.credentials?.(target)) ?? { candidates: [], secretsTried: [] };
    const attempts: Array<RegistryCredential | undefined> = [...candidates, undefined];
    let outcome: ScanFailureOutcome | undefined;
    let startedAt: number | undefined;
    const started = () => {
      if (startedAt !== undefined) return;
      startedAt = Date.now();
      onStarted?.();
    };
    for (const [index, credential] of attempts.entries()) {
      const dockerConfig = credential && (await writeDockerConfig(scanDir, index, target.registry, credential));
      const attempt = await scanOnce(
        target,
        context,
        path.join(scanDir, `attempt-${index}`),
        signal,
        dockerConfig,
        started,
      );
      if (attempt.ok) return { ...attempt, startedAt: startedAt ?? Date.now(), dispose };
      outcome = attempt;
      if (outcome.reason !== 'unauthorized') break;
    }
    await dispose();
    if (outcome!.reason !== 'unauthorized') return { ...outcome!, startedAt };
    const tried = !context.credentials
      ? 'pull secrets are not read: REGISTRY_AUTH_ENABLED=false'
      : secretsTried.length > 0
        ? `pull secrets tried: ${secretsTried.join(', ')}`
        : 'the workloads name no pull secret';
    return {
      ok: false,
      reason: 'unauthorized',
      detail: `registry ${target.registry} refused the pull (${tried}): ${outcome!.detail}`,
      startedAt,
    };
  } catch (error) {
    await dispose();
    return writeFailure(error, context.workDir);
  }
}

/** The report → a findings file (and an SBOM); the scan's directory is removed either way. */
export async function readImageScan(
  target: ScanTarget,
  run: Extract<TrivyRun, { ok: true }>,
  context: ScanContext,
  signal?: AbortSignal,
): Promise<ScanOutcome> {
  const { config } = context;
  // By key, not ref: one digest scanned for two platforms gives two findings files.
  const name = createHash('sha256').update(target.key).digest('hex').slice(0, 24);
  try {
    // A few reports at a time, process-wide (state.ts).
    const findings = await trivyState.reportReads.run(() =>
      writeImageFindings(run.reportFile, config.scan.severities, path.join(context.findingsDir, `${name}.json`)),
    );
    if (!context.sbomDir) return { ok: true, findings };
    const sbomFile = path.join(context.sbomDir, `${name}.json`);
    const sbom = await convertToSbom(run.reportFile, sbomFile, config, context.env, signal);
    return sbom.ok ? { ok: true, findings, sbomFile } : { ok: true, findings, sbomError: sbom.detail };
  } catch (error) {
    if (error instanceof InvalidReportError) return { ok: false, reason: 'invalid_output', detail: error.message };
    return writeFailure(error, context.workDir);
  } finally {
    await run.dispose();
  }
}

/** A scan whose server died under it is scanned again: after the restart, and once more if it then falls back. */
const MAX_SERVER_RETRIES = 2;

/** One scan of the image: locally, or as a client of the run's Trivy server (scanned again when that server died). */
async function scanOnce(
  target: ScanTarget,
  context: ScanContext,
  attemptDir: string,
  signal: AbortSignal | undefined,
  dockerConfig: string | undefined,
  onStarted: () => void,
): Promise<{ ok: true; reportFile: string } | ScanFailureOutcome> {
  const server = context.setup.server;
  for (let retry = 0; ; retry++) {
    const client = server ? await server.target() : undefined;
    const dir = retry === 0 ? attemptDir : path.join(attemptDir, `server-retry-${retry}`);
    const run = await runScanProcess({ target, context, dir, signal, dockerConfig, onStarted, client });
    if (!('outcome' in run)) return run;
    const { outcome } = run;
    const failed = outcome.exitCode !== 0 || outcome.timedOut;
    if (failed && client && retry < MAX_SERVER_RETRIES && !outcome.cancelled && !signal?.aborted) {
      if (await server!.retryAfter(client, outcome.stderr)) continue;
    }
    return failed ? { ok: false, ...classifyFailure(outcome) } : { ok: true, reportFile: run.reportFile };
  }
}

interface ScanProcessInputs {
  target: ScanTarget;
  context: ScanContext;
  dir: string;
  signal: AbortSignal | undefined;
  dockerConfig: string | undefined;
  onStarted: () => void;
  /** Server mode: the server to be a client of (absent: a local scan). */
  client: ClientTarget | undefined;
}

/** One Trivy process for the image; what cannot be retried (cancelled, never started) is already an outcome. */
async function runScanProcess(
  inputs: ScanProcessInputs,
): Promise<{ outcome: RunOutcome; reportFile: string } | ScanFailureOutcome> {
  const { target, context, dir, signal, dockerConfig, onStarted, client } = inputs;
  const { config } = context;
  mkdirSync(dir);
  // shared and redis scans use TRIVY_CACHE_DIR itself; every other scan a private directory with the DBs linked in:
  // ephemeral ones, those of server mode whose server could not be kept (they scan as ephemeral ones do), and
  // clients, which open no layer cache of their own (only the server's, remotely) and read the Java DB there.
  const mode = config.trivy.cacheMode;
  const inCacheDir = context.setup.server === undefined && (mode === 'shared' || mode === 'redis');
  const cacheDir = inCacheDir ? config.trivy.cacheDir : ephemeralCache(dir, config.trivy.cacheDir);
  const outputFile = path.join(dir, 'report.json');
  const extraEnv: Record<string, string> = { ...client?.env };
  if (inCacheDir && mode === 'redis' && config.trivy.cacheBackend)
    extraEnv.TRIVY_CACHE_BACKEND = config.trivy.cacheBackend;
  if (dockerConfig) extraEnv.DOCKER_CONFIG = dockerConfig;
  const outcome = await runTrivy({
    binary: config.trivy.binary,
    args: scanArgs({
      ref: target.ref,
      platform: target.platform,
      outputFile,
      cacheDir,
      config,
      setup: context.setup,
      client,
    }),
    env: context.env,
    extraEnv,
    timeoutMs: config.trivy.timeoutMs + KILL_GRACE_MS,
    signal,
    gate: config.scan.concurrency,
    onStarted,
  });
  if (outcome.cancelled) {
    return outcome.notStarted
      ? { ok: false, reason: 'cancelled', detail: 'the run stopped before this image was scanned', notStarted: true }
      : { ok: false, reason: 'cancelled', detail: 'scan stopped by shutdown' };
  }
  if (outcome.notStarted) {
    const waited = Math.round(outcome.durationMs / 1000);
    return {
      ok: false,
      reason: 'timeout',
      detail:
        `trivy was not started: no scan slot came free within ${waited} s ` +
        '(the Trivy launcher stopped starting processes)',
    };
  }
  if (outcome.spawnError)
    return { ok: false, reason: 'other', detail: `trivy could not be started: ${outcome.spawnError}` };
  return { outcome, reportFile: outputFile };
}

/** A private directory (0700) with config.json (0600) for one Trivy process; removed with the scan directory. */
async function writeDockerConfig(
  scanDir: string,
  index: number,
  registry: string,
  credential: RegistryCredential,
): Promise<string> {
  const dir = path.join(scanDir, `docker-${index}`);
  await mkdir(dir, { mode: 0o700 });
  await writeFile(path.join(dir, 'config.json'), dockerConfigFor(registry, credential.entry), { mode: 0o600 });
  return dir;
}

export interface ScanArgsInput {
  ref: string;
  /** `os/arch` of the nodes that run it: the variant of a multi-platform image to scan (ignored for a single one). */
  platform?: string;
  outputFile: string;
  cacheDir: string;
  config: Config;
  setup: TrivySetup;
  /** Server mode: `--server URL` (and `--token-header`); the token goes in the environment. */
  client?: ClientTarget;
}

/**
 * The flags of one scan. As a client (aquasecurity/trivy v0.69.3), the report flags (format, output, scanners,
 * severity, list-all-pkgs) still apply: the client filters and writes the report (pkg/commands/artifact/run.go
 * Filter, Report); so do --image-src, --timeout and the version-check flags (the client pulls the image and runs
 * the update check), and the Java DB flags (initJavaDB runs unless --listen: jar analysis is the client's). A client
 * never opens a vulnerability DB (initDB returns before DownloadDB when ServerAddr is set), so --skip-db-update,
 * meaningless there, is not passed.
 */
export function scanArgs({ ref, platform, outputFile, cacheDir, config, setup, client }: ScanArgsInput): string[] {
  const { trivy, scan } = config;
  const args = [
    'image',
    '--format',
    'json',
    '--output',
    outputFile,
    '--scanners',
    'vuln',
    // Installed packages are listed only when an SBOM is derived from the report (they are not findings).
    config.sbom.enabled ? '--list-all-pkgs' : '--list-all-pkgs=false',
    // In a pod there is no Docker or containerd socket; asking only the registry gives one clear error, not four.
    '--image-src',
    'remote',
    '--no-progress',
    '--cache-dir',
    cacheDir,
    '--timeout',
    trivyDuration(trivy.timeoutMs),
    '--severity',
    scan.severities.join(','),
  ];
  if (client) {
    args.push('--server', client.url);
    if (client.tokenHeader) args.push('--token-header', client.tokenHeader);
  } else if (setup.db.ready) {
    args.push('--skip-db-update');
  }
  if (setup.javaDb.ready) {
    args.push('--skip-java-db-update');
  } else {
    const mirrors = setup.supportsRepositoryList ? trivy.javaDbRepositories : trivy.javaDbRepositories.slice(0, 1);
    for (const repository of mirrors) args.push('--java-db-repository', repository);
  }
  if (setup.supportsVersionCheckFlags) args.push('--skip-version-check', '--disable-telemetry');
  if (platform) args.push('--platform', platform);
  args.push(ref);
  return args;
}

/**
 * A private cache directory per scan, so concurrent Trivy processes never contend for the layer cache's lock;
 * the databases of TRIVY_CACHE_DIR are linked in (Trivy opens them read-only when it skips the update).
 */
function ephemeralCache(attemptDir: string, sharedCacheDir: string): string {
  const cacheDir = path.join(attemptDir, 'cache');
  mkdirSync(cacheDir);
  for (const database of ['db', 'java-db']) {
    const source = path.join(sharedCacheDir, database);
    if (exists(source)) symlinkSync(source, path.join(cacheDir, database), 'dir');
  }
  return cacheDir;
}

/** Database directories found once are not looked up again (state.ts: they are never removed while it runs). */
function exists(file: string): boolean {
  if (trivyState.databaseDirs.has(file)) return true;
  if (!existsSync(file)) return false;
  trivyState.databaseDirs.add(file);
  return true;
}
