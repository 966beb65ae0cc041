// Workloads → the distinct images to scan. Each normalised reference is scanned once, however many containers,
// workloads and namespaces use it; images are ordered by the first namespace that needs them so that namespaces
// complete (and can be delivered) one after another while scanning goes on.
import type { ScanTarget, Workload } from '../types.js';
import { ReferenceError, parseReference, payloadNameOf, scanKeyOf } from './reference.js';

export interface PlannedImage {
  /** Key of the scan whose findings this container gets (the ScanTarget's ref). */
  scanKey: string;
  imageName: string;
  imageTag: string;
}

export interface InvalidImage {
  invalid: string;
}

export interface ScanPlan {
  targets: ScanTarget[];
  /** Spec image string → its planned scan, or why it cannot be scanned. */
  images: Map<string, PlannedImage | InvalidImage>;
}

export function planScans(namespaces: readonly string[], workloads: readonly Workload[]): ScanPlan {
  const images = new Map<string, PlannedImage | InvalidImage>();
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
        const planned = planImage(container.specImage, images);
        if ('invalid' in planned) continue;
        const target = targets.get(planned.scanKey);
        if (!target) {
          const ref = parseReference(container.specImage);
          targets.set(planned.scanKey, { ref: planned.scanKey, registry: ref.domain, repository: ref.path, namespaces: [namespace] });
        } else if (!target.namespaces.includes(namespace)) {
          target.namespaces.push(namespace);
        }
      }
    }
  }
  return { targets: [...targets.values()], images };
}

function planImage(specImage: string, cache: Map<string, PlannedImage | InvalidImage>): PlannedImage | InvalidImage {
  let planned = cache.get(specImage);
  if (!planned) {
    try {
      const ref = parseReference(specImage);
      const { imageName, imageTag } = payloadNameOf(ref);
      planned = { scanKey: scanKeyOf(ref), imageName, imageTag };
    } catch (error) {
      if (!(error instanceof ReferenceError)) throw error;
      planned = { invalid: error.message };
    }
    cache.set(specImage, planned);
  }
  return planned;
}

export function isInvalid(image: PlannedImage | InvalidImage | undefined): image is InvalidImage {
  return image !== undefined && 'invalid' in image;
}
