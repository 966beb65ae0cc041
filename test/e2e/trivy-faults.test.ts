// The Trivy side of a run: every real failure text, hangs, kills and broken output, a namespace in which nothing
// scans, the vulnerability/Java DB step, version-gated flags, the three cache modes, environment hygiene,
// severities and the concurrency limit. Every case runs the built CLI against the three stand-ins.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ScanIngestRequest, Severity } from '../../src/types.js';
import {
  envFingerprint,
  writeScenario,
  type FakeTrivyInvocation,
  type FakeTrivyScenario,
  type ImageBehaviour,
} from '../support/fake-trivy.js';
import { logsWith, runScanner, scannedRef, startStandIns, type ScannerRun, type StandIns } from '../support/harness.js';
import { deployment } from '../support/k8s-objects.js';
import { fixture, TRIVY_REPORTS_DIR } from '../support/paths.js';
import { processGone } from '../support/processes.js';

// ---------------------------------------------------------------- helpers

const ALPINE_REPORT = 'trivy-v0.69.3_alpine-3.10_os-pkgs.json';
const GOOD = 'ghcr.io/acme/good:1';
/** The scanner's log message for an image whose scan failed. */
const SCAN_FAILED = 'image scan failed';
/** Grace the scanner gives Trivy after TRIVY_TIMEOUT before it kills the process group (src/trivy/database.ts). */
const KILL_GRACE_MS = 2_000;

interface LedgerEntry {
  workload: string;
  kind: string;
  container: string;
  image: string;
  reason: string;
  detail: string;
}

/** `ghcr.io/acme/<name>:1`: already normalised, so the scanned ref is exactly this string. */
const image = (name: string) => `ghcr.io/acme/${name}:1`;

/** One Deployment per image in `namespace`, named after the image's repository (`ghcr.io/acme/web:1` → web). */
function deploymentsFor(namespace: string, refs: string[]) {
  return refs.map((ref) => {
    const name = ref.split('/').at(-1)!.split(/[:@]/)[0]!;
    return deployment({ namespace, name, containers: [{ name, image: ref }] });
  });
}

interface Case {
  /** namespace → image refs (one Deployment each) */
  namespaces: Record<string, string[]>;
  trivy: FakeTrivyScenario;
  env?: Record<string, string | undefined>;
  prepare?: (standIns: StandIns) => void | Promise<void>;
  timeoutMs?: number;
}

/** Starts the stand-ins, runs the scanner once; the stand-ins stay up for the checks (close them in `after`). */
async function scenario(c: Case): Promise<{ standIns: StandIns; run: ScannerRun }> {
  const objects = Object.entries(c.namespaces).flatMap(([ns, refs]) => deploymentsFor(ns, refs));
  const standIns = await startStandIns({ cluster: { objects }, trivy: c.trivy });
  try {
    await c.prepare?.(standIns);
    const run = await runScanner(
      { ...standIns.env, SCAN_NAMESPACES: Object.keys(c.namespaces).join(','), ...c.env },
      { timeoutMs: c.timeoutMs ?? 30_000 },
    );
    return { standIns, run };
  } catch (error) {
    await standIns.close();
    throw error;
  }
}

/** Runs the scanner again against the same stand-ins (same TRIVY_CACHE_DIR); returns the run and only its invocations. */
async function runAgain(
  standIns: StandIns,
  env: Record<string, string | undefined>,
): Promise<{ run: ScannerRun; invocations: FakeTrivyInvocation[] }> {
  const before = (await standIns.invocations()).length;
  const run = await runScanner({ ...standIns.env, ...env }, { timeoutMs: 30_000 });
  return { run, invocations: (await standIns.invocations()).slice(before) };
}

const reports = (refs: string[], report = ALPINE_REPORT): Record<string, ImageBehaviour> =>
  Object.fromEntries(refs.map((ref) => [ref, { report }]));

function payloadOf(standIns: StandIns, namespace: string): ScanIngestRequest {
  const payloads = standIns.ephor
    .scanIngests()
    .map((r) => r.body as ScanIngestRequest)
    .filter((p) => p.namespace === namespace);
  assert.equal(payloads.length, 1, `exactly one payload for namespace ${namespace}`);
  return payloads[0]!;
}

