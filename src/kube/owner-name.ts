// The name a top-level owner without an Ephor kind (an Argo Rollout, an operator's custom resource, a bare ReplicaSet
// or Job) is reported under, as a workload of kind `Pod`. Ephor identifies a workload by (namespace, name, kind) for
// good, so the name must stay the same across rollouts (ReplicaSet hashes and Pod names change), must never equal
// a real standalone Pod's name, and must differ for every owner:
//
//   <Kind>.<group>/<name>      Rollout.argoproj.io/checkout, Cluster.postgresql.cnpg.io/main, ReplicaSet.apps/legacy
//   <Kind>/<name>              for the core group (apiVersion v1), e.g. ReplicationController/web
//
// The owner's API version is left out (v1alpha1 → v1 is the same object). `/` never occurs in a Pod name (a DNS
// subdomain: lowercase letters, digits, `-` and `.`), so no such name is a Pod's. A name longer than Ephor's
// column (255 characters; a group and a name may each have 253) keeps its first 238 characters, then `~` and the
// first 16 hex digits of the SHA-256 of the whole name: `~` occurs neither in a kind, a group nor an object name,
// so a shortened name never equals an unshortened one, and two owners share one only if their first 238
// characters and 64 bits of their hashes are the same.
import { createHash } from 'node:crypto';
import { COLUMN_LENGTH } from '../report/limits.js';
import { formatOwnerKind } from './owner-kinds.js';
import type { OwnerRef } from './pods.js';

const HASH_LENGTH = 16;
const SHORTENED_MARK = '~';

export function ownerWorkloadName(owner: OwnerRef): string {
  const full = `${formatOwnerKind(owner)}/${owner.name}`;
  const max = COLUMN_LENGTH.workloadName;
  if (Array.from(full).length <= max) return full;
  const hash = createHash('sha256').update(full, 'utf8').digest('hex').slice(0, HASH_LENGTH);
  const kept = Array.from(full)
    .slice(0, max - SHORTENED_MARK.length - HASH_LENGTH)
    .join('');
  return `${kept}${SHORTENED_MARK}${hash}`;
}

/** Label keys set on such a workload (they win over the Pods' `ephor.dev/*` labels of the same name). */
export const OWNER_LABELS = { kind: 'owner-kind', group: 'owner-api-group', name: 'owner-name' } as const;

/** The owner's kind, API group (`core` for the core group) and full name, for Ephor's label filters. */
export function ownerLabels(owner: OwnerRef): Record<string, string> {
  return {
    [OWNER_LABELS.kind]: owner.kind,
    [OWNER_LABELS.group]: owner.group || 'core',
    [OWNER_LABELS.name]: owner.name,
  };
}
