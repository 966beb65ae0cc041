// Check 1: the configuration, validated exactly as a scan run validates it. A Trivy executable that cannot be found
// is left to the Trivy check (it is an installation problem, reported with its own fix), so that the other checks
// still run.
import { ConfigError, loadConfig, type Config, type Env } from '../config/index.js';
import { findExecutable } from '../config/executable.js';
import { fail, pass, warn, type CheckResult } from './types.js';

/** The chart value behind each variable, so that a fix can name what to change in a Helm install. */
const CHART_VALUES: Record<string, string> = {
  EPHOR_API_URL: 'ephor.apiUrl',
  EPHOR_AUTH_HEADER: 'ephor.authHeader',
  EPHOR_AUTH_VALUE: 'ephor.authValue or ephor.existingSecret',
  EPHOR_TIMEOUT: 'ephor.timeout',
  EPHOR_MAX_RETRIES: 'ephor.maxRetries',
  SCAN_NAMESPACES: 'scan.namespaces',
  SCAN_EXCLUDE_NAMESPACES: 'scan.excludeNamespaces',
  SCAN_NAMESPACE_SELECTOR: 'scan.namespaceSelector',
  SCAN_CONCURRENCY: 'scan.concurrency',
  SCAN_SEVERITY: 'scan.severity',
  SCAN_WORKLOAD_TYPES: 'scan.workloadTypes',
  SCAN_DEADLINE: 'activeDeadlineSeconds and scan.deadlineMargin',
  REGISTRY_AUTH_ENABLED: 'registryAuth.enabled',
  KUBE_TIMEOUT: 'kube.timeout',
  TRIVY_BINARY: 'trivy.binary',
  TRIVY_CACHE_DIR: 'trivy.cacheDir',
  TRIVY_CACHE_MODE: 'trivy.cacheMode',
  TRIVY_CACHE_BACKEND: 'trivy.cacheBackend',
  TRIVY_TIMEOUT: 'trivy.timeout',
  TRIVY_DB_UPDATE_TIMEOUT: 'trivy.dbUpdateTimeout',
  TRIVY_DB_REPO: 'trivy.dbRepo',
  TRIVY_JAVA_DB_REPO: 'trivy.javaDbRepo',
  TRIVY_SKIP_DB_UPDATE: 'trivy.skipDbUpdate',
  SBOM_ENABLED: 'sbom.enabled',
  SBOM_FORMAT: 'sbom.format',
  LOG_LEVEL: 'log.level',
  LOG_FORMAT: 'log.format',
};

export function chartValue(variable: string): string {
  return CHART_VALUES[variable] ?? 'extraEnv';
}

export interface ConfigCheck {
  config?: Config;
  results: CheckResult[];
  /** Set when TRIVY_BINARY names nothing executable: what was looked for, and where. */
  trivyMissing?: string;
}

export function checkConfiguration(env: Env): ConfigCheck {
  let trivyMissing: string | undefined;
  const resolveExecutable = (name: string, environment: Env): string => {
    const found = findExecutable(name, environment);
    if (found) return found;
    trivyMissing = name.includes('/')
      ? `TRIVY_BINARY=${JSON.stringify(name)} is not an executable file`
      : `TRIVY_BINARY=${JSON.stringify(name)} was not found on PATH (${environment.PATH ?? ''})`;
    return name;
  };
  let config: Config;
  try {
    config = loadConfig(env, { resolveExecutable });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return {
      results: error.problems.map((problem) => ({
        ...fail(
          'configuration',
          problem.message,
          `correct ${problem.variable} (chart: ${chartValue(problem.variable)}); "ephor-scanner --help" lists what every variable allows`,
        ),
        configuration: true,
      })),
    };
  }
  const namespaces =
    config.scan.namespaces === 'all' ? 'every namespace' : `namespaces ${config.scan.namespaces.join(', ')}`;
  const selector = config.scan.namespaceSelector ? ` with labels ${config.scan.namespaceSelector}` : '';
  const excluded =
    config.scan.excludeNamespaces.length > 0 ? ` except ${config.scan.excludeNamespaces.join(', ')}` : '';
  const results = [
    pass('configuration', `valid: scans ${namespaces}${selector}${excluded} (${config.scan.workloadKinds.join(', ')})`),
  ];
  for (const warning of config.warnings) results.push(warn('configuration', warning, fixForWarning(warning)));
  return { config, results, trivyMissing };
}

function fixForWarning(warning: string): string {
  if (warning.startsWith('SCAN_EXCLUDE_NAMESPACES'))
    return 'remove SCAN_EXCLUDE_NAMESPACES, or use SCAN_NAMESPACES=* or SCAN_NAMESPACE_SELECTOR with it';
  if (warning.startsWith('TRIVY_CACHE_MODE=shared'))
    return 'set SCAN_CONCURRENCY=1 (chart: scan.concurrency), or TRIVY_CACHE_MODE=ephemeral to scan in parallel';
  if (warning.startsWith('TRIVY_CACHE_BACKEND'))
    return 'unset TRIVY_CACHE_BACKEND (chart: trivy.cacheBackend), or set TRIVY_CACHE_MODE=redis to use it';
  return 'adjust the configuration as the warning says';
}
