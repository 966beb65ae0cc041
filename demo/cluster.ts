// The demo's sample cluster: three namespaces with every workload kind the scanner reads, written for the demo
// (it needs nothing outside this repository). Objects have the shape the API server returns: a Deployment with its
// ReplicaSet and Pods, StatefulSets and a DaemonSet with their Pods, a CronJob between two runs (no Job, no Pod),
// a standalone Pod, and an istio-proxy sidecar that only the Pods show (injected by an admission webhook). One image
// cannot be scanned: payments' fraud-scoring runs a private image that the nodes pull with credentials of their own
// (a kubelet credential provider) the scanner never sees, so its registry refuses Trivy.
import { createHash } from 'node:crypto';
import { node } from '../test/support/k8s-objects.js';

export type KubeObject = Record<string, unknown>;

export const NAMESPACES = ['shop', 'payments', 'platform'] as const;

const CREATED = '2026-11-02T08:15:00Z';

/** Stable sha256 digests and uids, so that every demo run scans the same images and shows the same names. */
export function digestOf(name: string): string {
  return `sha256:${createHash('sha256').update(`ephor-demo/${name}`).digest('hex')}`;
}

function uidOf(...parts: string[]): string {
  const hex = createHash('sha1').update(parts.join('/')).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** The images of the demo: what the workload specs say, and the registry digest their Pods run. */
export const IMAGES = {
  nginx: { spec: 'nginx:1.25.3', repository: 'docker.io/library/nginx', report: 'nginx-1.25.3.json' },
  shopApi: { spec: 'ghcr.io/acme/shop-api:2.4.1', repository: 'ghcr.io/acme/shop-api', report: 'shop-api-2.4.1.json' },
  postgres: { spec: 'postgres:16.1', repository: 'docker.io/library/postgres', report: 'postgres-16.1.json' },
  istioProxy: {
    spec: 'docker.io/istio/proxyv2:1.20.2',
    repository: 'docker.io/istio/proxyv2',
    report: 'istio-proxyv2-1.20.2.json',
  },
  python: { spec: 'python:3.12.1-slim', repository: 'docker.io/library/python', report: 'python-3.12.1-slim.json' },
  /** Private: no report, its registry refuses the pull (see demo/refused-pull.ts). */
  fraudScoring: {
    spec: 'registry.acme.example/payments/fraud-scoring:3.1.0',
    repository: 'registry.acme.example/payments/fraud-scoring',
    report: undefined,
  },
} as const;
export type ImageKey = keyof typeof IMAGES;

/** What the runtime reports in `status.containerStatuses[].imageID` (containerd's form). */
export function runningImageId(image: ImageKey): string {
  return `${IMAGES[image].repository}@${digestOf(image)}`;
}

interface Container {
  name: string;
  image: ImageKey;
}

function metadata(kind: string, namespace: string, name: string, extra: KubeObject = {}): KubeObject {
  return {
    name,
    namespace,
    uid: uidOf(kind, namespace, name),
    resourceVersion: '1',
    creationTimestamp: CREATED,
    ...extra,
  };
}

function containerSpec(container: Container): KubeObject {
  return {
    name: container.name,
    image: IMAGES[container.image].spec,
    resources: { requests: { cpu: '50m', memory: '64Mi' } },
    terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File',
    imagePullPolicy: 'IfNotPresent',
  };
}

function podSpec(containers: Container[], extra: KubeObject = {}): KubeObject {
  return {
    containers: containers.map(containerSpec),
    restartPolicy: 'Always',
    terminationGracePeriodSeconds: 30,
    dnsPolicy: 'ClusterFirst',
    securityContext: {},
    schedulerName: 'default-scheduler',
    ...extra,
  };
}

function template(app: string, containers: Container[], labels: Record<string, string> = {}): KubeObject {
  return { metadata: { creationTimestamp: null, labels: { app, ...labels } }, spec: podSpec(containers) };
}

function ownerReference(owner: KubeObject): KubeObject {
  const meta = owner.metadata as { name: string; uid: string };
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: meta.name,
    uid: meta.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** A running Pod: its spec containers plus injected sidecars, each with the digest it runs. */
function runningPod(
  namespace: string,
  name: string,
  owner: KubeObject | undefined,
  app: string,
  containers: Container[],
  injected: Container[] = [],
): KubeObject {
  const all = [...containers, ...injected];
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: metadata('Pod', namespace, name, {
      labels: { app },
      ...(injected.length > 0 && {
        annotations: { 'sidecar.istio.io/status': '{"initContainers":null,"containers":["istio-proxy"]}' },
      }),
      ...(owner && {
        generateName: `${(owner.metadata as { name: string }).name}-`,
        ownerReferences: [ownerReference(owner)],
      }),
    }),
    spec: podSpec(all, {
      serviceAccountName: 'default',
      serviceAccount: 'default',
      nodeName: name.endsWith('b') ? 'node-b' : 'node-a',
    }),
    status: {
      phase: 'Running',
      conditions: [{ type: 'Ready', status: 'True', lastProbeTime: null, lastTransitionTime: CREATED }],
      hostIP: '10.0.0.11',
      podIP: '10.244.1.23',
      startTime: CREATED,
      containerStatuses: all.map((c) => ({
        name: c.name,
        state: { running: { startedAt: CREATED } },
        lastState: {},
        ready: true,
        restartCount: 0,
        image: `${IMAGES[c.image].repository}:${IMAGES[c.image].spec.split(':').at(-1)}`, // containerd's normalised name
        imageID: runningImageId(c.image),
        containerID: `containerd://${createHash('sha256').update(`${namespace}/${name}/${c.name}`).digest('hex')}`,
        started: true,
      })),
      qosClass: 'Burstable',
    },
  };
}

const ISTIO: Container = { name: 'istio-proxy', image: 'istioProxy' };

/** A Deployment with its current ReplicaSet and `replicas` running Pods (zero: scaled down, nothing runs). */
function deploymentWithPods(
  namespace: string,
  name: string,
  containers: Container[],
  options: { replicas?: number; sidecar?: boolean; labels?: Record<string, string> } = {},
): KubeObject[] {
  const replicas = options.replicas ?? 2;
  const hash = createHash('sha1')
    .update(`${namespace}/${name}`)
    .digest('hex')
    .slice(0, 10)
    .replace(/[aeiou01]/g, 'x');
  const deployment: KubeObject = {
    kind: 'Deployment',
    apiVersion: 'apps/v1',
    metadata: metadata('Deployment', namespace, name, {
      generation: 1,
      labels: { app: name, ...options.labels },
      annotations: { 'deployment.kubernetes.io/revision': '1' },
    }),
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: template(name, containers),
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } },
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 600,
    },
    status: {
      observedGeneration: 1,
      replicas,
      updatedReplicas: replicas,
      readyReplicas: replicas,
      availableReplicas: replicas,
    },
  };
  const replicaSet: KubeObject = {
    kind: 'ReplicaSet',
    apiVersion: 'apps/v1',
    metadata: metadata('ReplicaSet', namespace, `${name}-${hash}`, {
      labels: { app: name, 'pod-template-hash': hash },
      ownerReferences: [ownerReference(deployment)],
    }),
    spec: {
      replicas,
      selector: { matchLabels: { app: name, 'pod-template-hash': hash } },
      template: template(name, containers, { 'pod-template-hash': hash }),
    },
    status: { replicas, readyReplicas: replicas, availableReplicas: replicas },
  };
  const pods = Array.from({ length: replicas }, (_, i) =>
    runningPod(
      namespace,
      `${name}-${hash}-${['x7k2a', 'p9m4b', 'q3w8c'][i]}`,
      replicaSet,
      name,
      containers,
      options.sidecar ? [ISTIO] : [],
    ),
  );
  return [deployment, ...(replicas > 0 ? [replicaSet] : []), ...pods];
}

