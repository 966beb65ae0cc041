// Builders of objects shaped like kube-apiserver responses. Every builder starts from a REAL object in
// ../shared/fixtures/k8s (read at run time, never copied) and replaces identity and containers.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { K8S_FIXTURES_DIR } from './paths.js';

export type KubeObject = Record<string, any>;
export interface ContainerSpec {
  name: string;
  image: string;
}
export interface WorkloadSpec {
  namespace: string;
  name: string;
  labels?: Record<string, string>;
  initContainers?: ContainerSpec[];
  containers: ContainerSpec[];
  uid?: string;
  /** Pod-template service account; pods default to `default` (ServiceAccount admission), templates omit it. */
  serviceAccountName?: string;
  imagePullSecrets?: string[];
}
export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';
/** name and containers may be left out when `owner` has a pod template (ReplicaSet, Job, StatefulSet, DaemonSet). */
export interface PodSpecInput extends Omit<WorkloadSpec, 'name' | 'containers'> {
  name?: string;
  containers?: ContainerSpec[];
  owner?: KubeObject;
  /** `spec.ephemeralContainers` (as `kubectl debug` adds them); their status goes to `status.ephemeralContainerStatuses`. */
  ephemeralContainers?: ContainerSpec[];
  serviceAccountName?: string;
  imagePullSecrets?: string[];
  /**
   * status image ID per container name (init, regular and ephemeral alike), in any form a runtime reports:
   * `docker-pullable://repo@sha256:…` (dockershim), `docker.io/library/nginx@sha256:…` (containerd, CRI-O),
   * bare `sha256:…` (locally loaded images, e.g. kind). Missing = not started (no status entry); '' = image pull failing.
   */
  imageIDs?: Record<string, string>;
  /** Default: Running when every regular container has a non-empty image ID, else Pending. */
  phase?: PodPhase;
  /** `spec.nodeName` (default: the fixture's `kind-control-plane`); a `node()` of that name gives its platform. */
  nodeName?: string;
  /** `metadata.creationTimestamp` (default CREATION_TIMESTAMP). */
  creationTimestamp?: string;
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
    typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(v) ? CREATION_TIMESTAMP : v,
  );
}

function shortHash(...parts: string[]): string {
  // kube's SafeEncodeString alphabet, as in pod-template-hash / controller-revision-hash values
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  const digest = createHash('sha256').update(parts.join('/')).digest();
  return Array.from(digest.subarray(0, 10), (byte) => alphabet[byte % alphabet.length]).join('');
}

interface ObjectIdentity {
  namespace: string;
  name: string;
  uid?: string;
  labels?: Record<string, string>;
}
interface MetadataExtras {
  creationTimestamp?: string;
  generateName?: string;
  generation?: number;
  annotations?: Record<string, string>;
  ownerReferences?: KubeObject[];
}

function metadataFor(kind: string, spec: ObjectIdentity, extras: MetadataExtras = {}): KubeObject {
  return compact({
    name: spec.name,
    generateName: extras.generateName,
    namespace: spec.namespace,
    uid: spec.uid ?? deterministicUid(kind, spec.namespace, spec.name),
    resourceVersion: '1', // the stand-in server assigns the real one when the object is stored
    generation: extras.generation,
    creationTimestamp: extras.creationTimestamp ?? CREATION_TIMESTAMP,
    labels: nonEmpty(spec.labels && sortedKeys(spec.labels)),
    annotations: nonEmpty(extras.annotations && sortedKeys(extras.annotations)),
    ownerReferences: extras.ownerReferences,
  });
}

