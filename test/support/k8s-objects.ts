// Builders of objects shaped like kube-apiserver responses. Every builder starts from a REAL object in
// ../shared/fixtures/k8s (read at run time, never copied) and replaces identity and containers.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { K8S_FIXTURES_DIR } from './paths.js';

export type KubeObject = Record<string, any>;
export interface ContainerSpec { name: string; image: string }
export interface WorkloadSpec {
  namespace: string; name: string;
  labels?: Record<string, string>;
  initContainers?: ContainerSpec[]; containers: ContainerSpec[];
  uid?: string;
  /** Pod-template service account; pods default to `default` (ServiceAccount admission), templates omit it. */
  serviceAccountName?: string;
  imagePullSecrets?: string[];
}
export interface PodSpecInput extends WorkloadSpec {
  owner?: KubeObject;
  ephemeralContainers?: ContainerSpec[];
  serviceAccountName?: string; imagePullSecrets?: string[];
  /** status image IDs per container name; undefined = not started (no status entry); '' = image pull failing */
  imageIDs?: Record<string, string>;
}

/** Fixed so that objects (and test output) are deterministic. */
export const CREATION_TIMESTAMP = '2025-01-15T09:30:00Z';

const fixtureCache = new Map<string, unknown>();

function readFixture(relativePath: string): any {
  if (!fixtureCache.has(relativePath)) {
    fixtureCache.set(relativePath, JSON.parse(readFileSync(path.join(K8S_FIXTURES_DIR, relativePath), 'utf8')));
  }
  return structuredClone(fixtureCache.get(relativePath));
}

const realObject = {
  deployment: () => readFixture('lists/troubleshoot_deployments_default.DeploymentList.json').items[0],
  daemonSet: () => readFixture('objects/k9s_daemonset_fluentd-gcp.DaemonSet.json'),
  cronJob: () => readFixture('objects/k9s_cronjob_hello.batch-v1beta1.CronJob.json'),
  job: () => readFixture('lists/troubleshoot_jobs_test.JobList.json').items[0],
  runningPod: () => readFixture('objects/k9s_pod_sleep-with-sidecars.Pod.json'),
  imagePullFailingPod: () => readFixture('lists/troubleshoot_pods_image-pull-fail.PodList.json').items[0],
};

