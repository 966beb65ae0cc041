// The run lock's Lease (coordination.k8s.io/v1) over the scanner's own Kubernetes client: read it, create it, replace
// it with the resourceVersion it was read at. Every answer becomes a typed outcome, so the lock decides on kinds of
// failure, not on HTTP details. Types after k8s.io/api coordination/v1 types.go (every spec field optional).
import { KubeApiError, type KubeClient, type KubeJsonWriter } from '../kube/client.js';
import { messageOf } from '../errors.js';

export const LEASE_GROUP = 'coordination.k8s.io';
const LEASE_API_VERSION = `${LEASE_GROUP}/v1`;

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  /** MicroTime text, as stored (see micro-time.ts). */
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface LeaseObject {
  /** As read: sent back whole on update, so labels or annotations others set survive and `uid` guards a re-creation. */
  metadata: Record<string, unknown> & { name: string; namespace: string; resourceVersion: string; uid?: string };
  spec: LeaseSpec;
}

export type LeaseVerb = 'get' | 'create' | 'update';

export type LeaseFailure =
  /** The object does not exist (a 404 naming it). */
  | { kind: 'not-found' }
  /** 409: someone else wrote it since it was read (Conflict), or created it first (AlreadyExists). */
  | { kind: 'conflict'; message: string }
  /** 403: RBAC does not grant this verb; `user` as the server named it. */
  | { kind: 'forbidden'; verb: LeaseVerb; user?: string; message: string }
  /** 404 on the resource type: this API server serves no coordination.k8s.io/v1 Leases. */
  | { kind: 'api-missing'; message: string }
  /** 404 from admission on create: the lock's namespace does not exist. */
  | { kind: 'namespace-missing'; message: string }
  /** Anything else; transient = worth retrying (network, timeout, 429, 5xx). */
  | { kind: 'failed'; transient: boolean; message: string };

export type LeaseResult = { kind: 'ok'; lease: LeaseObject } | LeaseFailure;

/** The port the lock uses; `kubeLeaseApi` is the adapter for a real API server, tests pass fakes. */
export interface LeasePort {
  readonly namespace: string;
  readonly name: string;
  get(): Promise<LeaseResult>;
  create(spec: LeaseSpec): Promise<LeaseResult>;
  /** Replaces the spec of `current` (its metadata, resourceVersion included, is sent as read). */
  update(current: LeaseObject, spec: LeaseSpec): Promise<LeaseResult>;
}

export function kubeLeaseApi(client: KubeClient & KubeJsonWriter, namespace: string, name: string): LeasePort {
  const collection = `/apis/${LEASE_API_VERSION}/namespaces/${encodeURIComponent(namespace)}/leases`;
  const item = `${collection}/${encodeURIComponent(name)}`;
  const call = async (verb: LeaseVerb, send: () => Promise<unknown>): Promise<LeaseResult> => {
    try {
      const lease = toLeaseObject(await send());
      if (lease) return { kind: 'ok', lease };
      return {
        kind: 'failed',
        transient: false,
        message: `${verb} lease ${namespace}/${name}: the answer is not a Lease`,
      };
    } catch (error) {
      return classifyLeaseError(error, verb, namespace, name);
    }
  };
  return {
    namespace,
    name,
    get: () => call('get', () => client.getJson(item)),
    create: (spec) =>
      call('create', () =>
        client.writeJson('POST', collection, {
          apiVersion: LEASE_API_VERSION,
          kind: 'Lease',
          metadata: { name, namespace },
          spec,
        }),
      ),
    update: (current, spec) =>
      call('update', () =>
        client.writeJson('PUT', item, {
          apiVersion: LEASE_API_VERSION,
          kind: 'Lease',
          metadata: current.metadata,
          spec,
        }),
      ),
  };
}

/** A failure in words, for logs. */
export function failureText(failure: LeaseFailure): string {
  return failure.kind === 'not-found' ? 'the Lease does not exist (404 NotFound)' : failure.message;
}

const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504]);

/** What a failed Lease call means. The 404s differ only in their Status message (KubeApiError keeps no details). */
export function classifyLeaseError(error: unknown, verb: LeaseVerb, namespace: string, name: string): LeaseFailure {
  if (!(error instanceof KubeApiError)) return { kind: 'failed', transient: false, message: messageOf(error) };
  const { message, status } = error;
  if (error.kind !== 'http') return { kind: 'failed', transient: true, message };
  if (status === 409) return { kind: 'conflict', message };
  if (status === 403) {
    const user = /User "([^"]+)"/.exec(message)?.[1];
    return { kind: 'forbidden', verb, ...(user !== undefined && { user }), message };
  }
  if (status === 404) {
    if (message.includes(`leases.${LEASE_GROUP} "${name}" not found`)) return { kind: 'not-found' };
    if (message.includes(`namespaces "${namespace}" not found`)) return { kind: 'namespace-missing', message };
    return { kind: 'api-missing', message };
  }
  return { kind: 'failed', transient: TRANSIENT_STATUS.has(status ?? 0), message };
}

/** A Lease read from the API, with only well-typed spec fields kept (others' writes are not trusted blindly). */
export function toLeaseObject(value: unknown): LeaseObject | undefined {
  if (!isRecord(value) || !isRecord(value.metadata)) return undefined;
  const { metadata } = value;
  const { name, namespace, resourceVersion } = metadata;
  if (typeof name !== 'string' || typeof namespace !== 'string' || typeof resourceVersion !== 'string')
    return undefined;
  const raw = isRecord(value.spec) ? value.spec : {};
  const spec: LeaseSpec = {};
  if (typeof raw.holderIdentity === 'string') spec.holderIdentity = raw.holderIdentity;
  if (typeof raw.leaseDurationSeconds === 'number') spec.leaseDurationSeconds = raw.leaseDurationSeconds;
  if (typeof raw.acquireTime === 'string') spec.acquireTime = raw.acquireTime;
  if (typeof raw.renewTime === 'string') spec.renewTime = raw.renewTime;
  if (typeof raw.leaseTransitions === 'number') spec.leaseTransitions = raw.leaseTransitions;
  return { metadata: { ...metadata, name, namespace, resourceVersion }, spec };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
