// The spool's rules, in-process (src/run/spool.ts is real file I/O, in a temporary directory): a namespace not
// delivered is spooled; a later run delivers it only for a namespace it does not deliver itself; a fresh delivery
// deletes it; an older payload is never delivered after a newer one; past SPOOL_MAX_AGE it is discarded with a
// warning; and a payload is spooled whole or not at all.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { containerEntry, envelopeOf, splitBody, workloadEntry, type BodyPart } from '../../src/ephor/body.js';
import type { ScanConfig } from '../../src/ephor/contract.js';
import { Spool } from '../../src/run/spool.js';
import type { DiscoveryError } from '../../src/types.js';
import { captureLog, FakeClock, FakeEphor, runInProcess, workload, type InProcessRun } from '../support/run-fakes.js';

const ALPINE = 'trivy-v0.69.3_alpine-3.10_os-pkgs.json';
const HOUR = 3_600_000;
const T0 = Date.parse('2026-03-02T06:00:00.000Z');
const NAMESPACES = ['alpha', 'beta'];
const WORKLOADS = NAMESPACES.map((ns) => workload(ns, 'web', [{ name: 'app', image: `registry.local/${ns}:1` }]));
const IMAGES = Object.fromEntries(NAMESPACES.map((ns) => [`registry.local/${ns}:1`, { report: ALPINE }]));
/** beta cannot be listed at all (RBAC): the run has nothing newer for it and sends it as `failed`. */
const BETA_FORBIDDEN: DiscoveryError[] = (['Deployment', 'StatefulSet', 'DaemonSet', 'CronJob'] as const).map(
  (kind) => ({ namespace: 'beta', kind, status: 403, reason: 'Forbidden', message: 'forbidden' }),
);

let cacheDir: string;
beforeEach(async () => {
  cacheDir = await mkdtemp(path.join(os.tmpdir(), 'run-spool-'));
});
afterEach(async () => {
  await rm(cacheDir, { recursive: true, force: true });
});

/** A run at `at` in which beta's POST gets a 500 (not retried): beta is spooled. */
async function betaFails(at: number): Promise<InProcessRun> {
  const ephor = new FakeEphor();
  ephor.answer = (post) => (post.namespace === 'beta' ? { status: 500 } : 'accept');
  const run = await runInProcess({
    namespaces: NAMESPACES,
    workloads: WORKLOADS,
    images: IMAGES,
    ephor,
    cacheDir,
    clock: new FakeClock(at),
  });
  assert.equal(run.summary.exitCode, 1);
  assert.equal(run.summary.namespaces[1]!.spooled, true);
  return run;
}

function betaUnlistable(at: number, env: Record<string, string> = {}): Promise<InProcessRun> {
  return runInProcess({
    namespaces: NAMESPACES,
    workloads: WORKLOADS.filter((w) => w.namespace !== 'beta'),
    images: IMAGES,
    cacheDir,
    clock: new FakeClock(at),
    discovery: { errors: BETA_FORBIDDEN },
    env,
  });
}

const spooledFiles = () => readdir(path.join(cacheDir, 'spool', 'beta'));

describe('the spool', () => {
  test('a namespace not delivered is spooled; the next run, which cannot deliver it itself, delivers it after its own', async () => {
    const first = await betaFails(T0);
    assert.equal((await spooledFiles()).length, 1);
    const next = await betaUnlistable(T0 + HOUR);
    assert.equal(next.summary.exitCode, 0);
    assert.deepEqual(
      next.ephor.bodiesOf('beta').map((b) => [b.status, b.workloads.length]),
      [['failed', 0]],
    );
    assert.deepEqual(
      next.ephor.files.map((f) => [f.namespace, f.body.scan_group_id, f.body.workloads.length]),
      [['beta', first.context.scanGroupId, 1]],
    );
    assert.deepEqual(next.summary.spooled, { delivered: 1, failed: 0 });
    assert.deepEqual(await spooledFiles(), [], 'delivered payloads leave the spool');
  });

  test('a namespace delivered fresh deletes its spooled payload, which is never posted', async () => {
    await betaFails(T0);
    const next = await runInProcess({
      namespaces: NAMESPACES,
      workloads: WORKLOADS,
      images: IMAGES,
      cacheDir,
      clock: new FakeClock(T0 + HOUR),
    });
    assert.equal(next.summary.exitCode, 0);
    assert.deepEqual(next.ephor.files, []);
    assert.deepEqual(await spooledFiles(), []);
  });

  test('an older payload is never delivered after a newer one: spooling a newer payload deletes the older', async () => {
    await betaFails(T0);
    const second = await betaFails(T0 + HOUR);
    assert.deepEqual(second.ephor.files, [], 'the run that spooled beta posts nothing older for it');
    assert.equal((await spooledFiles()).length, 1);
    const third = await betaUnlistable(T0 + 2 * HOUR);
    assert.deepEqual(
      third.ephor.files.map((f) => f.body.scan_group_id),
      [second.context.scanGroupId],
    );
  });

  test('a spooled payload older than SPOOL_MAX_AGE is discarded with a warning, not delivered', async () => {
    await betaFails(T0);
    const next = await betaUnlistable(T0 + 25 * HOUR);
    assert.deepEqual(next.ephor.files, []);
    const [warning] = next.log.withMsg('spooled payload older than SPOOL_MAX_AGE discarded');
    assert.deepEqual([warning!.level, warning!.namespace, warning!.max_age_h], ['warn', 'beta', 24]);
    assert.deepEqual(await spooledFiles(), []);
  });
});

