// A whole scan run in-process (src/run/run.ts) with fake discovery, Trivy and Ephor: what it delivers, what it
// records, the OOM retry, the runs that stop before scanning, and the rule that nothing undelivered ends in exit 0.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { Workload } from '../../src/types.js';
import {
  containersPosted,
  prepareRun,
  runInProcess,
  workload,
  type FakeImage,
  type InProcessRun,
} from '../support/run-fakes.js';

const ALPINE = 'trivy-v0.69.3_alpine-3.10_os-pkgs.json';
const DEBIAN = 'trivy-v0.69.3_debian-buster_os-pkgs.json';
const JUICE = 'real_juice-shop-v10.2.0_alpine_node-pkg_236-vulns.json';
const JUICE_DIGEST =
  'docker.io/bkimminich/juice-shop@sha256:a5ad895656074bb12930374348bf903460016bcf430bf7039d7e34f0c505a7b1';

/** shop: two workloads, three images (one by running digest); blog: the shared alpine and an image that is not
 * found; empty: no workload at all. */
const WORKLOADS: Workload[] = [
  workload('shop', 'web', [
    { name: 'app', image: 'alpine:3.10' },
    { name: 'sidecar', image: 'debian:buster' },
  ]),
  workload('shop', 'api', [{ name: 'app', image: 'bkimminich/juice-shop:v10.2.0', running: [JUICE_DIGEST] }]),
  workload('blog', 'web', [
    { name: 'app', image: 'alpine:3.10' },
    { name: 'broken', image: 'registry.local/missing:1' },
  ]),
];
const IMAGES: Record<string, FakeImage> = {
  'docker.io/library/alpine:3.10': { report: ALPINE },
  'docker.io/library/debian:buster': { report: DEBIAN },
  [JUICE_DIGEST]: { report: JUICE },
  'registry.local/missing:1': { fail: 'not_found', detail: 'MANIFEST_UNKNOWN: manifest unknown' },
};
const NAMESPACES = ['shop', 'blog', 'empty'];

function outcomes(run: InProcessRun) {
  return run.summary.namespaces.map((n) => [n.namespace, n.delivered, n.status, n.error]);
}