function statefulSetWithPod(namespace: string, name: string, containers: Container[]): KubeObject[] {
  const statefulSet: KubeObject = {
    kind: 'StatefulSet',
    apiVersion: 'apps/v1',
    metadata: metadata('StatefulSet', namespace, name, {
      generation: 1,
      labels: { app: name, 'ephor.dev/data-class': 'confidential' },
    }),
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: template(name, containers),
      serviceName: name,
      podManagementPolicy: 'OrderedReady',
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } },
    },
    status: { observedGeneration: 1, replicas: 1, readyReplicas: 1, currentReplicas: 1, updatedReplicas: 1 },
  };
  return [statefulSet, runningPod(namespace, `${name}-0`, statefulSet, name, containers)];
}

function daemonSetWithPods(namespace: string, name: string, containers: Container[]): KubeObject[] {
  const daemonSet: KubeObject = {
    kind: 'DaemonSet',
    apiVersion: 'apps/v1',
    metadata: metadata('DaemonSet', namespace, name, { generation: 1, labels: { app: name } }),
    spec: {
      selector: { matchLabels: { app: name } },
      template: template(name, containers),
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } },
      revisionHistoryLimit: 10,
    },
    status: {
      currentNumberScheduled: 2,
      numberMisscheduled: 0,
      desiredNumberScheduled: 2,
      numberReady: 2,
      observedGeneration: 1,
    },
  };
  return [
    daemonSet,
    runningPod(namespace, `${name}-4fq8a`, daemonSet, name, containers),
    runningPod(namespace, `${name}-k2v7b`, daemonSet, name, containers),
  ];
}

