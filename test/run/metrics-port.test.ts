// The metrics push wired into the run (MetricsPort), in-process with a fake port and a fake clock: once, after the
// summary line, with the run's summary and start; never in a dry run; never changing the exit code; bounded after a
// shutdown by what is left of the grace period, not by the (already aborted) shutdown signal.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { FakeEphor, prepareRun, runInProcess, until, workload, type FakeImage } from '../support/run-fakes.js';

const ALPINE = 'trivy-v0.69.3_alpine-3.10_os-pkgs.json';
const GRACE_MS = 20_000;
const WORKLOADS = [
  workload('shop', 'web', [{ name: 'app', image: 'alpine:3.10' }]),
  workload('blog', 'web', [{ name: 'app', image: 'alpine:3.10' }]),
];
const IMAGES: Record<string, FakeImage> = { 'docker.io/library/alpine:3.10': { report: ALPINE } };
const NAMESPACES = ['shop', 'blog'];

describe('the metrics push of a run', () => {
  test('a delivered run pushes once, after its summary line, with the summary it returns and its start', async () => {
    const run = await runInProcess({ namespaces: NAMESPACES, workloads: WORKLOADS, images: IMAGES, metrics: true });
    assert.equal(run.summary.exitCode, 0);
    const pushes = run.metrics!.pushes;
    assert.equal(pushes.length, 1);
    const [push] = pushes;
    assert.equal(push!.summary, run.summary, 'the summary the run returns and logged');
    assert.equal(push!.startedAt, run.context.startedAt);
    assert.equal(push!.summary.trivy?.version, '0.69.3', "Trivy's version carried out of the run");
    assert.equal(push!.summary.trivy?.dbUpdatedAt, '2026-03-01T00:00:00Z', "the DB's build time too");
    const summaryAt = run.log.lines.findIndex((l) => l.msg === 'ephor-scanner completed');
    assert.ok(summaryAt >= 0 && push!.linesBefore === summaryAt + 1, 'right after the summary line');
    assert.equal(push!.abortedAtStart, false);
    assert.equal(push!.signal.aborted, false, 'no shutdown: nothing cuts the push short but its own timeout');
    assert.equal(run.clock.pending, 0, 'no timer left behind');
  });

  test('a run that did not deliver everything (exit 1) pushes too, with its exit code', async () => {
    const ephor = new FakeEphor();
    ephor.answer = (post) => (post.namespace === 'blog' ? { status: 500, error: 'HTTP 500' } : 'accept');
    const run = await runInProcess({
      namespaces: NAMESPACES,
      workloads: WORKLOADS,
      images: IMAGES,
      ephor,
      metrics: true,
    });
    assert.equal(run.summary.exitCode, 1);
    assert.deepEqual(
      run.metrics!.pushes.map((p) => p.summary.exitCode),
      [1],
    );
  });

  test('a run stopped before scanning (no usable Trivy) pushes, without Trivy facts', async () => {
    const prepared = await prepareRun({ namespaces: NAMESPACES, workloads: WORKLOADS, images: IMAGES, metrics: true });
    prepared.trivy.unavailable = 'no vulnerability DB';
    try {
      const summary = await prepared.start();
      assert.equal(summary.exitCode, 1);
      assert.equal(prepared.metrics!.pushes.length, 1);
      assert.equal(prepared.metrics!.pushes[0]!.summary.trivy, undefined);
    } finally {
      await prepared.cleanup();
    }
  });

  test('a dry run pushes nothing (its exit 0 would move the last success forward), and says so', async () => {
    const output = await mkdtemp(path.join(os.tmpdir(), 'run-metrics-dry-'));
    try {
      const run = await runInProcess({
        namespaces: NAMESPACES,
        workloads: WORKLOADS,
        images: IMAGES,
        env: { EPHOR_DRY_RUN: 'true', EPHOR_OUTPUT_DIR: output },
        metrics: true,
      });
      assert.equal(run.summary.exitCode, 0);
      assert.equal(run.metrics!.pushes.length, 0);
      assert.equal(run.log.withMsg('dry run: metrics not pushed to the Pushgateway').length, 1);
    } finally {
      await rm(output, { recursive: true, force: true });
    }
  });

  test('a port that throws costs one warning; the exit code is the run’s', async () => {
    const prepared = await prepareRun({ namespaces: NAMESPACES, workloads: WORKLOADS, images: IMAGES, metrics: true });
    prepared.metrics!.behaviour = 'throw';
    try {
      const summary = await prepared.start();
      assert.equal(summary.exitCode, 0);
      const warnings = prepared.log.withMsg(
        "metrics not pushed to the Pushgateway (the run's result and exit code are unaffected)",
      );
      assert.deepEqual(
        warnings.map((w) => [w.level, w.error]),
        [['warn', 'a metrics port that breaks its promise']],
      );
    } finally {
      await prepared.cleanup();
    }
  });

  test('after SIGTERM the push gets what is left of the grace period, counted from the signal', async () => {
    const shutdown = new AbortController();
    const prepared = await prepareRun({
      namespaces: ['shop'],
      workloads: [workload('shop', 'web', [{ name: 'app', image: 'registry.local/slow:1' }])],
      images: { 'registry.local/slow:1': { hang: true } },
      shutdown: shutdown.signal,
      graceMs: GRACE_MS,
      metrics: true,
    });
    prepared.metrics!.behaviour = 'hang';
    try {
      const running = prepared.start();
      await until(() => prepared.trivy.calls.length === 1, 'the scan started');
      shutdown.abort();
      prepared.clock.advance(5_000); // the rest of the run takes 5 s of the grace period
      await until(() => prepared.metrics!.pushes.length === 1, 'the push');
      const [push] = prepared.metrics!.pushes;
      assert.equal(push!.abortedAtStart, false, 'not the already-aborted shutdown signal');
      prepared.clock.advance(GRACE_MS - 5_000 - 1);
      assert.equal(push!.signal.aborted, false);
      prepared.clock.advance(1);
      assert.equal(push!.signal.aborted, true, 'ends with the grace period');
      const summary = await running;
      assert.equal(summary.exitCode, 1);
      assert.equal(summary.interrupted, true);
      assert.equal(prepared.clock.pending, 0, 'no timer left behind');
    } finally {
      await prepared.cleanup();
    }
  });

  test('a SIGTERM that comes during the push gives it the grace period from then on', async () => {
    const shutdown = new AbortController();
    const prepared = await prepareRun({
      namespaces: NAMESPACES,
      workloads: WORKLOADS,
      images: IMAGES,
      shutdown: shutdown.signal,
      graceMs: GRACE_MS,
      metrics: true,
    });
    prepared.metrics!.behaviour = 'hang';
    try {
      const running = prepared.start();
      await until(() => prepared.metrics!.pushes.length === 1, 'the push');
      const [push] = prepared.metrics!.pushes;
      prepared.clock.advance(60_000);
      assert.equal(push!.signal.aborted, false, 'no shutdown: only its own timeout ends it');
      shutdown.abort();
      prepared.clock.advance(GRACE_MS - 1);
      assert.equal(push!.signal.aborted, false);
      prepared.clock.advance(1);
      assert.equal(push!.signal.aborted, true);
      const summary = await running;
      assert.equal(summary.exitCode, 0, 'the run had ended delivered: a signal during the push changes nothing');
      assert.equal(prepared.clock.pending, 0, 'no timer left behind');
    } finally {
      await prepared.cleanup();
    }
  });

  test('after SIGTERM, a grace period already over when the push starts aborts it at once', async () => {
    const shutdown = new AbortController();
    shutdown.abort();
    const prepared = await prepareRun({
      namespaces: ['shop'],
      workloads: [workload('shop', 'web', [{ name: 'app', image: 'registry.local/slow:1' }])],
      images: { 'registry.local/slow:1': { hang: true } },
      shutdown: shutdown.signal,
      graceMs: GRACE_MS,
      metrics: true,
    });
    prepared.metrics!.behaviour = 'hang';
    // The run's resources are measured just before the summary: let the grace period pass there.
    const { deps } = prepared;
    const measure = deps.resources.bind(deps);
    deps.resources = () => {
      prepared.clock.advance(GRACE_MS);
      return measure();
    };
    try {
      const summary = await prepared.start();
      assert.equal(summary.exitCode, 1);
      assert.equal(prepared.metrics!.pushes.length, 1);
      assert.equal(prepared.metrics!.pushes[0]!.abortedAtStart, true);
    } finally {
      await prepared.cleanup();
    }
  });
});
