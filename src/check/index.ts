// `ephor-scanner check`: a read-only preflight with the scan's own configuration. Configuration first; then Ephor,
// Kubernetes (reachability, RBAC, the run lock, pull secrets) and Trivy side by side, each outside call bounded by
// CALL_TIMEOUT_MS and each group by GROUP_TIMEOUT_MS, so the whole check ends within seconds even when something hangs.
import type { Env } from '../config/index.js';
import { defaultLockNamespace } from '../lock/index.js';
import type { SecretRegistry } from '../log.js';
import { VERSION } from '../version.js';
import { checkConfiguration } from './config.js';
import { checkEphor } from './ephor.js';
import { checkKubernetes, type KubeAccess } from './kubernetes.js';
import { checkLock } from './lock.js';
import { exitCodeOf, formatJson, formatText } from './output.js';
import { checkRbac } from './rbac.js';
import { checkRegistryCredentials } from './registry.js';
import { checkTrivy } from './trivy.js';
import { GROUP_TIMEOUT_MS, fail, type CheckGroup, type CheckResult } from './types.js';
import { messageOf } from '../errors.js';

export type CheckOutput = 'text' | 'json';

export interface CheckOptions {
  output: CheckOutput;
  secrets: SecretRegistry;
  /** Where the report goes (stdout by default). */
  write?: (text: string) => void;
  groupTimeoutMs?: number;
}

export async function runChecks(
  env: Env,
  secrets: SecretRegistry,
  groupTimeoutMs = GROUP_TIMEOUT_MS,
): Promise<CheckResult[]> {
  const configuration = checkConfiguration(env);
  const { config, kube } = configuration;
  // Without a configuration nothing else can be checked reliably (its problems are all listed).
  if (!config) return configuration.results;
  secrets.add(...config.secrets);
  const bounded = (group: CheckGroup, work: Promise<CheckResult[]>) => withDeadline(group, work, groupTimeoutMs);

  const ephor = bounded('ephor', checkEphor(config));
  const trivy = bounded('trivy', checkTrivy(config, env, configuration.trivyMissing));
  const cluster = (async () => {
    // No Kubernetes configuration: said in the configuration group; the cluster cannot be checked.
    if (!kube) return [];
    let access: KubeAccess | undefined;
    const reachable = bounded(
      'kubernetes',
      checkKubernetes(config, kube).then((result) => {
        access = result.access;
        return result.results;
      }),
    );
    const kubeResults = await reachable;
    if (!access) return kubeResults;
    const [rbac, lock, registry] = await Promise.all([
      bounded('rbac', checkRbac(config, access)),
      bounded('lock', checkLock(config, access, defaultLockNamespace(kube.kubeConfig))),
      bounded('registry', checkRegistryCredentials(config, access, secrets)),
    ]);
    return [...kubeResults, ...rbac, ...lock, ...registry];
  })();
  const [ephorResults, clusterResults, trivyResults] = await Promise.all([ephor, cluster, trivy]);
  return [...configuration.results, ...ephorResults, ...clusterResults, ...trivyResults];
}

export async function runCheck(env: Env, options: CheckOptions): Promise<number> {
  const write = options.write ?? ((text: string) => process.stdout.write(text));
  let results: CheckResult[];
  try {
    results = await runChecks(env, options.secrets, options.groupTimeoutMs);
  } catch (error) {
    results = [
      fail(
        'configuration',
        `the check itself failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
        'report this as a bug of ephor-scanner',
      ),
    ];
  }
  const text = options.output === 'json' ? formatJson(results, VERSION) : formatText(results, VERSION);
  write(options.secrets.scrub(text));
  return exitCodeOf(results);
}

async function withDeadline(group: CheckGroup, work: Promise<CheckResult[]>, ms: number): Promise<CheckResult[]> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<CheckResult[]>((resolve) => {
    timer = setTimeout(() => {
      resolve([
        fail(
          group,
          `did not finish within ${ms / 1000} s`,
          'something it calls accepts the connection but does not answer: check that service, then run the check again',
        ),
      ]);
    }, ms);
    timer.unref();
  });
  try {
    return await Promise.race([
      work.catch((error: unknown) => [
        fail(group, `the check failed: ${messageOf(error)}`, 'report this as a bug of ephor-scanner'),
      ]),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
