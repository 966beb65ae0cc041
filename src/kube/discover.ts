// Discovery: which namespaces, which workloads (a paged LIST per namespace and kind, containers from the pod
// template), and which images their Pods really run. A failed list is logged with what to fix and recorded;
// the rest of the run goes on.
import type { Logger } from '../log.js';
import type { Discovery, DiscoveryError, PlatformFacts, Workload, WorkloadKind } from '../types.js';
import { KubeApiError, type KubeClient } from './client.js';
import { ephorLabels } from './labels.js';
import { listAll, type ListOptions } from './list.js';
import { matchesAny } from './namespaces.js';
import { listNodePlatforms, platformFacts, type NodePlatforms } from './nodes.js';
import type { OtherControllers } from './owner-kinds.js';
import { listControllers, listPods } from './pods.js';
import { applyRunningPods, type NamespacePods } from './running.js';
import {
  KIND_SPECS,
  listPath,
  pullSecretNamesOf,
  serviceAccountOf,
  templateContainers,
  type ControllerKind,
  type KindSpec,
  type RawObject,
} from './workload-kinds.js';

/** List calls in flight at once: enough to hide latency, few enough to be gentle with the API server. */
const PARALLEL_LISTS = 4;
/** After this many calls in a row fail without an HTTP answer, the API server is treated as unreachable. */
const UNREACHABLE_AFTER = 3;

const PODS = { kind: 'Pod' as const, group: '', version: 'v1', resource: 'pods' };
const REPLICASETS = { group: 'apps', version: 'v1', resource: 'replicasets' };
const JOBS = { group: 'batch', version: 'v1', resource: 'jobs' };

export interface DiscoverOptions {
  namespaces: string[] | 'all';
  excludeNamespaces?: string[];
  namespaceSelector?: string;
  kinds: readonly WorkloadKind[];
  /** SCAN_OTHER_CONTROLLERS and its exclusions; absent: their Pods are only counted. */
  otherControllers?: OtherControllers;
  /** List the nodes, so that each image is scanned for the platform it runs on. */
  platforms?: boolean;
  list?: ListOptions;
}

type Task = { namespace: string; spec: KindSpec } | { namespace: string; pods: true };

