// Who holds the lock, and where the Lease lives by default.
import type { KubeConfig } from '@kubernetes/client-node';

/**
 * spec.holderIdentity: `<pod or host name>_<scan_group_id>` (the `<name>_<unique id>` form of client-go's holders).
 * In a pod the name is POD_NAME (downward API) or HOSTNAME, which Kubernetes sets to the Pod's name; elsewhere it is
 * the host name, so a CLI run against production shows whose machine holds the lock. The scan_group_id makes every
 * run's identity unique: a second run on the same host never mistakes the lock for its own.
 */
export function holderIdentity(scanGroupId: string, env: Record<string, string | undefined>, hostname: string): string {
  const inPod = Boolean(env.KUBERNETES_SERVICE_HOST);
  const name = (inPod ? env.POD_NAME || env.HOSTNAME : undefined) || hostname || 'unknown-host';
  return `${name}_${scanGroupId}`;
}

/**
 * RUN_LOCK_NAMESPACE's default: the namespace of the kubeconfig's current context. In a Pod (the in-cluster service
 * account) that is the Pod's own namespace: @kubernetes/client-node's loadFromCluster reads it from
 * /var/run/secrets/kubernetes.io/serviceaccount/namespace. With an explicit KUBECONFIG (a CLI run, or a Pod pointed at
 * another cluster) the context's namespace is the one that means something there. Neither: `default`.
 */
export function defaultLockNamespace(kubeConfig: KubeConfig): string {
  const context = kubeConfig.getContextObject(kubeConfig.getCurrentContext());
  return context?.namespace?.trim() || 'default';
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** RUN_LOCK_NAME must be a Lease name: a DNS-1123 subdomain (lower case, digits, '-', '.', at most 253). */
export function lockNameProblem(name: string): string | undefined {
  const ok = name.length <= 253 && name.split('.').every((label) => label.length <= 63 && DNS_LABEL.test(label));
  return ok
    ? undefined
    : 'must be a Kubernetes object name: lower-case letters, digits, "-" and ".", ' +
        'at most 253 characters, starting and ending with a letter or digit';
}

/** RUN_LOCK_NAMESPACE must be a namespace name: a DNS-1123 label (lower case, digits, '-', at most 63). */
export function lockNamespaceProblem(namespace: string): string | undefined {
  return namespace.length <= 63 && DNS_LABEL.test(namespace)
    ? undefined
    : 'must be a namespace name: lower-case letters, digits and "-", ' +
        'at most 63 characters, starting and ending with a letter or digit';
}