function ledgerOf(payload: ScanIngestRequest): LedgerEntry[] {
  return payload.scan_config.not_delivered;
}

function ledgerEntry(payload: ScanIngestRequest, ref: string): LedgerEntry | undefined {
  return ledgerOf(payload).find((e) => e.image === ref);
}

function deliveredImages(payload: ScanIngestRequest): string[] {
  return payload.workloads.flatMap((w) => w.containers.map((c) => `${c.image_name}:${c.image_tag}`)).sort();
}

function exitedWith(run: ScannerRun, code: number): void {
  assert.equal(run.exitCode, code, `exit code\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`);
}

/** Value of `--flag VALUE` in an argv. */
function flagValue(argv: string[], flag: string): string | undefined {
  const index = argv.indexOf(flag);
  return index < 0 ? undefined : argv[index + 1];
}

const isDbDownload = (i: FakeTrivyInvocation) => i.argv.includes('--download-db-only');
const isJavaDbDownload = (i: FakeTrivyInvocation) => i.argv.includes('--download-java-db-only');
const isScan = (i: FakeTrivyInvocation) => i.argv[0] === 'image' && !isDbDownload(i) && !isJavaDbDownload(i);

/** Highest number of invocations running at the same moment, from their logged start and end times. */
function maxOverlap(invocations: FakeTrivyInvocation[]): number {
  const events = invocations.flatMap((i) => {
    assert.ok(i.endedAt, `invocation ${i.pid} logged its end`);
    return [
      [Date.parse(i.startedAt), 1],
      [Date.parse(i.endedAt), -1],
    ] as const;
  });
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]); // an end before a start at the same millisecond
  let running = 0;
  let max = 0;
  for (const [, delta] of events) max = Math.max(max, (running += delta));
  return max;
}

/** Makes the cached DB look like yesterday's download, so that the next run tries to update it. */
async function ageCachedDb(cacheDir: string, dir: 'db' | 'java-db'): Promise<void> {
  const file = path.join(cacheDir, dir, 'metadata.json');
  const metadata = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString();
  await writeFile(
    file,
    JSON.stringify({ ...metadata, UpdatedAt: daysAgo(2), DownloadedAt: daysAgo(2), NextUpdate: daysAgo(1) }),
  );
}

const TRIVY_CANNOT_SCAN = 'trivy cannot scan: nothing was scanned or delivered';

// ---------------------------------------------------------------- real failure texts

/** errors.json entries that a `trivy image REF` scan prints, and the reason the ledger must give. */
const IMAGE_FAILURES: Record<string, string> = {
  'image-not-found-remote-only': 'not_found',
  'image-not-found-default-sources': 'not_found',
  'image-not-found-v058': 'not_found',
  'unauthorized-remote': 'unauthorized',
  'dockerhub-toomanyrequests': 'rate_limited',
  'timeout-real-v060': 'timeout',
  'timeout-v069': 'timeout',
};

