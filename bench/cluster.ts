// A synthetic cluster for the benchmark: N namespaces × W workloads (a mix of kinds), each with R running Pods,
// using U unique images drawn Zipf-like, so that a few popular images run everywhere and most run in one or two
// places; every image is used at least once. Objects come from the stand-ins' own builders
// (test/support/k8s-objects.ts: real API objects with identity and containers replaced), so they have exactly the
// shape the tests use: Deployments with their ReplicaSet, StatefulSets, DaemonSets, CronJobs with a running Job, and
// Pods with controller ownerReferences and containerd image IDs `docker.io/library/NAME@sha256:…`.
import { createHash } from 'node:crypto';
import {
  cronJob,
  daemonSet,
  deployment,
  job,
  pod,
  replicaSet,
  serviceAccount,
  statefulSet,
  type KubeObject,
} from '../test/support/k8s-objects.js';

export interface ClusterOptions {
  namespaces: number;
  workloadsPerNamespace: number;
  /** Pods per workload (Deployment and StatefulSet replicas, DaemonSet nodes, Pods of a CronJob's running Job). */
  replicas: number;
  /** Unique images (U); each becomes one registry digest, so one scan. */
  images: number;
  /** Exponent s of the Zipf law (weight of the k-th most popular image ∝ 1/k^s). Default 1. */
  zipfExponent?: number;
  /** Seed of the deterministic draw. */
  seed?: number;
  /** Every n-th image (index n-1, 2n-1, …) runs a new digest, as after a redeploy (the incremental scenario: 10 for
   * 10 %); 0 = none. The workloads and everything else stay the same. */
  changedEvery?: number;
}

export type WorkloadKind = 'Deployment' | 'StatefulSet' | 'DaemonSet' | 'CronJob';

/** The mix of kinds, per 20 workloads of a namespace: 14 Deployments, 3 StatefulSets, 2 DaemonSets, 1 CronJob. */
const KIND_CYCLE: WorkloadKind[] = [
  ...Array<WorkloadKind>(14).fill('Deployment'),
  ...Array<WorkloadKind>(3).fill('StatefulSet'),
  ...Array<WorkloadKind>(2).fill('DaemonSet'),
  'CronJob',
];

export interface ClusterStats {
  namespaces: number;
  workloads: number;
  byKind: Record<WorkloadKind, number>;
  pods: number;
  containers: number;
  /** Other objects the scanner reads: ReplicaSets, Jobs, ServiceAccounts (one `default` per namespace). */
  replicaSets: number;
  jobs: number;
  images: number;
  /** Containers (workloads) using the most popular image, and in how many namespaces it runs. */
  topImageUses: number;
  topImageNamespaces: number;
  /** Images used by exactly one workload. */
  imagesUsedOnce: number;
}

export interface SyntheticCluster {
  options: Required<ClusterOptions>;
  namespaces: string[];
  /** Every object, ready for the Kubernetes stand-in (hand them over with its `bulk` option). */
  objects: KubeObject[];
  /** The references the scanner will scan: one `docker.io/library/NAME@sha256:…` per image. */
  scanRefs: string[];
  stats: ClusterStats;
}

/** The spec image of image number `index` (a tag; the Pods report the digest it resolved to). */
export function imageName(index: number): string {
  return `bench-app-${String(index).padStart(5, '0')}`;
}

export function imageDigest(index: number, changed = false): string {
  return `sha256:${createHash('sha256')
    .update(`ephor-bench/${imageName(index)}${changed ? '/changed' : ''}`)
    .digest('hex')}`;
}

/** The image ID containerd reports for it, which the scanner turns into the reference it scans. */
export function imageID(index: number, changed = false): string {
  return `docker.io/library/${imageName(index)}@${imageDigest(index, changed)}`;
}

/** Whether image `index` runs a new digest (ClusterOptions.changedEvery). */
export function isChanged(index: number, changedEvery: number): boolean {
  return changedEvery > 0 && index % changedEvery === changedEvery - 1;
}