describe('Spool', () => {
  /** Parts of a body of `count` workloads, each with its own findings file (missing ones are not written). */
  async function parts(dir: string, count: number, missing: number[] = []): Promise<BodyPart[]> {
    const workloads = [];
    for (let i = 0; i < count; i++) {
      const file = path.join(dir, `findings-${i}.json`);
      if (!missing.includes(i)) await writeFile(file, '[]');
      const container = containerEntry({ name: 'app', image_name: 'nginx', image_tag: '1' }, { file, bytes: 2 });
      workloads.push(workloadEntry({ namespace: 'beta', name: `w${i}`, kind: 'Deployment', labels: {} }, [container]));
    }
    const envelope = envelopeOf(
      {
        namespace: 'beta',
        scan_label: 'ephor-scanner/0.1.0',
        scan_group_id: '0b0d7c1e-8f6a-4c8e-9d3f-2a1b3c4d5e6f',
        status: 'completed',
        started_at: '2026-11-27T06:00:00.000Z',
        completed_at: '2026-11-27T06:05:00.000Z',
      },
      // Only the spool's file handling is under test: one key stands for the whole ledger.
      { scanner: 'ephor-scanner' } as ScanConfig,
    );
    // One workload per part.
    return splitBody(workloads, envelope, 1).map((part) => part);
  }

  test('a payload is spooled whole or not at all: a write that fails leaves nothing of it, and the older payload stays', async () => {
    const captured = captureLog();
    const spool = new Spool(path.join(cacheDir, 'spool'), 24 * HOUR, captured.log);
    await spool.save('beta', T0, 'a0000000-0000-0000-0000-000000000000', await parts(cacheDir, 1));
    await assert.rejects(
      spool.save('beta', T0 + HOUR, 'b0000000-0000-0000-0000-000000000000', await parts(cacheDir, 3, [2])),
      /ENOENT/,
    );
    const pending = await spool.pending(T0 + 2 * HOUR);
    assert.deepEqual(
      pending.get('beta')!.map((p) => p.startedAt),
      [T0],
    );
    assert.deepEqual((await spooledFiles()).length, 1, 'no part of the failed payload, not even a partial file');
    assert.deepEqual(captured.withMsg('spooled payload older than SPOOL_MAX_AGE discarded'), []);
  });

  test('only the newest run of a namespace is pending, with all its parts; a file still being written is not', async () => {
    const spool = new Spool(path.join(cacheDir, 'spool'), 24 * HOUR, captureLog().log);
    await spool.save('beta', T0, 'a0000000-0000-0000-0000-000000000000', await parts(cacheDir, 2));
    // A file of a later run that was killed while writing it.
    await writeFile(
      path.join(cacheDir, 'spool', 'beta', `${T0 + 2 * HOUR}-b0000000-0000-0000-0000-000000000000-1of1.json.partial`),
      '{"nam',
    );
    const pending = await spool.pending(T0 + 3 * HOUR);
    assert.deepEqual(
      pending.get('beta')!.map((p) => [p.startedAt, path.basename(p.file)]),
      [
        [T0, `${T0}-a0000000-0000-0000-0000-000000000000-1of2.json`],
        [T0, `${T0}-a0000000-0000-0000-0000-000000000000-2of2.json`],
      ],
    );
  });
});