describe('every real image-scan failure text of errors.json', { timeout: 60_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  const refOf = (id: string) => image(id);
  before(async () => {
    ({ standIns, run } = await scenario({
      namespaces: { shop: [GOOD, ...Object.keys(IMAGE_FAILURES).map(refOf)] },
      trivy: {
        images: {
          [GOOD]: { report: ALPINE_REPORT },
          ...Object.fromEntries(Object.keys(IMAGE_FAILURES).map((id) => [refOf(id), { fail: id }])),
        },
      },
      env: { SCAN_CONCURRENCY: '4' },
    }));
  });
  after(() => standIns?.close());

  test('the selection covers every entry of errors.json except the DB-download and exit-code ones', async () => {
    const entries = (
      JSON.parse(await readFile(fixture('trivy', 'errors.json'), 'utf8')) as { entries: Array<{ id: string }> }
    ).entries;
    const imageScanIds = entries
      .map((e) => e.id)
      .filter((id) => !id.startsWith('db-') && id !== 'vulns-found-with-exit-code');
    assert.deepEqual(imageScanIds.sort(), Object.keys(IMAGE_FAILURES).sort());
  });

  for (const [id, reason] of Object.entries(IMAGE_FAILURES)) {
    test(`${id}: the container is not sent and the ledger says ${reason}`, () => {
      const shop = payloadOf(standIns, 'shop');
      assert.ok(!deliveredImages(shop).includes(refOf(id)), 'its container is absent from the payload');
      assert.equal(
        shop.workloads.find((w) => w.name === id),
        undefined,
        'a workload left without containers is dropped',
      );
      const entry = ledgerEntry(shop, refOf(id));
      assert.ok(entry, `ledger entry for ${id}`);
      assert.equal(entry.reason, reason, entry.detail);
      assert.ok(entry.detail.length > 0);
    });
  }

  test('the other image of the namespace is delivered; exit 0', () => {
    exitedWith(run, 0);
    const shop = payloadOf(standIns, 'shop');
    assert.equal(shop.status, 'completed');
    assert.deepEqual(deliveredImages(shop), [GOOD]);
    assert.equal(shop.workloads.find((w) => w.name === 'good')!.containers[0]!.vulnerabilities.length, 4);
    assert.equal(ledgerOf(shop).length, Object.keys(IMAGE_FAILURES).length);
  });
});

// ---------------------------------------------------------------- hang, kill, broken output

describe('a Trivy that hangs (ignores SIGTERM, keeps a grandchild) with TRIVY_TIMEOUT=2', { timeout: 60_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  const HANG = image('hang');
  before(async () => {
    ({ standIns, run } = await scenario({
      namespaces: { shop: [HANG, GOOD] },
      trivy: { images: { [HANG]: { hang: true }, [GOOD]: { report: ALPINE_REPORT } } },
      env: { TRIVY_TIMEOUT: '2' },
    }));
  });
  after(() => standIns?.close());

  test('the scan is killed at TRIVY_TIMEOUT plus the kill grace, with reason timeout; the run finishes', () => {
    exitedWith(run, 0);
    const failed = logsWith(run, SCAN_FAILED).find((l) => l.image === HANG);
    assert.ok(failed, run.stdout);
    assert.equal(failed.reason, 'timeout');
    // Not before TRIVY_TIMEOUT plus the grace (a lower bound: a loaded machine only makes it later). A scan never
    // killed would keep the run going until runScanner's bound ends it and fails the suite.
    const took = Number(failed.duration_ms);
    assert.ok(took >= 2_000 + KILL_GRACE_MS - 100, `killed after ${took} ms`);
    assert.equal(ledgerEntry(payloadOf(standIns, 'shop'), HANG)?.reason, 'timeout');
    assert.deepEqual(deliveredImages(payloadOf(standIns, 'shop')), [GOOD]);
  });

  test('trivy and its grandchild are both dead afterwards', async () => {
    const hung = (await standIns.scans()).find((i) => scannedRef(i) === HANG);
    assert.ok(hung?.pids, 'the stand-in logged its pids');
    assert.equal(hung.pids.length, 2);
    for (const pid of hung.pids) assert.ok(await processGone(pid), `process ${pid} is gone (kill(pid, 0) → ESRCH)`);
  });
});

