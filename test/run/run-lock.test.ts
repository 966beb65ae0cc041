// The run lock in a whole scan run, in-process (src/run/run-lock.ts and its wiring in run.ts and deliveries.ts), with
// a fake lock that says what happened when: taken before the first scan and released after the last POST; a run
// that did not get it scans and posts nothing and exits 1; a fence before every POST attempt, retries included
// (with the real Ephor client against the Ephor stand-in); a lost lock stops the posts, leaves the spool alone and
// ends in exit 1; an unavailable Lease API (old RBAC) lets the run deliver, as before the lock existed.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { ephorClient } from '../../src/run/adapters.js';
import { summaryTable } from '../../src/run/summary.js';
import type { Workload } from '../../src/types.js';
import { startEphorServer } from '../support/ephor-server.js';
import { FakeEphor, prepareRun, runInProcess, workload, type FakeImage } from '../support/run-fakes.js';
import { FAKE_LEASE, FakeRunLock, OTHER_HOLDER, type FakeLockEvent } from '../support/run-lock-fakes.js';

const ALPINE = 'trivy-v0.69.3_alpine-3.10_os-pkgs.json';
const NAMESPACES = ['shop', 'blog', 'empty'];
const WORKLOADS: Workload[] = [
  workload('shop', 'web', [{ name: 'app', image: 'registry.local/shop:1' }]),
  workload('blog', 'web', [{ name: 'app', image: 'registry.local/blog:1' }]),
];
const IMAGES: Record<string, FakeImage> = {
  'registry.local/shop:1': { report: ALPINE },
  'registry.local/blog:1': { report: ALPINE },
};
/** A spooled payload an earlier run left for blog: a lost lock must leave it exactly as it is. */
const SPOOLED = `${Date.parse('2026-03-02T05:00:00.000Z')}-0b6c3b0e-93a5-4d0e-9e59-4f7f3a9b1c11-1of1.json`;

let cacheDir: string;
beforeEach(async () => {
  cacheDir = await mkdtemp(path.join(os.tmpdir(), 'run-lock-'));
});
afterEach(async () => {
  await rm(cacheDir, { recursive: true, force: true });
});

/** Every file under the spool with its size and modification time. */
async function spoolSnapshot(): Promise<string[]> {
  const root = path.join(cacheDir, 'spool');
  const entries = await readdir(root, { recursive: true }).catch(() => [] as string[]);
  const files: string[] = [];
  for (const entry of entries.sort()) {
    const info = await stat(path.join(root, entry));
    files.push(`${entry} ${info.isFile() ? info.size : 'dir'} ${info.mtimeMs}`);
  }
  return files;
}

async function seedSpool(): Promise<void> {
  const dir = path.join(cacheDir, 'spool', 'blog');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, SPOOLED), '{"namespace":"blog"}');
}

