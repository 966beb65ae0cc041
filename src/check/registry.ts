// Check 6: registry credentials that are configured but unusable. The workloads (and their service accounts) name
// pull secrets; each one that does not exist, is not a Docker registry secret or cannot be decoded is reported, since
// the scanner would then pull those images anonymously. Secret contents are registered as secrets and never shown.
import pino from 'pino';
import type { Config } from '../config/index.js';
import type { SecretRegistry } from '../log.js';
import { KubeApiError } from '../kube/client.js';
import { discoverWorkloads } from '../kube/discover.js';
import { parseDockerSecret, registerCredentials, type RawSecret } from '../kube/pull-secrets.js';
import type { KubeAccess } from './kubernetes.js';
import { pass, warn, type CheckResult } from './types.js';

const MAX_SECRETS = 100;
const SHOWN = 5;

export async function checkRegistryCredentials(
  config: Config,
  access: KubeAccess,
  secrets: SecretRegistry,
): Promise<CheckResult[]> {
  if (!config.registryAuth)
    return [pass('registry', 'REGISTRY_AUTH_ENABLED=false: images are pulled anonymously, no pull secret is read')];
  const { client } = access;
  const discovery = await discoverWorkloads(
    client,
    {
      namespaces: config.scan.namespaces,
      excludeNamespaces: config.scan.excludeNamespaces,
      namespaceSelector: config.scan.namespaceSelector,
      kinds: config.scan.workloadKinds,
      otherControllers: config.scan.otherControllers,
      list: { retries: 0 },
    },
    pino({ level: 'silent' }),
  );
  // Nothing could be listed: the RBAC or Kubernetes lines already say why.
  if (discovery.successfulLists === 0 && discovery.errors.length > 0) return [];

  /** `namespace/secret` → who names it. */
  const named = new Map<string, string>();
  const accounts = new Map<string, string[]>();
  for (const workload of discovery.workloads) {
    const { namespace, secretNames, serviceAccount } = workload.pullSecrets;
    for (const name of secretNames)
      if (!named.has(`${namespace}/${name}`))
        named.set(`${namespace}/${name}`, `${workload.kind} ${namespace}/${workload.name}`);
    const key = `${namespace}/${serviceAccount}`;
    accounts.set(key, [...(accounts.get(key) ?? []), `${workload.kind} ${namespace}/${workload.name}`]);
  }
  for (const key of accounts.keys()) {
    const [namespace, account] = key.split('/') as [string, string];
    try {
      const sa = await client.getJson<{ imagePullSecrets?: Array<{ name?: unknown } | null> }>(
        `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(account)}`,
      );
      for (const ref of sa.imagePullSecrets ?? []) {
        if (typeof ref?.name === 'string' && ref.name && !named.has(`${namespace}/${ref.name}`))
          named.set(`${namespace}/${ref.name}`, `ServiceAccount ${namespace}/${account}`);
      }
    } catch {
      // forbidden (reported by the RBAC check) or absent (the workload's Pods could not be created either)
    }
  }

  const results: CheckResult[] = [];
  const readable: string[] = [];
  for (const [ref, namedBy] of [...named].slice(0, MAX_SECRETS)) {
    const [namespace, name] = ref.split('/') as [string, string];
    let secret: RawSecret;
    try {
      secret = await client.getJson<RawSecret>(
        `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`,
      );
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 403) continue; // the RBAC check names the missing rule
      if (error instanceof KubeApiError && error.status === 404) {
        results.push(
          warn(
            'registry',
            `pull secret ${ref}, named by ${namedBy}, does not exist: its private images are pulled anonymously`,
            `create it (kubectl create secret docker-registry ${name} -n ${namespace} --docker-server=REGISTRY ` +
              '--docker-username=USER --docker-password=PASSWORD), ' +
              `or remove it from the imagePullSecrets of ${namedBy}`,
          ),
        );
      } else {
        results.push(
          warn(
            'registry',
            `pull secret ${ref} could not be read (${(error as Error).message})`,
            'run the check again; if it persists, check the API server',
          ),
        );
      }
      continue;
    }
    secrets.add(...Object.values(secret.data ?? {}));
    const auths = parseDockerSecret(secret);
    if (!auths) {
      const docker = secret.type === 'kubernetes.io/dockerconfigjson' || secret.type === 'kubernetes.io/dockercfg';
      const problem = docker
        ? `its ${secret.type === 'kubernetes.io/dockercfg' ? '.dockercfg' : '.dockerconfigjson'} is not ` +
          'base64-encoded Docker config JSON'
        : `it is of type ${secret.type ?? '(none)'}, not kubernetes.io/dockerconfigjson`;
      results.push(
        warn(
          'registry',
          `pull secret ${ref}, named by ${namedBy}, cannot be used: ${problem}`,
          `recreate it with kubectl create secret docker-registry ${name} -n ${namespace} --docker-server=REGISTRY ` +
            '--docker-username=USER --docker-password=PASSWORD',
        ),
      );
      continue;
    }
    registerCredentials(secrets, auths);
    if (Object.keys(auths).length === 0) {
      results.push(
        warn(
          'registry',
          `pull secret ${ref}, named by ${namedBy}, holds no registry entry`,
          `recreate it with kubectl create secret docker-registry ${name} -n ${namespace} --docker-server=REGISTRY …`,
        ),
      );
      continue;
    }
    readable.push(ref);
  }
  if (named.size > MAX_SECRETS)
    results.push(
      pass(
        'registry',
        `${named.size - MAX_SECRETS} more pull secrets were not looked at (at most ${MAX_SECRETS} per check)`,
      ),
    );
  if (readable.length > 0) {
    const shown =
      readable.slice(0, SHOWN).join(', ') + (readable.length > SHOWN ? `, … (${readable.length - SHOWN} more)` : '');
    results.unshift(
      pass(
        'registry',
        `${readable.length} pull secret${readable.length === 1 ? '' : 's'} named by the workloads ` +
          `can be used: ${shown}`,
      ),
    );
  } else if (named.size === 0) {
    results.unshift(
      pass(
        'registry',
        `no workload or service account in the scanned namespaces names a pull secret (images are pulled anonymously)`,
      ),
    );
  }
  return results;
}