/** uuid-shaped (version 5 layout) and stable for the same kind/namespace/name. */
export function deterministicUid(...parts: string[]): string {
  const hex = createHash('sha1').update(parts.join('/')).digest('hex');
  const variant = ((parseInt(hex.slice(16, 17), 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** Drops undefined members so objects compare and serialise like the server's `omitempty` output. */
function compact<T extends KubeObject>(object: T): T {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined)) as T;
}

function nonEmpty<T extends unknown[] | Record<string, unknown>>(value: T | undefined): T | undefined {
  if (value === undefined) return undefined;
  return Object.keys(value).length > 0 ? value : undefined;
}

/** Fixture timestamps (2019–2024) would predate the new creationTimestamp; move them all to it. */
function restampTimes<T>(value: T): T {
  return JSON.parse(JSON.stringify(value), (_key, v) =>
    typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(v) ? CREATION_TIMESTAMP : v);
}

function shortHash(...parts: string[]): string {
  // kube's SafeEncodeString alphabet, as in pod-template-hash / controller-revision-hash values
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  const digest = createHash('sha256').update(parts.join('/')).digest();
  return Array.from(digest.subarray(0, 10), (byte) => alphabet[byte % alphabet.length]).join('');
}

interface ObjectIdentity { namespace: string; name: string; uid?: string; labels?: Record<string, string> }
interface MetadataExtras { generateName?: string; generation?: number; annotations?: Record<string, string>; ownerReferences?: KubeObject[] }

function metadataFor(kind: string, spec: ObjectIdentity, extras: MetadataExtras = {}): KubeObject {
  return compact({
    name: spec.name,
    generateName: extras.generateName,
    namespace: spec.namespace,
    uid: spec.uid ?? deterministicUid(kind, spec.namespace, spec.name),
    resourceVersion: '1', // the stand-in server assigns the real one when the object is stored
    generation: extras.generation,
    creationTimestamp: CREATION_TIMESTAMP,
    labels: nonEmpty(spec.labels),
    annotations: nonEmpty(extras.annotations),
    ownerReferences: extras.ownerReferences,
  });
}

export function ownerReference(owner: KubeObject): KubeObject {
  return {
    apiVersion: owner.apiVersion, kind: owner.kind, name: owner.metadata.name, uid: owner.metadata.uid,
    controller: true, blockOwnerDeletion: true,
  };
}

/** API-server defaulting (SetDefaults_Container): tag `latest` (or no tag and no digest) → Always. */
function defaultPullPolicy(image: string): string {
  const lastSegment = image.slice(image.lastIndexOf('/') + 1);
  if (lastSegment.includes('@')) return 'IfNotPresent';
  const tag = lastSegment.includes(':') ? lastSegment.slice(lastSegment.indexOf(':') + 1) : 'latest';
  return tag === 'latest' ? 'Always' : 'IfNotPresent';
}

/** Keeps the realistic, workload-independent fields of the fixture's container. */
function containerFrom(realContainer: KubeObject, container: ContainerSpec): KubeObject {
  return {
    name: container.name,
    image: container.image,
    resources: structuredClone(realContainer.resources ?? {}),
    terminationMessagePath: realContainer.terminationMessagePath,
    terminationMessagePolicy: realContainer.terminationMessagePolicy,
    imagePullPolicy: defaultPullPolicy(container.image),
  };
}

function ephemeralContainerFrom(realContainer: KubeObject, container: ContainerSpec): KubeObject {
  // shape of a `kubectl debug` container: no resources allowed, stdin/tty set
  return { ...containerFrom(realContainer, container), resources: {}, stdin: true, tty: true };
}

interface PodOnlyFields { restartPolicy: string; serviceAccountName: string; ephemeralContainers?: ContainerSpec[] }

/** Field order follows the server's PodSpec serialisation. */
function podSpecFrom(realSpec: KubeObject, spec: WorkloadSpec, podOnly?: PodOnlyFields): KubeObject {
  const realContainer = realSpec.containers[0];
  const realInitContainer = realSpec.initContainers?.[0] ?? realContainer;
  const serviceAccount = podOnly?.serviceAccountName ?? spec.serviceAccountName;
  return compact({
    initContainers: nonEmpty(spec.initContainers?.map((c) => containerFrom(realInitContainer, c))),
    containers: spec.containers.map((c) => containerFrom(realContainer, c)),
    ephemeralContainers: nonEmpty(podOnly?.ephemeralContainers?.map((c) => ephemeralContainerFrom(realContainer, c))),
    restartPolicy: podOnly?.restartPolicy ?? realSpec.restartPolicy,
    terminationGracePeriodSeconds: realSpec.terminationGracePeriodSeconds,
    dnsPolicy: realSpec.dnsPolicy === 'Default' ? 'ClusterFirst' : realSpec.dnsPolicy, // `Default` is DaemonSet-specific
    serviceAccountName: serviceAccount,
    serviceAccount, // deprecated mirror the server still fills in
    nodeName: podOnly ? realSpec.nodeName : undefined,
    securityContext: realSpec.securityContext,
    imagePullSecrets: nonEmpty(spec.imagePullSecrets?.map((name) => ({ name }))),
    schedulerName: realSpec.schedulerName,
    tolerations: podOnly ? realSpec.tolerations : undefined,
    priority: podOnly ? realSpec.priority : undefined,
    enableServiceLinks: podOnly ? realSpec.enableServiceLinks : undefined,
    preemptionPolicy: podOnly ? realSpec.preemptionPolicy : undefined,
  });
}

function podTemplateFrom(realTemplate: KubeObject, spec: WorkloadSpec, labels: Record<string, string>): KubeObject {
  return { metadata: { creationTimestamp: null, labels }, spec: podSpecFrom(realTemplate.spec, spec) };
}

function selectorLabels(spec: WorkloadSpec): Record<string, string> {
  return { app: spec.name };
}

export function deployment(spec: WorkloadSpec): KubeObject {
  const real = realObject.deployment();
  const replicaSetName = `${spec.name}-${shortHash(spec.namespace, spec.name)}`;
  const status = restampTimes(real.status);
  for (const condition of status.conditions) {
    if (condition.reason === 'NewReplicaSetAvailable') condition.message = `ReplicaSet "${replicaSetName}" has successfully progressed.`;
  }
  return {
    kind: 'Deployment', apiVersion: 'apps/v1',
    metadata: metadataFor('Deployment', spec, {
      generation: real.metadata.generation,
      annotations: { 'deployment.kubernetes.io/revision': real.metadata.annotations['deployment.kubernetes.io/revision'] },
    }),
    spec: {
      ...real.spec,
      selector: { matchLabels: selectorLabels(spec) },
      template: podTemplateFrom(real.spec.template, spec, selectorLabels(spec)),
    },
    status,
  };
}

/** No real StatefulSet object is available: the Deployment fixture's template plus the StatefulSet spec defaults. */
export function statefulSet(spec: WorkloadSpec): KubeObject {
  const real = realObject.deployment();
  const revision = `${spec.name}-${shortHash('sts', spec.namespace, spec.name)}`;
  return {
    kind: 'StatefulSet', apiVersion: 'apps/v1',
    metadata: metadataFor('StatefulSet', spec, { generation: 1 }),
    spec: {
      replicas: 1,
      selector: { matchLabels: selectorLabels(spec) },
      template: podTemplateFrom(real.spec.template, spec, selectorLabels(spec)),
      serviceName: spec.name,
      podManagementPolicy: 'OrderedReady',
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } },
      revisionHistoryLimit: 10,
      persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
    },
    status: {
      observedGeneration: 1, replicas: 1, readyReplicas: 1, currentReplicas: 1, updatedReplicas: 1,
      currentRevision: revision, updateRevision: revision, collisionCount: 0, availableReplicas: 1,
    },
  };
}

