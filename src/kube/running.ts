// Which images the workloads really run (pure): each Pod is attributed to its workload through its owner chain
// (attribution.ts), and the registry digests in its container statuses become the images to scan, each on the
// platform of the Pod's node. Containers present in the Pods but not in the template (sidecars injected by
// admission webhooks, ephemeral debug containers) join their workload. Pods of other controllers become one
// workload of kind `Pod` per top-level owner (owner-name.ts), with SCAN_OTHER_CONTROLLERS.
import { registryDigestOf } from '../images/image-id.js';
import type { ContainerRef, Platform, TagReason, Workload } from '../types.js';
import { attributePod, type OwnerMaps } from './attribution.js';
import { ephorLabels } from './labels.js';
import { formatOwnerKind, isExcluded, type OtherControllers } from './owner-kinds.js';
import { ownerLabels, ownerWorkloadName } from './owner-name.js';
import { isScannablePlatform, type NodePlatforms } from './nodes.js';
import type { OwnerRef, PodContainer, PodFacts } from './pods.js';

export interface NamespacePods extends OwnerMaps {
  pods: PodFacts[];
}

export interface AttributionOptions {
  /** Report Pods without a controller as kind `Pod`. */
  standalonePods: boolean;
  /** Report Pods of other controllers under their owner; absent: not reported (counted as not attributed). */
  otherControllers?: OtherControllers;
  /** The nodes' platforms; absent: nodes not listed, every platform unknown. */
  nodes?: NodePlatforms;
}

export interface RunningImages {
  workloads: Workload[];
  /** Active Pods not reported because their owner cannot be reported, by the kind their chain stops at. */
  notAttributed: Record<string, number>;
  /** Active Pods left out by SCAN_OTHER_CONTROLLERS_EXCLUDE, by their owner's `Kind.group`. */
  excluded: Record<string, number>;
}

/** One running copy of a container: what it runs, and on which platform (undefined: unknown). */
interface Instance {
  container: PodContainer;
  platform?: Platform;
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
      excluded: {},
    };
  }
  const keys = new Set(workloads.map((w) => `${w.kind}/${w.name}`));
  const podsOf = new Map<string, PodFacts[]>();
  const owners = new Map<string, { owner: OwnerRef; pods: PodFacts[] }>();
  const standalone: PodFacts[] = [];
  const notAttributed: Record<string, number> = {};
  const excluded: Record<string, number> = {};
  const count = (counts: Record<string, number>, key: string) => (counts[key] = (counts[key] ?? 0) + 1);
  const other = options.otherControllers;

  for (const pod of pods.pods) {
    if (!ACTIVE_PHASES.has(pod.phase)) continue;
    const attribution = attributePod(pod, pods, keys);
    if (attribution.to === 'standalone') standalone.push(pod);
    else if (attribution.to === 'unknown') count(notAttributed, attribution.kind);
    else if (attribution.to === 'workload') {
      if (keys.has(attribution.key)) push(podsOf, attribution.key, pod);
    } else if (!other?.enabled) count(notAttributed, attribution.owner.kind);
    else if (isExcluded(attribution.owner, other.exclude)) count(excluded, formatOwnerKind(attribution.owner));
    else {
      const name = ownerWorkloadName(attribution.owner);
      const entry = owners.get(name);
      if (entry) entry.pods.push(pod);
      else owners.set(name, { owner: attribution.owner, pods: [pod] });
    }
  }

  const platformOf = (pod: PodFacts) => (pod.nodeName ? options.nodes?.get(pod.nodeName) : undefined);
  const result = workloads.map((workload) =>
    withRunningImages(workload, podsOf.get(`${workload.kind}/${workload.name}`) ?? [], platformOf),
  );
  for (const [name, { owner, pods: owned }] of [...owners].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    result.push(ownerWorkload(namespace, name, owner, owned, platformOf));
  if (options.standalonePods) {
    for (const pod of standalone) result.push(standaloneWorkload(namespace, pod, platformOf(pod)));
  }
  return { workloads: result, notAttributed, excluded };
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function withRunningImages(
  workload: Workload,
  pods: PodFacts[],
  platformOf: (pod: PodFacts) => Platform | undefined,
): Workload {
  const containers = workload.containers.map((c) => ({ ...c }));
  const byName = new Map(containers.map((c) => [c.name, c]));
  const seen = new Map<string, Instance[]>();
  for (const pod of pods) {
    const platform = platformOf(pod);
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
      push(seen, container.name, { container, platform });
    }
  }
  for (const container of containers) Object.assign(container, runningOf(seen.get(container.name) ?? []));
  const secretNames = new Set(workload.pullSecrets.secretNames);
  for (const pod of pods) for (const name of pod.pullSecretNames) secretNames.add(name);
  return { ...workload, containers, pullSecrets: { ...workload.pullSecrets, secretNames: [...secretNames] } };
}

