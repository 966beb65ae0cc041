// Check 5, server mode: an external Trivy server (TRIVY_SERVER_URL) answers /healthz, tells its version (`GET
// /version`, Trivy ≥ 0.45; a known-malicious release is a blocker, as for the local binary), has a fresh DB, and
// takes the token; with the scanner's own server, what the next run will find in the layer cache. Read-only: the
// token is checked with a MissingBlobs call that changes nothing (src/trivy/server-api.ts).
import path from 'node:path';
import type { Config, ExternalServer } from '../config/index.js';
import { ageHours, atLeast } from '../trivy/database.js';
import { KNOWN_BAD_FIX, knownBadMessage, knownBadTrivy } from '../trivy/known-bad.js';
import { directorySize, LAYER_CACHE_DIR, MARKER_FILE } from '../trivy/layer-cache.js';
import { checkServerToken, probeHealthz, probeVersion } from '../trivy/server-api.js';
import { inChart } from './hints.js';
import { CALL_TIMEOUT_MS, fail, pass, warn, type CheckResult } from './types.js';
import { readFile } from 'node:fs/promises';

/** Older than this, a DB misses what was published since (Trivy's DB is rebuilt every 6 h). */
const STALE_DB_HOURS = 48;

export async function checkExternalServer(
  server: ExternalServer,
  localVersion: string | undefined,
): Promise<CheckResult[]> {
  const { url } = server;
  const health = await probeHealthz(url, CALL_TIMEOUT_MS);
  if (!health.ok)
    return [
      fail(
        'trivy',
        `the Trivy server at TRIVY_SERVER_URL does not answer: ${health.detail}`,
        `check ${inChart('TRIVY_SERVER_URL')} and that the scanner may reach it (NetworkPolicy, NO_PROXY in extraEnv)`,
      ),
    ];
  const results: CheckResult[] = [pass('trivy', `the Trivy server at ${url} answers /healthz`)];
  const info = await probeVersion(url, CALL_TIMEOUT_MS);
  if (info.ok) results.push(...versionResults(url, info.value.version, localVersion, info.value.vulnerabilityDb));
  else
    results.push(
      warn(
        'trivy',
        `the Trivy server at ${url} does not tell its version: ${info.detail}`,
        'run Trivy 0.69.3 on the server (the version the ephor-scanner image ships): ' +
          'its version and DB age can then be checked',
      ),
    );
  results.push(await tokenResult(server));
  return results;
}

function versionResults(
  url: string,
  version: string | undefined,
  localVersion: string | undefined,
  db: { updatedAt?: string } | undefined,
): CheckResult[] {
  if (version === undefined)
    return [warn('trivy', `the Trivy server at ${url} sent no version`, 'run Trivy 0.69.3 on the server')];
  const bad = knownBadTrivy(version);
  if (bad) return [fail('trivy', `the Trivy server at ${url} runs ${knownBadMessage(version, bad)}`, KNOWN_BAD_FIX)];
  const results: CheckResult[] = [];
  if (!atLeast(version, [0, 58]))
    results.push(
      warn(
        'trivy',
        `the Trivy server at ${url} is Trivy ${version}; the scanner is built for 0.58 to 0.69`,
        'upgrade the server to Trivy 0.69',
      ),
    );
  else if (localVersion !== undefined && version !== localVersion)
    results.push(
      warn(
        'trivy',
        `the Trivy server at ${url} is Trivy ${version}, the scanner's Trivy ${localVersion}`,
        'run the same Trivy version on both: the client analyses the layers, ' +
          'the server detects, and their cache keys carry the analyzer versions',
      ),
    );
  else results.push(pass('trivy', `the Trivy server at ${url} is Trivy ${version}`));
  const hours = ageHours(db?.updatedAt);
  if (hours === undefined)
    results.push(
      warn(
        'trivy',
        `the Trivy server at ${url} tells no vulnerability DB date`,
        "check the server's DB (trivy server downloads it at start)",
      ),
    );
  else if (hours > STALE_DB_HOURS)
    results.push(
      warn(
        'trivy',
        `the Trivy server's vulnerability DB is ${Math.floor(hours / 24)} days old ` +
          `(updated ${Math.round(hours)} h ago)`,
        'the server updates its DB every hour unless it runs with --skip-db-update: check its DB repository access',
      ),
    );
  else results.push(pass('trivy', `the Trivy server's vulnerability DB was updated ${hours} h ago`));
  return results;
}

async function tokenResult(server: ExternalServer): Promise<CheckResult> {
  const check = await checkServerToken(server.url, server.token, server.tokenHeader, CALL_TIMEOUT_MS);
  if (check === 'accepted')
    return pass(
      'trivy',
      `the Trivy server takes the scanner's ${server.token === undefined ? 'requests (no token)' : 'token'}`,
    );
  if (check === 'refused') {
    const refused = server.token === undefined ? 'requests without a token' : 'token';
    return fail(
      'trivy',
      `the Trivy server at ${server.url} refuses the ${refused} (twirp error unauthenticated: invalid token)`,
      `set ${inChart('TRIVY_SERVER_TOKEN')} to the server's --token, ` +
        `and ${inChart('TRIVY_SERVER_TOKEN_HEADER')} to its --token-header`,
    );
  }
  return warn(
    'trivy',
    `the Trivy server's token could not be checked: ${check.unknown}`,
    'check that TRIVY_SERVER_URL names the server itself (not a page in front of it)',
  );
}

/**
 * Server and shared modes keep the layer cache in TRIVY_CACHE_DIR/fanal: its size and whether the next run clears it.
 */
export async function checkLayerCache(config: Config): Promise<CheckResult[]> {
  const { trivy } = config;
  if (trivy.cacheMode !== 'server' && trivy.cacheMode !== 'shared') return [];
  const dir = path.join(trivy.cacheDir, LAYER_CACHE_DIR);
  let bytes: number;
  try {
    bytes = await directorySize(dir);
  } catch (error) {
    return [
      warn(
        'trivy',
        `the layer cache ${dir} cannot be read: ${String(error)}`,
        'check the permissions of TRIVY_CACHE_DIR',
      ),
    ];
  }
  const bound = trivy.scanCacheMaxBytes;
  const limit = bound === undefined ? ' (no bound: TRIVY_SCAN_CACHE_MAX_SIZE unset)' : ` of at most ${mib(bound)} MiB`;
  const size = `${mib(bytes)} MiB${limit}`;
  const writer = await readFile(path.join(dir, MARKER_FILE), 'utf8').then(
    (text) => (JSON.parse(text) as { trivy_version?: string }).trivy_version,
    () => undefined,
  );
  const mode =
    trivy.cacheMode === 'server' ? 'server mode: each run starts a Trivy server on a loopback port' : 'shared mode';
  if (bound !== undefined && bytes > bound)
    return [pass('trivy', `${mode}; layer cache ${dir}: ${size}: the next run clears it`)];
  return [pass('trivy', `${mode}; layer cache ${dir}: ${size}${writer ? `, written by Trivy ${writer}` : ''}`)];
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}