describe('a Trivy killed by SIGKILL, and Trivy output that is no report', { timeout: 60_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  const BROKEN: Record<string, { behaviour: ImageBehaviour; reason: string }> = {
    [image('oom')]: { behaviour: { signal: 'SIGKILL' }, reason: 'killed' },
    [image('garbage')]: { behaviour: { garbage: true }, reason: 'invalid_output' },
    [image('truncated')]: { behaviour: { truncated: true }, reason: 'invalid_output' },
    [image('empty')]: { behaviour: { empty: true }, reason: 'invalid_output' },
  };
  before(async () => {
    ({ standIns, run } = await scenario({
      namespaces: { shop: [GOOD, ...Object.keys(BROKEN)] },
      trivy: {
        images: {
          [GOOD]: { report: ALPINE_REPORT },
          ...Object.fromEntries(Object.entries(BROKEN).map(([ref, b]) => [ref, b.behaviour])),
        },
      },
    }));
  });
  after(() => standIns?.close());

  for (const [ref, { behaviour, reason }] of Object.entries(BROKEN)) {
    test(`${JSON.stringify(behaviour)} → ${reason}, container not sent`, () => {
      const shop = payloadOf(standIns, 'shop');
      assert.equal(ledgerEntry(shop, ref)?.reason, reason, JSON.stringify(ledgerEntry(shop, ref)));
      assert.ok(!deliveredImages(shop).includes(ref));
    });
  }

  test('the good image is delivered; exit 0', () => {
    exitedWith(run, 0);
    assert.deepEqual(deliveredImages(payloadOf(standIns, 'shop')), [GOOD]);
  });
});

describe('a namespace in which every image fails', { timeout: 60_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  const openFinding = {
    namespace: 'broken',
    workload: 'api',
    kind: 'Deployment',
    container: 'api',
    cveId: 'CVE-2024-1111',
    packageName: 'openssl',
    packageVersion: '3.0.1',
    scannerType: 'alpine',
  };
  before(async () => {
    ({ standIns, run } = await scenario({
      // unlisted images get the real MANIFEST_UNKNOWN failure
      namespaces: { broken: [image('api'), image('worker')], fine: [GOOD] },
      trivy: { images: { [image('worker')]: { fail: 'unauthorized-remote' }, [GOOD]: { report: ALPINE_REPORT } } },
      prepare: (s) => {
        s.ephor.seedFinding(openFinding);
      },
    }));
  });
  after(() => standIns?.close());

  test('it is posted with status failed and no workloads; its open finding stays open', () => {
    exitedWith(run, 0);
    const broken = payloadOf(standIns, 'broken');
    assert.equal(broken.status, 'failed');
    assert.deepEqual(broken.workloads, []);
    assert.deepEqual(
      ledgerOf(broken)
        .map((e) => [e.container, e.reason])
        .sort(),
      [
        ['api', 'not_found'],
        ['worker', 'unauthorized'],
      ],
    );
    assert.equal(standIns.ephor.instance(openFinding)?.status, 'open');
  });

  test('the other namespace is delivered normally', () => {
    const fine = payloadOf(standIns, 'fine');
    assert.equal(fine.status, 'completed');
    assert.deepEqual(deliveredImages(fine), [GOOD]);
  });
});

// ---------------------------------------------------------------- vulnerability DB and Java DB

describe('the vulnerability DB download fails and the cache has no DB', { timeout: 60_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  before(async () => {
    ({ standIns, run } = await scenario({
      namespaces: { shop: [GOOD] },
      trivy: { db: { download: 'db-network-unreachable-real-2024' }, images: reports([GOOD]) },
    }));
  });
  after(() => standIns?.close());

  test('exit 1 and an error log naming the cause', () => {
    exitedWith(run, 1);
    const [line] = logsWith(run, TRIVY_CANNOT_SCAN);
    assert.ok(line, run.stdout);
    assert.equal(line.level, 'error');
    assert.match(String(line.error), /no usable vulnerability database/);
    assert.match(String(line.error), /failed to download vulnerability DB/);
  });

  test('the download was tried, no image scan was started and nothing was posted', async () => {
    const invocations = await standIns.invocations();
    assert.ok(invocations.some((i) => isDbDownload(i) && i.exitCode === 1));
    assert.deepEqual(invocations.filter(isScan), []);
    assert.equal(standIns.ephor.requests.length, 0);
  });
});