export function daemonSet(spec: WorkloadSpec): KubeObject {
  const real = realObject.daemonSet();
  const { templateGeneration: _extensionsOnly, ...realSpec } = real.spec; // not part of apps/v1
  return {
    kind: 'DaemonSet', apiVersion: 'apps/v1',
    metadata: metadataFor('DaemonSet', spec, { generation: real.metadata.generation }),
    spec: {
      ...realSpec,
      selector: { matchLabels: selectorLabels(spec) },
      template: podTemplateFrom(real.spec.template, spec, selectorLabels(spec)),
    },
    status: real.status,
  };
}

/** The only real CronJob is batch/v1beta1; batch/v1 keeps the same spec layout. */
export function cronJob(spec: WorkloadSpec): KubeObject {
  const real = realObject.cronJob();
  const realTemplate = real.spec.jobTemplate.spec.template;
  return {
    kind: 'CronJob', apiVersion: 'batch/v1',
    metadata: metadataFor('CronJob', spec, { generation: 1 }),
    spec: {
      ...real.spec,
      jobTemplate: {
        metadata: { creationTimestamp: null },
        spec: { template: { metadata: realTemplate.metadata, spec: podSpecFrom(realTemplate.spec, spec) } },
      },
    },
    status: restampTimes(real.status),
  };
}

/** No real ReplicaSet object is available: built from the Deployment fixture, as the controller does. */
export function replicaSet(spec: WorkloadSpec & { owner?: KubeObject }): KubeObject {
  const real = realObject.deployment();
  const fromDeployment = spec.owner?.kind === 'Deployment';
  return {
    kind: 'ReplicaSet', apiVersion: 'apps/v1',
    metadata: metadataFor('ReplicaSet', spec, {
      generation: 1,
      annotations: fromDeployment
        ? { 'deployment.kubernetes.io/desired-replicas': '1', 'deployment.kubernetes.io/max-replicas': '2', 'deployment.kubernetes.io/revision': '1' }
        : undefined,
      ownerReferences: spec.owner ? [ownerReference(spec.owner)] : undefined,
    }),
    spec: {
      replicas: 1,
      selector: { matchLabels: selectorLabels(spec) },
      template: podTemplateFrom(real.spec.template, spec, selectorLabels(spec)),
    },
    status: { replicas: 1, fullyLabeledReplicas: 1, readyReplicas: 1, availableReplicas: 1, observedGeneration: 1 },
  };
}

