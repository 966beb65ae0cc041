// The workload kinds the scanner lists: where the API serves each, and where its pod template lives.
// (Standalone Pods, kind `Pod`, come from the Pod list instead; see pods.ts.)
import type { ContainerRef, WorkloadKind } from '../types.js';

export type ControllerKind = Exclude<WorkloadKind, 'Pod'>;

export interface KindSpec {
  kind: ControllerKind;
  group: string;
  version: string;
  /** Plural resource name in the API path and in RBAC rules. */
  resource: string;
  /** The pod spec of the object's template. */
  podSpec(object: RawObject): RawPodSpec | undefined;
}

export interface RawContainer {
  name?: unknown;
  image?: unknown;
}
/** Decoded JSON: any array item may be null, whatever the API documents. */
export type RawList<T> = Array<T | null | undefined>;
export interface RawPodSpec {
  initContainers?: RawList<RawContainer>;
  containers?: RawList<RawContainer>;
  ephemeralContainers?: RawList<RawContainer>;
  serviceAccountName?: unknown;
  imagePullSecrets?: RawList<{ name?: unknown }>;
}
export interface RawObject {
  metadata?: { name?: unknown; namespace?: unknown; labels?: Record<string, unknown> };
  spec?: {
    template?: { spec?: RawPodSpec };
    jobTemplate?: { spec?: { template?: { spec?: RawPodSpec } } };
  };
}

export const KIND_SPECS: Record<ControllerKind, KindSpec> = {
  Deployment: {
    kind: 'Deployment',
    group: 'apps',
    version: 'v1',
    resource: 'deployments',
    podSpec: (o) => o.spec?.template?.spec,
  },
  StatefulSet: {
    kind: 'StatefulSet',
    group: 'apps',
    version: 'v1',
    resource: 'statefulsets',
    podSpec: (o) => o.spec?.template?.spec,
  },
  DaemonSet: {
    kind: 'DaemonSet',
    group: 'apps',
    version: 'v1',
    resource: 'daemonsets',
    podSpec: (o) => o.spec?.template?.spec,
  },
  CronJob: {
    kind: 'CronJob',
    group: 'batch',
    version: 'v1',
    resource: 'cronjobs',
    podSpec: (o) => o.spec?.jobTemplate?.spec?.template?.spec,
  },
};

export function listPath(spec: { group: string; version: string; resource: string }, namespace: string): string {
  const prefix = spec.group ? `/apis/${spec.group}/${spec.version}` : `/api/${spec.version}`;
  return `${prefix}/namespaces/${encodeURIComponent(namespace)}/${spec.resource}`;
}

/** Init containers first (including native sidecars), then the app containers, as the Go scanner ordered them. */
export function templateContainers(podSpec: RawPodSpec | undefined): ContainerRef[] {
  const refs: ContainerRef[] = [];
  const add = (list: RawList<RawContainer> | undefined, role: ContainerRef['role']) => {
    for (const container of Array.isArray(list) ? list : []) {
      if (typeof container?.name === 'string' && typeof container.image === 'string') {
        refs.push({ name: container.name, role, specImage: container.image, running: [] });
      }
    }
  };
  add(podSpec?.initContainers, 'init');
  add(podSpec?.containers, 'app');
  return refs;
}

export function serviceAccountOf(podSpec: RawPodSpec | undefined): string {
  return typeof podSpec?.serviceAccountName === 'string' && podSpec.serviceAccountName
    ? podSpec.serviceAccountName
    : 'default';
}

export function pullSecretNamesOf(podSpec: RawPodSpec | undefined): string[] {
  const names = (Array.isArray(podSpec?.imagePullSecrets) ? podSpec.imagePullSecrets : []).map((s) => s?.name);
  return [...new Set(names.filter((n): n is string => typeof n === 'string' && n !== ''))];
}
