// Lists that RBAC refused during discovery (a 403, recorded with the rule that is missing), in the same sentence
// `ephor-scanner check` prints for the same denial: the run's summary and the preflight must name a gap in one set
// of words, so that an operator can match the two. A run delivers such a namespace with what it could list (exit 0);
// the summary marks it as partly forbidden instead of hiding it in the log.
import { KIND_SPECS } from '../kube/workload-kinds.js';
import type { DiscoveryError } from '../types.js';

/** One list RBAC refused. */
export interface ForbiddenList {
  /** '' = cluster-wide (the namespace list of SCAN_NAMESPACES=* or a selector). */
  namespace: string;
  /** The resource, as in an RBAC rule: `cronjobs`, `pods`, `namespaces`. */
  resource: string;
  /** What the run lost without it. */
  consequence: string;
  /** The rule that would allow it, as discovery words it (`allow verb "list" on resource …`). */
  missingRule: string;
}

export type ListedKind = DiscoveryError['kind'];

const NODES_CONSEQUENCE =
  'images are scanned without --platform: ' +
  "a multi-platform image is scanned as Trivy's default linux/amd64 variant, whatever node runs it";

/** What a run loses when it may not list `kind` (Pod: the Pod list; Namespace: the namespace list). */
export function forbiddenListConsequence(kind: ListedKind, standalonePods: boolean): string {
  if (kind === 'Namespace') return 'the namespaces to scan cannot be found, so nothing is scanned';
  if (kind === 'Node') return NODES_CONSEQUENCE;
  if (kind !== 'Pod') return `its ${kind}s are not scanned`;
  return standalonePods
    ? 'its standalone Pods are not scanned, ' +
        'and images are scanned by the tags in the workload specs, not by the digests that run'
    : 'images are scanned by the tags in the workload specs, not by the digests that run';
}

export function resourceOf(kind: ListedKind): string {
  if (kind === 'Namespace') return 'namespaces';
  if (kind === 'Node') return 'nodes';
  if (kind === 'Pod') return 'pods';
  return KIND_SPECS[kind].resource;
}

/** `in namespace "shop"`, or `cluster-wide` for ''. */
export function scopeOf(namespace: string): string {
  return namespace ? `in namespace "${namespace}"` : 'cluster-wide';
}

/**
 * The sentence of a denial, shared with check: `the scanner may not list cronjobs in namespace "shop": …`. `note`
 * (check: the API server's reason, in parentheses) goes before the consequence.
 */
export function denialSentence(denial: {
  verb: string;
  resource: string;
  namespace: string;
  consequence: string;
  note?: string;
}): string {
  const { verb, resource, namespace, consequence, note = '' } = denial;
  return `the scanner may not ${verb} ${resource} ${scopeOf(namespace)}${note}: ${consequence}`;
}

/** The lists discovery records when they fail (the run's summary can only mark what discovery recorded). */
export const DISCOVERY_LISTS: ReadonlySet<string> = new Set([
  'namespaces',
  'nodes',
  'pods',
  ...Object.values(KIND_SPECS).map((spec) => spec.resource),
]);

/** The lists RBAC refused, in discovery order: the discovery errors that carry a missing rule. */
export function forbiddenLists(errors: readonly DiscoveryError[], standalonePods: boolean): ForbiddenList[] {
  return errors.flatMap((error) =>
    error.missingRule === undefined
      ? []
      : [
          {
            namespace: error.namespace,
            resource: resourceOf(error.kind),
            consequence: forbiddenListConsequence(error.kind, standalonePods),
            missingRule: error.missingRule,
          },
        ],
  );
}
