// Typed helpers for the stand-in `trivy` (fake-trivy.mjs): write a scenario, read the invocation log.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/trivy/server.js';
import { TRIVY_REPORTS_DIR } from './paths.js';
import { eventually } from './wait.js';

/** Absolute path of the stand-in executable (`#!/usr/bin/env node`). */
export const FAKE_TRIVY_BIN = fileURLToPath(new URL('./fake-trivy.mjs', import.meta.url));
/** Environment variable the stand-in reads the scenario path from. */
export const FAKE_TRIVY_SCENARIO_ENV = 'FAKE_TRIVY_SCENARIO';

/** What `trivy image REF` does for one image reference. */
export type ImageBehaviour =
  /** Replay a Trivy JSON report (absolute path, or a file name in TRIVY_REPORTS_DIR); digest 'sha256:<64 hex>' sets Metadata.RepoDigests. */
  | {
      report: string;
      digest?: string;
      delayMs?: number;
      /**
       * Client mode (`--server`): the image's layer diff IDs, bottom first; images share a base layer by naming the
       * same one. Default: one layer of its own. The top-most layer carries the image's findings (the report).
       */
      layers?: string[];
    }
  /** Replay the errors.json entry with this id (stderr with the image substituted, its exit code). */
  | { fail: string; delayMs?: number }
  /** Never finish: ignore SIGTERM and keep a grandchild in the same process group; both pids are logged first. */
  | { hang: true }
  /** Die by this signal, as an OOM kill does. */
  | { signal: 'SIGKILL' | 'SIGSEGV' | 'SIGTERM'; delayMs?: number }
  /** Exit 0 with non-JSON text as the report. */
  | { garbage: true }
  /** Exit 0 with the first half of a real report. */
  | { truncated: true }
  /** Exit 0 with an empty report file. */
  | { empty: true }
  /** Exit 0 with a valid report of about this many MiB, streamed. */
  | { hugeMB: number }
  /** Exit 1 with Trivy's FATAL line carrying this error chain (for texts errors.json has no entry for, e.g. errors.md §7). */
  | { fatal: string }
  /** The n-th scan of the ref behaves as the n-th entry (the last one repeats): e.g. killed once, then a report. */
  | { sequence: ImageBehaviour[] }
  /**
   * A multi-platform image (an index): the behaviour of the child for `--platform` (`os/arch[/variant]`), or for
   * linux/amd64 without it; a platform the index lacks fails as real Trivy does (`no child with platform linux/amd64
   * in index REF`). The child served is logged as the invocation's `platform`.
   */
  | { platforms: Record<string, ImageBehaviour> };

/** What one DB download attempt does: 'ok', 'hang', or the id of an errors.json DB failure (e.g. 'db-toomanyrequests-real-2024'). */
export type DbDownloadOutcome = 'ok' | 'hang' | (string & {});

/**
 * Outcome per repository, keyed by the `--db-repository` / `--java-db-repository` value as Trivy uses it (schema tag
 * added when missing; defaults `mirror.gcr.io/aquasec/trivy-db:2` then `ghcr.io/aquasecurity/trivy-db:2`, Java
 * `mirror.gcr.io/aquasec/trivy-java-db:1` then `ghcr.io/aquasecurity/trivy-java-db:1`); `default` for the others
 * (default 'ok'). Repositories are tried in order; like pkg/oci/artifact.go, a temporary failure (429/5xx,
 * BLOB_UNKNOWN, e.g. 'db-toomanyrequests-real-2024') moves on to the next one, any other failure (e.g.
 * 'db-network-unreachable-real-2024') ends the download. The captured error is rewritten for the repository.
 */
export type DbDownloadByRepository = { default?: DbDownloadOutcome } & Record<string, DbDownloadOutcome>;

