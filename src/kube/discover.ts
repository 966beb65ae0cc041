// Discovery: for each namespace and configured kind, a paged LIST of the workloads and their pod templates.
// A failed list is logged with what to fix and recorded; the rest of the run goes on.
import type { Logger } from '../log.js';
import type { Discovery, DiscoveryError, Workload, WorkloadKind } from '../types.js';
import { KubeApiError, type KubeClient } from './client.js';
import { listAll, type ListOptions } from './list.js';
import { KIND_SPECS, listPath, templateContainers, type KindSpec, type RawObject } from './workload-kinds.js';

export const EPHOR_LABEL_PREFIX = 'ephor.dev/';
/** List calls in flight at once: enough to hide latency, few enough to be gentle with the API server. */
const PARALLEL_LISTS = 4;
/** After this many calls in a row fail without an HTTP answer, the API server is treated as unreachable. */
const UNREACHABLE_AFTER = 3;

export interface DiscoverOptions {
  namespaces: string[] | 'all';
  kinds: readonly WorkloadKind[];
  list?: ListOptions;
}

export async function discoverWorkloads(client: KubeClient, options: DiscoverOptions, log: Logger): Promise<Discovery> {
  const errors: DiscoveryError[] = [];
  let successfulLists = 0;
  let namespaces: string[];
  if (options.namespaces === 'all') {
    try {
      namespaces = await listAll(client, '/api/v1/namespaces', (item) => nameOf(item as RawObject), options.list);
      successfulLists++;
    } catch (error) {
      errors.push(describeFailure(error, '', 'Namespace', { group: '', resource: 'namespaces' }));
      logFailure(log, errors.at(-1)!);
      return { namespaces: [], workloads: [], errors, successfulLists };
    }
  } else {
    namespaces = options.namespaces;
  }

  const calls = namespaces.flatMap((namespace) => options.kinds.map((kind) => ({ namespace, spec: KIND_SPECS[kind] })));
  const results: Workload[][] = new Array(calls.length);
  let consecutiveUnreachable = 0;
  let next = 0;
  const worker = async () => {
    while (next < calls.length) {
      const index = next++;
      const { namespace, spec } = calls[index]!;
      if (consecutiveUnreachable >= UNREACHABLE_AFTER) {
        const failure: DiscoveryError = { namespace, kind: spec.kind, reason: 'unreachable', message: `skipped: the Kubernetes API at ${client.server} did not answer the previous calls` };
        errors.push(failure);
        results[index] = [];
        continue;
      }
      try {
        results[index] = await listAll(client, listPath(spec, namespace), (item) => toWorkload(item as RawObject, spec, namespace), options.list);
        successfulLists++;
        consecutiveUnreachable = 0;
        log.debug({ namespace, kind: spec.kind, workloads: results[index].length }, 'workloads listed');
      } catch (error) {
        const failure = describeFailure(error, namespace, spec.kind, spec);
        consecutiveUnreachable = error instanceof KubeApiError && error.kind !== 'http' ? consecutiveUnreachable + 1 : 0;
        errors.push(failure);
        logFailure(log, failure);
        results[index] = [];
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_LISTS, calls.length) }, worker));
  return { namespaces, workloads: results.flat(), errors, successfulLists };
}

function nameOf(object: RawObject): string | undefined {
  return typeof object?.metadata?.name === 'string' ? object.metadata.name : undefined;
}

export function toWorkload(object: RawObject, spec: KindSpec, namespace: string): Workload | undefined {
  const name = nameOf(object);
  if (!name) return undefined;
  return {
    namespace: typeof object.metadata?.namespace === 'string' ? object.metadata.namespace : namespace,
    kind: spec.kind,
    name,
    labels: ephorLabels(object.metadata?.labels),
    containers: templateContainers(spec.podSpec(object)),
  };
}

/** The workload's own `ephor.dev/*` labels, prefix stripped (`ephor.dev/exposure: public` → `exposure: public`). */
export function ephorLabels(labels: Record<string, unknown> | undefined): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(labels ?? {})) {
    if (key.startsWith(EPHOR_LABEL_PREFIX) && key.length > EPHOR_LABEL_PREFIX.length && typeof value === 'string') {
      result[key.slice(EPHOR_LABEL_PREFIX.length)] = value;
    }
  }
  return result;
}

export function describeFailure(error: unknown, namespace: string, kind: DiscoveryError['kind'], rule: { group: string; resource: string }): DiscoveryError {
  if (!(error instanceof KubeApiError)) {
    return { namespace, kind, reason: 'error', message: (error as Error)?.message ?? String(error) };
  }
  const failure: DiscoveryError = { namespace, kind, status: error.status, reason: error.reason ?? error.kind, message: error.message };
  if (error.status === 403) {
    const user = /User "([^"]+)"/.exec(error.message)?.[1] ?? 'the scanner\'s service account';
    const where = namespace ? `in namespace "${namespace}"` : 'cluster-wide';
    failure.missingRule = `allow verb "list" on resource "${rule.resource}" (apiGroup "${rule.group}") ${where} for ${user}`;
  }
  return failure;
}

function logFailure(log: Logger, failure: DiscoveryError): void {
  log.error(
    { namespace: failure.namespace || undefined, kind: failure.kind, status: failure.status, reason: failure.reason, missing_rbac: failure.missingRule, error: failure.message },
    failure.status === 403 ? 'discovery forbidden by RBAC' : 'discovery failed',
  );
}
