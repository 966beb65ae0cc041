// The Pods of a namespace, reduced to what tells which images really run, and the owners of their ReplicaSets and
// Jobs (listed as metadata only: a full ReplicaSet carries a whole pod template the scanner does not need).
import type { KubeClient } from './client.js';
import { EPHOR_LABEL_PREFIX } from './labels.js';
import { listAll, type ListOptions } from './list.js';
import {
  pullSecretNamesOf,
  serviceAccountOf,
  type RawContainer,
  type RawList,
  type RawPodSpec,
} from './workload-kinds.js';

export interface PodContainer {
  name: string;
  image: string;
  role: 'init' | 'app' | 'ephemeral';
  /** `status.*ContainerStatuses[].imageID`; undefined when the container has no status yet. */
  imageID?: string;
}

export interface PodFacts {
  name: string;
  phase: string;
  /** `spec.nodeName`: the node it runs on (its platform is its containers'); unset until it is scheduled. */
  nodeName?: string;
  /** `metadata.creationTimestamp`: the newest Pod of an owner without a template gives its containers' spec. */
  created?: string;
  /** The controller ownerReference (controller: true), if any. */
  owner?: OwnerRef;
  /** Only `pod-template-hash` and the `ephor.dev/*` labels. */
  labels: Record<string, string>;
  serviceAccount: string;
  pullSecretNames: string[];
  containers: PodContainer[];
}

export interface OwnerRef {
  kind: string;
  /** The API group of its `apiVersion` (`argoproj.io/v1alpha1` → `argoproj.io`; `v1` → '', the core group). */
  group: string;
  name: string;
}

interface RawOwnerReference {
  apiVersion?: unknown;
  kind?: unknown;
  name?: unknown;
  controller?: unknown;
}
interface RawMetadata {
  name?: unknown;
  creationTimestamp?: unknown;
  labels?: Record<string, unknown>;
  ownerReferences?: RawList<RawOwnerReference>;
}
interface RawStatus {
  name?: unknown;
  imageID?: unknown;
}
interface RawPod {
  metadata?: RawMetadata;
  spec?: RawPodSpec & { nodeName?: unknown };
  status?: {
    phase?: unknown;
    containerStatuses?: RawList<RawStatus>;
    initContainerStatuses?: RawList<RawStatus>;
    ephemeralContainerStatuses?: RawList<RawStatus>;
  };
}

/** Set by the Deployment controller on its Pods: names their ReplicaSet `<deployment>-<hash>`. */
export const TEMPLATE_HASH_LABEL = 'pod-template-hash';

/** Asks the API server for metadata only; a server that ignores it sends full objects, which reduce the same way. */
const METADATA_ONLY = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';

export function listPods(client: KubeClient, namespace: string, options?: ListOptions): Promise<PodFacts[]> {
  return listAll(
    client,
    `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`,
    (item) => toPodFacts(item as RawPod),
    options,
  );
}

/** ReplicaSet or Job name → its controller (e.g. `web-5d4f8c` → Deployment `web`). */
export async function listControllers(
  client: KubeClient,
  namespace: string,
  resource: { group: string; version: string; resource: string },
  options?: ListOptions,
): Promise<Map<string, OwnerRef | undefined>> {
  const groupVersion = `/apis/${resource.group}/${resource.version}`;
  const path = `${groupVersion}/namespaces/${encodeURIComponent(namespace)}/${resource.resource}`;
  const entries = await listAll(client, path, (item) => ownedEntry((item as { metadata?: RawMetadata }).metadata), {
    ...options,
    accept: METADATA_ONLY,
  });
  return new Map(entries);
}

function ownedEntry(metadata: RawMetadata | undefined): [string, OwnerRef | undefined] | undefined {
  return typeof metadata?.name === 'string' ? [metadata.name, controllerOf(metadata)] : undefined;
}

export function toPodFacts(pod: RawPod | null | undefined): PodFacts | undefined {
  const name = pod?.metadata?.name;
  if (!pod || typeof name !== 'string') return undefined;
  const statuses = new Map<string, string>();
  for (const list of [
    pod.status?.initContainerStatuses,
    pod.status?.containerStatuses,
    pod.status?.ephemeralContainerStatuses,
  ]) {
    for (const status of Array.isArray(list) ? list : []) {
      if (typeof status?.name === 'string')
        statuses.set(status.name, typeof status.imageID === 'string' ? status.imageID : '');
    }
  }
  const containers: PodContainer[] = [];
  const add = (list: RawList<RawContainer> | undefined, role: PodContainer['role']) => {
    for (const c of Array.isArray(list) ? list : []) {
      if (typeof c?.name === 'string' && typeof c.image === 'string')
        containers.push({ name: c.name, image: c.image, role, imageID: statuses.get(c.name) });
    }
  };
  add(pod.spec?.initContainers, 'init');
  add(pod.spec?.containers, 'app');
  add(pod.spec?.ephemeralContainers, 'ephemeral');
  // Only the labels attribution and reporting read: a cluster's Pods carry many more.
  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(pod.metadata?.labels ?? {})) {
    if (typeof value === 'string' && (key === TEMPLATE_HASH_LABEL || key.startsWith(EPHOR_LABEL_PREFIX)))
      labels[key] = value;
  }
  const { nodeName } = pod.spec ?? {};
  const created = pod.metadata?.creationTimestamp;
  return {
    name,
    phase: typeof pod.status?.phase === 'string' ? pod.status.phase : 'Unknown',
    ...(typeof nodeName === 'string' && nodeName !== '' && { nodeName }),
    ...(typeof created === 'string' && { created }),
    owner: controllerOf(pod.metadata),
    labels,
    serviceAccount: serviceAccountOf(pod.spec),
    pullSecretNames: pullSecretNamesOf(pod.spec),
    containers,
  };
}

function controllerOf(metadata: RawMetadata | undefined): OwnerRef | undefined {
  const owner = (Array.isArray(metadata?.ownerReferences) ? metadata.ownerReferences : []).find(
    (o) => o?.controller === true,
  );
  return owner && typeof owner.kind === 'string' && typeof owner.name === 'string'
    ? { kind: owner.kind, group: groupOf(owner.apiVersion), name: owner.name }
    : undefined;
}

/** `group/version` → group; a bare version (`v1`) is the core group, ''. */
function groupOf(apiVersion: unknown): string {
  if (typeof apiVersion !== 'string') return '';
  const slash = apiVersion.lastIndexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}
