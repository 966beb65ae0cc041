// Bodies in parts, in-process: EPHOR_MAX_PAYLOAD_BYTES splits a namespace by whole workloads (a workload too big
// alone, by whole containers), and a proxy's 413 halves the refused part the same way. A container is never split
// (Ephor auto-resolves per container), nothing is lost or sent twice, and a part that cannot be halved any more is
// spooled as it is.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { ScanIngestRequest } from '../../src/types.js';
import { validate } from '../support/contract.js';
import {
  containersPosted,
  FakeEphor,
  runInProcess,
  workload,
  type FakeImage,
  type ScanPost,
} from '../support/run-fakes.js';

const ALPINE = 'trivy-v0.69.3_alpine-3.10_os-pkgs.json';
const JUICE = 'real_juice-shop-v10.2.0_alpine_node-pkg_236-vulns.json';

/** `count` workloads app-0… in `namespace`, each with `containers` containers c0… of their own image. */
function workloads(namespace: string, count: number, containers = 1, report = ALPINE) {
  const images: Record<string, FakeImage> = {};
  const list = Array.from({ length: count }, (_, w) =>
    workload(
      namespace,
      `app-${w}`,
      Array.from({ length: containers }, (_, c) => {
        const image = `registry.local/${namespace}-${w}-${c}:1`;
        images[image] = { report };
        return { name: `c${c}`, image };
      }),
    ),
  );
  return { workloads: list, images };
}

const containerCount = (post: ScanPost) => post.body.workloads.reduce((n, w) => n + w.containers.length, 0);

describe('bodies in parts', () => {
  test('EPHOR_MAX_PAYLOAD_BYTES: parts by whole workloads, a workload too big alone by whole containers, a container bigger than the limit alone in its part', async () => {
    const small = workloads('big', 12, 1, ALPINE);
    const wide = workloads('wide', 1, 3, JUICE);
    const wideWorkload = { ...wide.workloads[0]!, namespace: 'big', name: 'wide' };
    const run = await runInProcess({
      namespaces: ['big'],
      workloads: [...small.workloads, wideWorkload],
      images: { ...small.images, ...wide.images },
      env: { EPHOR_MAX_PAYLOAD_BYTES: '64Ki' },
    });
    assert.equal(run.summary.exitCode, 0);
    const posts = run.ephor.posts;
    assert.ok(posts.length >= 4, `${posts.length} parts`);
    for (const post of posts) {
      assert.deepEqual(post.contractErrors, []);
      assert.ok(post.bytes <= 64 * 1024 || containerCount(post) === 1, `a part of ${post.bytes} bytes`);
    }
    const bodies = posts.map((p) => p.body);
    assert.deepEqual(
      containersPosted(bodies),
      [...Array.from({ length: 12 }, (_, i) => `app-${i}/c0/4`), 'wide/c0/197', 'wide/c1/197', 'wide/c2/197'].sort(),
      'every container exactly once, never split',
    );
    assert.deepEqual(
      bodies.map((b) => (b.scan_config.part as { index: number; count: number }).index),
      bodies.map((_, i) => i + 1),
    );
    assert.equal(new Set(bodies.map((b) => b.scan_group_id)).size, 1);
    assert.equal(run.summary.namespaces[0]!.parts, posts.length);
  });

  test('413 from a proxy: the refused part is halved by whole workloads and resent; nothing is lost or sent twice', async () => {
    const { workloads: list, images } = workloads('shop', 4, 1, JUICE);
    const ephor = new FakeEphor();
    ephor.answer = (post) => (ephor.posts.indexOf(post) === 0 ? { status: 413 } : 'accept');
    const run = await runInProcess({ namespaces: ['shop'], workloads: list, images, ephor });
    assert.equal(run.summary.exitCode, 0);
    const [refused, ...resent] = ephor.posts;
    assert.equal(containerCount(refused!), 4);
    assert.ok(resent.length >= 2);
    for (const post of resent) {
      assert.deepEqual(post.contractErrors, []);
      assert.ok(post.bytes <= refused!.bytes / 2, `a half of ${post.bytes} bytes of ${refused!.bytes}`);
    }
    assert.deepEqual(
      containersPosted(resent.map((p) => p.body)),
      Array.from({ length: 4 }, (_, i) => `app-${i}/c0/197`),
    );
    assert.equal(
      run.log.withMsg('the body was too large for a proxy in front of Ephor (413): sending it in smaller parts').length,
      1,
    );
    assert.deepEqual(run.summary.namespaces[0]!.parts, resent.length);
  });

  test('413 until one container is left: a workload is halved by whole containers, never splitting one', async () => {
    const many = workloads('shop', 1, 3, ALPINE);
    const one = workloads('shop', 2, 1, ALPINE).workloads[1]!;
    const ephor = new FakeEphor();
    ephor.answer = (post) => (containerCount(post) > 1 ? { status: 413 } : 'accept');
    const run = await runInProcess({
      namespaces: ['shop'],
      workloads: [...many.workloads, one],
      images: { ...many.images, 'registry.local/shop-1-0:1': { report: ALPINE } },
      ephor,
    });
    assert.equal(run.summary.exitCode, 0);
    const delivered = ephor.posts.filter((p) => containerCount(p) === 1);
    for (const post of delivered) assert.deepEqual(post.contractErrors, []);
    assert.deepEqual(containersPosted(delivered.map((p) => p.body)), [
      'app-0/c0/4',
      'app-0/c1/4',
      'app-0/c2/4',
      'app-1/c0/4',
    ]);
    // Each piece of app-0 keeps its labels and kind: Ephor upserts the same workload from each.
    const pieces = delivered.filter((p) => p.body.workloads[0]!.name === 'app-0').map((p) => p.body.workloads[0]!);
    assert.ok(pieces.every((w) => w.kind === 'Deployment' && w.namespace === 'shop'));
  });

  test('413 for a single container: it cannot be halved; it is spooled whole, one file per part (the halves of one part used to overwrite each other)', async () => {
    const cacheDir = await mkdtemp(path.join(os.tmpdir(), 'run-413-'));
    try {
      // Six workloads of one big container: the body is halved into parts of two workloads, each halved again into
      // parts labelled 1 and 2, so that parts of different halves carry the same label.
      const { workloads: list, images } = workloads('shop', 6, 1, JUICE);
      const ephor = new FakeEphor();
      ephor.answer = () => ({ status: 413 });
      const run = await runInProcess({ namespaces: ['shop'], workloads: list, images, ephor, cacheDir });
      assert.equal(run.summary.exitCode, 1);
      assert.deepEqual([run.summary.namespaces[0]!.delivered, run.summary.namespaces[0]!.spooled], [false, true]);
      const dir = path.join(cacheDir, 'spool', 'shop');
      const files = (await readdir(dir)).sort();
      assert.equal(files.length, 6);
      const spooled = await Promise.all(
        files.map(async (f) => JSON.parse(await readFile(path.join(dir, f), 'utf8')) as ScanIngestRequest),
      );
      for (const body of spooled) assert.deepEqual(validate('ingest-request', body), []);
      assert.deepEqual(
        containersPosted(spooled),
        Array.from({ length: 6 }, (_, i) => `app-${i}/c0/197`),
      );
      const halvings = run.log.withMsg(
        'the body was too large for a proxy in front of Ephor (413): sending it in smaller parts',
      );
      assert.ok(halvings.length > 1, 'halves refused again were halved again');
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
    }
  });
});
