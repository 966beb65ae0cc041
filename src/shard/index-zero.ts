// Index 0's side of a sharded run as the scan run (src/run/run.ts) uses it: the coordinator behind its HTTP server,
// started before the run lock is asked for (the other shards poll it from their start), and the merge of the
// shards' results with index 0's own scans (scanWithShards).
import type { Logger } from '../log.js';
import type { Clock } from '../run/ports.js';
import type { ScanResult, ScanTarget } from '../types.js';
import { ShardCoordinator, type Collection } from './coordinator.js';
import { serveCoordinator } from './coordinator-server.js';
import { shardTargets } from './partition.js';
import type { ShardConfig } from './settings.js';

/** What a scan run on index 0 does with the other shards (RunDependencies.shards). */
export interface ShardsPort {
  count: number;
  /** The run lock is held (or a dry run needs none): the other shards may scan. */
  startScanning(): void;
  /** Index 0's scans merged with the shards' results; see scanWithShards. */
  scan(inputs: ShardScanInputs): Promise<ShardScanOutcome>;
  /** The run is over (delivered, or stopped): the shards are told, then the port is closed. */
  finish(): Promise<void>;
}

export interface ShardScanInputs extends Collection {
  /** Scans these targets here (the pool with the OOM retry); returns those it never started. */
  scanHere: (targets: ScanTarget[]) => Promise<ScanTarget[]>;
  shutdown: AbortSignal;
  /** Epoch ms of SCAN_DEADLINE, if any. */
  deadline?: number;
}

export interface ShardScanOutcome {
  /** Targets never started, of index 0's own part or of what no shard handed over. */
  notStarted: ScanTarget[];
  /** The shards counted as lost (their images were index 0's to scan). */
  lost: number[];
}

type IndexZeroConfig = Extract<ShardConfig, { listen: unknown }>;

export async function startShardCoordinator(
  config: IndexZeroConfig,
  clock: Clock,
  log: Logger,
  scanGroupId?: string,
): Promise<ShardsPort> {
  const coordinator = new ShardCoordinator({
    count: config.count,
    timeoutMs: config.timeoutMs,
    scanGroupId,
    clock,
    log,
  });
  const server = await serveCoordinator(coordinator, config.listen, config.token, log);
  return {
    count: config.count,
    startScanning: () => {
      coordinator.startScanning();
    },
    scan: (inputs) => scanWithShards(coordinator, config.count, inputs, log),
    async finish() {
      await coordinator.finish();
      await server.close();
    },
  };
}

/**
 * Index 0 scans its own part while the shards hand over theirs; once every shard finished or is lost, index 0 scans
 * whatever of its plan is still unsettled (a lost shard's part, or keys the shards did not plan), deadline allowing.
 */
export async function scanWithShards(
  coordinator: ShardCoordinator,
  count: number,
  inputs: ShardScanInputs,
  log: Logger,
): Promise<ShardScanOutcome> {
  coordinator.collect(inputs);
  const own = shardTargets(inputs.targets, 0, count).filter((target) => coordinator.claim(target.key));
  log.info(
    { shard: 0, shards: count, images: own.length, of: inputs.targets.length },
    'index 0 scans its part; the other shards hand over theirs',
  );
  const notStarted = await inputs.scanHere(own);
  const lost = await coordinator.shardsSettled(inputs.shutdown, inputs.deadline);
  const leftovers = inputs.targets.filter((target) => coordinator.claim(target.key));
  if (leftovers.length > 0)
    log.warn(
      { images: leftovers.length, lost_shards: lost },
      'index 0 scans the images no shard handed over (a lost shard, or shards that saw the cluster differently)',
    );
  return { notStarted: [...notStarted, ...(await inputs.scanHere(leftovers))], lost };
}

/** A target no shard scanned and index 0 could not start: `shard_lost` when a shard was lost, unless stopped. */
export function notScannedForLostShard(target: ScanTarget, lost: number[], shutdown: boolean): ScanResult | undefined {
  if (lost.length === 0 || shutdown) return undefined;
  return {
    ok: false,
    ref: target.ref,
    reason: 'shard_lost',
    detail: 'the shard that had this image stopped answering and SCAN_DEADLINE left index 0 no time to scan it',
    durationMs: 0,
  };
}
