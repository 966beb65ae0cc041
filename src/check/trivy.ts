// Check 5: Trivy is there and runs (`trivy version`) and is not a known-malicious release, which TRIVY_* variables it
// will not see, its cache directory is writable, a usable vulnerability DB is in it and how old it is (a warning past
// 2 days, like Grype's stale-DB guard), and configured DB mirrors answer. Nothing is downloaded or written.
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Config, Env } from '../config/index.js';
import { ageHours, atLeast, parseVersionOutput, readDbMetadata, type DbState } from '../trivy/database.js';
import { withheldTrivyVariables } from '../trivy/environment.js';
import { KNOWN_BAD_FIX, knownBadMessage, knownBadTrivy } from '../trivy/known-bad.js';
import { runTrivy } from '../trivy/process.js';
import { HttpFailure, httpRequest } from './http.js';
import { checkExternalServer, checkLayerCache } from './trivy-server.js';
import { chartValue, inChart } from './hints.js';
import { CALL_TIMEOUT_MS, fail, pass, warn, type CheckResult } from './types.js';

/** Older than this, a DB misses what was published since (Trivy's DB is rebuilt every 6 h). */
export const STALE_DB_HOURS = 48;
const DEFAULT_DB_REPOSITORIES = ['mirror.gcr.io/aquasec/trivy-db:2', 'ghcr.io/aquasecurity/trivy-db:2'];

/** `missing`: TRIVY_BINARY names nothing executable, which the configuration check reports with a run's own words. */
export async function checkTrivy(config: Config, env: Env, missing: boolean): Promise<CheckResult[]> {
  const { trivy } = config;
  const results: CheckResult[] = [];
  const local = missing ? undefined : await trivyVersion(trivy.binary, env);
  if (local) results.push(local.result);
  for (const { name, reason } of withheldTrivyVariables(env)) {
    results.push(
      warn(
        'trivy',
        `${name} is set but not passed to Trivy: ${reason}`,
        "remove it from the scanner's environment (chart: extraEnv)",
      ),
    );
  }
  results.push(...(await cacheDirectory(trivy.cacheDir)));
  const external = trivy.externalServer;
  if (external) results.push(...(await checkExternalServer(external, local?.version)));
  else results.push(...(await checkLayerCache(config)));
  const db = await readDbMetadata(trivy.cacheDir, 'db');
  // With an external server the vulnerability DB and its mirrors are the server's business.
  const mirrors = external ? [] : await Promise.all(trivy.dbRepositories.map((repository) => checkMirror(repository)));
  const javaMirrors = await Promise.all(trivy.javaDbRepositories.map((repository) => checkMirror(repository)));
  const mirrorHasDb = mirrors.some((m) => m.ok);
  if (!external) results.push(databaseResult(config, db, mirrorHasDb));
  const java = await readDbMetadata(trivy.cacheDir, 'java-db');
  if (java.ready)
    results.push(pass('trivy', `Java DB in ${path.join(trivy.cacheDir, 'java-db')}, updated ${age(java.updatedAt)}`));
  else if (trivy.skipDbUpdate) {
    results.push(
      warn(
        'trivy',
        `no Java DB in ${path.join(trivy.cacheDir, 'java-db')}: with TRIVY_SKIP_DB_UPDATE=true, ` +
          'each image with Java packages downloads it during its own scan',
        `run once without ${inChart('TRIVY_SKIP_DB_UPDATE', '=false')} to keep the Java DB in the cache`,
      ),
    );
  }
  // An unreachable mirror blocks only when nothing else can provide a DB.
  const blocking = !db.ready && !mirrorHasDb;
  for (const mirror of mirrors)
    if (!mirror.ok) results.push(mirrorResult(mirror, 'TRIVY_DB_REPO', 'trivy-db:2', blocking ? 'fail' : 'warn'));
  for (const mirror of mirrors) if (mirror.ok) results.push(pass('trivy', mirror.message!));
  for (const mirror of javaMirrors)
    results.push(
      mirror.ok
        ? pass('trivy', mirror.message!)
        : mirrorResult(mirror, 'TRIVY_JAVA_DB_REPO', 'trivy-java-db:1', 'warn'),
    );
  return results;
}

