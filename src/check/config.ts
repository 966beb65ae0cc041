// Check 1: the configuration, validated exactly as a scan run validates it before contacting anything: every variable
// (loadConfig, with the same messages a run logs, including a Trivy executable that cannot be found) and the
// Kubernetes configuration (loadKubeConfig: kubeconfig files, context). Each problem is one ✗ line of this group,
// and "valid" is said only when there is none, so the check's verdict can never contradict this line. When Trivy
// is the only problem, the other groups still run, so that one check shows everything that needs fixing.
import { ConfigError, loadConfig, type Config, type ConfigProblem, type Env } from '../config/index.js';
import { KubeConfigError, loadKubeConfig } from '../kube/client.js';
import { chartValue, inChart } from './hints.js';
import { fail, pass, warn, type CheckResult } from './types.js';

export { chartValue } from './hints.js';

export type LoadedKubeConfig = ReturnType<typeof loadKubeConfig>;

export interface ConfigCheck {
  config?: Config;
  /** The Kubernetes configuration as a run loads it; absent when it cannot be loaded. */
  kube?: LoadedKubeConfig;
  results: CheckResult[];
  /** TRIVY_BINARY names nothing executable: the checks that run Trivy are skipped. */
  trivyMissing: boolean;
}

export function checkConfiguration(env: Env): ConfigCheck {
  const failures: CheckResult[] = [];
  let config: Config | undefined;
  let trivyMissing = false;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    failures.push(...error.problems.map(problemResult));
    if (error.problems.every((p) => p.variable === 'TRIVY_BINARY')) {
      config = loadConfig(env, { resolveExecutable: (name) => name });
      trivyMissing = true;
    }
  }
  const kube = loadKube(env, failures);
  const results = failures.length > 0 ? failures : config ? [valid(config)] : [];
  for (const warning of config?.warnings ?? []) results.push(warn('configuration', warning, fixForWarning(warning)));
  return { config, kube, results, trivyMissing };
}

function problemResult(problem: ConfigProblem): CheckResult {
  const fix =
    problem.variable === 'TRIVY_BINARY'
      ? 'install Trivy (https://trivy.dev), ' +
        `or set ${inChart('TRIVY_BINARY', '; the ephor-scanner image has it at /usr/local/bin/trivy')} to its path`
      : `correct ${inChart(problem.variable)}; "ephor-scanner --help" lists what every variable allows`;
  return { ...fail('configuration', problem.message, fix), configuration: true };
}

function loadKube(env: Env, failures: CheckResult[]): LoadedKubeConfig | undefined {
  try {
    return loadKubeConfig(env);
  } catch (error) {
    if (!(error instanceof KubeConfigError)) throw error;
    const fix = env.KUBE_CONTEXT?.trim()
      ? 'set KUBE_CONTEXT (--context) to a context of the kubeconfig, or unset it to use its current-context'
      : "run the scanner in the cluster with the chart's service account, " +
        'or set KUBECONFIG to a kubeconfig file whose current context names the cluster';
    failures.push({ ...fail('configuration', error.message, fix), configuration: true });
    return undefined;
  }
}

function valid(config: Config): CheckResult {
  const namespaces =
    config.scan.namespaces === 'all' ? 'every namespace' : `namespaces ${config.scan.namespaces.join(', ')}`;
  const selector = config.scan.namespaceSelector ? ` with labels ${config.scan.namespaceSelector}` : '';
  const excluded =
    config.scan.excludeNamespaces.length > 0 ? ` except ${config.scan.excludeNamespaces.join(', ')}` : '';
  return pass(
    'configuration',
    `valid: scans ${namespaces}${selector}${excluded} (${config.scan.workloadKinds.join(', ')})`,
  );
}

function fixForWarning(warning: string): string {
  if (warning.startsWith('SCAN_EXCLUDE_NAMESPACES'))
    return 'remove SCAN_EXCLUDE_NAMESPACES, or use SCAN_NAMESPACES=* or SCAN_NAMESPACE_SELECTOR with it';
  if (warning.startsWith('TRIVY_CACHE_MODE=shared'))
    return (
      `set SCAN_CONCURRENCY=1 (chart: ${chartValue('SCAN_CONCURRENCY')}), ` +
      'or TRIVY_CACHE_MODE=ephemeral to scan in parallel'
    );
  if (warning.startsWith('TRIVY_CACHE_BACKEND'))
    return (
      `unset TRIVY_CACHE_BACKEND (chart: ${chartValue('TRIVY_CACHE_BACKEND')}), ` +
      'or set TRIVY_CACHE_MODE=redis to use it'
    );
  if (warning.startsWith('RUN_LOCK_WAIT'))
    return `lower ${inChart('RUN_LOCK_WAIT')} below SCAN_DEADLINE, so that a run that waited still has time to scan`;
  return 'adjust the configuration as the warning says';
}