export function job(spec: WorkloadSpec & { owner?: KubeObject }): KubeObject {
  const real = realObject.job();
  const uid = spec.uid ?? deterministicUid('Job', spec.namespace, spec.name);
  const podLabels = { 'controller-uid': uid, 'job-name': spec.name };
  return {
    kind: 'Job', apiVersion: 'batch/v1',
    metadata: metadataFor('Job', { ...spec, uid }, {
      ownerReferences: spec.owner ? [ownerReference(spec.owner)] : undefined,
    }),
    spec: {
      ...real.spec,
      selector: { matchLabels: { 'controller-uid': uid } },
      template: { metadata: { creationTimestamp: null, labels: podLabels }, spec: podSpecFrom(real.spec.template.spec, spec) },
    },
    status: restampTimes(real.status),
  };
}

export function pod(spec: PodSpecInput): KubeObject {
  const real = realObject.runningPod();
  const owner = spec.owner;
  return {
    kind: 'Pod', apiVersion: 'v1',
    metadata: metadataFor('Pod', spec, {
      generateName: owner && owner.kind !== 'StatefulSet' ? `${owner.metadata.name}-` : undefined,
      ownerReferences: owner ? [ownerReference(owner)] : undefined,
    }),
    spec: podSpecFrom(real.spec, spec, {
      restartPolicy: owner?.kind === 'Job' ? 'Never' : 'Always',
      serviceAccountName: spec.serviceAccountName ?? 'default',
      ephemeralContainers: spec.ephemeralContainers,
    }),
    status: podStatusFor(spec, restampTimes(real.status)),
  };
}

type ContainerRole = 'init' | 'regular' | 'ephemeral';

function podStatusFor(spec: PodSpecInput, realStatus: KubeObject): KubeObject {
  const imageIDs = spec.imageIDs ?? {};
  const statusesOf = (containers: ContainerSpec[] | undefined, role: ContainerRole) =>
    nonEmpty((containers ?? []).flatMap((c) => {
      const imageID = imageIDs[c.name];
      return imageID === undefined ? [] : [containerStatusFor(spec, c, imageID, role)];
    }));
  const unready = spec.containers.filter((c) => !imageIDs[c.name]).map((c) => c.name);
  return compact({
    phase: unready.length === 0 ? 'Running' : 'Pending',
    conditions: conditionsFor(realStatus.conditions, unready),
    hostIP: realStatus.hostIP,
    hostIPs: realStatus.hostIPs,
    podIP: realStatus.podIP,
    podIPs: realStatus.podIPs,
    startTime: realStatus.startTime,
    initContainerStatuses: statusesOf(spec.initContainers, 'init'),
    containerStatuses: statusesOf(spec.containers, 'regular'),
    qosClass: realStatus.qosClass,
    ephemeralContainerStatuses: statusesOf(spec.ephemeralContainers, 'ephemeral'),
  });
}

function conditionsFor(realConditions: KubeObject[], unready: string[]): KubeObject[] {
  if (unready.length === 0) return realConditions;
  // wording of the image-pull-fail fixture (kubelet formats the names as a Go slice)
  const notReady = { status: 'False', reason: 'ContainersNotReady', message: `containers with unready status: [${unready.join(' ')}]` };
  return realConditions.map((c) => (c.type === 'Ready' || c.type === 'ContainersReady' ? { ...c, ...notReady } : c));
}