export function generateCluster(input: ClusterOptions): SyntheticCluster {
  const options: Required<ClusterOptions> = { zipfExponent: 1, seed: 20_251_127, changedEvery: 0, ...input };
  const { namespaces: n, workloadsPerNamespace: w, replicas, images } = options;
  if (![n, w, replicas, images].every((value) => Number.isInteger(value) && value >= 1))
    throw new Error(`cluster: every size must be a positive integer (${JSON.stringify(input)})`);
  if (images > n * w) throw new Error(`cluster: ${images} images cannot all be used by ${n * w} workloads`);

  const random = mulberry32(options.seed);
  const assignment = drawImages(n * w, images, options.zipfExponent, random);
  const namespaceNames = Array.from({ length: n }, (_, i) => `team-${String(i + 1).padStart(3, '0')}`);
  const objects: KubeObject[] = [];
  const byKind: Record<WorkloadKind, number> = { Deployment: 0, StatefulSet: 0, DaemonSet: 0, CronJob: 0 };
  const uses = new Array<number>(images).fill(0);
  const namespacesOf = Array.from({ length: images }, () => new Set<number>());
  let pods = 0;
  let replicaSets = 0;
  let jobs = 0;

  namespaceNames.forEach((namespace, nsIndex) => {
    objects.push(serviceAccount({ namespace, name: 'default' }));
    for (let i = 0; i < w; i++) {
      const image = assignment[nsIndex * w + i]!;
      uses[image]!++;
      namespacesOf[image]!.add(nsIndex);
      const kind = KIND_CYCLE[i % KIND_CYCLE.length]!;
      byKind[kind]++;
      const name = `${kind.toLowerCase()}-${String(i + 1).padStart(5, '0')}`;
      const spec = {
        namespace,
        name,
        labels: { 'app.kubernetes.io/name': name, 'ephor.dev/team': namespace },
        containers: [{ name: 'app', image: `${imageName(image)}:1.0` }],
      };
      const imageIDs = { app: imageID(image, isChanged(image, options.changedEvery)) };
      const podsOf = (owner: KubeObject, podName: (r: number) => string) => {
        for (let r = 0; r < replicas; r++) objects.push(pod({ namespace, owner, name: podName(r), imageIDs }));
        pods += replicas;
      };
      switch (kind) {
        case 'Deployment': {
          const workload = deployment(spec);
          const rs = replicaSet({ namespace, owner: workload });
          objects.push(workload, rs);
          replicaSets++;
          podsOf(rs, (r) => `${rs.metadata.name}-${podSuffix(rs.metadata.name, r)}`);
          break;
        }
        case 'StatefulSet': {
          const workload = statefulSet(spec);
          objects.push(workload);
          podsOf(workload, (r) => `${name}-${r}`);
          break;
        }
        case 'DaemonSet': {
          const workload = daemonSet(spec);
          objects.push(workload);
          podsOf(workload, (r) => `${name}-${podSuffix(name, r)}`);
          break;
        }
        case 'CronJob': {
          const workload = cronJob(spec);
          const running = job({ namespace, owner: workload });
          objects.push(workload, running);
          jobs++;
          podsOf(running, (r) => `${running.metadata.name}-${podSuffix(running.metadata.name, r)}`);
          break;
        }
      }
    }
  });

  const top = uses.indexOf(Math.max(...uses));
  return {
    options,
    namespaces: namespaceNames,
    objects,
    scanRefs: Array.from({ length: images }, (_, i) => imageID(i, isChanged(i, options.changedEvery))),
    stats: {
      namespaces: n,
      workloads: n * w,
      byKind,
      pods,
      containers: n * w,
      replicaSets,
      jobs,
      images,
      topImageUses: uses[top]!,
      topImageNamespaces: namespacesOf[top]!.size,
      imagesUsedOnce: uses.filter((count) => count === 1).length,
    },
  };
}

/**
 * Image number for each of `slots` containers: images 0…U-1 once each (so every image is used), the other slots
 * drawn from a Zipf law over the U images, then all of them shuffled so the guaranteed uses spread evenly.
 */
function drawImages(slots: number, images: number, exponent: number, random: () => number): number[] {
  const cumulative: number[] = [];
  let total = 0;
  for (let k = 1; k <= images; k++) cumulative.push((total += 1 / k ** exponent));
  const draw = () => {
    const target = random() * total;
    let low = 0;
    let high = images - 1;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (cumulative[middle]! < target) low = middle + 1;
      else high = middle;
    }
    return low;
  };
  const assignment = Array.from({ length: slots }, (_, slot) => (slot < images ? slot : draw()));
  for (let i = slots - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [assignment[i], assignment[j]] = [assignment[j]!, assignment[i]!];
  }
  return assignment;
}

/** The 5 characters a controller appends to generateName (kube's SafeEncodeString alphabet). */
function podSuffix(owner: string, index: number): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  const digest = createHash('sha256').update(`${owner}/${index}`).digest();
  return Array.from(digest.subarray(0, 5), (byte) => alphabet[byte % alphabet.length]).join('');
}

/** Small, fast, deterministic PRNG (Mulberry32). */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
