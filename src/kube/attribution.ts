// Whom a Pod belongs to (pure), from ownerReferences only: the Pod's controller, and for a ReplicaSet or a Job its own
// controller (their metadata is listed; nothing else is read, so no custom resource and no RBAC beyond lists of
// replicasets and jobs). Pod → ReplicaSet → Deployment, Pod → Job → CronJob, Pod → StatefulSet or DaemonSet
// go to the workload of that kind; any other top of the chain (Pod → ReplicaSet → Rollout, Pod → an operator's
// custom resource, a bare ReplicaSet or Job, which is its own top) is an owner Ephor has no kind for.
import type { WorkloadKind } from '../types.js';
import { TEMPLATE_HASH_LABEL, type OwnerRef, type PodFacts } from './pods.js';

export interface OwnerMaps {
  /** ReplicaSet / Job name → its controller (undefined: it has none); absent when they could not be listed. */
  replicaSets?: ReadonlyMap<string, OwnerRef | undefined>;
  jobs?: ReadonlyMap<string, OwnerRef | undefined>;
}

export type Attribution =
  /** A workload of a listed kind, keyed `Kind/name`. */
  | { to: 'workload'; key: string }
  /** No controller at all. */
  | { to: 'standalone' }
  /** The top of its owner chain has no Ephor kind. */
  | { to: 'owner'; owner: OwnerRef }
  /** The chain cannot be followed (its ReplicaSet or Job could not be listed): counted by the kind it stops at. */
  | { to: 'unknown'; kind: string };

export function attributePod(pod: PodFacts, maps: OwnerMaps, workloads: ReadonlySet<string>): Attribution {
  const owner = pod.owner;
  if (!owner) return { to: 'standalone' };
  if (isBuiltIn(owner, 'apps', 'StatefulSet') || isBuiltIn(owner, 'apps', 'DaemonSet'))
    return workload(owner.kind as WorkloadKind, owner.name);
  if (isBuiltIn(owner, 'apps', 'ReplicaSet'))
    return throughParent(owner, maps.replicaSets, { kind: 'Deployment', group: 'apps' }, () =>
      deploymentByName(owner.name, pod, workloads),
    );
  if (isBuiltIn(owner, 'batch', 'Job'))
    return throughParent(owner, maps.jobs, { kind: 'CronJob', group: 'batch' }, () =>
      cronJobByName(owner.name, workloads),
    );
  return { to: 'owner', owner };
}

function isBuiltIn(owner: OwnerRef, group: string, kind: string): boolean {
  return owner.kind === kind && owner.group === group;
}

function workload(kind: WorkloadKind, name: string): Attribution {
  return { to: 'workload', key: `${kind}/${name}` };
}

/** A ReplicaSet or Job: its controller's workload, its controller as the owner, or itself when it has none. */
function throughParent(
  child: OwnerRef,
  parents: ReadonlyMap<string, OwnerRef | undefined> | undefined,
  expected: { kind: 'Deployment' | 'CronJob'; group: string },
  byName: () => string | undefined,
): Attribution {
  // Not listed, or created after the list: only the controllers' naming rules are left.
  if (!parents?.has(child.name)) {
    const name = byName();
    return name ? workload(expected.kind, name) : { to: 'unknown', kind: child.kind };
  }
  const parent = parents.get(child.name);
  if (!parent) return { to: 'owner', owner: child };
  if (isBuiltIn(parent, expected.group, expected.kind)) return workload(expected.kind, parent.name);
  return { to: 'owner', owner: parent };
}

/** Without the ReplicaSet: the Deployment controller names them `<deployment>-<pod-template-hash>`. */
function deploymentByName(replicaSet: string, pod: PodFacts, workloads: ReadonlySet<string>): string | undefined {
  const hash = pod.labels[TEMPLATE_HASH_LABEL];
  if (!hash || !replicaSet.endsWith(`-${hash}`)) return undefined;
  const name = replicaSet.slice(0, -hash.length - 1);
  return workloads.has(`Deployment/${name}`) ? name : undefined;
}

/** Without the Job: the CronJob controller names them `<cronjob>-<scheduled minute>`. */
function cronJobByName(job: string, workloads: ReadonlySet<string>): string | undefined {
  const name = /^(.+)-\d+$/.exec(job)?.[1];
  return name && workloads.has(`CronJob/${name}`) ? name : undefined;
}