export async function discoverWorkloads(client: KubeClient, options: DiscoverOptions, log: Logger): Promise<Discovery> {
  const errors: DiscoveryError[] = [];
  const [namespaces, nodes] = await Promise.all([
    resolveNamespaces(client, options, errors, log),
    options.platforms ? listPlatforms(client, options.list, log) : undefined,
  ]);
  const platforms = nodes && ('error' in nodes ? nodes.error : platformFacts(nodes.platforms));
  const nodePlatforms = nodes && 'platforms' in nodes ? nodes.platforms : undefined;
  if (!namespaces)
    return { namespaces: [], workloads: [], errors, successfulLists: 0, notAttributed: {}, excludedOwners: {} };

  const controllerKinds = options.kinds.filter((k): k is ControllerKind => k !== 'Pod');
  const tasks: Task[] = namespaces.flatMap((namespace) => [
    ...controllerKinds.map((kind) => ({ namespace, spec: KIND_SPECS[kind] })),
    { namespace, pods: true as const },
  ]);
  const listed = new Map<string, Workload[]>();
  const pods = new Map<string, NamespacePods>();
  const attributed = new Map<string, Workload[]>();
  const notAttributed: Discovery['notAttributed'] = {};
  const excludedOwners: NonNullable<Discovery['excludedOwners']> = {};
  const tasksLeft = new Map<string, number>();
  for (const task of tasks) tasksLeft.set(task.namespace, (tasksLeft.get(task.namespace) ?? 0) + 1);
  // A namespace's Pods are attributed as soon as its last list is in, and then dropped: at most a few namespaces'
  // Pods are held at any time, however big the cluster.
  const taskDone = (namespace: string) => {
    const left = tasksLeft.get(namespace)! - 1;
    tasksLeft.set(namespace, left);
    if (left > 0) return;
    const ordered = controllerKinds.flatMap((kind) => (listed.get(namespace) ?? []).filter((w) => w.kind === kind));
    const running = applyRunningPods(namespace, ordered, pods.get(namespace), {
      standalonePods: options.kinds.includes('Pod'),
      otherControllers: options.otherControllers,
      nodes: nodePlatforms,
    });
    listed.delete(namespace);
    pods.delete(namespace);
    attributed.set(namespace, running.workloads);
    logUnreported(log, namespace, running, options.otherControllers?.enabled === true);
    if (Object.keys(running.notAttributed).length > 0) notAttributed[namespace] = running.notAttributed;
    if (Object.keys(running.excluded).length > 0) excludedOwners[namespace] = running.excluded;
  };
  let successfulLists = 0;
  let consecutiveUnreachable = 0;
  let next = 0;

  const run = async (task: Task) => {
    if ('pods' in task) {
      pods.set(task.namespace, await listNamespacePods(client, task.namespace, options.list));
      if (options.kinds.includes('Pod')) successfulLists++;
      return;
    }
    const workloads = await listAll(
      client,
      listPath(task.spec, task.namespace),
      (item) => toWorkload(item as RawObject, task.spec, task.namespace),
      options.list,
    );
    listed.set(task.namespace, [...(listed.get(task.namespace) ?? []), ...workloads]);
    successfulLists++;
    log.debug({ namespace: task.namespace, kind: task.spec.kind, workloads: workloads.length }, 'workloads listed');
  };

  const worker = async () => {
    while (next < tasks.length) {
      const task = tasks[next++]!;
      const kind = 'pods' in task ? PODS.kind : task.spec.kind;
      if (consecutiveUnreachable >= UNREACHABLE_AFTER) {
        errors.push({
          namespace: task.namespace,
          kind,
          reason: 'unreachable',
          message: `skipped: the Kubernetes API at ${client.server} did not answer the previous calls`,
        });
        taskDone(task.namespace);
        continue;
      }
      try {
        await run(task);
        consecutiveUnreachable = 0;
      } catch (error) {
        consecutiveUnreachable =
          error instanceof KubeApiError && error.kind !== 'http' ? consecutiveUnreachable + 1 : 0;
        const failure = describeFailure(error, task.namespace, kind, 'pods' in task ? PODS : task.spec);
        errors.push(failure);
        logFailure(log, failure, 'pods' in task && !options.kinds.includes('Pod'));
      }
      taskDone(task.namespace);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_LISTS, tasks.length) }, worker));

  const workloads = namespaces.flatMap((namespace) => attributed.get(namespace) ?? []);
  return {
    namespaces,
    workloads,
    errors,
    successfulLists,
    notAttributed,
    excludedOwners,
    ...(platforms && { platforms }),
  };
}

function logUnreported(
  log: Logger,
  namespace: string,
  running: { notAttributed: Record<string, number>; excluded: Record<string, number> },
  otherControllers: boolean,
): void {
  if (Object.keys(running.notAttributed).length > 0)
    log.info(
      { namespace, pods_by_controller: running.notAttributed },
      otherControllers
        ? 'pods whose owner cannot be found are not reported (their ReplicaSet or Job is not in the list)'
        : 'pods of controllers Ephor has no kind for are not reported',
    );
  if (Object.keys(running.excluded).length > 0)
    log.info(
      { namespace, pods_by_owner: running.excluded },
      'pods of owners in SCAN_OTHER_CONTROLLERS_EXCLUDE are not reported',
    );
}

/** The nodes' platforms; when they cannot be listed, one warning, and every image is scanned without `--platform`. */
async function listPlatforms(
  client: KubeClient,
  options: ListOptions | undefined,
  log: Logger,
): Promise<{ platforms: NodePlatforms } | { error: PlatformFacts }> {
  try {
    return { platforms: await listNodePlatforms(client, options) };
  } catch (error) {
    const failure = describeFailure(error, '', 'Node', { group: '', resource: 'nodes' });
    log.warn(
      { status: failure.status, reason: failure.reason, missing_rbac: failure.missingRule, error: failure.message },
      'nodes not listed: images are scanned without --platform, ' +
        "so a multi-platform image is scanned as Trivy's default linux/amd64 variant whatever node runs it",
    );
    const cause: NonNullable<PlatformFacts['error']> = { message: failure.message };
    if (failure.status !== undefined) cause.status = failure.status;
    if (failure.missingRule) cause.missingRule = failure.missingRule;
    return { error: { listed: false, linuxPlatforms: [], error: cause } };
  }
}

/**
 * The namespaces to scan: the configured names, or every namespace (optionally by label selector), minus exclusions.
 */
