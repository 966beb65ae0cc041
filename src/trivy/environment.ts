// What Trivy sees of the scanner's surroundings. Trivy reads every TRIVY_<FLAG> variable of its environment
// (aquasecurity/trivy v0.69.3 pkg/flag/options.go BindEnv: TRIVY_ + the flag's name upper-cased, "-" → "_", plus
// the names of its aliases), a trivy.yaml from its working directory or $TRIVY_CONFIG (pkg/commands/app.go
// initConfig), and a .trivyignore from its working directory (pkg/flag/report_flags.go IgnoreFileFlag). Several of
// them silently remove findings, and Ephor marks every finding missing from a scan as resolved. So only the TRIVY_*
// variables listed below pass from the scanner's environment, and every Trivy process runs in an empty directory.
import { chmodSync, existsSync, mkdtempSync, rmdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SETTINGS } from '../config/settings.js';

/**
 * TRIVY_* variables that may reach Trivy: they change how it connects or how much it uses, never which findings it
 * reports, the report's shape or its exit status. Flag files are those of Trivy v0.69.3 (pkg/flag/).
 */
export const ALLOWED_TRIVY_VARIABLES: ReadonlyMap<string, string> = new Map([
  ['TRIVY_INSECURE', 'global_flags.go InsecureFlag: no TLS verification towards registries and DB mirrors'],
  ['TRIVY_NON_SSL', 'global_flags.go GlobalFlagGroup.ToOptions reads it as the old form of TRIVY_INSECURE'],
  ['TRIVY_CACERT', 'global_flags.go CACertFlag (0.68+): the CA bundle for registries and DB mirrors'],
  [
    'TRIVY_DB_REPOSITORY',
    'db_flags.go DBRepositoryFlag: where the DB is downloaded from; the chart sets it beside TRIVY_DB_REPO ' +
      "(the Go scanner's name), and the scanner's --db-repository flags take precedence",
  ],
  ['TRIVY_JAVA_DB_REPOSITORY', 'db_flags.go JavaDBRepositoryFlag: the same for the Java DB'],
  [
    'TRIVY_CACHE_TTL',
    'cache_flags.go CacheTTLFlag: how long the Redis layer cache (TRIVY_CACHE_MODE=redis) keeps entries',
  ],
  ['TRIVY_REDIS_TLS', 'cache_flags.go RedisTLSFlag: TLS to the Redis layer cache'],
  ['TRIVY_REDIS_CA', 'cache_flags.go RedisCACertFlag: the CA file for the Redis layer cache'],
  ['TRIVY_REDIS_CERT', 'cache_flags.go RedisCertFlag: the client certificate file for the Redis layer cache'],
  ['TRIVY_REDIS_KEY', 'cache_flags.go RedisKeyFlag: the client key file for the Redis layer cache'],
  ['TRIVY_PARALLEL', 'scan_flags.go ParallelFlag: how many layers one scan analyses at once (CPU and memory only)'],
  ['TRIVY_SKIP_VERSION_CHECK', 'scan_flags.go SkipVersionCheckFlag: no update notice from check.trivy.dev'],
  ['TRIVY_DISABLE_TELEMETRY', 'scan_flags.go DisableTelemetryFlag: no usage data sent to Aqua'],
]);

const FILTER =
  "it removes findings from Trivy's report, and Ephor would mark each finding it hides as resolved " +
  'although nothing was fixed; triage findings in Ephor instead';
const ANALYSIS =
  'it changes what Trivy analyses or how it matches and rates packages, ' +
  'so the findings would not be those of the running image';
const OUTPUT =
  "it changes the report's format, destination or content, " +
  "Trivy's exit status or its log output, which the scanner reads";
const DATABASE =
  'the scanner downloads the databases itself, once per run, ' +
  'and tells each Trivy process how to use them (TRIVY_SKIP_DB_UPDATE, TRIVY_DB_REPO)';
const CREDENTIALS =
  'registry credentials that Trivy would send to every registry it pulls from; ' +
  "the scanner uses the workloads' own pull secrets instead (REGISTRY_AUTH_ENABLED)";
const ELSEWHERE =
  'it hands the scan to another Trivy (a server or a plugin) whose version and database the scanner does not check; ' +
  'for a Trivy server set TRIVY_SERVER_URL and TRIVY_SERVER_TOKEN, ' +
  'which the scanner checks (the token it passes as TRIVY_TOKEN itself)';

