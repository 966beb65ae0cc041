// The shutdown grace period, in-process with a fake clock: after the signal no scan starts and running ones are
// stopped, finished work is still delivered until the grace period ends, and after it nothing more is sent: what is
// left is recorded as not delivered and spooled; the run exits 1.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { GRACE_OVER } from '../../src/run/deliveries.js';
import { FakeEphor, prepareRun, until, workload, type FakeImage } from '../support/run-fakes.js';

const ALPINE = 'trivy-v0.69.3_alpine-3.10_os-pkgs.json';
const GRACE_MS = 20_000;

describe('shutdown', () => {
  test('after the signal, finished work is delivered until the grace period ends; then nothing more is sent', async () => {
    // Two slots: alpha, beta and delta are scanned; gamma and epsilon then run until the signal stops them, and zeta
    // waits for a slot that never comes free.
    const namespaces = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta'];
    const images: Record<string, FakeImage> = {
      'registry.local/alpha:1': { report: ALPINE },
      'registry.local/beta:1': { report: ALPINE },
      'registry.local/gamma:1': { hang: true },
      'registry.local/delta:1': { report: ALPINE },
      'registry.local/epsilon:1': { hang: true },
      'registry.local/zeta:1': { report: ALPINE },
    };
    const shutdown = new AbortController();
    const cacheDir = await mkdtemp(path.join(os.tmpdir(), 'run-shutdown-'));
    let releaseAlpha!: () => void;
    const alphaAnswered = new Promise<void>((resolve) => (releaseAlpha = resolve));
    const ephor = new FakeEphor();
    ephor.answer = async (post, cutoff) => {
      if (post.namespace === 'alpha') await alphaAnswered; // still waiting for Ephor at the signal
      if (post.namespace !== 'delta') return 'accept';
      // delta's attempt is in flight when the grace period ends: the client ends it as the real one does.
      await new Promise((resolve) => cutoff.addEventListener('abort', resolve, { once: true }));
      return { error: 'not delivered: the shutdown grace period ended before Ephor answered' };
    };
    const prepared = await prepareRun({
      namespaces,
      workloads: namespaces.map((ns) => workload(ns, 'web', [{ name: 'app', image: `registry.local/${ns}:1` }])),
      images,
      env: { SCAN_CONCURRENCY: '2' },
      ephor,
      shutdown: shutdown.signal,
      cacheDir,
      graceMs: GRACE_MS,
    });
    try {
      const running = prepared.start();
      await until(() => ephor.posts.some((p) => p.namespace === 'alpha'), "alpha's POST");
      await until(() => prepared.trivy.calls.some((c) => c.ref.includes('epsilon')), "epsilon's scan");
      // alpha, beta and delta scanned (their namespaces queued in that order), before the signal.
      await until(() => prepared.log.withMsg('image scanned').length === 3, 'three images scanned');
      shutdown.abort();
      prepared.clock.advance(5_000);
      releaseAlpha();
      await until(() => ephor.posts.some((p) => p.namespace === 'delta'), "delta's POST");
      prepared.clock.advance(GRACE_MS - 5_000);
      const summary = await running;

      assert.equal(summary.exitCode, 1);
      assert.equal(summary.interrupted, true);
      assert.deepEqual(
        ephor.posts.map((p) => p.namespace).sort(),
        ['alpha', 'beta', 'delta'],
        'nothing is sent after the grace period',
      );
      const outcome = new Map(summary.namespaces.map((n) => [n.namespace, n]));
      assert.deepEqual(
        namespaces.map((ns) => [ns, outcome.get(ns)!.delivered, outcome.get(ns)!.spooled ?? false]),
        [
          ['alpha', true, false],
          ['beta', true, false],
          ['gamma', false, true],
          ['delta', false, true],
          ['epsilon', false, true],
          ['zeta', false, true],
        ],
      );
      const failures = prepared.log.withMsg('failed to deliver scan results');
      assert.deepEqual(failures.map((l) => [l.namespace, l.error]).sort(), [
        ['delta', 'not delivered: the shutdown grace period ended before Ephor answered'],
        ['epsilon', GRACE_OVER],
        ['gamma', GRACE_OVER],
        ['zeta', GRACE_OVER],
      ]);
      assert.deepEqual(
        prepared.trivy.calls.map((c) => c.ref).sort(),
        ['alpha', 'beta', 'delta', 'epsilon', 'gamma'].map((ns) => `registry.local/${ns}:1`),
        'no scan starts after the signal',
      );
      assert.deepEqual(summary.images.failedByReason, { cancelled: 3 });
      assert.deepEqual((await readdir(path.join(cacheDir, 'spool'))).sort(), ['delta', 'epsilon', 'gamma', 'zeta']);
      assert.equal(prepared.log.withMsg('shutdown requested: no new scans; delivering what is finished').length, 1);
      assert.equal(prepared.clock.pending, 0, 'no timer left behind');
    } finally {
      await prepared.cleanup();
      await rm(cacheDir, { recursive: true, force: true });
    }
  });
});