describe('a scan run in-process', () => {
  test('discovers, scans each image once, delivers every namespace one POST at a time with contract-valid bodies, and cleans up', async () => {
    const tempRoot = await mkdtemp(path.join(os.tmpdir(), 'run-temp-'));
    try {
      const run = await runInProcess({ namespaces: NAMESPACES, workloads: WORKLOADS, images: IMAGES, tempRoot });
      assert.equal(run.summary.exitCode, 0);
      assert.deepEqual(outcomes(run), [
        ['shop', true, 'completed', undefined],
        ['blog', true, 'completed', undefined],
        ['empty', true, 'completed', undefined],
      ]);
      for (const post of run.ephor.posts) assert.deepEqual(post.contractErrors, [], post.namespace);
      assert.equal(run.ephor.maxInFlight, 1, 'never two POSTs at once');
      assert.deepEqual(
        run.ephor.posts.map((p) => p.body.scan_group_id),
        NAMESPACES.map(() => run.context.scanGroupId),
      );
      const [shop] = run.ephor.bodiesOf('shop');
      assert.deepEqual(
        shop!.workloads.map((w) => `${w.name}/${w.containers.map((c) => c.name).join('+')}`),
        ['web/app+sidecar', 'api/app'],
      );
      assert.deepEqual(containersPosted(run.ephor.bodiesOf('blog')), ['web/app/4']);
      const [blog] = run.ephor.bodiesOf('blog');
      assert.deepEqual(blog!.scan_config.not_delivered, [
        {
          workload: 'web',
          kind: 'Deployment',
          container: 'broken',
          image: 'registry.local/missing:1',
          reason: 'not_found',
          detail: 'MANIFEST_UNKNOWN: manifest unknown',
        },
      ]);
      assert.deepEqual(run.ephor.bodiesOf('empty')[0]!.workloads, []);
      // alpine is used by two namespaces and scanned once.
      assert.deepEqual(run.trivy.calls.map((c) => c.ref).sort(), Object.keys(IMAGES).sort());
      assert.deepEqual(run.summary.images, { total: 4, scanned: 3, failed: 1, failedByReason: { not_found: 1 } });
      const [summary] = run.log.withMsg('ephor-scanner completed');
      assert.equal(summary!.exit_code, 0);
      assert.deepEqual(summary!.namespaces, { total: 3, delivered: 3, failed: 0 });
      assert.deepEqual(await readdir(tempRoot), [], "the run's temporary directory is removed");
      assert.equal(run.clock.pending, 0, 'no timer left behind');
    } finally {
      await rm(tempRoot, { recursive: true, force: true });
    }
  });

  test('a Trivy killed by a signal is scanned again once, alone, after the others; killed again it is recorded as killed', async () => {
    const workloads = ['a', 'b', 'c', 'd'].map((name) =>
      workload('oom', name, [{ name: 'app', image: `registry.local/${name}:1` }]),
    );
    const run = await runInProcess({
      namespaces: ['oom'],
      workloads,
      env: { SCAN_CONCURRENCY: '4' },
      images: {
        'registry.local/a:1': { killed: true },
        'registry.local/b:1': { sequence: [{ killed: true }, { report: ALPINE }] },
        'registry.local/c:1': { report: ALPINE },
        'registry.local/d:1': { report: ALPINE },
      },
    });
    assert.equal(run.summary.exitCode, 0);
    const refs = run.trivy.calls.map((c) => c.ref);
    assert.deepEqual(
      refs.slice(0, 4).sort(),
      ['a', 'b', 'c', 'd'].map((n) => `registry.local/${n}:1`),
    );
    assert.deepEqual(refs.slice(4), ['registry.local/a:1', 'registry.local/b:1'], 'the killed ones, after the others');
    for (const retry of run.trivy.calls.slice(4)) assert.deepEqual(retry.othersRunning, [], `${retry.ref} runs alone`);
    assert.deepEqual(
      run.log.withMsg('trivy was killed (out of memory?): scanning these images again, one at a time')[0]!.images,
      ['registry.local/a:1', 'registry.local/b:1'],
    );
    const [body] = run.ephor.bodiesOf('oom');
    assert.deepEqual(containersPosted([body!]), ['b/app/4', 'c/app/4', 'd/app/4']);
    assert.deepEqual(
      (body!.scan_config.not_delivered as Array<{ workload: string; reason: string }>).map((e) => [
        e.workload,
        e.reason,
      ]),
      [['a', 'killed']],
    );
    assert.deepEqual(run.summary.images.failedByReason, { killed: 1 });
  });

  test('no usable vulnerability DB: nothing is scanned or posted, exit 1', async () => {
    const prepared = await prepareRun({ namespaces: NAMESPACES, workloads: WORKLOADS, images: IMAGES });
    prepared.trivy.unavailable = 'no usable vulnerability database: the download failed';
    try {
      const summary = await prepared.start();
      assert.equal(summary.exitCode, 1);
      assert.deepEqual(prepared.trivy.calls, []);
      assert.deepEqual(prepared.ephor.posts, []);
      assert.equal(prepared.log.withMsg('trivy cannot scan: nothing was scanned or delivered').length, 1);
    } finally {
      await prepared.cleanup();
    }
  });

  test('discovery returned nothing (every list call failed): nothing is posted, exit 1', async () => {
    const run = await runInProcess({
      namespaces: ['shop'],
      workloads: [],
      images: {},
      discovery: { successfulLists: 0 },
    });
    assert.equal(run.summary.exitCode, 1);
    assert.deepEqual(run.ephor.posts, []);
    assert.equal(
      run.log.withMsg('discovery returned nothing: every list call failed, so nothing is delivered').length,
      1,
    );
  });

  test("the run's temporary directory cannot be created: a clear error naming it, exit 1", async () => {
    const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'run-file-')), 'not-a-directory');
    await writeFile(file, '');
    try {
      const run = await runInProcess({ namespaces: ['shop'], workloads: WORKLOADS, images: IMAGES, tempRoot: file });
      assert.equal(run.summary.exitCode, 1);
      assert.deepEqual(run.trivy.calls, []);
      const [error] = run.log.withMsg(
        "the run's temporary directory cannot be created: nothing was scanned or delivered",
      );
      assert.match(String(error!.error), /ENOTDIR/);
    } finally {
      await rm(path.dirname(file), { recursive: true, force: true });
    }
  });
});