/** A CronJob between two runs: its last Job is gone, so nothing runs and its spec tag is what gets scanned. */
function cronJob(namespace: string, name: string, schedule: string, containers: Container[]): KubeObject {
  return {
    kind: 'CronJob',
    apiVersion: 'batch/v1',
    metadata: metadata('CronJob', namespace, name, {
      generation: 1,
      labels: { app: name, 'ephor.dev/owner': 'finance-team' },
    }),
    spec: {
      schedule,
      concurrencyPolicy: 'Forbid',
      suspend: false,
      successfulJobsHistoryLimit: 0,
      failedJobsHistoryLimit: 1,
      jobTemplate: {
        metadata: { creationTimestamp: null },
        spec: {
          backoffLimit: 2,
          template: {
            metadata: { creationTimestamp: null, labels: { app: name } },
            spec: podSpec(containers, { restartPolicy: 'OnFailure' }),
          },
        },
      },
    },
    status: { lastScheduleTime: '2026-11-26T02:00:00Z', lastSuccessfulTime: '2026-11-26T02:03:41Z' },
  };
}

function namespace(name: string, labels: Record<string, string>): KubeObject {
  return {
    kind: 'Namespace',
    apiVersion: 'v1',
    metadata: {
      name,
      uid: uidOf('Namespace', name),
      resourceVersion: '1',
      creationTimestamp: CREATED,
      labels: { 'kubernetes.io/metadata.name': name, ...labels },
    },
    spec: { finalizers: ['kubernetes'] },
    status: { phase: 'Active' },
  };
}

/** Every object of the sample cluster. */
export function sampleCluster(): KubeObject[] {
  return [
    namespace('shop', { team: 'storefront', 'istio-injection': 'enabled' }),
    namespace('payments', { team: 'payments', 'istio-injection': 'enabled' }),
    namespace('platform', { team: 'platform' }),
    // the two nodes the Pods run on: each image is scanned for their platform (linux/amd64)
    node({ name: 'node-a' }),
    node({ name: 'node-b' }),

    // shop: web front end and API with the injected mesh sidecar; the orders database
    ...deploymentWithPods('shop', 'storefront', [{ name: 'nginx', image: 'nginx' }], {
      sidecar: true,
      labels: { 'ephor.dev/exposure': 'public' },
    }),
    ...deploymentWithPods('shop', 'shop-api', [{ name: 'api', image: 'shopApi' }], { sidecar: true, replicas: 3 }),
    ...statefulSetWithPod('shop', 'orders-db', [{ name: 'postgres', image: 'postgres' }]),

    // payments: the same nginx and postgres images as shop (each scanned once), a private scoring service whose
    // image cannot be scanned (its sidecar can), and a nightly report job
    ...deploymentWithPods('payments', 'payments-gateway', [{ name: 'nginx', image: 'nginx' }], {
      sidecar: true,
      labels: { 'ephor.dev/exposure': 'public' },
    }),
    ...deploymentWithPods('payments', 'fraud-scoring', [{ name: 'scorer', image: 'fraudScoring' }], { sidecar: true }),
    ...statefulSetWithPod('payments', 'ledger-db', [{ name: 'postgres', image: 'postgres' }]),
    cronJob('payments', 'settlement-report', '0 2 * * *', [{ name: 'report', image: 'python' }]),

    // platform: a node agent on every node, a status page scaled to zero, and a standalone debugging Pod
    ...daemonSetWithPods('platform', 'node-inventory', [{ name: 'agent', image: 'python' }]),
    ...deploymentWithPods('platform', 'status-page', [{ name: 'nginx', image: 'nginx' }], { replicas: 0 }),
    runningPod('platform', 'toolbox', undefined, 'toolbox', [{ name: 'shell', image: 'python' }]),
  ];
}

/**
 * What `trivy image` is given for each image, as the scanner plans it: the running digest when Pods run it, the
 * normalised spec reference when nothing runs (the CronJob between runs, the status page scaled to zero).
 */
export function scanTargets(): Array<{ ref: string; image: ImageKey; digest?: string }> {
  const byDigest = (image: ImageKey) => ({ ref: runningImageId(image), image, digest: digestOf(image) });
  return [
    byDigest('nginx'),
    byDigest('shopApi'),
    byDigest('postgres'),
    byDigest('istioProxy'),
    byDigest('python'),
    byDigest('fraudScoring'),
    { ref: 'docker.io/library/python:3.12.1-slim', image: 'python' },
    { ref: 'docker.io/library/nginx:1.25.3', image: 'nginx' },
  ];
}