async function trivyVersion(binary: string, env: Env): Promise<{ result: CheckResult; version?: string }> {
  const outcome = await runTrivy({
    binary,
    args: ['version', '--format', 'json'],
    env,
    timeoutMs: CALL_TIMEOUT_MS,
    captureStdout: true,
  });
  const version = parseVersionOutput(outcome.stdout);
  return { result: versionResult(binary, outcome, version), version };
}

function versionResult(
  binary: string,
  outcome: Awaited<ReturnType<typeof runTrivy>>,
  version: string | undefined,
): CheckResult {
  if (outcome.exitCode === 0 && version) {
    const bad = knownBadTrivy(version);
    if (bad) return fail('trivy', `${binary}: ${knownBadMessage(version, bad)}`, KNOWN_BAD_FIX);
    if (!atLeast(version, [0, 58])) {
      return warn(
        'trivy',
        `${binary} is Trivy ${version}; the scanner is built for Trivy 0.58 to 0.69`,
        'install Trivy 0.69 (the version the ephor-scanner image ships)',
      );
    }
    return pass('trivy', `${binary} is Trivy ${version}`);
  }
  const why =
    outcome.spawnError ??
    (outcome.timedOut
      ? `no answer within ${CALL_TIMEOUT_MS / 1000} s`
      : lastLine(outcome.stderr) || `exit code ${outcome.exitCode ?? outcome.signal}`);
  return fail(
    'trivy',
    `"${binary} version --format json" failed: ${why}`,
    `check that ${inChart('TRIVY_BINARY')} is a working Trivy executable for this machine`,
  );
}

function lastLine(text: string): string {
  return text.trim().split('\n').at(-1)?.trim().slice(0, 300) ?? '';
}

/**
 * The cache directory must be writable (or creatable): the DB is downloaded there and scans keep their layers there.
 */
async function cacheDirectory(dir: string): Promise<CheckResult[]> {
  let existing = dir;
  for (;;) {
    try {
      if (!(await stat(existing)).isDirectory()) {
        return [
          fail(
            'trivy',
            `TRIVY_CACHE_DIR=${dir}: ${existing} is not a directory`,
            `set ${inChart('TRIVY_CACHE_DIR')} to a directory`,
          ),
        ];
      }
      break;
    } catch {
      const parent = path.dirname(existing);
      if (parent === existing) break;
      existing = parent;
    }
  }
  try {
    await access(existing, constants.W_OK);
    return [];
  } catch {
    const uid = typeof process.getuid === 'function' ? ` by uid ${process.getuid()}` : '';
    const readOnly = existing === dir ? 'the directory' : existing;
    return [
      fail(
        'trivy',
        `TRIVY_CACHE_DIR=${dir} is not writable${uid} (${readOnly} is read-only to the scanner)`,
        'mount a writable volume there (chart: cache.enabled, with podSecurityContext.fsGroup), ' +
          'or set TRIVY_CACHE_DIR to a writable directory',
      ),
    ];
  }
}

function age(iso: string | undefined): string {
  const hours = ageHours(iso);
  if (hours === undefined) return 'at an unknown time (no UpdatedAt in metadata.json)';
  if (hours < STALE_DB_HOURS) return `${hours} h ago`;
  return `${Math.floor(hours / 24)} days ago (${Math.round(hours)} h)`;
}

function databaseResult(config: Config, db: DbState, mirrorHasDb: boolean): CheckResult {
  const { trivy } = config;
  const where = path.join(trivy.cacheDir, 'db');
  const sources = (trivy.dbRepositories.length > 0 ? trivy.dbRepositories : DEFAULT_DB_REPOSITORIES).join(', ');
  if (!db.ready) {
    if (trivy.skipDbUpdate) {
      return fail(
        'trivy',
        `no vulnerability DB in ${where}, and TRIVY_SKIP_DB_UPDATE=true forbids downloading one: every scan would fail`,
        `run once without ${inChart('TRIVY_SKIP_DB_UPDATE', '=false')} so that the DB is downloaded ` +
          `into ${trivy.cacheDir}, or copy a DB into ${where}`,
      );
    }
    return warn(
      'trivy',
      `no vulnerability DB in ${where} yet: each run downloads it first${mirrorHasDb ? '' : ` (from ${sources})`}`,
      trivy.dbRepositories.length > 0
        ? 'nothing to do if the mirror is reachable from the scanner (see the mirror line)'
        : `nothing to do if ${sources} is reachable from the scanner; ` +
            `otherwise set TRIVY_DB_REPO to a mirror (chart: ${chartValue('TRIVY_DB_REPO')})`,
    );
  }
  const hours = ageHours(db.updatedAt);
  if (hours !== undefined && hours > STALE_DB_HOURS) {
    const fix = trivy.skipDbUpdate
      ? `refresh it: run once without ${inChart('TRIVY_SKIP_DB_UPDATE', '=false')}, ` +
        `or replace ${where} with a current copy`
      : 'the next run downloads a fresh one; if the DB stays old, that download fails: check that the scanner ' +
        `can reach ${sources}, or set TRIVY_DB_REPO to a mirror (chart: ${chartValue('TRIVY_DB_REPO')})`;
    return warn(
      'trivy',
      `the vulnerability DB in ${where} is ${Math.floor(hours / 24)} days old (updated ${Math.round(hours)} h ago), ` +
        'older than 2 days: findings miss what was published since',
      fix,
    );
  }
  return pass('trivy', `vulnerability DB in ${where}, updated ${age(db.updatedAt)}`);
}

