// What the plan tells an operator: each image string that is not a valid reference (once, with where it is used),
// and how the containers were deduplicated into images.
import { isInvalid, isUnscannable, type ScanPlan } from '../images/plan.js';
import type { Logger } from '../log.js';
import type { Workload } from '../types.js';

/** Logs each distinct invalid image string once; returns how many there are. */
export function logInvalidReferences(plan: ScanPlan, workloads: readonly Workload[], log: Logger): number {
  const byImage = new Map<string, { reason: string; usedBy: string[] }>();
  for (const workload of workloads) {
    for (const container of workload.containers) {
      const planned = plan.containers.get(container);
      if (!isInvalid(planned)) continue;
      const entry = byImage.get(container.specImage) ?? { reason: planned.invalid, usedBy: [] };
      entry.usedBy.push(`${workload.namespace}/${workload.kind}/${workload.name}/${container.name}`);
      byImage.set(container.specImage, entry);
    }
  }
  for (const [image, { reason, usedBy }] of byImage) {
    log.error(
      { image, reason, used_by: usedBy.slice(0, 10), uses: usedBy.length },
      'invalid image reference: not scanned',
    );
  }
  return byImage.size;
}

export function logPlan(plan: ScanPlan, workloads: readonly Workload[], invalid: number, log: Logger): void {
  let byDigest = 0;
  let byTag = 0;
  let unscannable = 0;
  for (const planned of plan.containers.values()) {
    if (isInvalid(planned)) continue;
    if (isUnscannable(planned)) {
      unscannable++;
      continue;
    }
    if (planned.tagReason) byTag++;
    else byDigest++;
  }
  const containers = workloads.reduce((n, w) => n + w.containers.length, 0);
  log.info(
    {
      unique_images: plan.targets.length,
      invalid_references: invalid,
      containers,
      containers_by_running_digest: byDigest,
      containers_by_spec_tag: byTag,
      containers_on_unscannable_platforms: unscannable || undefined,
    },
    'image deduplication completed',
  );
}