async function resolveNamespaces(
  client: KubeClient,
  options: DiscoverOptions,
  errors: DiscoveryError[],
  log: Logger,
): Promise<string[] | undefined> {
  const exclude = options.excludeNamespaces ?? [];
  if (options.namespaces !== 'all' && !options.namespaceSelector) return options.namespaces;
  let names: string[];
  try {
    const query = options.namespaceSelector ? { labelSelector: options.namespaceSelector } : undefined;
    names = await listAll(client, '/api/v1/namespaces', (item) => nameOf(item as RawObject), {
      ...options.list,
      query,
    });
  } catch (error) {
    errors.push(describeFailure(error, '', 'Namespace', { group: '', resource: 'namespaces' }));
    logFailure(log, errors.at(-1)!, false);
    return undefined;
  }
  const selected = options.namespaces === 'all' ? names : options.namespaces.filter((n) => names.includes(n));
  const result = selected.filter((n) => !matchesAny(n, exclude));
  log.info(
    { namespaces: result, excluded: selected.length - result.length, selector: options.namespaceSelector },
    'namespaces selected',
  );
  return result;
}

/** The Pods, and the controllers of their ReplicaSets and Jobs when some Pod has one. */
async function listNamespacePods(client: KubeClient, namespace: string, options?: ListOptions): Promise<NamespacePods> {
  const pods = await listPods(client, namespace, options);
  const ownerKinds = new Set(pods.map((p) => p.owner?.kind));
  const controllers = async (resource: typeof REPLICASETS) => {
    try {
      return await listControllers(client, namespace, resource, options);
    } catch {
      return undefined; // attribution falls back to the controllers' naming rules (see running.ts)
    }
  };
  return {
    pods,
    replicaSets: ownerKinds.has('ReplicaSet') ? await controllers(REPLICASETS) : new Map(),
    jobs: ownerKinds.has('Job') ? await controllers(JOBS) : new Map(),
  };
}

function nameOf(object: RawObject | null | undefined): string | undefined {
  return typeof object?.metadata?.name === 'string' ? object.metadata.name : undefined;
}

export function toWorkload(object: RawObject, spec: KindSpec, namespace: string): Workload | undefined {
  const name = nameOf(object);
  if (!name) return undefined;
  const podSpec = spec.podSpec(object);
  const objectNamespace = typeof object.metadata?.namespace === 'string' ? object.metadata.namespace : namespace;
  return {
    namespace: objectNamespace,
    kind: spec.kind,
    name,
    labels: ephorLabels(object.metadata?.labels),
    containers: templateContainers(podSpec),
    pullSecrets: {
      namespace: objectNamespace,
      secretNames: pullSecretNamesOf(podSpec),
      serviceAccount: serviceAccountOf(podSpec),
    },
  };
}

export function describeFailure(
  error: unknown,
  namespace: string,
  kind: DiscoveryError['kind'],
  rule: { group: string; resource: string },
): DiscoveryError {
  if (!(error instanceof KubeApiError)) {
    return { namespace, kind, reason: 'error', message: error instanceof Error ? error.message : String(error) };
  }
  const failure: DiscoveryError = {
    namespace,
    kind,
    status: error.status,
    reason: error.reason ?? error.kind,
    message: error.message,
  };
  if (error.status === 403) {
    const user = /User "([^"]+)"/.exec(error.message)?.[1] ?? "the scanner's service account";
    const where = namespace ? `in namespace "${namespace}"` : 'cluster-wide';
    const resource = `resource "${rule.resource}" (apiGroup "${rule.group}")`;
    failure.missingRule = `allow verb "list" on ${resource} ${where} for ${user}`;
  }
  return failure;
}

/** A Pod list that fails only costs the running digests (spec tags are scanned instead): a warning, not an error. */
function logFailure(log: Logger, failure: DiscoveryError, podsOnly: boolean): void {
  const fields = {
    namespace: failure.namespace || undefined,
    kind: failure.kind,
    status: failure.status,
    reason: failure.reason,
    missing_rbac: failure.missingRule,
    error: failure.message,
  };
  if (podsOnly)
    log.warn(
      fields,
      'pods not listed: this namespace is scanned by the tags in its workload specs, not by running digests',
    );
  else log.error(fields, failure.status === 403 ? 'discovery forbidden by RBAC' : 'discovery failed');
}