export interface FakeTrivyDb {
  /**
   * A string applies to the whole download and replays an errors.json entry exactly as captured;
   * an object decides per repository (DbDownloadByRepository). Default 'ok'.
   */
  download?: DbDownloadOutcome | DbDownloadByRepository;
  /** ISO time written as UpdatedAt (default now-1h). */
  updatedAt?: string;
}

export interface FakeTrivyScenario {
  /** 'Version' printed by `trivy version` (default '0.69.3'); also gates version-specific flags and texts. */
  version?: string;
  /** `trivy version` exits 1 with a FATAL line. */
  versionFails?: boolean;
  db?: FakeTrivyDb;
  javaDb?: FakeTrivyDb;
  /**
   * Key: the image argument exactly as passed to `trivy image`. A `report` is replayed as captured; with
   * `--list-all-pkgs` (default since 0.67) a Result without `Packages` gets them listed from its vulnerabilities'
   * packages (unique by PkgID and PkgPath, Trivy's Package field order), so `trivy convert` has packages to write.
   * Its vulnerabilities are filtered as Trivy filters them: `--severity`, `--ignore-unfixed` / `--ignore-status` and the
   * ignore file (`--ignorefile`, default `.trivyignore` in the working directory), each also from its TRIVY_* variable
   * or from the config file (`--config`, $TRIVY_CONFIG, else `trivy.yaml` in the working directory; keys `severity`,
   * `scan.scanners`, `vulnerability.ignore-unfixed`, `vulnerability.ignore-status`, `ignorefile`).
   */
  images?: Record<string, ImageBehaviour>;
  /** For refs not in `images`; if absent, the real MANIFEST_UNKNOWN failure for that ref. */
  defaultImage?: ImageBehaviour;
  /**
   * ref -> credentials that must be found in $DOCKER_CONFIG/config.json (else ~/.docker/config.json), else UNAUTHORIZED.
   * Found as Trivy's Docker keychain finds them (go-containerregistry + docker/cli): key "<registry>/<repository>",
   * then "<registry>", each exactly or as any key whose host part matches (`host`, `https://host`, `http://host`,
   * `host/v1/`); Docker Hub's registry key is only `https://index.docker.io/v1/` (`docker.io` / `index.docker.io` keys
   * are not found). `auth` (base64 user:password) or `username`/`password`. `registry` must name the image's registry
   * (`docker.io` for Docker Hub is fine); a mismatch is a stand-in error (exit 99).
   */
  requireDockerConfigFor?: Record<string, { registry: string; username: string; password: string }>;
  /** JSONL invocation log (one line per invocation). */
  log?: string;
  /** Client mode: time to fetch an image's manifest and config (ms, default 0). */
  manifestMs?: number;
  /** Client mode: time to download and analyse one missing layer (ms): one for all, or per diff ID with `default`. */
  layerMs?: number | ({ default?: number } & Record<string, number>);
  /** `trivy server`. */
  server?: {
    /** Wait this long before listening (a server stuck in its start: /healthz is refused meanwhile). */
    startDelayMs?: number;
    /** Exit (code 2) on receiving the n-th Twirp request, without answering it: a crash with scans in flight. The
     * first `times` server processes (default 1) of the scenario crash so; later ones serve. */
    crash?: { onRequest: number; times?: number };
  };
}