describe("the vulnerability DB download fails but the cache has yesterday's DB", { timeout: 60_000 }, () => {
  let standIns: StandIns;
  let first: ScannerRun;
  let second: { run: ScannerRun; invocations: FakeTrivyInvocation[] };
  before(async () => {
    ({ standIns, run: first } = await scenario({ namespaces: { shop: [GOOD] }, trivy: { images: reports([GOOD]) } }));
    await ageCachedDb(standIns.env.TRIVY_CACHE_DIR!, 'db');
    await writeScenario(standIns.dir, { db: { download: 'db-toomanyrequests-real-2024' }, images: reports([GOOD]) });
    second = await runAgain(standIns, { SCAN_NAMESPACES: 'shop' });
  });
  after(() => standIns?.close());

  test('the first run filled the cache', () => {
    exitedWith(first, 0);
  });

  test('the second run warns, scans with --skip-db-update, delivers and exits 0', () => {
    const { run, invocations } = second;
    exitedWith(run, 0);
    assert.ok(
      invocations.some((i) => isDbDownload(i) && i.exitCode === 1),
      'the download was tried and failed',
    );
    const warning = run.logs.find((l) => l.level === 'warn' && /vulnerability DB download failed/.test(l.msg));
    assert.ok(warning, run.stdout);
    const scans = invocations.filter(isScan);
    assert.equal(scans.length, 1);
    assert.ok(scans[0]!.argv.includes('--skip-db-update'));
    const shop = standIns.ephor
      .scanIngests()
      .map((r) => r.body as ScanIngestRequest)
      .at(-1)!;
    assert.deepEqual(deliveredImages(shop), [GOOD]);
    const db = shop.scan_config.vulnerability_db as { download_error?: string };
    assert.match(String(db.download_error), /TOOMANYREQUESTS|rate/i);
  });
});

describe('TRIVY_SKIP_DB_UPDATE=true with an empty cache', { timeout: 60_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  before(async () => {
    ({ standIns, run } = await scenario({
      namespaces: { shop: [GOOD] },
      trivy: { images: reports([GOOD]) },
      env: { TRIVY_SKIP_DB_UPDATE: 'true' },
    }));
  });
  after(() => standIns?.close());

  test('exit 1 with a message naming TRIVY_SKIP_DB_UPDATE; nothing downloaded, scanned or posted', async () => {
    exitedWith(run, 1);
    const [line] = logsWith(run, TRIVY_CANNOT_SCAN);
    assert.ok(line, run.stdout);
    assert.match(String(line.error), /TRIVY_SKIP_DB_UPDATE/);
    const invocations = await standIns.invocations();
    assert.deepEqual(
      invocations.filter((i) => isDbDownload(i) || isJavaDbDownload(i)),
      [],
    );
    assert.deepEqual(invocations.filter(isScan), []);
    assert.equal(standIns.ephor.requests.length, 0);
  });
});

describe('TRIVY_SKIP_DB_UPDATE=true with a filled cache', { timeout: 60_000 }, () => {
  let standIns: StandIns;
  let second: { run: ScannerRun; invocations: FakeTrivyInvocation[] };
  before(async () => {
    ({ standIns } = await scenario({ namespaces: { shop: [GOOD] }, trivy: { images: reports([GOOD]) } }));
    second = await runAgain(standIns, { SCAN_NAMESPACES: 'shop', TRIVY_SKIP_DB_UPDATE: 'true' });
  });
  after(() => standIns?.close());

  test('no download is invoked at all; the scans run with the cached DBs; exit 0', () => {
    const { run, invocations } = second;
    exitedWith(run, 0);
    assert.deepEqual(
      invocations.filter((i) => isDbDownload(i) || isJavaDbDownload(i)).map((i) => i.argv.join(' ')),
      [],
    );
    const scans = invocations.filter(isScan);
    assert.deepEqual(scans.map(scannedRef), [GOOD]);
    assert.ok(scans[0]!.argv.includes('--skip-db-update'));
    assert.ok(scans[0]!.argv.includes('--skip-java-db-update'));
  });
});

