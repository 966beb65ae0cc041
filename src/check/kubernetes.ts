// Check 3: the Kubernetes API is configured and reachable with the scanner's credentials, and who it takes the
// scanner for (SelfSubjectReview, `kubectl auth whoami`), so that every missing RBAC rule can name its subject.
import type { Config } from '../config/index.js';
import { KubeApiError, createKubeClient, type KubeClient, type loadKubeConfig } from '../kube/client.js';
import { CALL_TIMEOUT_MS, fail, pass, type CheckResult } from './types.js';

export const UNKNOWN_USER = "the scanner's service account";

export interface KubeAccess {
  client: KubeClient;
  /** The user name from SelfSubjectReview, or UNKNOWN_USER when the API server does not say. */
  user: string;
}

interface SelfSubjectReview {
  status?: { userInfo?: { username?: unknown } };
}

/** `loaded` comes from the configuration check, which reports a Kubernetes configuration that cannot be loaded. */
export async function checkKubernetes(
  config: Config,
  loaded: ReturnType<typeof loadKubeConfig>,
): Promise<{ results: CheckResult[]; access?: KubeAccess }> {
  const client = createKubeClient(loaded.kubeConfig, Math.min(CALL_TIMEOUT_MS, config.kube.timeoutMs));
  let version: string;
  try {
    const answer = await client.getJson<{ gitVersion?: unknown }>('/version');
    version = typeof answer.gitVersion === 'string' ? answer.gitVersion : 'version unknown';
  } catch (error) {
    return { results: [unreachable(error, client.server, loaded.source)] };
  }
  const user = await whoAmI(client);
  const as = user ? ` as ${user}` : '';
  return {
    results: [
      pass(
        'kubernetes',
        `the API server at ${client.server} answers (${version})${as}; credentials from ${loaded.source}`,
      ),
    ],
    access: { client, user: user ?? UNKNOWN_USER },
  };
}

/** Who the API server takes us for; undefined when it cannot say (SelfSubjectReview is GA since 1.28). */
async function whoAmI(client: KubeClient): Promise<string | undefined> {
  try {
    const review = await client.postJson<SelfSubjectReview>('/apis/authentication.k8s.io/v1/selfsubjectreviews', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'SelfSubjectReview',
    });
    const name = review.status?.userInfo?.username;
    return typeof name === 'string' && name !== '' ? name : undefined;
  } catch {
    return undefined;
  }
}

function unreachable(error: unknown, server: string, source: string): CheckResult {
  if (error instanceof KubeApiError && error.status === 401) {
    return fail(
      'kubernetes',
      `the API server at ${server} refused the credentials from ${source} (401 Unauthorized)`,
      'in a pod, mount the service account token ' +
        '(automountServiceAccountToken: true, as the chart sets it); with a kubeconfig, renew its credentials',
    );
  }
  if (error instanceof KubeApiError && error.kind === 'http') {
    return fail(
      'kubernetes',
      `the API server at ${server} answered GET /version with HTTP ${error.status} (${error.message})`,
      `check that ${server} (from ${source}) is a Kubernetes API server`,
    );
  }
  const message = error instanceof Error ? error.message : String(error);
  return fail(
    'kubernetes',
    `cannot reach the API server at ${server} (${message})`,
    `check the cluster address in ${source}, and that this pod may reach it (NetworkPolicy egress to the API server)`,
  );
}
