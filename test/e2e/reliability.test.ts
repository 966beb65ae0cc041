// Delivery that survives the real world: bounded bodies split by whole workloads, 413 halving, the spool for what
// cannot be delivered, the run deadline, OOM-killed scans retried alone, dry runs, huge reports and full disks.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { ScanIngestRequest } from '../../src/types.js';
import { validate } from '../support/contract.js';
import { deployment } from '../support/k8s-objects.js';
import { logsWith, runScanner, scannedRef, startStandIns, type StandIns } from '../support/harness.js';
import type { FakeTrivyScenario } from '../support/fake-trivy.js';

const JUICE = 'real_juice-shop-v10.2.0_alpine_node-pkg_236-vulns.json';
const ALPINE = 'trivy-v0.69.3_alpine-3.10_os-pkgs.json';

/** `count` Deployments in `namespace`, each with its own image `registry.local/<namespace>-<i>:1`. */
function deployments(namespace: string, count: number, containersEach = 1) {
  return Array.from({ length: count }, (_, i) =>
    deployment({
      namespace,
      name: `app-${i}`,
      containers: Array.from({ length: containersEach }, (_, c) => ({
        name: `c${c}`,
        image: `registry.local/${namespace}-${i}-${c}:1`,
      })),
    }),
  );
}
function reports(namespace: string, count: number, report = JUICE, containersEach = 1): FakeTrivyScenario['images'] {
  return Object.fromEntries(
    Array.from({ length: count * containersEach }, (_, k) => [
      `registry.local/${namespace}-${Math.floor(k / containersEach)}-${k % containersEach}:1`,
      { report },
    ]),
  );
}

const bodies = (standIns: StandIns) => standIns.ephor.scanIngests().map((r) => r.body as ScanIngestRequest);
const containersOf = (payloads: ScanIngestRequest[]) =>
  payloads
    .flatMap((p) =>
      p.workloads.flatMap((w) => w.containers.map((c) => `${w.name}/${c.name}/${c.vulnerabilities.length}`)),
    )
    .sort();