/** One line of the invocation log. `argv` holds the arguments after the program name. */
export interface FakeTrivyInvocation {
  argv: string[];
  /**
   * Every variable of the stand-in's environment. Values are written as they are only for the stand-ins' own
   * variables (PATH, HOME, TMPDIR, XDG_CACHE_HOME, DOCKER_CONFIG, FAKE_TRIVY_SCENARIO, EPHOR_SHARED_DIR), TEST_* and
   * TRIVY_* other than credentials (TRIVY_CACHE_BACKEND, TRIVY_USERNAME, TRIVY_PASSWORD, …); any other value may be
   * a secret and is written as envFingerprint(value).
   */
  env: Record<string, string>;
  /** The working directory, and what it held at the start (Trivy reads trivy.yaml and .trivyignore from it). */
  cwd: string;
  cwdEntries: string[] | string;
  pid: number;
  /** Only for `hang`: [stand-in pid, grandchild pid]. */
  pids?: number[];
  startedAt: string;
  endedAt?: string;
  exitCode?: number;
  /**
   * e.g. 'version', 'download-vuln-db', 'report', 'client-report', 'server', 'server-unauthenticated',
   * 'server-error', 'convert', 'convert-error', 'fail:<id>', 'vuln-db-download-failed',
   * 'image-not-found', 'unauthorized', 'timeout', 'hang', 'signal:SIGKILL', 'usage-error'.
   */
  behaviour: string;
  /** Repository each DB was downloaded from in this invocation. */
  downloadedFrom?: { vuln?: string; java?: string };
  /** For a multi-platform image: the child (`os/arch`) that was scanned. */
  platform?: string;
  /** Client mode: the image's layers (diff IDs) downloaded and analysed, and those the server already had. */
  layers?: { downloaded: string[]; cached: string[] };
  /** `trivy server`: the address it was told to listen on (its line is written when it starts: it never exits on its
   * own, so its exit code and end are never logged). */
  listening?: string;
}

/** How the invocation log writes a value that may be a secret (FakeTrivyInvocation.env). */
export function envFingerprint(value: string): string {
  return `sha256:${createHash('sha256').update(value).digest('hex').slice(0, 16)}`;
}

/** Writes dir/trivy-scenario.json; the log goes to dir/trivy-invocations.jsonl unless scenario.log is set. */
export async function writeScenario(
  dir: string,
  scenario: FakeTrivyScenario,
): Promise<{ scenarioPath: string; logPath: string }> {
  await fs.mkdir(dir, { recursive: true });
  const logPath = scenario.log ?? path.join(dir, 'trivy-invocations.jsonl');
  const scenarioPath = path.join(dir, 'trivy-scenario.json');
  await fs.writeFile(scenarioPath, JSON.stringify({ ...scenario, log: logPath }, null, 2));
  return { scenarioPath, logPath };
}

/** All invocations logged so far (none if the log does not exist yet). */
export async function readInvocations(logPath: string): Promise<FakeTrivyInvocation[]> {
  let text: string;
  try {
    text = await fs.readFile(logPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as FakeTrivyInvocation);
}

/** Path of a real fixture report by file name in TRIVY_REPORTS_DIR. */
export function reportPath(name: string): string {
  const file = path.join(TRIVY_REPORTS_DIR, name);
  if (!existsSync(file)) throw new Error(`no Trivy report fixture named ${name} in ${TRIVY_REPORTS_DIR}`);
  return file;
}

/** Creates binDir/trivy -> fake-trivy.mjs, for putting the stand-in on PATH under its real name. Returns the link path. */
export async function linkFakeTrivy(binDir: string): Promise<string> {
  await fs.mkdir(binDir, { recursive: true });
  const link = path.join(binDir, 'trivy');
  await fs.rm(link, { force: true });
  await fs.symlink(FAKE_TRIVY_BIN, link);
  return link;
}

/**
 * Starts the stand-in `trivy server` on a free loopback port, as an operator would run one (its own environment,
 * cache directory and TRIVY_TOKEN), and waits until it answers /healthz; fails the test if it exits first.
 */
export async function startFakeTrivyServer(options: {
  env: NodeJS.ProcessEnv;
  cacheDir: string;
  extraArgs?: string[];
}): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const args = [
    'server',
    '--listen',
    `127.0.0.1:${port}`,
    '--cache-dir',
    options.cacheDir,
    ...(options.extraArgs ?? []),
  ];
  const child = spawn(FAKE_TRIVY_BIN, args, { env: options.env, stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  const healthy = () =>
    fetch(`${url}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
  assert.ok(await eventually(healthy, { stop: () => child.exitCode !== null }), 'the stand-in server answers /healthz');
  return { url, child };
}
