// The sharded scenario (issue 16): one cluster scanned by one process with SCAN_CONCURRENCY=4, then by N = 4 scanner
// processes (a sharded run: index 0 merges and posts) with SCAN_CONCURRENCY=4 each, side by side in one benchmark
// run. Scans are sleeps of L in the Trivy stand-in, so this machine's cores are not the limit; what is judged is the
// ratio of the two wall times, never an absolute time.
import type { Measurement, RunConfig } from './measure.js';
import { JUICE_SHOP_REPORT } from './report.js';

export const SHARDED_TARGETS = {
  /** N processes' wall time at most this share of one process's. */
  ratio: 0.35,
  shards: 4,
};

export function shardedSize(quick: boolean) {
  return quick
    ? { namespaces: 4, workloadsPerNamespace: 20, replicas: 1, images: 40, concurrency: 4, latencyMs: 100 }
    : { namespaces: 10, workloadsPerNamespace: 80, replicas: 2, images: 400, concurrency: 4, latencyMs: 300 };
}

/** One process, then N shards, on the same cluster. */
export function shardedRuns(quick: boolean, shards = SHARDED_TARGETS.shards): RunConfig[] {
  const { concurrency, latencyMs, ...cluster } = shardedSize(quick);
  const base = { cluster, concurrency, latencyMs, report: JUICE_SHOP_REPORT };
  return [
    { ...base, label: 'N = 1 process' },
    { ...base, label: `N = ${shards} processes`, shards },
  ];
}

export interface ShardedVerdict {
  target: string;
  measured: string;
  ok?: boolean;
}

export function judgeSharded(runs: Measurement[]): ShardedVerdict[] {
  const single = runs.find((m) => !m.config.shards);
  const sharded = runs.find((m) => m.config.shards);
  const cfg = (sharded ?? single)?.config;
  const n = sharded?.config.shards ?? SHARDED_TARGETS.shards;
  const target =
    `${n} shards' wall time ≤ ${SHARDED_TARGETS.ratio} × one process's at U = ${cfg?.cluster.images ?? 400}, ` +
    `L = ${cfg?.latencyMs ?? 300} ms, SCAN_CONCURRENCY = ${cfg?.concurrency ?? 4} each`;
  if (!single || !sharded) return [{ target, measured: 'no valid pair of runs' }];
  const ratio = sharded.wallMs / single.wallMs;
  return [
    {
      target,
      measured: `${ratio.toFixed(3)} (${(sharded.wallMs / 1000).toFixed(2)} s / ${(single.wallMs / 1000).toFixed(2)} s; images per shard ${sharded.shards?.scannedByShard.join(', ') ?? '–'})`,
      ok: ratio <= SHARDED_TARGETS.ratio,
    },
  ];
}
