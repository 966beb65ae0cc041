// The delivery queue's rule that nothing undelivered ends in exit 0: a step that throws (a bug, a local fault)
// records that namespace as not delivered with the reason, in one log line without a stack trace, and the queue
// goes on with the next step; nothing is spooled from a failed step.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { prepareRun, runInProcess, workload, type FakeImage } from '../support/run-fakes.js';

const ALPINE = 'trivy-v0.69.3_alpine-3.10_os-pkgs.json';
const NAMESPACES = ['alpha', 'beta', 'gamma'];
const WORKLOADS = NAMESPACES.map((ns) => workload(ns, 'web', [{ name: 'app', image: `registry.local/${ns}:1` }]));
const IMAGES: Record<string, FakeImage> = Object.fromEntries(
  NAMESPACES.map((ns) => [`registry.local/${ns}:1`, { report: ALPINE }]),
);

describe('a delivery step that fails unexpectedly', () => {
  test('a POST step that throws: that namespace not delivered with the reason, one line without a stack, the others delivered, nothing spooled, exit 1', async () => {
    const cacheDir = await mkdtemp(path.join(os.tmpdir(), 'run-steps-'));
    try {
      const prepared = await prepareRun({ namespaces: NAMESPACES, workloads: WORKLOADS, images: IMAGES, cacheDir });
      prepared.ephor.answer = (post) =>
        post.namespace === 'beta' ? { throws: new Error('socket exploded') } : 'accept';
      const summary = await prepared.start();
      assert.equal(summary.exitCode, 1);
      assert.deepEqual(
        summary.namespaces.map((n) => [n.namespace, n.delivered, n.error]),
        [
          ['alpha', true, undefined],
          ['beta', false, 'unexpected error: socket exploded'],
          ['gamma', true, undefined],
        ],
      );
      assert.equal(summary.namespaces[1]!.stats.containersNotDelivered, 1);
      const errors = prepared.log.lines.filter((l) => l.level === 'error');
      const [failure] = prepared.log.withMsg('namespace not delivered: its delivery step failed unexpectedly');
      assert.deepEqual(failure, { ...failure, level: 'error', namespace: 'beta', error: 'socket exploded' });
      for (const line of errors) assert.equal(line.err, undefined, `no stack trace at level error: ${line.msg}`);
      const [debug] = prepared.log.withMsg('the unexpected error');
      assert.equal(debug!.level, 'debug');
      assert.match((debug!.err as { stack: string }).stack, /socket exploded\n\s+at /);
      assert.deepEqual(await readdir(cacheDir), [], 'nothing spooled from a failed step');
      const [record] = prepared.log.withMsg('ephor-scanner completed');
      assert.equal(record!.level, 'error');
      assert.deepEqual(record!.namespaces, { total: 3, delivered: 2, failed: 1 });
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
    }
  });

  test('a dry run whose EPHOR_OUTPUT_DIR cannot be created: every namespace not delivered, one clear line each, exit 1', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'run-dry-'));
    const file = path.join(dir, 'a-file');
    await writeFile(file, '');
    try {
      const run = await runInProcess({
        namespaces: NAMESPACES,
        workloads: WORKLOADS,
        images: IMAGES,
        env: { EPHOR_DRY_RUN: 'true', EPHOR_OUTPUT_DIR: path.join(file, 'out') },
      });
      assert.equal(run.summary.exitCode, 1);
      assert.deepEqual(
        run.summary.namespaces.map((n) => [n.namespace, n.delivered]),
        NAMESPACES.map((ns) => [ns, false]),
      );
      const lines = run.log.withMsg('dry run: payload could not be written');
      // Each namespace is written as soon as its images are scanned: in the order the scans end.
      assert.deepEqual(
        lines.map((l) => [l.namespace, l.level]).sort(),
        NAMESPACES.map((ns) => [ns, 'error']),
      );
      assert.match(String(lines[0]!.error), /^EPHOR_OUTPUT_DIR=.*\/a-file\/out cannot be written: ENOTDIR/);
      assert.equal(run.log.withMsg('namespace not delivered: its delivery step failed unexpectedly').length, 0);
      assert.deepEqual(run.ephor.posts, []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('an SBOM step that throws: the namespaces are delivered, but the run cannot end 0', async () => {
    const prepared = await prepareRun({
      namespaces: NAMESPACES,
      workloads: WORKLOADS,
      images: IMAGES,
      env: { SBOM_ENABLED: 'true' },
    });
    prepared.ephor.answerSbom = (request) =>
      request.image_reference.includes('beta')
        ? { throws: new TypeError('cannot read properties of undefined') }
        : 'accept';
    try {
      const summary = await prepared.start();
      assert.ok(summary.namespaces.every((n) => n.delivered));
      assert.equal(summary.exitCode, 1);
      assert.deepEqual(summary.sboms, { delivered: 2, failed: 1, skipped: 0 });
      const [line] = prepared.log.withMsg('delivery step failed unexpectedly: the run exits 1');
      assert.deepEqual([line!.level, line!.step, line!.err], ['error', 'sbom of registry.local/beta:1', undefined]);
    } finally {
      await prepared.cleanup();
    }
  });

  test('the spool of earlier runs cannot be read: the run cannot end 0', async () => {
    const prepared = await prepareRun({ namespaces: NAMESPACES, workloads: WORKLOADS, images: IMAGES });
    const spool = prepared.deps.spool!;
    prepared.deps.spool = {
      save: (...args) => spool.save(...args),
      discard: (namespace) => spool.discard(namespace),
      remove: (part) => spool.remove(part),
      pending: () => Promise.reject(new Error('EIO: i/o error, scandir')),
    };
    try {
      const summary = await prepared.start();
      assert.ok(summary.namespaces.every((n) => n.delivered));
      assert.equal(summary.exitCode, 1);
      assert.equal(
        prepared.log.withMsg('delivery step failed unexpectedly: the run exits 1')[0]!.step,
        'spooled payloads of earlier runs',
      );
    } finally {
      await prepared.cleanup();
    }
  });
});
