// Workloads → the distinct images to scan. A container is scanned by the digests its Pods run (each distinct digest
// once, however many tags, containers, workloads and namespaces use it), or by its spec reference when no running
// digest is known. Images are ordered by the first namespace that needs them so that namespaces complete (and can
// be delivered) one after another while scanning goes on.
import type { ContainerRef, PullSecretSource, ScanTarget, TagReason, Workload } from '../types.js';
import { ImageReferenceError, parseReference, payloadNameOf, scanKeyOf } from './reference.js';

export interface PlannedContainer {
  /** `image_name` / `image_tag` sent to Ephor: always the spec's, so existing rows stay the same. */
  imageName: string;
  imageTag: string;
  /** The scans whose findings this container gets: one per running digest, or the spec reference. */
  scanKeys: string[];
  /** Set when the spec reference is scanned because no running digest is known. */
  tagReason?: TagReason;
}

export interface InvalidImage {
  invalid: string;
}

export interface ScanPlan {
  targets: ScanTarget[];
  containers: Map<ContainerRef, PlannedContainer | InvalidImage>;
}

export function planScans(namespaces: readonly string[], workloads: readonly Workload[]): ScanPlan {
  const containers = new Map<ContainerRef, PlannedContainer | InvalidImage>();
  const targets = new Map<string, ScanTarget>();
  const byNamespace = new Map<string, Workload[]>();
  for (const workload of workloads) {
    const list = byNamespace.get(workload.namespace);
    if (list) list.push(workload);
    else byNamespace.set(workload.namespace, [workload]);
  }

  for (const namespace of namespaces) {
    for (const workload of byNamespace.get(namespace) ?? []) {
      for (const container of workload.containers) {
        const planned = planContainer(container);
        containers.set(container, planned);
        if ('invalid' in planned) continue;
        for (const key of planned.scanKeys) addUse(targets, key, namespace, workload.pullSecrets);
      }
    }
  }
  return { targets: [...targets.values()], containers };
}

function planContainer(container: ContainerRef): PlannedContainer | InvalidImage {
  try {
    const spec = parseReference(container.specImage);
    const { imageName, imageTag } = payloadNameOf(spec);
    if (container.running.length > 0) return { imageName, imageTag, scanKeys: [...container.running] };
    return { imageName, imageTag, scanKeys: [scanKeyOf(spec)], tagReason: container.tagReason ?? 'no_running_pod' };
  } catch (error) {
    if (!(error instanceof ImageReferenceError)) throw error;
    return { invalid: error.message };
  }
}

function addUse(targets: Map<string, ScanTarget>, key: string, namespace: string, pullSecrets: PullSecretSource): void {
  let target = targets.get(key);
  if (!target) {
    const ref = parseReference(key);
    target = { ref: key, registry: ref.domain, repository: ref.path, namespaces: [], pullSecrets: [] };
    targets.set(key, target);
  }
  if (!target.namespaces.includes(namespace)) target.namespaces.push(namespace);
  const same = (s: PullSecretSource) =>
    s.namespace === pullSecrets.namespace &&
    s.serviceAccount === pullSecrets.serviceAccount &&
    s.secretNames.join() === pullSecrets.secretNames.join();
  if (!target.pullSecrets.some(same)) target.pullSecrets.push(pullSecrets);
}

export function isInvalid(image: PlannedContainer | InvalidImage | undefined): image is InvalidImage {
  return image !== undefined && 'invalid' in image;
}
