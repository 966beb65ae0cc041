// What the run lock tells its users: the RBAC rule a 403 shows is missing and how to grant it (worded like the
// discovery's missing rules, kube/discover.ts), and why a run did not get the lock.
import { LEASE_GROUP, type LeaseFailure, type LeasePort, type LeaseSpec, type LeaseVerb } from './lease-api.js';

const SUBJECT = "the scanner's service account";

export function leaseRef(api: Pick<LeasePort, 'namespace' | 'name'>): string {
  return `${api.namespace}/${api.name}`;
}

/**
 * The rule a 403 showed missing, e.g. `allow verb "update" on resource "leases" (apiGroup "coordination.k8s.io",
 * resourceNames ["ephor-scanner"]) in namespace "ephor" for system:serviceaccount:ephor:ephor-scanner`.
 */
export function missingLeaseRule(verb: LeaseVerb, api: Pick<LeasePort, 'namespace' | 'name'>, user?: string): string {
  // create cannot be restricted by resourceNames (Kubernetes RBAC docs): the name is only known from the body
  const names = verb === 'create' ? '' : `, resourceNames ["${api.name}"]`;
  return (
    `allow verb "${verb}" on resource "leases" (apiGroup "${LEASE_GROUP}"${names}) ` +
    `in namespace "${api.namespace}" for ${user ?? SUBJECT}`
  );
}

/** How to grant everything the lock needs, as one sentence. */
export function leaseGrant(api: Pick<LeasePort, 'namespace' | 'name'>): string {
  return (
    `grant ${SUBJECT} a Role in namespace "${api.namespace}" with apiGroups ["${LEASE_GROUP}"], ` +
    `resources ["leases"], verbs ["get", "update"] for resourceNames ["${api.name}"] ` +
    'and verb "create" (which cannot be limited by name), ' +
    `and a RoleBinding to it (the Helm chart of this version does this), or set RUN_LOCK=none to run without the lock`
  );
}

/** The one warning of a run that goes on unlocked because the Lease API is closed to it (an older chart's RBAC). */
export function unavailableWarning(
  failure: Extract<LeaseFailure, { kind: 'forbidden' | 'api-missing' }>,
  api: Pick<LeasePort, 'namespace' | 'name'>,
): string {
  const consequence =
    'this run goes on WITHOUT the run lock: nothing keeps another run from posting to Ephor at the same time';
  if (failure.kind === 'forbidden') {
    return (
      `run lock unavailable: the Kubernetes API refused to ${failure.verb} the Lease ${leaseRef(api)} (HTTP 403): ` +
      `missing RBAC rule: ${missingLeaseRule(failure.verb, api, failure.user)}; ${consequence}; ` +
      `to fix it, ${leaseGrant(api)}`
    );
  }
  return (
    `run lock unavailable: the Kubernetes API serves no ${LEASE_GROUP}/v1 Leases (HTTP 404: ${failure.message}); ` +
    `${consequence}; Leases exist in every Kubernetes from 1.14 on: check that KUBECONFIG points at the cluster, ` +
    `or set RUN_LOCK=none`
  );
}

/** `"run-a_…" (since 2026-12-02T14:39:06.123456Z, renewed 2026-12-02T14:45:00.000000Z)` */
export function describeHolder(spec: LeaseSpec): string {
  const since = spec.acquireTime ? ` since ${spec.acquireTime}` : '';
  const renewed = spec.renewTime ? `, renewed ${spec.renewTime}` : '';
  return `"${spec.holderIdentity ?? ''}"${since}${renewed}`;
}

/** Go-style duration for messages, to the millisecond: 1h30m0s, 10m0s, 4m59.999s, 45s, 1.5s. */
export function formatDuration(ms: number): string {
  const totalMs = Math.round(ms);
  const hours = Math.floor(totalMs / 3_600_000);
  const minutes = Math.floor((totalMs % 3_600_000) / 60_000);
  const seconds = `${Number(((totalMs % 60_000) / 1000).toFixed(3))}s`;
  if (totalMs < 60_000) return seconds;
  return `${hours > 0 ? `${hours}h` : ''}${minutes}m${seconds}`;
}
