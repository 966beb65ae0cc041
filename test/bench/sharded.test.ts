// Keeps the benchmark's sharded scenario from rotting: one tiny measured pair (one process, then two shards started
// together), its judgement and its section of the report. The numbers themselves are not judged here.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { renderReport } from '../../bench/doc.js';
import { measureRun } from '../../bench/measure.js';
import { describeMachine } from '../../bench/run.js';
import { judge, planRuns } from '../../bench/scenarios.js';
import { shardedRuns } from '../../bench/sharded.js';
import { CLI_BUNDLE } from '../support/paths.js';

test('the sharded scenario plans one process and then 4 shards at U = 400, L = 300 ms, C = 4', () => {
  const runs = planRuns(['sharded'], { quick: false, repeat: 3 });
  assert.deepEqual(
    runs.map((r) => [
      r.config.label,
      r.config.cluster.images,
      r.config.latencyMs,
      r.config.concurrency,
      r.config.shards,
    ]),
    [
      ['N = 1 process', 400, 300, 4, undefined],
      ['N = 4 processes', 400, 300, 4, 4],
    ],
  );
});

test(
  'a tiny sharded pair: both valid, the shards split the images, the ratio judged and rendered',
  { timeout: 120_000 },
  async () => {
    assert.ok(existsSync(CLI_BUNDLE), 'npm run build first');
    const tiny = { namespaces: 2, workloadsPerNamespace: 5, replicas: 1, images: 6 };
    const [single, sharded] = shardedRuns(true, 2).map((config) => ({ ...config, cluster: tiny, latencyMs: 20 }));
    const results = [];
    for (const config of [single!, sharded!]) {
      const measurement = await measureRun(config, { timeoutMs: 60_000 });
      assert.deepEqual(measurement.problems, [], config.label);
      results.push({ scenario: 'sharded' as const, measurement });
    }
    const shards = results[1]!.measurement.shards!;
    assert.deepEqual(shards.exitCodes, [0]);
    assert.deepEqual(shards.scannedByShard, [3, 3], 'each image scanned once, half by each shard');
    assert.equal(results[1]!.measurement.ephor.maxConcurrentPosts, 1);

    const [verdict] = judge(results, false);
    assert.match(verdict!.target, /2 shards' wall time ≤ 0\.35 × one process's at U = 6/);
    assert.match(verdict!.measured, /^\d+\.\d{3} \(.* images per shard 3, 3\)$/);
    const markdown = renderReport({
      machine: await describeMachine(),
      startedAt: new Date(),
      durationMs: 1000,
      quick: true,
      command: 'npm run bench -- --scenario sharded --quick',
      results,
    });
    assert.match(markdown, /## Sharded runs/);
    assert.match(markdown, /\| sharded N = 2 processes \| [\d,]+ \| \d\.\d{3} \| 3 \+ 3 \|/);
    assert.doesNotMatch(markdown, /## Results/, 'the fixed-latency tables are left out when only this scenario ran');
  },
);