interface MirrorOutcome {
  repository: string;
  ok: boolean;
  /** For a usable mirror: the pass line. */
  message?: string;
  /** What answered (or did not), for the failure line. */
  detail?: string;
  missing?: boolean;
}

/** `registry.local:5000/aquasec/trivy-db:2` → the registry's /v2/ endpoint answers, and has that tag. */
async function checkMirror(repository: string): Promise<MirrorOutcome> {
  const slash = repository.indexOf('/');
  const host = slash > 0 ? repository.slice(0, slash) : repository;
  const rest = slash > 0 ? repository.slice(slash + 1) : '';
  const colon = rest.lastIndexOf(':');
  const [name, tag] = colon > 0 ? [rest.slice(0, colon), rest.slice(colon + 1)] : [rest, 'latest'];
  // Registries on loopback and private addresses are spoken to over plain HTTP, as go-containerregistry does.
  const plain =
    /^(localhost|127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|\[::1\])/.test(host) ||
    /\.(local|localhost)(:\d+)?$/.test(host);
  const base = `${plain ? 'http' : 'https'}://${host}`;
  const headers = { 'User-Agent': 'ephor-scanner-check', Accept: 'application/vnd.oci.image.manifest.v1+json' };
  try {
    const root = await httpRequest(new URL(`${base}/v2/`), { timeoutMs: CALL_TIMEOUT_MS, headers });
    if (root.status !== 200 && root.status !== 401) {
      return { repository, ok: false, detail: `${base}/v2/ answered ${root.status}: not an OCI registry` };
    }
    if (root.status === 401)
      return {
        repository,
        ok: true,
        message: `DB mirror ${repository}: the registry answers (it wants a token, which Trivy asks for)`,
      };
    const manifest = await httpRequest(new URL(`${base}/v2/${name}/manifests/${tag}`), {
      method: 'HEAD',
      timeoutMs: CALL_TIMEOUT_MS,
      headers,
    });
    if (manifest.status === 200)
      return { repository, ok: true, message: `DB mirror ${repository} is reachable and has the DB` };
    if (manifest.status === 401 || manifest.status === 403)
      return {
        repository,
        ok: true,
        message: `DB mirror ${repository}: the registry answers (the DB needs credentials)`,
      };
    return {
      repository,
      ok: false,
      missing: manifest.status === 404,
      detail: `the registry answers, but ${name}:${tag} gives ${manifest.status}`,
    };
  } catch (error) {
    const why = error instanceof HttpFailure ? error.message : String(error);
    return { repository, ok: false, detail: `${base} does not answer (${why})` };
  }
}

function mirrorResult(
  mirror: MirrorOutcome,
  variable: string,
  upstream: string,
  severity: 'fail' | 'warn',
): CheckResult {
  const message = `DB mirror ${mirror.repository} is not usable: ${mirror.detail}`;
  const fix = mirror.missing
    ? `copy the DB there (e.g. oras cp mirror.gcr.io/aquasec/${upstream} ${mirror.repository}), ` +
      `or fix ${inChart(variable)}`
    : `check ${inChart(variable)} and that the scanner may reach that registry ` +
      '(NetworkPolicy, firewall, HTTPS_PROXY/NO_PROXY in extraEnv)';
  return severity === 'fail' ? fail('trivy', message, fix) : warn('trivy', message, fix);
}