function containerStatusFor(spec: PodSpecInput, container: ContainerSpec, imageID: string, role: ContainerRole): KubeObject {
  if (imageID === '') {
    const waiting = realObject.imagePullFailingPod().status.containerStatuses[0];
    return {
      name: container.name,
      state: { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${container.image}"` } },
      lastState: waiting.lastState, ready: false, restartCount: 0, image: container.image, imageID: '', started: false,
    };
  }
  const containerID = `${runtimeOf(imageID)}://${createHash('sha256').update(`${spec.namespace}/${spec.name}/${container.name}`).digest('hex')}`;
  const state = role === 'init'
    ? { terminated: { exitCode: 0, reason: 'Completed', startedAt: CREATION_TIMESTAMP, finishedAt: CREATION_TIMESTAMP, containerID } }
    : { running: { startedAt: CREATION_TIMESTAMP } };
  return {
    name: container.name, state, lastState: {},
    ready: role !== 'ephemeral', restartCount: 0,
    image: runtimeImageName(container.image, imageID), imageID, containerID,
    started: role !== 'init',
  };
}

/** `docker-pullable://…` image IDs come from dockershim; everything else from a CRI runtime (containerd). */
function runtimeOf(imageID: string): string {
  return imageID.startsWith('docker-pullable://') || imageID.startsWith('docker://') ? 'docker' : 'containerd';
}

/** containerd reports the normalised reference in status.image (`istio/base` → `docker.io/istio/base:latest`). */
function runtimeImageName(image: string, imageID: string): string {
  if (runtimeOf(imageID) === 'docker') return image;
  const firstSlash = image.indexOf('/');
  const firstPart = firstSlash === -1 ? '' : image.slice(0, firstSlash);
  const hasRegistry = firstPart.includes('.') || firstPart.includes(':') || firstPart === 'localhost';
  const qualified = hasRegistry ? image : `docker.io/${firstSlash === -1 ? 'library/' : ''}${image}`;
  const lastSegment = qualified.slice(qualified.lastIndexOf('/') + 1);
  return lastSegment.includes(':') || lastSegment.includes('@') ? qualified : `${qualified}:latest`;
}

// ---- objects the scanner reads besides workloads (not in the required API; added) ----

/** A Namespace as the server stores it (the `kubernetes.io/metadata.name` label is set by the server since 1.21). */
export function namespace(name: string, labels: Record<string, string> = {}): KubeObject {
  return {
    kind: 'Namespace', apiVersion: 'v1',
    metadata: {
      name, uid: deterministicUid('Namespace', name), resourceVersion: '1', creationTimestamp: CREATION_TIMESTAMP,
      labels: { 'kubernetes.io/metadata.name': name, ...labels },
    },
    spec: { finalizers: ['kubernetes'] },
    status: { phase: 'Active' },
  };
}

export function secret(spec: { namespace: string; name: string; type?: string; data?: Record<string, string>; uid?: string }): KubeObject {
  const data = Object.fromEntries(Object.entries(spec.data ?? {}).map(([key, value]) => [key, Buffer.from(value).toString('base64')]));
  return compact({
    kind: 'Secret', apiVersion: 'v1',
    metadata: metadataFor('Secret', spec),
    data: nonEmpty(data),
    type: spec.type ?? 'Opaque',
  });
}

/** A `kubernetes.io/dockerconfigjson` pull secret as `kubectl create secret docker-registry` makes it. */
export function imagePullSecret(spec: {
  namespace: string; name: string; auths: Record<string, { username: string; password: string }>;
}): KubeObject {
  const auths = Object.fromEntries(Object.entries(spec.auths).map(([registry, { username, password }]) =>
    [registry, { username, password, auth: Buffer.from(`${username}:${password}`).toString('base64') }]));
  return secret({
    namespace: spec.namespace, name: spec.name, type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': JSON.stringify({ auths }) },
  });
}

export function serviceAccount(spec: { namespace: string; name: string; imagePullSecrets?: string[]; uid?: string }): KubeObject {
  return compact({
    kind: 'ServiceAccount', apiVersion: 'v1',
    metadata: metadataFor('ServiceAccount', spec),
    imagePullSecrets: nonEmpty(spec.imagePullSecrets?.map((name) => ({ name }))),
  });
}
