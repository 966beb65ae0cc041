// Smoke test of the benchmark's incremental scenario at a tiny size (judging no numbers): the layered C stand-in as a
// local scan and as a client of the stand-in Trivy server the built scanner starts, the cache directory kept from one
// run to the next, the 10 %-changed cluster, the targets' wording and the report's section.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { generateCluster } from '../../bench/cluster.js';
import { renderReport } from '../../bench/doc.js';
import { incrementalRuns, judgeIncremental } from '../../bench/incremental.js';
import { imageLayers, writeLayersFile } from '../../bench/layers.js';
import { measureRun, type Measurement } from '../../bench/measure.js';
import { describeMachine } from '../../bench/run.js';
import { planRuns } from '../../bench/scenarios.js';
import { trivyStandIn } from '../../bench/stand-in.js';
import { CLI_BUNDLE } from '../support/paths.js';

test("layers: images share their family's base layers; a redeployed image has new application layers", async (t) => {
  const model = { manifestMs: 50, minMs: 300, maxMs: 2000, appLayers: 3 };
  const [a, b] = [imageLayers(0, false, model), imageLayers(16, false, model)];
  assert.deepEqual(a.slice(0, 3), b.slice(0, 3), 'images 0 and 16 are of the same family');
  assert.notDeepEqual(a.slice(3), b.slice(3));
  const changed = imageLayers(0, true, model);
  assert.deepEqual(changed.slice(0, 3), a.slice(0, 3));
  assert.ok(changed.slice(3).every((layer) => !a.some((old) => old.id === layer.id)));
  assert.ok(a.every((layer) => layer.ms >= 300 && layer.ms <= 2000));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ephor-layers-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const stats = await writeLayersFile(path.join(dir, 'layers.txt'), 500, 10, model);
  assert.equal(stats.base, 40);
  assert.equal(stats.perImageTotal, 500 * 6);
  const cluster = generateCluster({
    namespaces: 2,
    workloadsPerNamespace: 10,
    replicas: 1,
    images: 10,
    changedEvery: 10,
  });
  assert.equal(
    cluster.scanRefs.filter(
      (ref, i) =>
        ref !== generateCluster({ namespaces: 2, workloadsPerNamespace: 10, replicas: 1, images: 10 }).scanRefs[i],
    ).length,
    1,
  );
});

test('plan: five runs, the cache directory of each mode shared by its runs, the last one with 10 % changed', () => {
  const runs = planRuns(['incremental'], { quick: false, repeat: 1, cacheRoot: '/c' });
  assert.deepEqual(
    runs.map((r) => [r.config.label, r.config.incremental?.cacheDir, r.config.cluster.changedEvery]),
    [
      ['ephemeral, first run', '/c/ephemeral', 0],
      ['ephemeral, second run, unchanged', '/c/ephemeral', 0],
      ['server, first run', '/c/server', 0],
      ['server, second run, unchanged', '/c/server', 0],
      ['server, 10 % of the digests changed', '/c/server', 10],
    ],
  );
  assert.equal(runs[0]!.config.cluster.images, 500);
  assert.equal(planRuns(['incremental'], { quick: true, repeat: 1 })[0]!.config.cluster.images, 60);
});

test(
  'a tiny incremental sequence with the built scanner: no layer downloaded again, the same findings',
  { timeout: 180_000 },
  async (t) => {
    assert.ok(existsSync(CLI_BUNDLE), 'npm run build first');
    const standIn = await trivyStandIn();
    if (standIn.kind !== 'c') {
      t.skip(`no C stand-in: ${standIn.note}`);
      return;
    }
    const root = await mkdtemp(path.join(os.tmpdir(), 'ephor-bench-incremental-test-'));
    t.after(() => rm(root, { recursive: true, force: true }));
    const layers = { manifestMs: 10, minMs: 20, maxMs: 60, appLayers: 2 };
    const measurements: Measurement[] = [];
    for (const config of incrementalRuns(true, root)) {
      const tiny = {
        ...config,
        cluster: { ...config.cluster, namespaces: 2, workloadsPerNamespace: 10, replicas: 1, images: 20 },
        concurrency: 3,
        incremental: { ...config.incremental!, layers },
      };
      const m = await measureRun(tiny, { timeoutMs: 60_000 });
      assert.deepEqual(m.problems, [], config.label);
      measurements.push(m);
    }
    const byLabel = (label: string) => measurements.find((m) => m.config.label === label)!;
    const all = byLabel('ephemeral, first run').layers!;
    assert.equal(all.downloaded, all.perImageTotal, 'an ephemeral scan takes every layer');
    assert.equal(byLabel('ephemeral, second run, unchanged').layers!.downloaded, all.perImageTotal);
    const first = byLabel('server, first run').layers!;
    assert.ok(first.downloadedBase < all.downloadedBase, 'base layers shared in the first server run');
    assert.ok(first.downloadedBase <= first.base * 3, 'at most once per concurrent scan');
    assert.equal(byLabel('server, second run, unchanged').layers!.downloaded, 0);
    const changed = byLabel('server, 10 % of the digests changed').layers!;
    assert.equal(
      changed.downloaded,
      2 * layers.appLayers,
      'only the new application layers of the 2 redeployed images',
    );
    assert.equal(changed.downloadedBase, 0);
    const verdicts = judgeIncremental(measurements);
    assert.equal(verdicts.length, 3);
    assert.match(verdicts[0]!.measured, /^\d+\.\d× \(0 layers downloaded\)$/);
    assert.equal(verdicts[2]!.ok, true, 'the same findings in every run');
    const markdown = renderReport({
      machine: await describeMachine(),
      startedAt: new Date(),
      durationMs: 1000,
      quick: true,
      command: 'npm run bench -- --scenario incremental --quick',
      results: measurements.map((measurement) => ({ scenario: 'incremental' as const, measurement })),
    });
    assert.match(markdown, /## Incremental scans/);
    assert.match(markdown, /\| incremental server, second run, unchanged \| 0 \| 0 \(0\) \|/);
    assert.ok(!markdown.includes('### Time'), 'no empty tables of the other scenarios');
    assert.match(await readFile(path.join(root, 'server', 'fanal', 'ephor-scanner.json'), 'utf8'), /0\.69\.3/);
  },
);