describe('the Java DB download fails while the vulnerability DB works', { timeout: 60_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  before(async () => {
    ({ standIns, run } = await scenario({
      namespaces: { shop: [GOOD] },
      trivy: { javaDb: { download: 'db-network-unreachable-real-2024' }, images: reports([GOOD]) },
    }));
  });
  after(() => standIns?.close());

  test('a warning; scans run with --skip-db-update but WITHOUT --skip-java-db-update; exit 0', async () => {
    exitedWith(run, 0);
    assert.ok(
      run.logs.some((l) => l.level === 'warn' && /Java DB/.test(l.msg)),
      run.stdout,
    );
    const scans = await standIns.scans();
    assert.equal(scans.length, 1);
    assert.ok(scans[0]!.argv.includes('--skip-db-update'));
    assert.ok(!scans[0]!.argv.includes('--skip-java-db-update'));
    assert.deepEqual(deliveredImages(payloadOf(standIns, 'shop')), [GOOD]);
  });
});

describe('TRIVY_DB_REPO with two mirrors, the first unreachable', { timeout: 60_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  before(async () => {
    ({ standIns, run } = await scenario({
      namespaces: { shop: [GOOD] },
      trivy: {
        db: { download: { 'bad.mirror/db:2': 'db-network-unreachable-real-2024', default: 'ok' } },
        images: reports([GOOD]),
      },
      env: { TRIVY_DB_REPO: 'bad.mirror/db:2,good.mirror/db:2' },
    }));
  });
  after(() => standIns?.close());

  test('the mirrors are tried in order; the second one serves the DB and the scans run', async () => {
    const downloads = (await standIns.invocations()).filter(isDbDownload);
    assert.deepEqual(
      downloads.map((i) => [flagValue(i.argv, '--db-repository'), i.exitCode]),
      [
        ['bad.mirror/db:2', 1],
        ['good.mirror/db:2', 0],
      ],
    );
    exitedWith(run, 0);
    assert.deepEqual(deliveredImages(payloadOf(standIns, 'shop')), [GOOD]);
  });
});

describe('TRIVY_DB_REPO with two mirrors that both fail', { timeout: 60_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  before(async () => {
    ({ standIns, run } = await scenario({
      namespaces: { shop: [GOOD] },
      trivy: { db: { download: 'db-toomanyrequests-real-2024' }, images: reports([GOOD]) },
      env: { TRIVY_DB_REPO: 'bad.mirror/db:2,good.mirror/db:2' },
    }));
  });
  after(() => standIns?.close());

  test('both mirrors are tried, in the configured order, then the run stops with exit 1', async () => {
    const downloads = (await standIns.invocations()).filter(isDbDownload);
    assert.deepEqual(
      downloads.map((i) => flagValue(i.argv, '--db-repository')),
      ['bad.mirror/db:2', 'good.mirror/db:2'],
    );
    exitedWith(run, 1);
    assert.deepEqual(await standIns.scans(), []);
    assert.equal(standIns.ephor.requests.length, 0);
  });
});

// ---------------------------------------------------------------- version-gated flags

describe('Trivy versions: --skip-version-check and --disable-telemetry only from 0.63', { timeout: 60_000 }, () => {
  const OLD_REPORT = 'trivy-v0.58.0_alpine-3.10_old-shape.json';
  for (const [version, report, passed] of [
    ['0.58.0', OLD_REPORT, false],
    ['0.69.3', ALPINE_REPORT, true],
  ] as const) {
    test(`Trivy ${version}: the flags are ${passed ? '' : 'not '}passed and the scans succeed`, async () => {
      const { standIns, run } = await scenario({
        namespaces: { shop: [GOOD, image('api')] },
        trivy: { version, images: reports([GOOD, image('api')], report) },
      });
      try {
        exitedWith(run, 0);
        const scans = await standIns.scans();
        assert.equal(scans.length, 2);
        for (const scan of scans) {
          assert.equal(scan.argv.includes('--skip-version-check'), passed);
          assert.equal(scan.argv.includes('--disable-telemetry'), passed);
          assert.equal(scan.exitCode, 0, scan.behaviour);
        }
        const shop = payloadOf(standIns, 'shop');
        assert.equal(shop.trivy_version, version);
        assert.deepEqual(deliveredImages(shop), [image('api'), GOOD].sort());
        assert.equal(ledgerOf(shop).length, 0);
      } finally {
        await standIns.close();
      }
    });
  }
});

// ---------------------------------------------------------------- cache modes

