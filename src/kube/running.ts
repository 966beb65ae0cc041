// Which images the workloads really run (pure): each Pod is attributed to its workload through its controller
// (Pod → ReplicaSet → Deployment, Pod → Job → CronJob, Pod → StatefulSet/DaemonSet), and the registry digests in
// its container statuses become the images to scan. Containers present in the Pods but not in the template
// (sidecars injected by admission webhooks, ephemeral debug containers) join their workload.
import { registryDigestOf } from '../images/image-id.js';
import type { ContainerRef, TagReason, Workload, WorkloadKind } from '../types.js';
import { ephorLabels } from './labels.js';
import { TEMPLATE_HASH_LABEL, type OwnerRef, type PodContainer, type PodFacts } from './pods.js';

export interface NamespacePods {
  pods: PodFacts[];
  /** ReplicaSet / Job name → controller; undefined when they could not be listed (the names are used instead). */
  replicaSets?: Map<string, OwnerRef | undefined>;
  jobs?: Map<string, OwnerRef | undefined>;
}

export interface AttributionOptions {
  /** Report Pods without a controller as kind `Pod`. */
  standalonePods: boolean;
}

export interface RunningImages {
  workloads: Workload[];
  /** Active Pods whose controller is not a kind Ephor knows (bare ReplicaSet or Job, operators' CRDs), by kind. */
  notAttributed: Record<string, number>;
}

const ACTIVE_PHASES = new Set(['Running', 'Pending']);

/** `pods === undefined` means the Pods could not be listed: every container is scanned by its spec tag. */
export function applyRunningPods(
  namespace: string,
  workloads: readonly Workload[],
  pods: NamespacePods | undefined,
  options: AttributionOptions,
): RunningImages {
  if (!pods) {
    return {
      workloads: workloads.map((w) => ({
        ...w,
        containers: w.containers.map((c) => ({ ...c, running: [], tagReason: 'pods_not_listed' as const })),
      })),
      notAttributed: {},
    };
  }
  const byKey = new Map(workloads.map((w) => [`${w.kind}/${w.name}`, w]));
  const podsOf = new Map<string, PodFacts[]>();
  const standalone: PodFacts[] = [];
  const notAttributed: Record<string, number> = {};

  for (const pod of pods.pods) {
    if (!ACTIVE_PHASES.has(pod.phase)) continue;
    const owner = workloadOwner(pod, pods, byKey);
    if (owner === undefined) {
      standalone.push(pod);
    } else if ('unsupported' in owner) {
      notAttributed[owner.unsupported] = (notAttributed[owner.unsupported] ?? 0) + 1;
    } else if (byKey.has(owner.key)) {
      const list = podsOf.get(owner.key);
      if (list) list.push(pod);
      else podsOf.set(owner.key, [pod]);
    }
  }

  const result = workloads.map((workload) =>
    withRunningImages(workload, podsOf.get(`${workload.kind}/${workload.name}`) ?? []),
  );
  if (options.standalonePods) {
    for (const pod of standalone) result.push(standaloneWorkload(namespace, pod));
  }
  return { workloads: result, notAttributed };
}

type Owner = { key: string } | { unsupported: string } | undefined;

function workloadOwner(pod: PodFacts, pods: NamespacePods, workloads: Map<string, Workload>): Owner {
  const owner = pod.owner;
  if (!owner) return undefined;
  const known = (kind: WorkloadKind, name: string): Owner => ({ key: `${kind}/${name}` });
  switch (owner.kind) {
    case 'StatefulSet':
    case 'DaemonSet':
      return known(owner.kind, owner.name);
    case 'ReplicaSet': {
      const deployment = pods.replicaSets
        ? ownedBy(pods.replicaSets.get(owner.name), 'Deployment')
        : deploymentByName(owner.name, pod, workloads);
      return deployment
        ? known('Deployment', deployment)
        : { unsupported: pods.replicaSets?.get(owner.name)?.kind ?? 'ReplicaSet' };
    }
    case 'Job': {
      const cronJob = pods.jobs ? ownedBy(pods.jobs.get(owner.name), 'CronJob') : cronJobByName(owner.name, workloads);
      return cronJob ? known('CronJob', cronJob) : { unsupported: pods.jobs?.get(owner.name)?.kind ?? 'Job' };
    }
    default:
      return { unsupported: owner.kind };
  }
}

function ownedBy(owner: OwnerRef | undefined, kind: string): string | undefined {
  return owner?.kind === kind ? owner.name : undefined;
}

/** Without the ReplicaSet list: the Deployment controller names them `<deployment>-<pod-template-hash>`. */
function deploymentByName(replicaSet: string, pod: PodFacts, workloads: Map<string, Workload>): string | undefined {
  const hash = pod.labels[TEMPLATE_HASH_LABEL];
  if (!hash || !replicaSet.endsWith(`-${hash}`)) return undefined;
  const name = replicaSet.slice(0, -hash.length - 1);
  return workloads.has(`Deployment/${name}`) ? name : undefined;
}

/** Without the Job list: the CronJob controller names them `<cronjob>-<scheduled minute>`. */
function cronJobByName(job: string, workloads: Map<string, Workload>): string | undefined {
  const name = /^(.+)-\d+$/.exec(job)?.[1];
  return name && workloads.has(`CronJob/${name}`) ? name : undefined;
}

function withRunningImages(workload: Workload, pods: PodFacts[]): Workload {
  const containers = workload.containers.map((c) => ({ ...c }));
  const byName = new Map(containers.map((c) => [c.name, c]));
  const seen = new Map<string, PodContainer[]>();
  for (const pod of pods) {
    for (const container of pod.containers) {
      if (!byName.has(container.name)) {
        // In the Pod but not in the template: injected by an admission webhook, or an ephemeral debug container.
        const extra: ContainerRef = {
          name: container.name,
          role: container.role === 'ephemeral' ? 'ephemeral' : 'injected',
          specImage: container.image,
          running: [],
        };
        containers.push(extra);
        byName.set(extra.name, extra);
      }
      const list = seen.get(container.name);
      if (list) list.push(container);
      else seen.set(container.name, [container]);
    }
  }
  for (const container of containers) Object.assign(container, runningOf(seen.get(container.name) ?? []));
  const secretNames = new Set(workload.pullSecrets.secretNames);
  for (const pod of pods) for (const name of pod.pullSecretNames) secretNames.add(name);
  return { ...workload, containers, pullSecrets: { ...workload.pullSecrets, secretNames: [...secretNames] } };
}

function runningOf(instances: PodContainer[]): { running: string[]; tagReason?: TagReason } {
  const digests = new Set<string>();
  let localImageOnly = false;
  for (const instance of instances) {
    const digest = registryDigestOf(instance.imageID);
    if (digest) digests.add(digest);
    else if (instance.imageID) localImageOnly = true;
  }
  if (digests.size > 0) return { running: [...digests].sort(), tagReason: undefined };
  return { running: [], tagReason: localImageOnly ? 'no_registry_digest' : 'no_running_pod' };
}

function standaloneWorkload(namespace: string, pod: PodFacts): Workload {
  const containers: ContainerRef[] = pod.containers.map((c) => ({
    name: c.name,
    role: c.role,
    specImage: c.image,
    ...runningOf([c]),
  }));
  return {
    namespace,
    kind: 'Pod',
    name: pod.name,
    labels: ephorLabels(pod.labels),
    containers,
    pullSecrets: { namespace, secretNames: pod.pullSecretNames, serviceAccount: pod.serviceAccount },
  };
}