/** Why the common TRIVY_* variables are withheld (the rest get OTHER). */
const WITHHELD_REASONS: ReadonlyMap<string, string> = new Map([
  ...named(FILTER, [
    'TRIVY_IGNORE_UNFIXED',
    'TRIVY_IGNORE_STATUS',
    'TRIVY_IGNOREFILE',
    'TRIVY_IGNORE_POLICY',
    'TRIVY_VEX',
    'TRIVY_PKG_TYPES',
    'TRIVY_VULN_TYPE',
    'TRIVY_PKG_RELATIONSHIPS',
    'TRIVY_SKIP_DIRS',
    'TRIVY_SKIP_FILES',
    'TRIVY_OFFLINE_SCAN',
    'TRIVY_MODULE_DIR',
    'TRIVY_ENABLE_MODULES',
  ]),
  ['TRIVY_SEVERITY', `${FILTER}; the severities sent are chosen with SCAN_SEVERITY`],
  ['TRIVY_SCANNERS', `${FILTER}; the scanner asks for vulnerabilities itself`],
  ['TRIVY_SECURITY_CHECKS', `${FILTER}; the scanner asks for vulnerabilities itself`],
  ...named(ANALYSIS, [
    'TRIVY_PLATFORM',
    'TRIVY_DISTRO',
    'TRIVY_DETECTION_PRIORITY',
    'TRIVY_VULN_SEVERITY_SOURCE',
    'TRIVY_SBOM_SOURCES',
    'TRIVY_REKOR_URL',
    'TRIVY_REMOVED_PKGS',
    'TRIVY_INCLUDE_DEV_DEPS',
    'TRIVY_FILE_PATTERNS',
    'TRIVY_EXPERIMENTAL_RPM_ARCHIVE',
    'TRIVY_INPUT',
    'TRIVY_IMAGE_SRC',
    'TRIVY_DOCKER_HOST',
    'TRIVY_PODMAN_HOST',
    'TRIVY_MAX_IMAGE_SIZE',
  ]),
  ...named(OUTPUT, [
    'TRIVY_FORMAT',
    'TRIVY_REPORT',
    'TRIVY_TEMPLATE',
    'TRIVY_OUTPUT',
    'TRIVY_OUTPUT_PLUGIN_ARG',
    'TRIVY_EXIT_CODE',
    'TRIVY_EXIT_ON_EOL',
    'TRIVY_LIST_ALL_PKGS',
    'TRIVY_DEPENDENCY_TREE',
    'TRIVY_TABLE_MODE',
    'TRIVY_COMPLIANCE',
    'TRIVY_SHOW_SUPPRESSED',
    'TRIVY_QUIET',
    'TRIVY_DEBUG',
    'TRIVY_NO_PROGRESS',
    'TRIVY_VERSION',
    'TRIVY_GENERATE_DEFAULT_CONFIG',
  ]),
  [
    'TRIVY_TRACE_HTTP',
    'it logs every HTTP request and response, registry credentials included (Trivy itself calls it dangerous)',
  ],
  ['TRIVY_CONFIG', 'it makes Trivy read a configuration file, which can set the same filters as these variables'],
  ...named(DATABASE, [
    'TRIVY_SKIP_UPDATE',
    'TRIVY_SKIP_JAVA_DB_UPDATE',
    'TRIVY_DOWNLOAD_DB_ONLY',
    'TRIVY_DOWNLOAD_JAVA_DB_ONLY',
    'TRIVY_RESET',
    'TRIVY_CLEAR_CACHE',
    'TRIVY_LIGHT',
  ]),
  ...named(CREDENTIALS, ['TRIVY_USERNAME', 'TRIVY_PASSWORD', 'TRIVY_PASSWORD_STDIN', 'TRIVY_REGISTRY_TOKEN']),
  ...named(ELSEWHERE, [
    'TRIVY_SERVER',
    'TRIVY_TOKEN',
    'TRIVY_TOKEN_HEADER',
    'TRIVY_CUSTOM_HEADERS',
    'TRIVY_LISTEN',
    'TRIVY_PATH_PREFIX',
    'TRIVY_RUN_AS_PLUGIN',
  ]),
]);

const OTHER =
  'only the TRIVY_* variables known to leave the findings, ' +
  'the report and its exit status unchanged reach Trivy (see README, Scan step), and this is not one of them';

function named(reason: string, names: string[]): Array<[string, string]> {
  return names.map((name) => [name, reason]);
}

/** The scanner's own settings: several share Trivy's TRIVY_* names with another meaning; the scanner passes what
 * Trivy needs of them as flags. Withheld without a warning (they are the scanner's configuration, not Trivy's). */
const SCANNER_SETTINGS = new Set(SETTINGS.map((s) => s.env));

function reachesTrivy(name: string): boolean {
  if (SCANNER_SETTINGS.has(name)) return false;
  return !name.startsWith('TRIVY_') || ALLOWED_TRIVY_VARIABLES.has(name);
}

/** Trivy's environment: the scanner's, without its settings and without the TRIVY_* variables not allowed. */
export function trivyEnvironment(env: Record<string, string | undefined>): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (value !== undefined && reachesTrivy(name)) result[name] = value;
  return result;
}

export interface WithheldVariable {
  name: string;
  reason: string;
}

/** TRIVY_* variables of the user's environment that Trivy will not see, and why, by name (values are never read:
 * they may be secrets). The scanner's own settings are not listed. */
export function withheldTrivyVariables(env: Record<string, string | undefined>): WithheldVariable[] {
  return Object.keys(env)
    .filter((name) => env[name] !== undefined && name.startsWith('TRIVY_') && !reachesTrivy(name))
    .filter((name) => !SCANNER_SETTINGS.has(name))
    .sort()
    .map((name) => ({ name, reason: WITHHELD_REASONS.get(name) ?? OTHER }));
}

let workingDirectory: string | undefined;

/**
 * The working directory of every Trivy process: empty, and read-only to its owner (0500) so that no process can put
 * a .trivyignore or trivy.yaml there for the next one. One per scanner process, made in the temporary directory on
 * first use (again if something removed it), removed when the process exits. Throws when it cannot be made.
 */
export function trivyWorkingDirectory(): string {
  if (workingDirectory !== undefined && existsSync(workingDirectory)) return workingDirectory;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ephor-scanner-trivy-'));
  chmodSync(dir, 0o500);
  workingDirectory = dir;
  process.once('exit', () => {
    try {
      rmdirSync(dir);
    } catch {
      // already gone, or the temporary directory went away with it
    }
  });
  return dir;
}