describe('TRIVY_CACHE_MODE', { timeout: 60_000 }, () => {
  const refs = [image('a'), image('b'), image('c')];
  const slow = Object.fromEntries(refs.map((ref) => [ref, { report: ALPINE_REPORT, delayMs: 300 }]));

  test('shared with SCAN_CONCURRENCY=4: a warning, --cache-dir is TRIVY_CACHE_DIR, scans never overlap', async () => {
    const { standIns, run } = await scenario({
      namespaces: { shop: refs },
      trivy: { images: slow },
      env: { TRIVY_CACHE_MODE: 'shared', SCAN_CONCURRENCY: '4' },
    });
    try {
      exitedWith(run, 0);
      assert.ok(
        run.logs.some(
          (l) => l.level === 'warn' && /TRIVY_CACHE_MODE=shared/.test(l.msg) && /SCAN_CONCURRENCY/.test(l.msg),
        ),
        run.stdout,
      );
      const scans = await standIns.scans();
      assert.equal(scans.length, 3);
      for (const scan of scans) assert.equal(flagValue(scan.argv, '--cache-dir'), standIns.env.TRIVY_CACHE_DIR);
      assert.equal(maxOverlap(scans), 1);
    } finally {
      await standIns.close();
    }
  });

  test('ephemeral: each scan gets its own --cache-dir under TMPDIR', async () => {
    const { standIns, run } = await scenario({
      namespaces: { shop: refs },
      trivy: { images: reports(refs) },
      env: { TRIVY_CACHE_MODE: 'ephemeral', SCAN_CONCURRENCY: '3' },
    });
    try {
      exitedWith(run, 0);
      const dirs = (await standIns.scans()).map((scan) => flagValue(scan.argv, '--cache-dir')!);
      assert.equal(dirs.length, 3);
      assert.equal(new Set(dirs).size, 3, 'one cache directory per scan');
      for (const dir of dirs) {
        const relative = path.relative(standIns.env.TMPDIR!, dir);
        assert.ok(
          relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative),
          `${dir} is under TMPDIR`,
        );
        assert.notEqual(dir, standIns.env.TRIVY_CACHE_DIR);
      }
    } finally {
      await standIns.close();
    }
  });

  test('redis: TRIVY_CACHE_BACKEND reaches Trivy through its environment only, and its password is never logged', async () => {
    const backend = 'redis://:pw-secret@redis:6379';
    const { standIns, run } = await scenario({
      namespaces: { shop: refs },
      trivy: { images: reports(refs) },
      env: { TRIVY_CACHE_MODE: 'redis', TRIVY_CACHE_BACKEND: backend },
    });
    try {
      exitedWith(run, 0);
      const scans = await standIns.scans();
      assert.equal(scans.length, 3);
      for (const scan of scans) assert.equal(scan.env.TRIVY_CACHE_BACKEND, envFingerprint(backend));
      for (const invocation of await standIns.invocations()) {
        assert.ok(
          !invocation.argv.some((a) => a.includes('pw-secret') || a.includes('redis://')),
          invocation.argv.join(' '),
        );
      }
      assert.ok(!run.stdout.includes('pw-secret'), 'the password is in no log line');
      assert.ok(!run.stderr.includes('pw-secret'));
      assert.deepEqual(deliveredImages(payloadOf(standIns, 'shop')), [...refs].sort());
    } finally {
      await standIns.close();
    }
  });
});

// ---------------------------------------------------------------- environment hygiene and severities

describe('environment hygiene', { timeout: 60_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  before(async () => {
    ({ standIns, run } = await scenario({
      namespaces: { shop: [GOOD] },
      trivy: { images: reports([GOOD]) },
      env: { TRIVY_EXIT_CODE: '1', TRIVY_TIMEOUT: '1' },
    }));
  });
  after(() => standIns?.close());

  test("TRIVY_EXIT_CODE and TRIVY_TIMEOUT of the scanner's environment do not reach Trivy", async () => {
    exitedWith(run, 0);
    const invocations = await standIns.invocations();
    assert.ok(invocations.length >= 2);
    for (const invocation of invocations) {
      assert.ok(!('TRIVY_EXIT_CODE' in invocation.env), `${invocation.argv.join(' ')} got TRIVY_EXIT_CODE`);
      assert.ok(!('TRIVY_TIMEOUT' in invocation.env), `${invocation.argv.join(' ')} got TRIVY_TIMEOUT`);
    }
    const [scan] = await standIns.scans();
    assert.equal(
      flagValue(scan!.argv, '--timeout'),
      '1s',
      "TRIVY_TIMEOUT is the scanner's setting, passed as the flag",
    );
    assert.deepEqual(deliveredImages(payloadOf(standIns, 'shop')), [GOOD]);
  });
});