describe('the run lock in a scan run', () => {
  test('taken before the first scan, a fence before every POST, released after the last POST', async () => {
    const lock = new FakeRunLock();
    const prepared = await prepareRun({ namespaces: NAMESPACES, workloads: WORKLOADS, images: IMAGES, lock, cacheDir });
    const seen: Array<FakeLockEvent & { scans: number; posts: number }> = [];
    lock.onEvent = (event) =>
      seen.push({ ...event, scans: prepared.trivy.calls.length, posts: prepared.ephor.posts.length });
    const summary = await prepared.start();

    assert.equal(summary.exitCode, 0);
    assert.equal(prepared.ephor.posts.length, 3);
    assert.deepEqual(seen[0], { kind: 'acquire', scanGroupId: prepared.context.scanGroupId, scans: 0, posts: 0 });
    assert.deepEqual(seen.at(-1), { kind: 'release', options: { lastPostUnanswered: false }, scans: 2, posts: 3 });
    assert.equal(seen.filter((e) => e.kind === 'release').length, 1);
    // each POST came right after a fence made when the POSTs before it were done
    const fencedAt = seen.filter((e) => e.kind === 'fence').map((e) => e.posts);
    for (let post = 0; post < 3; post++) assert.ok(fencedAt.includes(post), `no fence before POST ${post + 1}`);
    assert.deepEqual(summary.lock, { state: 'acquired', lease: FAKE_LEASE });
    const record = prepared.log.withMsg('ephor-scanner completed')[0]!;
    assert.deepEqual(record.run_lock, { state: 'acquired', lease: FAKE_LEASE });
  });

  test('not acquired within RUN_LOCK_WAIT: nothing discovered, scanned or posted; exit 1 with the reason', async () => {
    const lock = new FakeRunLock();
    lock.acquisition = 'not-acquired';
    const prepared = await prepareRun({ namespaces: NAMESPACES, workloads: WORKLOADS, images: IMAGES, lock, cacheDir });
    let discovered = 0;
    const discover = prepared.deps.discovery.discover.bind(prepared.deps.discovery);
    prepared.deps.discovery = { discover: () => (discovered++, discover()) };
    const summary = await prepared.start();

    assert.equal(summary.exitCode, 1);
    assert.equal(discovered, 0);
    assert.deepEqual([prepared.trivy.calls.length, prepared.ephor.posts.length], [0, 0]);
    assert.deepEqual(
      lock.events.map((e) => e.kind),
      ['acquire'],
      'no fence, and no release of a lock never held',
    );
    assert.equal(summary.lock?.state, 'not-acquired');
    assert.equal(summary.lock?.holder, OTHER_HOLDER);
    const record = prepared.log.withMsg('ephor-scanner completed')[0]!;
    assert.equal(record.level, 'error');
    assert.match(
      (record.run_lock as { message: string }).message,
      /another run holds it.*nothing was scanned or posted/,
    );
    assert.deepEqual(await spoolSnapshot(), []);
  });

  test('lost between two POSTs: no more POSTs, the spool untouched, scans stopped, exit 1 saying why', async () => {
    await seedSpool();
    const before = await spoolSnapshot();
    const lock = new FakeRunLock();
    const ephor = new FakeEphor();
    // empty (no image) is posted first; while shop's POST is accepted a background renewal finds another run holding
    // the Lease; blog is still being scanned
    ephor.answer = (post) => {
      if (post.namespace === 'shop') lock.lose();
      return 'accept';
    };
    const run = await runInProcess({
      namespaces: NAMESPACES,
      workloads: WORKLOADS,
      images: { ...IMAGES, 'registry.local/blog:1': { hang: true } },
      lock,
      ephor,
      cacheDir,
    });

    assert.equal(run.summary.exitCode, 1);
    assert.deepEqual(
      ephor.posts.map((p) => p.namespace),
      ['empty', 'shop'],
    );
    assert.deepEqual(ephor.files, [], 'no spooled payload posted');
    assert.deepEqual(await spoolSnapshot(), before, 'nothing written to or removed from the spool');
    const [shop, blog, empty] = run.summary.namespaces;
    assert.deepEqual([empty?.delivered, empty?.error], [true, undefined]);
    assert.equal(shop?.delivered, true, 'posted while the lock held');
    assert.match(shop?.error ?? '', /^delivered, but the spool was left as it was .*run lock lost/);
    assert.equal(blog?.delivered, false);
    assert.match(blog?.error ?? '', /^not sent: run lock lost: the Lease ephor\/ephor-scanner is now held by/);
    assert.equal(run.summary.images.failedByReason.cancelled, 1, "blog's scan was stopped: nothing could be posted");
    assert.deepEqual(run.summary.lock, {
      state: 'lost',
      lease: FAKE_LEASE,
      holder: OTHER_HOLDER,
      message: `run lock lost: the Lease ${FAKE_LEASE} is now held by "${OTHER_HOLDER}"; nothing more was posted or written to the spool`,
    });
    assert.match(summaryTable(run.summary), /^Run lock ephor\/ephor-scanner LOST: run lock lost: /m);
    assert.equal(lock.events.at(-1)?.kind, 'release');
    assert.equal(run.log.withMsg('delivery step failed unexpectedly: the run exits 1').length, 0);
  });

  test('a POST that failed while the lock was lost is not spooled', async () => {
    const lock = new FakeRunLock();
    const ephor = new FakeEphor();
    ephor.answer = (post) => {
      if (post.namespace !== 'blog') return 'accept';
      lock.lose();
      return { status: 500 };
    };
    const run = await runInProcess({
      namespaces: NAMESPACES,
      workloads: WORKLOADS,
      images: IMAGES,
      lock,
      ephor,
      cacheDir,
    });

    assert.equal(run.summary.exitCode, 1);
    const blog = run.summary.namespaces.find((n) => n.namespace === 'blog');
    assert.equal(blog?.delivered, false);
    assert.equal(blog?.spooled, undefined);
    assert.deepEqual(await spoolSnapshot(), [], 'the failed payload was not spooled');
    assert.equal(run.log.withMsg('payload could not be spooled').length, 0);
    assert.equal(run.summary.lock?.state, 'lost');
  });

  test('lost during the last namespace POST: no SBOM is posted, each counts as failed', async () => {
    const lock = new FakeRunLock();
    const ephor = new FakeEphor();
    ephor.answer = () => {
      if (ephor.posts.length === 3) lock.lose();
      return 'accept';
    };
    const run = await runInProcess({
      namespaces: NAMESPACES,
      workloads: WORKLOADS,
      images: IMAGES,
      lock,
      ephor,
      cacheDir,
      env: { SBOM_ENABLED: 'true' },
    });
    assert.equal(run.summary.exitCode, 1);
    assert.deepEqual(ephor.sboms, []);
    assert.deepEqual(run.summary.sboms, { delivered: 0, failed: 2, skipped: 0 });
    assert.equal(run.summary.lock?.state, 'lost');
  });

  test('the Lease API refused (old RBAC): the run goes on unlocked and delivers, exit 0', async () => {
    const lock = new FakeRunLock();
    lock.acquisition = 'unavailable';
    const run = await runInProcess({ namespaces: NAMESPACES, workloads: WORKLOADS, images: IMAGES, lock, cacheDir });
    assert.equal(run.summary.exitCode, 0);
    assert.equal(run.ephor.posts.length, 3);
    assert.equal(run.summary.lock?.state, 'unlocked');
    assert.match(summaryTable(run.summary), /^Run lock ephor\/ephor-scanner UNAVAILABLE: run lock unavailable/m);
  });

  test('the last POST unanswered: the lease is left to expire instead of released', async () => {
    const lock = new FakeRunLock();
    const ephor = new FakeEphor();
    ephor.answer = () =>
      ephor.posts.length === 3 ? { error: 'no answer within 300000 ms (EPHOR_TIMEOUT)' } : 'accept';
    const run = await runInProcess({
      namespaces: NAMESPACES,
      workloads: WORKLOADS,
      images: IMAGES,
      lock,
      ephor,
      cacheDir,
    });
    assert.equal(run.summary.exitCode, 1);
    assert.deepEqual(lock.events.at(-1), { kind: 'release', options: { lastPostUnanswered: true } });
  });

  test('a dry run takes no lock; a shutdown and an unexpected error still release it', async () => {
    const dryLock = new FakeRunLock();
    const dry = await runInProcess({
      namespaces: NAMESPACES,
      workloads: WORKLOADS,
      images: IMAGES,
      lock: dryLock,
      cacheDir,
      env: { EPHOR_DRY_RUN: 'true', EPHOR_OUTPUT_DIR: path.join(cacheDir, 'out') },
    });
    assert.equal(dry.summary.exitCode, 0);
    assert.deepEqual(dryLock.events, []);
    assert.deepEqual(dry.summary.lock, { state: 'dry-run' });

    const lock = new FakeRunLock();
    const prepared = await prepareRun({ namespaces: NAMESPACES, workloads: WORKLOADS, images: IMAGES, lock, cacheDir });
    prepared.deps.discovery = { discover: () => Promise.reject(new Error('boom')) };
    await assert.rejects(prepared.start(), /boom/);
    assert.deepEqual(
      lock.events.map((e) => e.kind),
      ['acquire', 'release'],
    );

    const stopped = new FakeRunLock();
    const signal = new AbortController();
    signal.abort();
    const interrupted = await runInProcess({
      namespaces: NAMESPACES,
      workloads: WORKLOADS,
      images: IMAGES,
      lock: stopped,
      cacheDir,
      shutdown: signal.signal,
    });
    assert.equal(interrupted.summary.exitCode, 1);
    assert.equal(interrupted.summary.interrupted, true);
    assert.equal(stopped.events.at(-1)?.kind, 'release');
  });
});