// A hang guard for the whole suite: every run in it has its own bound (runScanner). The suite takes about 45 s on an
// idle machine and took 194 s on the loaded one (the 200 MB report alone 103 s), too close to a 300 s bound.
describe('reliability', { timeout: 600_000 }, () => {
  test('a body over EPHOR_MAX_PAYLOAD_BYTES is split by whole workloads; all parts share the group id', async () => {
    const standIns = await startStandIns({
      cluster: { objects: deployments('big', 6) },
      trivy: { images: reports('big', 6) },
    });
    try {
      const run = await runScanner({ ...standIns.env, SCAN_NAMESPACES: 'big', EPHOR_MAX_PAYLOAD_BYTES: '1Mi' });
      assert.equal(run.exitCode, 0, run.stdout);
      const posts = standIns.ephor.scanIngests();
      assert.ok(posts.length >= 2, `${posts.length} parts`);
      for (const post of posts) {
        assert.deepEqual(post.contractErrors, []);
        assert.ok(post.rawBody.length <= 1024 * 1024, `part of ${post.rawBody.length} bytes`);
        assert.equal(Number(post.headers['content-length']), post.rawBody.length);
      }
      const payloads = bodies(standIns);
      assert.equal(new Set(payloads.map((p) => p.scan_group_id)).size, 1);
      assert.deepEqual(
        containersOf(payloads),
        Array.from({ length: 6 }, (_, i) => `app-${i}/c0/197`).sort(),
        'every container exactly once, never split',
      );
      assert.deepEqual(
        payloads.map((p) => (p.scan_config.part as { index: number }).index),
        payloads.map((_, i) => i + 1),
      );
      assert.equal(standIns.ephor.maxConcurrentIngests, 1);
    } finally {
      await standIns.close();
    }
  });

  test('413 from a proxy: the part is halved and resent; nothing is lost', async () => {
    const standIns = await startStandIns({
      cluster: { objects: deployments('shop', 4) },
      trivy: { images: reports('shop', 4) },
      ephor: { script: [{ status: 413 }] },
    });
    try {
      const run = await runScanner({ ...standIns.env, SCAN_NAMESPACES: 'shop' });
      assert.equal(run.exitCode, 0, run.stdout);
      assert.equal(
        logsWith(run, 'the body was too large for a proxy in front of Ephor (413): sending it in smaller parts').length,
        1,
      );
      const [refused, ...resent] = standIns.ephor.requests.filter((r) => r.path === '/api/v1/scans/ingest');
      assert.equal(refused!.response.status, 413);
      assert.ok(
        resent.length >= 2 &&
          resent.every((r) => r.response.status === 201 && r.rawBody.length <= refused!.rawBody.length / 2),
      );
      assert.deepEqual(
        containersOf(bodies(standIns)),
        Array.from({ length: 4 }, (_, i) => `app-${i}/c0/197`).sort(),
        'every container exactly once',
      );
    } finally {
      await standIns.close();
    }
  });

  describe('the spool', () => {
    const objects = [...deployments('alpha', 1), ...deployments('beta', 1)];
    const images = { ...reports('alpha', 1, ALPINE), ...reports('beta', 1, ALPINE) };

    async function firstRunFailsForBeta(): Promise<{
      standIns: StandIns;
      spoolDir: string;
      cacheDir: string;
      group: string;
    }> {
      const cacheDir = await mkdtemp(path.join(os.tmpdir(), 'ephor-spool-'));
      // alpha is posted first (listed first); beta's POST gets a 500, which is not retried.
      const standIns = await startStandIns({
        cluster: { objects },
        trivy: { images },
        ephor: { script: [{}, { status: 500 }] },
      });
      const run = await runScanner({
        ...standIns.env,
        SCAN_NAMESPACES: 'alpha,beta',
        SCAN_CONCURRENCY: '1',
        TRIVY_CACHE_DIR: cacheDir,
      });
      assert.equal(run.exitCode, 1);
      const [spooled] = logsWith(
        run,
        'payload spooled: the next run delivers it if it cannot deliver this namespace itself',
      );
      assert.equal(spooled!.namespace, 'beta');
      const group = String(run.logs[0]!.scan_group_id);
      await standIns.close();
      return { standIns, spoolDir: path.join(cacheDir, 'spool'), cacheDir, group };
    }

    test('a namespace not delivered is spooled; the next run, which cannot deliver it itself, delivers the spooled payload', async () => {
      const first = await firstRunFailsForBeta();
      assert.equal((await readdir(path.join(first.spoolDir, 'beta'))).length, 1);
      // Next run: beta cannot be listed (RBAC), so this run has nothing newer for it.
      const standIns = await startStandIns({
        cluster: {
          objects,
          faults: ['deployments', 'statefulsets', 'daemonsets', 'cronjobs'].map((resource) => ({
            resource: resource as 'deployments',
            namespace: 'beta',
            status: 403 as const,
          })),
        },
        trivy: { images },
      });
      try {
        const run = await runScanner({
          ...standIns.env,
          SCAN_NAMESPACES: 'alpha,beta',
          TRIVY_CACHE_DIR: first.cacheDir,
        });
        assert.equal(run.exitCode, 0, run.stdout);
        const [delivered] = logsWith(run, 'spooled payload of an earlier run delivered');
        assert.equal(delivered!.namespace, 'beta');
        const beta = bodies(standIns).filter((p) => p.namespace === 'beta');
        // This run's own (failed, empty) report first, then the older spooled one with the findings.
        assert.deepEqual(
          beta.map((p) => [p.status, p.scan_group_id === first.group, p.workloads.length]),
          [
            ['failed', false, 0],
            ['completed', true, 1],
          ],
        );
        assert.deepEqual(await readdir(path.join(first.spoolDir, 'beta')), [], 'delivered payloads leave the spool');
      } finally {
        await standIns.close();
        await rm(first.cacheDir, { recursive: true, force: true });
      }
    });

    test('a namespace delivered fresh discards its spooled payload: an older result is never posted after a newer one', async () => {
      const first = await firstRunFailsForBeta();
      const standIns = await startStandIns({ cluster: { objects }, trivy: { images } });
      try {
        const run = await runScanner({
          ...standIns.env,
          SCAN_NAMESPACES: 'alpha,beta',
          TRIVY_CACHE_DIR: first.cacheDir,
        });
        assert.equal(run.exitCode, 0);
        assert.equal(logsWith(run, 'spooled payload of an earlier run delivered').length, 0);
        assert.ok(bodies(standIns).every((p) => p.scan_group_id !== first.group));
        assert.deepEqual(await readdir(path.join(first.spoolDir, 'beta')), []);
      } finally {
        await standIns.close();
        await rm(first.cacheDir, { recursive: true, force: true });
      }
    });

    test('a spooled payload older than SPOOL_MAX_AGE is discarded, not delivered', async () => {
      const first = await firstRunFailsForBeta();
      await new Promise((resolve) => setTimeout(resolve, 1200));
      const standIns = await startStandIns({
        cluster: { objects, faults: [{ resource: 'deployments', namespace: 'beta', status: 403 }] },
        trivy: { images },
      });
      try {
        const run = await runScanner({
          ...standIns.env,
          SCAN_NAMESPACES: 'alpha,beta',
          TRIVY_CACHE_DIR: first.cacheDir,
          SPOOL_MAX_AGE: '1s',
          SCAN_WORKLOAD_TYPES: 'Deployment',
        });
        assert.equal(logsWith(run, 'spooled payload older than SPOOL_MAX_AGE discarded').length, 1);
        assert.ok(bodies(standIns).every((p) => p.scan_group_id !== first.group));
      } finally {
        await standIns.close();
        await rm(first.cacheDir, { recursive: true, force: true });
      }
    });
  });

  test('SCAN_DEADLINE: the scan running at the deadline is killed, the waiting ones are dropped unstarted, all recorded as deadline; what is done is delivered', async () => {
    // SCAN_DEADLINE counts from the scanner's own start, which a loaded machine can delay by seconds, so nothing here
    // depends on how long the start takes: one scan at a time; app-0 is quick, every other image would take far
    // longer than the deadline. app-1 starts (the average so far fits in what is left) and runs into the deadline;
    // app-2, handed over ahead, and the rest never start. The rule "no scan starts when the time left cannot fit
    // the average" itself is proven with a moved clock in test/run/schedule.test.ts.
    const DEADLINE_S = 20;
    const images = Object.fromEntries(
      Object.entries(reports('slow', 6, ALPINE)!).map(([ref, b], i) => [ref, i === 0 ? b : { ...b, delayMs: 600_000 }]),
    );
    const standIns = await startStandIns({ cluster: { objects: deployments('slow', 6) }, trivy: { images } });
    try {
      const run = await runScanner({
        ...standIns.env,
        SCAN_NAMESPACES: 'slow',
        SCAN_CONCURRENCY: '1',
        SCAN_DEADLINE: `${DEADLINE_S}s`,
      });
      assert.equal(run.exitCode, 0, run.stdout);
      const [payload] = bodies(standIns);
      assert.deepEqual(
        payload!.workloads.map((w) => w.name),
        ['app-0'],
      );
      const ledger = payload!.scan_config.not_delivered as Array<{ workload: string; reason: string; detail: string }>;
      assert.deepEqual(ledger.map((e) => [e.workload, e.reason, e.detail]).sort(), [
        ['app-1', 'deadline', 'killed at SCAN_DEADLINE'],
        ['app-2', 'deadline', 'SCAN_DEADLINE left no time to scan this image'],
        ['app-3', 'deadline', 'SCAN_DEADLINE left no time to scan this image'],
        ['app-4', 'deadline', 'SCAN_DEADLINE left no time to scan this image'],
        ['app-5', 'deadline', 'SCAN_DEADLINE left no time to scan this image'],
      ]);
      // The ledger's details tell a killed scan from one never started; only app-0's Trivy ended on its own.
      assert.deepEqual((await standIns.scans()).map(scannedRef), ['registry.local/slow-0-0:1']);
      assert.equal(logsWith(run, 'SCAN_DEADLINE reached: delivering what is done').length, 1);
    } finally {
      await standIns.close();
    }
  });

  test('a Trivy killed by a signal (OOM) is retried once, alone; killed again it is recorded as killed', async () => {
    const again = 'registry.local/oom-0-0:1';
    const once = 'registry.local/oom-1-0:1';
    const images = {
      ...reports('oom', 4, ALPINE),
      [again]: { signal: 'SIGKILL' as const },
      [once]: { sequence: [{ signal: 'SIGKILL' as const }, { report: ALPINE }] },
    };
    const standIns = await startStandIns({ cluster: { objects: deployments('oom', 4) }, trivy: { images } });
    try {
      const run = await runScanner({ ...standIns.env, SCAN_NAMESPACES: 'oom', SCAN_CONCURRENCY: '4' });
      assert.equal(run.exitCode, 0, run.stdout);
      const scans = await standIns.scans();
      assert.equal(scans.filter((s) => scannedRef(s) === again).length, 2);
      assert.equal(scans.filter((s) => scannedRef(s) === once).length, 2);
      const retries = scans.filter((s) => [again, once].includes(scannedRef(s))).slice(-2);
      const others = scans.filter((s) => !retries.includes(s));
      for (const retry of retries) {
        const overlapping = scans.filter(
          (s) =>
            s !== retry &&
            Date.parse(s.startedAt) < Date.parse(retry.endedAt!) &&
            Date.parse(s.endedAt!) > Date.parse(retry.startedAt),
        );
        assert.deepEqual(overlapping.map(scannedRef), [], 'the retry runs alone');
        assert.ok(others.every((o) => Date.parse(o.endedAt!) <= Date.parse(retry.startedAt)));
      }
      const [payload] = bodies(standIns);
      assert.deepEqual(
        (payload!.scan_config.not_delivered as Array<{ workload: string; reason: string }>).map((e) => [
          e.workload,
          e.reason,
        ]),
        [['app-0', 'killed']],
      );
      assert.equal(payload!.workloads.length, 3);
    } finally {
      await standIns.close();
    }
  });

  test('dry run: nothing is posted, one file per namespace that validates against the contract; no API needed', async () => {
    const outputDir = await mkdtemp(path.join(os.tmpdir(), 'ephor-dry-'));
    const standIns = await startStandIns({
      cluster: { objects: [...deployments('alpha', 2), ...deployments('beta', 1)] },
      trivy: { images: { ...reports('alpha', 2, ALPINE), ...reports('beta', 1, ALPINE) } },
    });
    try {
      const { EPHOR_API_URL: _unused, ...env } = standIns.env;
      const run = await runScanner({
        ...env,
        SCAN_NAMESPACES: 'alpha,beta,empty',
        EPHOR_DRY_RUN: 'true',
        EPHOR_OUTPUT_DIR: outputDir,
      });
      assert.equal(run.exitCode, 0, run.stdout);
      assert.equal(standIns.ephor.requests.length, 0);
      assert.deepEqual((await readdir(outputDir)).sort(), ['alpha.json', 'beta.json', 'empty.json']);
      for (const file of await readdir(outputDir)) {
        const payload = JSON.parse(await readFile(path.join(outputDir, file), 'utf8')) as ScanIngestRequest;
        assert.deepEqual(validate('ingest-request', payload), []);
      }
      assert.equal(logsWith(run, 'dry run: payload written, not posted').length, 3);
    } finally {
      await standIns.close();
      await rm(outputDir, { recursive: true, force: true });
    }
  });

  test('a 200 MB report is read with bounded memory', async () => {
    const standIns = await startStandIns({
      cluster: { objects: deployments('huge', 1) },
      trivy: { images: { 'registry.local/huge-0-0:1': { hugeMB: 200 } } },
    });
    try {
      const run = await runScanner(
        { ...standIns.env, SCAN_NAMESPACES: 'huge', SCAN_SEVERITY: 'CRITICAL', EPHOR_TIMEOUT: '120' },
        { timeoutMs: 240_000 },
      );
      assert.equal(run.exitCode, 0, run.stdout.slice(-3000));
      const [summary] = logsWith(run, 'ephor-scanner completed');
      const rss = (summary!.resources as { max_rss_mib: number }).max_rss_mib;
      // The report alone is 200 MiB; the scanner's baseline is about 80 MiB.
      assert.ok(rss < 200, `peak RSS ${rss} MiB while reading a 200 MB report`);
      const [payload] = bodies(standIns);
      assert.ok(payload!.workloads[0]!.containers[0]!.vulnerabilities.length > 0);
    } finally {
      await standIns.close();
    }
  });

  test('a full temporary disk: the scan fails as no_space with the fix, the rest is delivered', async () => {
    const standIns = await startStandIns({
      cluster: { objects: deployments('disk', 2) },
      // The disk-full text of ../shared/fixtures/trivy/errors.md §7 (Trivy's troubleshooting guide).
      trivy: {
        images: {
          ...reports('disk', 1, ALPINE),
          'registry.local/disk-1-0:1': {
            fatal: 'image scan failed: failed to copy the image: write /tmp/fanal-3323732142: no space left on device',
          },
        },
      },
    });
    try {
      const run = await runScanner({ ...standIns.env, SCAN_NAMESPACES: 'disk' });
      assert.equal(run.exitCode, 0, run.stdout);
      const [payload] = bodies(standIns);
      const [entry] = payload!.scan_config.not_delivered as Array<{ reason: string; detail: string }>;
      assert.equal(entry!.reason, 'no_space');
      assert.match(entry!.detail, /no space left on device/);
      const [summary] = logsWith(run, 'ephor-scanner completed');
      assert.match(JSON.stringify(summary!.top_failures), /give it a larger \/tmp/);
    } finally {
      await standIns.close();
    }
  });

  test('an unwritable TMPDIR: a clear error, exit 1', async () => {
    const standIns = await startStandIns({
      cluster: { objects: deployments('tmp', 1) },
      trivy: { images: reports('tmp', 1, ALPINE) },
    });
    try {
      const run = await runScanner({ ...standIns.env, SCAN_NAMESPACES: 'tmp', TMPDIR: '/proc/no-such-dir' });
      assert.equal(run.exitCode, 1);
      const [error] = logsWith(
        run,
        "the run's temporary directory cannot be created: nothing was scanned or delivered",
      );
      assert.match(String(error!.error), /\/proc\/no-such-dir/);
    } finally {
      await standIns.close();
    }
  });
});
