// Workloads → the distinct images to scan. A container is scanned by the digests its Pods run, each on every platform
// it runs on (each distinct digest and platform once, however many tags, containers, workloads and namespaces use
// it), or by its spec reference when no running digest is known. Images are ordered by the first namespace that
// needs them so that namespaces complete (and can be delivered) one after another while scanning goes on.
import type { ContainerRef, Platform, PullSecretSource, ScanTarget, TagReason, Workload } from '../types.js';
import { ImageReferenceError, parseReference, payloadNameOf, scanKeyOf as referenceKeyOf } from './reference.js';

export interface PlannedContainer {
  /** `image_name` / `image_tag` sent to Ephor: always the spec's, so existing rows stay the same. */
  imageName: string;
  imageTag: string;
  /** The scans whose findings this container gets: one per running digest and platform, or the spec reference. */
  scanKeys: string[];
  /** The running digests (`repo_digests`); empty for a spec reference. */
  digests: string[];
  /** The platforms it is scanned for, sorted; empty when none is known. */
  platforms: Platform[];
  /** Platforms its Pods also run on that cannot be scanned (Windows). */
  unscannablePlatforms?: Platform[];
  /** Set when the spec reference is scanned because no running digest is known. */
  tagReason?: TagReason;
}

export interface InvalidImage {
  invalid: string;
}

/** A container that runs only on platforms Trivy cannot scan: left out, with the platforms in the ledger. */
export interface UnscannableImage {
  unscannable: Platform[];
}

export type ContainerPlan = PlannedContainer | InvalidImage | UnscannableImage;

export interface ScanPlan {
  targets: ScanTarget[];
  containers: Map<ContainerRef, ContainerPlan>;
}

export interface PlanOptions {
  /** The platform a spec reference is scanned for: the one all Linux nodes share (none when they differ). */
  tagPlatform?: Platform;
}

/** One scan's key in the run's maps: the reference, with the platform when one is given to Trivy. */
export function scanKeyOf(ref: string, platform?: Platform): string {
  return platform ? `${ref} (${platform})` : ref;
}

export function planScans(
  namespaces: readonly string[],
  workloads: readonly Workload[],
  options: PlanOptions = {},
): ScanPlan {
  const containers = new Map<ContainerRef, ContainerPlan>();
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
        const planned = planContainer(container, options);
        containers.set(container, planned.plan);
        for (const scan of planned.scans) addUse(targets, scan, namespace, workload.pullSecrets);
      }
    }
  }
  return { targets: [...targets.values()], containers };
}

interface Scan {
  ref: string;
  platform?: Platform;
}

function planContainer(container: ContainerRef, options: PlanOptions): { plan: ContainerPlan; scans: Scan[] } {
  if (runsOnlyUnscannable(container)) return { plan: { unscannable: container.unscannablePlatforms! }, scans: [] };
  try {
    const spec = parseReference(container.specImage);
    const { imageName, imageTag } = payloadNameOf(spec);
    const unscannable = container.unscannablePlatforms && { unscannablePlatforms: container.unscannablePlatforms };
    if (container.running.length > 0) {
      const scans = container.running.flatMap((ref): Scan[] => {
        const platforms = container.platforms?.[ref] ?? [];
        return platforms.length > 0 ? platforms.map((platform) => ({ ref, platform })) : [{ ref }];
      });
      const plan: PlannedContainer = {
        imageName,
        imageTag,
        scanKeys: scans.map((s) => scanKeyOf(s.ref, s.platform)),
        digests: [...container.running],
        platforms: distinctPlatforms(scans),
        ...unscannable,
      };
      return { plan, scans };
    }
    const scan: Scan = { ref: referenceKeyOf(spec), platform: options.tagPlatform };
    const plan: PlannedContainer = {
      imageName,
      imageTag,
      scanKeys: [scanKeyOf(scan.ref, scan.platform)],
      digests: [],
      platforms: distinctPlatforms([scan]),
      ...unscannable,
      tagReason: container.tagReason ?? 'no_running_pod',
    };
    return { plan, scans: [scan] };
  } catch (error) {
    if (!(error instanceof ImageReferenceError)) throw error;
    return { plan: { invalid: error.message }, scans: [] };
  }
}

function distinctPlatforms(scans: readonly Scan[]): Platform[] {
  return [...new Set(scans.flatMap((s) => (s.platform ? [s.platform] : [])))].sort();
}

function addUse(targets: Map<string, ScanTarget>, scan: Scan, namespace: string, pullSecrets: PullSecretSource): void {
  const key = scanKeyOf(scan.ref, scan.platform);
  let target = targets.get(key);
  if (!target) {
    const ref = parseReference(scan.ref);
    target = { key, ref: scan.ref, registry: ref.domain, repository: ref.path, namespaces: [], pullSecrets: [] };
    if (scan.platform) target.platform = scan.platform;
    targets.set(key, target);
  }
  if (!target.namespaces.includes(namespace)) target.namespaces.push(namespace);
  const same = (s: PullSecretSource) =>
    s.namespace === pullSecrets.namespace &&
    s.serviceAccount === pullSecrets.serviceAccount &&
    s.secretNames.join() === pullSecrets.secretNames.join();
  if (!target.pullSecrets.some(same)) target.pullSecrets.push(pullSecrets);
}

/** Runs only on platforms Trivy cannot scan: not scanned at all (its spec tag would be the wrong image). */
export function runsOnlyUnscannable(container: ContainerRef): boolean {
  return container.running.length === 0 && !container.tagReason && (container.unscannablePlatforms?.length ?? 0) > 0;
}

export function isInvalid(image: ContainerPlan | undefined): image is InvalidImage {
  return image !== undefined && 'invalid' in image;
}

export function isUnscannable(image: ContainerPlan | undefined): image is UnscannableImage {
  return image !== undefined && 'unscannable' in image;
}