type Running = Pick<ContainerRef, 'running' | 'platforms' | 'unscannablePlatforms' | 'tagReason'>;

/**
 * The digests a container's instances run, each with the platforms it runs on. Instances on a platform Trivy cannot
 * scan (Windows) are left out and named; an instance whose platform is unknown counts only for a digest that runs
 * nowhere known (it most likely runs on a platform its other instances show).
 */
function runningOf(instances: Instance[]): Running {
  const platforms = new Map<string, Set<Platform>>();
  const unscannable = new Set<Platform>();
  let scannable = 0;
  let localImageOnly = false;
  for (const { container, platform } of instances) {
    if (platform !== undefined && !isScannablePlatform(platform)) {
      unscannable.add(platform);
      continue;
    }
    scannable++;
    const digest = registryDigestOf(container.imageID);
    if (!digest) {
      if (container.imageID) localImageOnly = true;
      continue;
    }
    const on = platforms.get(digest) ?? new Set<Platform>();
    if (platform) on.add(platform);
    platforms.set(digest, on);
  }
  const running: Running = { running: [...platforms.keys()].sort(), tagReason: undefined };
  const known = [...platforms].filter(([, on]) => on.size > 0);
  if (known.length > 0) running.platforms = Object.fromEntries(known.map(([digest, on]) => [digest, [...on].sort()]));
  if (unscannable.size > 0) running.unscannablePlatforms = [...unscannable].sort();
  if (running.running.length > 0 || (scannable === 0 && unscannable.size > 0)) return running;
  const tagReason: TagReason = localImageOnly ? 'no_registry_digest' : 'no_running_pod';
  return { ...running, tagReason };
}

/**
 * The Pods of one owner without an Ephor kind, as one workload: every container of every Pod, by name (as the
 * replicas of a Deployment mid-rollout), with the spec image, role and labels of the newest Pod that has it.
 */
function ownerWorkload(
  namespace: string,
  name: string,
  owner: OwnerRef,
  pods: PodFacts[],
  platformOf: (pod: PodFacts) => Platform | undefined,
): Workload {
  const newestFirst = [...pods].sort(
    (a, b) => (b.created ?? '').localeCompare(a.created ?? '') || a.name.localeCompare(b.name),
  );
  const containers: ContainerRef[] = [];
  const seen = new Map<string, Instance[]>();
  for (const pod of newestFirst) {
    const platform = platformOf(pod);
    for (const container of pod.containers) {
      if (!seen.has(container.name))
        containers.push({ name: container.name, role: container.role, specImage: container.image, running: [] });
      push(seen, container.name, { container, platform });
    }
  }
  for (const container of containers) Object.assign(container, runningOf(seen.get(container.name)!));
  const newest = newestFirst[0]!;
  return {
    namespace,
    kind: 'Pod',
    name,
    labels: { ...ephorLabels(newest.labels), ...ownerLabels(owner) },
    containers,
    pullSecrets: {
      namespace,
      secretNames: [...new Set(newestFirst.flatMap((p) => p.pullSecretNames))],
      serviceAccount: newest.serviceAccount,
    },
  };
}

function standaloneWorkload(namespace: string, pod: PodFacts, platform: Platform | undefined): Workload {
  const containers: ContainerRef[] = pod.containers.map((c) => ({
    name: c.name,
    role: c.role,
    specImage: c.image,
    ...runningOf([{ container: c, platform }]),
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
