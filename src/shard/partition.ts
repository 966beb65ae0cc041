// Which shard scans which image. Every shard computes this from its own plan, so it must be a pure function of the
// scan keys alone: the keys sorted (code-point order, locale-free), then dealt out in turn, so the N shards' counts
// differ by at most one. When two shards saw the cluster differently their plans (and so their deals) can differ;
// index 0's plan stays the authority (coordinator.ts): it scans any key of its plan nobody handed over, and ignores
// results for keys it does not plan, so a disagreement costs a duplicate scan at worst, never a lost or partial one.
import type { ScanTarget } from '../types.js';

/** The targets shard `index` of `count` scans, in the plan's order. */
export function shardTargets(targets: readonly ScanTarget[], index: number, count: number): ScanTarget[] {
  if (count <= 1) return [...targets];
  const owner = shardOwners(
    targets.map((target) => target.key),
    count,
  );
  return targets.filter((target) => owner.get(target.key) === index);
}

/** Scan key → the index of the shard that scans it. */
export function shardOwners(keys: readonly string[], count: number): Map<string, number> {
  const sorted = [...new Set(keys)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return new Map(sorted.map((key, position) => [key, position % count]));
}
