// Index 0's merge (scanWithShards): its own part scanned here, the shards' parts taken from them; once every shard
// finished or is lost, whatever of its plan no shard handed over is scanned here; a key is settled exactly once.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { systemClock } from '../../src/run/adapters.js';
import { ShardCoordinator } from '../../src/shard/coordinator.js';
import { notScannedForLostShard, scanWithShards } from '../../src/shard/index-zero.js';
import { shardTargets } from '../../src/shard/partition.js';
import type { ScanResult, ScanTarget } from '../../src/types.js';
import { captureLog } from '../support/run-fakes.js';
import { target } from './support.js';

const TARGETS = ['a', 'b', 'c', 'd', 'e', 'f'].map((key) => target(key));

function setup(timeoutMs = 60_000) {
  const logs = captureLog();
  const coordinator = new ShardCoordinator({ count: 2, timeoutMs, clock: systemClock, log: logs.log });
  coordinator.startScanning();
  const settled: string[] = [];
  const scannedHere: string[][] = [];
  const inputs = {
    targets: TARGETS,
    findingsDir: '/nonexistent',
    settle: (t: ScanTarget, _result: ScanResult) => settled.push(t.key),
    scanHere: (targets: ScanTarget[]) => {
      scannedHere.push(targets.map((t) => t.key));
      for (const t of targets) settled.push(t.key);
      return Promise.resolve([]);
    },
    shutdown: new AbortController().signal,
  };
  return { coordinator, logs, settled, scannedHere, inputs };
}

const failed = (key: string): ScanResult => ({
  ok: false,
  ref: key,
  reason: 'not_found',
  detail: 'gone',
  durationMs: 1,
});

describe("index 0's merge of the shards' results", () => {
  test("index 0 scans its part; the shard's keys it did not hand over are scanned here once it finished", async () => {
    const { coordinator, settled, scannedHere, inputs } = setup();
    const mine = shardTargets(TARGETS, 0, 2).map((t) => t.key);
    const theirs = shardTargets(TARGETS, 1, 2).map((t) => t.key);
    const merged = scanWithShards(coordinator, 2, inputs, captureLog().log);
    // the shard hands over one of its three (its plan lacked the others), then says it is finished
    const { files, take } = coordinator.filesFor({
      shard: 1,
      key: theirs[0]!,
      result: failed(theirs[0]!),
      sbomBytes: 0,
    });
    assert.ok(take);
    coordinator.settleReceived({ shard: 1, key: theirs[0]!, result: failed(theirs[0]!), sbomBytes: 0 }, files);
    coordinator.heartbeat({ shard: 1, instance: coordinator.instance, planned: 1, handedOver: 1, finished: true });
    const outcome = await merged;

    assert.deepEqual(scannedHere, [mine, theirs.slice(1)]);
    assert.deepEqual(
      [...settled].sort(),
      TARGETS.map((t) => t.key),
      'every key settled exactly once',
    );
    assert.deepEqual(outcome.lost, []);
  });

  test('a silent shard is lost after SHARD_TIMEOUT: its part is scanned here; without time left, shard_lost', async () => {
    const { coordinator, logs, scannedHere, inputs } = setup(200);
    const outcome = await scanWithShards(coordinator, 2, inputs, logs.log);

    assert.deepEqual(outcome.lost, [1]);
    assert.deepEqual(
      scannedHere[1],
      shardTargets(TARGETS, 1, 2).map((t) => t.key),
    );
    assert.equal(
      logs.withMsg('shard lost: not heard from within SHARD_TIMEOUT; index 0 scans what it did not hand over').length,
      1,
    );
    const lostResult = notScannedForLostShard(TARGETS[0]!, outcome.lost, false);
    assert.equal(lostResult && !lostResult.ok ? lostResult.reason : undefined, 'shard_lost');
    assert.equal(notScannedForLostShard(TARGETS[0]!, outcome.lost, true), undefined, 'stopped: cancelled, not lost');
    assert.equal(notScannedForLostShard(TARGETS[0]!, [], false), undefined, 'no shard lost: the usual reason');
  });

  test("a shard's result for a key index 0 already took is acknowledged but not recorded again", () => {
    const { coordinator } = setup();
    coordinator.collect({ targets: TARGETS, findingsDir: '/nonexistent', settle: () => assert.fail('recorded') });
    assert.equal(coordinator.claim('a'), true);
    const decision = coordinator.filesFor({ shard: 1, key: 'a', result: failed('a'), sbomBytes: 0 });
    assert.deepEqual([decision.take, decision.answer.accepted, decision.answer.note], [false, true, 'already settled']);
    assert.equal(coordinator.claim('a'), false);
  });

  test("every scan failure a shard reports is taken; index 0's own reasons and unknown ones are refused", () => {
    const { coordinator } = setup();
    coordinator.collect({ targets: TARGETS, findingsDir: '/nonexistent', settle: () => undefined });
    const answer = (key: string, reason: string) => {
      const result = { ...failed(key), reason } as ScanResult;
      const decision = coordinator.filesFor({ shard: 1, key, result, sbomBytes: 0 });
      return [decision.take, decision.answer.note ?? 'taken'];
    };
    assert.deepEqual(answer('a', 'platform_not_found'), [true, 'taken']);
    assert.deepEqual(answer('b', 'deadline'), [true, 'taken']);
    for (const [key, reason] of [
      ['c', 'shard_lost'],
      ['d', 'invalid_reference'],
      ['e', 'exploded'],
    ])
      assert.deepEqual(answer(key!, reason!), [false, 'unknown failure reason'], reason);
  });
});