describe('the fence with the real Ephor client', () => {
  test('before every attempt, retries included; refused on a retry: the retry is not sent', async (t) => {
    const ephor = await startEphorServer({ script: [{ status: 503 }] });
    t.after(() => ephor.close());
    const lock = new FakeRunLock();
    const prepared = await prepareRun({
      namespaces: ['shop'],
      workloads: WORKLOADS.slice(0, 1),
      images: IMAGES,
      lock,
      cacheDir,
      env: { EPHOR_API_URL: ephor.url },
    });
    prepared.deps.ephor = ephorClient(prepared.config, prepared.log.log, { backoffBaseMs: 1 });
    const requestsAtFence: number[] = [];
    lock.onEvent = (event) => {
      if (event.kind === 'fence') requestsAtFence.push(ephor.requests.length);
    };
    const summary = await prepared.start();
    assert.equal(summary.exitCode, 0);
    assert.deepEqual(
      ephor.requests.map((r) => r.response.status),
      [503, 201],
    );
    // fence 1 before the first attempt, fence 2 before the retry; then the discard of the spool
    assert.deepEqual(requestsAtFence.slice(0, 2), [0, 1]);

    const refusing = new FakeRunLock();
    refusing.loseAtFence = 2;
    ephor.pushScript({ status: 503 });
    const second = await prepareRun({
      namespaces: ['shop'],
      workloads: WORKLOADS.slice(0, 1),
      images: IMAGES,
      lock: refusing,
      cacheDir,
      env: { EPHOR_API_URL: ephor.url },
    });
    second.deps.ephor = ephorClient(second.config, second.log.log, { backoffBaseMs: 1 });
    const refused = await second.start();
    assert.equal(refused.exitCode, 1);
    assert.deepEqual(
      ephor.requests.slice(2).map((r) => r.response.status),
      [503],
      'the retry after the backoff was not sent',
    );
    assert.equal(refused.namespaces[0]?.delivered, false);
    assert.equal(refused.lock?.state, 'lost');
  });
});
