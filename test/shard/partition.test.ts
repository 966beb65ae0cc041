// The partition every shard computes on its own: deterministic whatever the plan's order, balanced (counts differ
// by at most one), and every target in exactly one shard's part.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { shardOwners, shardTargets } from '../../src/shard/partition.js';
import type { ScanTarget } from '../../src/types.js';

function target(key: string): ScanTarget {
  return { key, ref: key, registry: 'r', repository: key, namespaces: ['ns'], pullSecrets: [] };
}

const KEYS = Array.from({ length: 103 }, (_, i) => `registry.local/app-${(i * 7919) % 1000}@sha256:${i}`);
const TARGETS = KEYS.map(target);

describe('shard partition', () => {
  test('every target is in exactly one part, and the parts differ in size by at most one', () => {
    for (const count of [1, 2, 3, 4, 7, 200]) {
      const parts = Array.from({ length: count }, (_, index) => shardTargets(TARGETS, index, count));
      const all = parts.flat().map((t) => t.key);
      assert.equal(all.length, TARGETS.length, `count ${count}`);
      assert.deepEqual(new Set(all), new Set(KEYS), `count ${count}`);
      const sizes = parts.map((part) => part.length);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `count ${count}: ${sizes.join(',')}`);
    }
  });

  test('the same keys give the same parts whatever the order of the plan (every shard computes it alone)', () => {
    const reversed = [...TARGETS].reverse();
    const shuffled = [...TARGETS].sort((a, b) => a.key.length - b.key.length || (a.key > b.key ? -1 : 1));
    for (let index = 0; index < 4; index++) {
      const keys = (targets: ScanTarget[]) => new Set(shardTargets(targets, index, 4).map((t) => t.key));
      assert.deepEqual(keys(reversed), keys(TARGETS));
      assert.deepEqual(keys(shuffled), keys(TARGETS));
    }
  });

  test("a part keeps the plan's order, and a single shard scans everything", () => {
    const part = shardTargets(TARGETS, 1, 3);
    const positions = part.map((t) => TARGETS.indexOf(t));
    assert.deepEqual(
      positions,
      [...positions].sort((a, b) => a - b),
    );
    assert.deepEqual(shardTargets(TARGETS, 0, 1), TARGETS);
  });

  test('owners are dealt over the sorted keys, in turn', () => {
    assert.deepEqual(
      [...shardOwners(['c', 'a', 'b', 'd', 'a'], 2)],
      [
        ['a', 0],
        ['b', 1],
        ['c', 0],
        ['d', 1],
      ],
    );
  });
});