export function ownerReference(owner: KubeObject): KubeObject {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name,
    uid: owner.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
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

interface PodOnlyFields {
  restartPolicy: string;
  serviceAccountName: string;
  ephemeralContainers?: ContainerSpec[];
  nodeName?: string;
}

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
    nodeName: podOnly ? (podOnly.nodeName ?? realSpec.nodeName) : undefined,
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
  const replicaSetName = `${spec.name}-${shortHash(spec.namespace, spec.name)}`; // = podTemplateHash(deployment)
  const status = restampTimes(real.status);
  for (const condition of status.conditions) {
    if (condition.reason === 'NewReplicaSetAvailable')
      condition.message = `ReplicaSet "${replicaSetName}" has successfully progressed.`;
  }
  return {
    kind: 'Deployment',
    apiVersion: 'apps/v1',
    metadata: metadataFor('Deployment', spec, {
      generation: real.metadata.generation,
      annotations: {
        'deployment.kubernetes.io/revision': real.metadata.annotations['deployment.kubernetes.io/revision'],
      },
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
    kind: 'StatefulSet',
    apiVersion: 'apps/v1',
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
      observedGeneration: 1,
      replicas: 1,
      readyReplicas: 1,
      currentReplicas: 1,
      updatedReplicas: 1,
      currentRevision: revision,
      updateRevision: revision,
      collisionCount: 0,
      availableReplicas: 1,
    },
  };
}

export function daemonSet(spec: WorkloadSpec): KubeObject {
  const real = realObject.daemonSet();
  const { templateGeneration: _extensionsOnly, ...realSpec } = real.spec; // not part of apps/v1
  return {
    kind: 'DaemonSet',
    apiVersion: 'apps/v1',
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
    kind: 'CronJob',
    apiVersion: 'batch/v1',
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

/** The pod template a controller stamps its children from (CronJob: the Job template's). */
function podTemplateOf(owner: KubeObject | undefined): KubeObject | undefined {
  return owner?.kind === 'CronJob' ? owner.spec?.jobTemplate?.spec?.template : owner?.spec?.template;
}

function containerSpecsOf(containers: KubeObject[] | undefined): ContainerSpec[] | undefined {
  return containers?.map((c) => ({ name: c.name, image: c.image }));
}

/** Go's encoding/json writes map keys sorted, so labels and annotations come back in key order. */
function sortedKeys(record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Input for workloads a controller creates: name and containers default from the owner when it has a pod template. */
export type OwnedWorkloadInput = Omit<WorkloadSpec, 'name' | 'containers'> & {
  name?: string;
  containers?: ContainerSpec[];
  owner?: KubeObject;
};

function resolveContainers(
  kind: string,
  spec: OwnedWorkloadInput,
): Pick<WorkloadSpec, 'containers' | 'initContainers'> {
  if (spec.containers) return { containers: spec.containers, initContainers: spec.initContainers };
  const template = podTemplateOf(spec.owner);
  const containers = containerSpecsOf(template?.spec?.containers);
  if (!containers) throw new Error(`${kind}: give containers, or an owner with a pod template`);
  return { containers, initContainers: spec.initContainers ?? containerSpecsOf(template?.spec?.initContainers) };
}

/**
 * The `pod-template-hash` the Deployment controller puts on the ReplicaSet (and its Pods) for a revision of this
 * Deployment; the ReplicaSet is named `<deployment>-<hash>`. Real hashes come from the template (FNV, SafeEncodeString
 * alphabet); here they are derived from the Deployment's identity, so revision 1 matches its NewReplicaSetAvailable message.
 */
export function podTemplateHash(deploymentObject: KubeObject, revision = 1): string {
  const { namespace: ns, name } = deploymentObject.metadata;
  return revision === 1 ? shortHash(ns, name) : shortHash(ns, name, String(revision));
}

/**
 * A ReplicaSet. With a Deployment owner it is what the Deployment controller creates: name `<deployment>-<hash>`,
 * the Deployment's template (or the given containers) with the `pod-template-hash` label on metadata, selector and
 * template, the revision annotations and a controller ownerReference. No real ReplicaSet object is available: the
 * rest comes from the Deployment fixture.
 */
export function replicaSet(spec: OwnedWorkloadInput & { revision?: number }): KubeObject {
  const real = realObject.deployment();
  const owner = spec.owner;
  const fromDeployment = owner?.kind === 'Deployment';
  const ownerPrefix = `${owner?.metadata?.name}-`;
  const hash = !fromDeployment
    ? undefined
    : spec.name?.startsWith(ownerPrefix) && spec.revision === undefined
      ? spec.name.slice(ownerPrefix.length)
      : podTemplateHash(owner, spec.revision);
  const name = spec.name ?? (hash !== undefined ? `${ownerPrefix}${hash}` : undefined);
  if (name === undefined) throw new Error('replicaSet: give a name, or a Deployment owner');
  const containers = resolveContainers('replicaSet', spec);
  const workload: WorkloadSpec = { ...spec, ...containers, name };
  let selector: Record<string, string> = selectorLabels(workload);
  let template = podTemplateFrom(real.spec.template, workload, selector);
  let labels = spec.labels;
  if (fromDeployment) {
    const hashLabel = { 'pod-template-hash': hash! };
    selector = sortedKeys({ ...owner.spec.selector.matchLabels, ...hashLabel });
    const templateLabels = sortedKeys({ ...owner.spec.template.metadata.labels, ...hashLabel });
    template = spec.containers
      ? podTemplateFrom(
          real.spec.template,
          { ...workload, serviceAccountName: spec.serviceAccountName ?? owner.spec.template.spec.serviceAccountName },
          templateLabels,
        )
      : {
          ...structuredClone(owner.spec.template),
          metadata: { ...structuredClone(owner.spec.template.metadata), labels: templateLabels },
        };
    labels = sortedKeys({ ...templateLabels, ...spec.labels });
  }
  return {
    kind: 'ReplicaSet',
    apiVersion: 'apps/v1',
    metadata: metadataFor(
      'ReplicaSet',
      { ...workload, labels },
      {
        generation: 1,
        annotations: fromDeployment
          ? {
              'deployment.kubernetes.io/desired-replicas': '1',
              'deployment.kubernetes.io/max-replicas': '2',
              'deployment.kubernetes.io/revision': String(spec.revision ?? 1),
            }
          : undefined,
        ownerReferences: owner ? [ownerReference(owner)] : undefined,
      },
    ),
    spec: { replicas: 1, selector: { matchLabels: selector }, template },
    status: { replicas: 1, fullyLabeledReplicas: 1, readyReplicas: 1, availableReplicas: 1, observedGeneration: 1 },
  };
}

/** The CronJob controller names a Job `<cronjob>-<scheduled time in minutes since the epoch>` (getJobName). */
export function cronJobJobName(cronJobObject: KubeObject, scheduledTime = CREATION_TIMESTAMP): string {
  return `${cronJobObject.metadata.name}-${Math.floor(Date.parse(scheduledTime) / 60_000)}`;
}

/**
 * A Job. With a CronJob owner it is what the CronJob controller creates: name from `cronJobJobName`, the CronJob's
 * job template (or the given containers), the `batch.kubernetes.io/cronjob-scheduled-timestamp` annotation (1.28+)
 * and a controller ownerReference. Selector and pod labels as the 1.27+ job strategy generates them.
 */
export function job(spec: OwnedWorkloadInput & { scheduledTime?: string }): KubeObject {
  const real = realObject.job();
  const owner = spec.owner;
  const fromCronJob = owner?.kind === 'CronJob';
  const name = spec.name ?? (fromCronJob ? cronJobJobName(owner, spec.scheduledTime) : undefined);
  if (name === undefined) throw new Error('job: give a name, or a CronJob owner');
  const workload: WorkloadSpec = { ...spec, ...resolveContainers('job', spec), name };
  const uid = spec.uid ?? deterministicUid('Job', spec.namespace, name);
  const ownerTemplate = fromCronJob ? owner.spec.jobTemplate : undefined;
  const podLabels = sortedKeys({
    ...podTemplateOf(owner)?.metadata?.labels,
    'batch.kubernetes.io/controller-uid': uid,
    'batch.kubernetes.io/job-name': name,
    'controller-uid': uid,
    'job-name': name,
  });
  const annotations = fromCronJob
    ? sortedKeys({
        ...ownerTemplate?.metadata?.annotations,
        'batch.kubernetes.io/cronjob-scheduled-timestamp': spec.scheduledTime ?? CREATION_TIMESTAMP,
      })
    : undefined;
  const { selector: _legacySelector, template: realTemplate, ...realSpec } = real.spec;
  return {
    kind: 'Job',
    apiVersion: 'batch/v1',
    metadata: metadataFor(
      'Job',
      { ...workload, uid, labels: spec.labels ?? ownerTemplate?.metadata?.labels ?? podLabels },
      {
        annotations,
        ownerReferences: owner ? [ownerReference(owner)] : undefined,
      },
    ),
    spec: {
      ...realSpec,
      selector: { matchLabels: { 'batch.kubernetes.io/controller-uid': uid } },
      template: {
        metadata: { creationTimestamp: null, labels: podLabels },
        spec:
          fromCronJob && !spec.containers
            ? structuredClone(owner.spec.jobTemplate.spec.template.spec)
            : podSpecFrom(realTemplate.spec, workload),
      },
    },
    status: restampTimes(real.status),
  };
}

/** Labels a controller adds to its Pods besides the template's (StatefulSet and DaemonSet controllers). */
function controllerPodLabels(owner: KubeObject | undefined, podName: string): Record<string, string> {
  if (owner?.kind === 'StatefulSet') {
    return {
      'apps.kubernetes.io/pod-index': podName.slice(podName.lastIndexOf('-') + 1),
      'controller-revision-hash':
        owner.status?.updateRevision ??
        `${owner.metadata.name}-${shortHash('sts', owner.metadata.namespace, owner.metadata.name)}`,
      'statefulset.kubernetes.io/pod-name': podName,
    };
  }
  if (owner?.kind === 'DaemonSet') {
    return {
      'controller-revision-hash': shortHash('ds', owner.metadata.namespace, owner.metadata.name),
      'pod-template-generation': String(owner.metadata.generation ?? 1),
    };
  }
  return {};
}

/** StatefulSet pods are `<name>-<ordinal>`; other controllers use generateName `<owner>-` plus 5 random characters. */
function podNameFor(owner: KubeObject | undefined, namespaceName: string): string | undefined {
  if (!owner) return undefined;
  if (owner.kind === 'StatefulSet') return `${owner.metadata.name}-0`;
  return `${owner.metadata.name}-${shortHash('pod', namespaceName, owner.metadata.name).slice(0, 5)}`;
}

/**
 * A Pod. With an owner (ReplicaSet, Job, StatefulSet, DaemonSet) the name, containers, labels, service account and
 * pull secrets default from the owner's template, as its controller creates them; without one it is a standalone Pod
 * with no ownerReferences. `phase` overrides the derived one (Running when every container has an image ID, else Pending).
 */
export function pod(spec: PodSpecInput): KubeObject {
  const real = realObject.runningPod();
  const owner = spec.owner;
  const template = podTemplateOf(owner);
  const name = spec.name ?? podNameFor(owner, spec.namespace);
  if (name === undefined) throw new Error('pod: give a name, or an owner');
  const resolved: ResolvedPod = {
    ...spec,
    ...resolveContainers('pod', spec),
    name,
    labels:
      owner || spec.labels
        ? sortedKeys({ ...template?.metadata?.labels, ...controllerPodLabels(owner, name), ...spec.labels })
        : undefined,
    imagePullSecrets: spec.imagePullSecrets ?? template?.spec?.imagePullSecrets?.map((ref: KubeObject) => ref.name),
  };
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: metadataFor('Pod', resolved, {
      creationTimestamp: spec.creationTimestamp,
      generateName: owner && owner.kind !== 'StatefulSet' ? `${owner.metadata.name}-` : undefined,
      ownerReferences: owner ? [ownerReference(owner)] : undefined,
    }),
    spec: podSpecFrom(real.spec, resolved, {
      restartPolicy: owner?.kind === 'Job' ? (template?.spec?.restartPolicy ?? 'Never') : 'Always',
      serviceAccountName: spec.serviceAccountName ?? template?.spec?.serviceAccountName ?? 'default',
      ephemeralContainers: spec.ephemeralContainers,
      nodeName: spec.nodeName,
    }),
    status: podStatusFor(resolved, restampTimes(real.status)),
  };
}

type ResolvedPod = PodSpecInput & WorkloadSpec;
type ContainerRole = 'init' | 'regular' | 'ephemeral';
const TERMINAL_PHASES: ReadonlySet<PodPhase> = new Set(['Succeeded', 'Failed']);

function podStatusFor(spec: ResolvedPod, realStatus: KubeObject): KubeObject {
  const imageIDs = spec.imageIDs ?? {};
  const unready = spec.containers.filter((c) => !imageIDs[c.name]).map((c) => c.name);
  const phase: PodPhase = spec.phase ?? (unready.length === 0 ? 'Running' : 'Pending');
  const statusesOf = (containers: ContainerSpec[] | undefined, role: ContainerRole) =>
    nonEmpty(
      (containers ?? []).flatMap((c) => {
        const imageID = imageIDs[c.name];
        return imageID === undefined ? [] : [containerStatusFor(spec, c, imageID, role, phase)];
      }),
    );
  return compact({
    phase,
    conditions: conditionsFor(realStatus.conditions, unready, phase),
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

/** kubelet status/generate.go: terminal pods get Ready/ContainersReady False with PodCompleted / PodFailed, no sandbox. */
function conditionsFor(realConditions: KubeObject[], unready: string[], phase: PodPhase): KubeObject[] {
  if (TERMINAL_PHASES.has(phase)) {
    const reason = phase === 'Succeeded' ? 'PodCompleted' : 'PodFailed';
    return realConditions.map((c) => {
      if (c.type === 'PodReadyToStartContainers') return { ...c, status: 'False' };
      if (c.type === 'Ready' || c.type === 'ContainersReady') return { ...c, status: 'False', reason };
      if (c.type === 'Initialized' && phase === 'Succeeded') return { ...c, reason };
      return c;
    });
  }
  if (unready.length === 0) return realConditions;
  // wording of the image-pull-fail fixture (kubelet formats the names as a Go slice)
  const notReady = {
    status: 'False',
    reason: 'ContainersNotReady',
    message: `containers with unready status: [${unready.join(' ')}]`,
  };
  return realConditions.map((c) => (c.type === 'Ready' || c.type === 'ContainersReady' ? { ...c, ...notReady } : c));
}

function containerStatusFor(
  spec: ResolvedPod,
  container: ContainerSpec,
  imageID: string,
  role: ContainerRole,
  phase: PodPhase,
): KubeObject {
  if (imageID === '') {
    const waiting = realObject.imagePullFailingPod().status.containerStatuses[0];
    return {
      name: container.name,
      state: { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${container.image}"` } },
      lastState: waiting.lastState,
      ready: false,
      restartCount: 0,
      image: container.image,
      imageID: '',
      started: false,
    };
  }
  const containerID = `${runtimeOf(imageID)}://${createHash('sha256').update(`${spec.namespace}/${spec.name}/${container.name}`).digest('hex')}`;
  const terminated = (exitCode: number, reason: string) => ({
    terminated: { exitCode, reason, startedAt: CREATION_TIMESTAMP, finishedAt: CREATION_TIMESTAMP, containerID },
  });
  const finished = role !== 'init' && TERMINAL_PHASES.has(phase);
  const state =
    role === 'init'
      ? terminated(0, 'Completed')
      : finished
        ? terminated(phase === 'Succeeded' ? 0 : 1, phase === 'Succeeded' ? 'Completed' : 'Error')
        : { running: { startedAt: CREATION_TIMESTAMP } };
  return {
    name: container.name,
    state,
    lastState: {},
    ready: role !== 'ephemeral' && !finished,
    restartCount: 0,
    image: runtimeImageName(container.image, imageID),
    imageID,
    containerID,
    started: role !== 'init' && !finished,
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
    kind: 'Namespace',
    apiVersion: 'v1',
    metadata: {
      name,
      uid: deterministicUid('Namespace', name),
      resourceVersion: '1',
      creationTimestamp: CREATION_TIMESTAMP,
      labels: { 'kubernetes.io/metadata.name': name, ...labels },
    },
    spec: { finalizers: ['kubernetes'] },
    status: { phase: 'Active' },
  };
}

export function secret(spec: {
  namespace: string;
  name: string;
  type?: string;
  data?: Record<string, string>;
  uid?: string;
}): KubeObject {
  const data = Object.fromEntries(
    Object.entries(spec.data ?? {}).map(([key, value]) => [key, Buffer.from(value).toString('base64')]),
  );
  return compact({
    kind: 'Secret',
    apiVersion: 'v1',
    metadata: metadataFor('Secret', spec),
    data: nonEmpty(data),
    type: spec.type ?? 'Opaque',
  });
}

/** A `kubernetes.io/dockerconfigjson` pull secret as `kubectl create secret docker-registry` makes it. */
export function imagePullSecret(spec: {
  namespace: string;
  name: string;
  auths: Record<string, { username: string; password: string }>;
}): KubeObject {
  const auths = Object.fromEntries(
    Object.entries(spec.auths).map(([registry, { username, password }]) => [
      registry,
      { username, password, auth: Buffer.from(`${username}:${password}`).toString('base64') },
    ]),
  );
  return secret({
    namespace: spec.namespace,
    name: spec.name,
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': JSON.stringify({ auths }) },
  });
}

export function serviceAccount(spec: {
  namespace: string;
  name: string;
  imagePullSecrets?: string[];
  uid?: string;
}): KubeObject {
  return compact({
    kind: 'ServiceAccount',
    apiVersion: 'v1',
    metadata: metadataFor('ServiceAccount', spec),
    imagePullSecrets: nonEmpty(spec.imagePullSecrets?.map((name) => ({ name }))),
  });
}

// ---- nodes, and owners Ephor has no kind for (an Argo Rollout, an operator's custom resource) ----

export interface NodeSpec {
  name: string;
  /** GOOS of the kubelet: `linux` (default) or `windows`. */
  os?: string;
  /** GOARCH of the kubelet: `amd64` (default), `arm64`, … */
  arch?: string;
  /** false: without the `kubernetes.io/os` / `kubernetes.io/arch` labels (and their beta twins), so only
   * `status.nodeInfo` says the platform. */
  platformLabels?: boolean;
  labels?: Record<string, string>;
}

const NODE_IMAGES: Record<string, { osImage: string; kernelVersion: string }> = {
  linux: { osImage: 'Ubuntu 22.04.5 LTS', kernelVersion: '6.8.0-1021-aws' },
  windows: { osImage: 'Windows Server 2022 Datacenter', kernelVersion: '10.0.20348.2966' },
};

/**
 * A Node as a 1.32 kubelet registers it, shaped like the real one in derailed/k9s internal/render/testdata/no.json:
 * the kubelet sets the well-known labels `kubernetes.io/os` and `kubernetes.io/arch` (and the deprecated
 * `beta.kubernetes.io/*` twins) from its GOOS/GOARCH (pkg/kubelet/kubelet_node_status.go initialNode), and reports
 * the same values in `status.nodeInfo.operatingSystem` / `architecture`. Windows nodes also carry
 * `node.kubernetes.io/windows-build`.
 */
export function node(spec: NodeSpec): KubeObject {
  const os = spec.os ?? 'linux';
  const arch = spec.arch ?? 'amd64';
  const platformLabels: Record<string, string> =
    spec.platformLabels === false
      ? {}
      : {
          'beta.kubernetes.io/arch': arch,
          'beta.kubernetes.io/os': os,
          'kubernetes.io/arch': arch,
          'kubernetes.io/os': os,
        };
  const labels = sortedKeys({
    ...platformLabels,
    'kubernetes.io/hostname': spec.name,
    ...(os === 'windows' ? { 'node.kubernetes.io/windows-build': '10.0.20348' } : {}),
    ...spec.labels,
  });
  const heartbeat = { lastHeartbeatTime: CREATION_TIMESTAMP, lastTransitionTime: CREATION_TIMESTAMP };
  const condition = (type: string, status: string, reason: string, message: string) => ({
    type,
    status,
    ...heartbeat,
    reason,
    message,
  });
  const image = NODE_IMAGES[os] ?? NODE_IMAGES.linux!;
  const uid = deterministicUid('Node', spec.name);
  return {
    kind: 'Node',
    apiVersion: 'v1',
    metadata: {
      name: spec.name,
      uid,
      resourceVersion: '1',
      creationTimestamp: CREATION_TIMESTAMP,
      labels,
      annotations: {
        'node.alpha.kubernetes.io/ttl': '0',
        'volumes.kubernetes.io/controller-managed-attach-detach': 'true',
      },
    },
    spec: { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24'] },
    status: {
      capacity: { cpu: '4', 'ephemeral-storage': '81106868Ki', memory: '16265024Ki', pods: '110' },
      allocatable: { cpu: '4', 'ephemeral-storage': '74747698728', memory: '16162624Ki', pods: '110' },
      conditions: [
        condition('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
        condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
        condition('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
        condition('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status'),
      ],
      addresses: [
        { type: 'InternalIP', address: '10.0.1.17' },
        { type: 'Hostname', address: spec.name },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        machineID: createHash('md5').update(spec.name).digest('hex'),
        systemUUID: uid.toUpperCase(),
        bootID: deterministicUid('boot', spec.name),
        kernelVersion: image.kernelVersion,
        osImage: image.osImage,
        containerRuntimeVersion: 'containerd://1.7.24',
        kubeletVersion: 'v1.32.3',
        kubeProxyVersion: 'v1.32.3',
        operatingSystem: os,
        architecture: arch,
      },
    },
  };
}

/**
 * An object of a custom resource that owns Pods or ReplicaSets (a CloudNativePG `Cluster`, an Argo `Workflow`),
 * only as far as its ownerReference needs it: the stand-in serves no custom resources (the scanner never reads them).
 */
export function customResource(spec: {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  uid?: string;
}): KubeObject {
  return { apiVersion: spec.apiVersion, kind: spec.kind, metadata: metadataFor(spec.kind, spec) };
}

/** An Argo Rollout (argoproj.io/v1alpha1): a Deployment's pod template with a canary strategy; never stored. */
export function rollout(spec: WorkloadSpec): KubeObject {
  const real = realObject.deployment();
  return {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Rollout',
    metadata: metadataFor('Rollout', spec, { generation: 1 }),
    spec: {
      replicas: 2,
      revisionHistoryLimit: 10,
      selector: { matchLabels: selectorLabels(spec) },
      template: podTemplateFrom(real.spec.template, spec, selectorLabels(spec)),
      strategy: { canary: { steps: [{ setWeight: 20 }, { pause: {} }] } },
    },
  };
}

/**
 * The ReplicaSet the Argo Rollouts controller makes for a revision of a Rollout: named `<rollout>-<hash>`, the
 * Rollout's template with the `rollouts-pod-template-hash` label (argo-rollouts DefaultRolloutUniqueLabelKey) on
 * metadata, selector and template, a `rollout.argoproj.io/revision` annotation and a controller ownerReference to
 * the Rollout. A new revision has a new hash, so a new name, and new Pod names.
 */
export function rolloutReplicaSet(rolloutObject: KubeObject, revision = 1): KubeObject {
  const hash = podTemplateHash(rolloutObject, revision);
  const rs = replicaSet({
    namespace: rolloutObject.metadata.namespace,
    name: `${rolloutObject.metadata.name}-${hash}`,
    owner: rolloutObject,
  });
  const hashLabel = { 'rollouts-pod-template-hash': hash };
  const template = structuredClone(rolloutObject.spec.template);
  template.metadata.labels = sortedKeys({ ...template.metadata.labels, ...hashLabel });
  rs.metadata.labels = template.metadata.labels;
  rs.metadata.annotations = { 'rollout.argoproj.io/revision': String(revision) };
  rs.spec = {
    ...rs.spec,
    selector: { matchLabels: sortedKeys({ ...rolloutObject.spec.selector.matchLabels, ...hashLabel }) },
    template,
  };
  return rs;
}