describe('SCAN_SEVERITY=critical,unknown', { timeout: 60_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  const JUICE = image('juice');
  const EDITED = image('edited');
  before(async () => {
    ({ standIns, run } = await scenario({
      namespaces: { shop: [JUICE, EDITED] },
      trivy: {},
      env: { SCAN_SEVERITY: 'critical,unknown' },
      // The fixtures hold no UNKNOWN finding: derive (at run time, in the run's temp dir) an alpine report whose
      // first finding is UNKNOWN and second CRITICAL.
      prepare: async (s) => {
        const report = JSON.parse(await readFile(path.join(TRIVY_REPORTS_DIR, ALPINE_REPORT), 'utf8'));
        const vulns = report.Results[0].Vulnerabilities as Array<{ Severity: string }>;
        vulns[0]!.Severity = 'UNKNOWN';
        vulns[1]!.Severity = 'CRITICAL';
        const edited = path.join(s.dir, 'alpine-with-unknown.json');
        await writeFile(edited, JSON.stringify(report));
        await writeScenario(s.dir, {
          images: {
            [JUICE]: { report: 'real_juice-shop-v10.2.0_alpine_node-pkg_236-vulns.json' },
            [EDITED]: { report: edited },
          },
        });
      },
    }));
  });
  after(() => standIns?.close());

  test('Trivy gets --severity CRITICAL,UNKNOWN', async () => {
    exitedWith(run, 0);
    const scans = await standIns.scans();
    assert.equal(scans.length, 2);
    for (const scan of scans) assert.equal(flagValue(scan.argv, '--severity'), 'CRITICAL,UNKNOWN');
  });

  test('the payload holds only CRITICAL and UNKNOWN findings', () => {
    const shop = payloadOf(standIns, 'shop');
    const severities = (name: string) =>
      shop.workloads.find((w) => w.name === name)!.containers[0]!.vulnerabilities.map((v) => v.severity);
    const juice = severities('juice');
    assert.ok(juice.length > 0);
    assert.ok(
      juice.every((s) => s === 'CRITICAL'),
      `juice-shop: ${[...new Set(juice)].join(',')}`,
    );
    assert.deepEqual(severities('edited').sort(), ['CRITICAL', 'UNKNOWN'] satisfies Severity[]);
  });
});

// ---------------------------------------------------------------- concurrency

describe('SCAN_CONCURRENCY limits the Trivy processes running at once', { timeout: 60_000 }, () => {
  const refs = ['a', 'b', 'c', 'd', 'e'].map(image);
  const slow = Object.fromEntries(refs.map((ref) => [ref, { report: ALPINE_REPORT, delayMs: 400 }]));
  for (const [concurrency, expected] of [
    [2, 2],
    [1, 1],
  ] as const) {
    test(`SCAN_CONCURRENCY=${concurrency}: at most ${expected} scan${expected > 1 ? 's' : ''} at a time`, async () => {
      const { standIns, run } = await scenario({
        namespaces: { shop: refs },
        trivy: { images: slow },
        env: { SCAN_CONCURRENCY: String(concurrency) },
      });
      try {
        exitedWith(run, 0);
        const scans = await standIns.scans();
        assert.equal(scans.length, 5);
        assert.equal(maxOverlap(scans), expected);
        assert.deepEqual(deliveredImages(payloadOf(standIns, 'shop')), [...refs].sort());
      } finally {
        await standIns.close();
      }
    });
  }
});
