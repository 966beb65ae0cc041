// Keeps `npm run bench` from rotting: the benchmark's own code (cluster generator, fast-trivy.sh, one measured run
// of the built bundle, the report) in a very small configuration. The numbers themselves are not judged here.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { generateCluster, imageID } from '../../bench/cluster.js';
import { renderReport } from '../../bench/doc.js';
import { measureRun, overheadParts, parseGnuTime, slotStats } from '../../bench/measure.js';
import { writeReportTemplate } from '../../bench/report.js';
import { DEFAULT_OUTPUT, describeMachine, parseArgs } from '../../bench/run.js';
import { judge, planRuns } from '../../bench/scenarios.js';
import { FAST_TRIVY_SCRIPT, trivyStandIn } from '../../bench/stand-in.js';
import { CLI_BUNDLE, TRIVY_REPORTS_DIR } from '../support/paths.js';

const run = promisify(execFile);

test('cluster: N × W workloads of every kind with R Pods each, every image used, popular images shared', () => {
  const cluster = generateCluster({ namespaces: 3, workloadsPerNamespace: 20, replicas: 2, images: 12 });
  const kinds = (kind: string) => cluster.objects.filter((o) => o.kind === kind);
  assert.equal(cluster.stats.workloads, 60);
  assert.deepEqual(cluster.stats.byKind, { Deployment: 42, StatefulSet: 9, DaemonSet: 6, CronJob: 3 });
  assert.equal(kinds('Pod').length, 120);
  assert.equal(kinds('ReplicaSet').length, 42);
  assert.equal(kinds('Job').length, 3);
  assert.equal(kinds('ServiceAccount').length, 3);
  const running = new Set(kinds('Pod').map((p) => p.status.containerStatuses[0].imageID));
  assert.deepEqual([...running].sort(), cluster.scanRefs.slice().sort(), 'every image runs somewhere');
  assert.match(imageID(0), /^docker\.io\/library\/bench-app-00000@sha256:[0-9a-f]{64}$/);
  assert.ok(cluster.stats.topImageUses > 60 / 12, 'the most popular image is used more than an even share');
  for (const p of kinds('Pod')) assert.equal(p.metadata.ownerReferences[0].controller, true);
  assert.deepEqual(
    generateCluster({ namespaces: 3, workloadsPerNamespace: 20, replicas: 2, images: 12 }).stats,
    cluster.stats,
    'deterministic',
  );
  assert.throws(
    () => generateCluster({ namespaces: 1, workloadsPerNamespace: 2, replicas: 1, images: 3 }),
    /cannot all be used/,
  );
});

test('fast-trivy.sh and fast-trivy.c: version, DB downloads in the cache layout, a scan writes the real report naming the ref, unknown flags refused', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ephor-fast-trivy-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const template = await writeReportTemplate(path.join(dir, 'report'));
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    FAST_TRIVY_REPORT: template.dir,
    FAST_TRIVY_LATENCY_MS: '30',
    FAST_TRIVY_SCRIPT,
  };
  const cache = path.join(dir, 'cache');
  const standIn = await trivyStandIn();
  // The C stand-in is built wherever a C compiler is installed (CI's machines have one); the script is always there.
  const binaries = standIn.kind === 'c' ? [FAST_TRIVY_SCRIPT, standIn.binary] : [FAST_TRIVY_SCRIPT];
  if (standIn.kind !== 'c') t.diagnostic(`only fast-trivy.sh is checked: ${standIn.note}`);
  const fixture = JSON.parse(readFileSync(path.join(TRIVY_REPORTS_DIR, template.fixture), 'utf8'));

  for (const binary of binaries) {
    const trivy = (...args: string[]) => run(binary, args, { env, timeout: 10_000 });
    const own = path.join(cache, path.basename(binary));
    assert.deepEqual(JSON.parse((await trivy('version', '--format', 'json')).stdout), { Version: '0.69.3' });
    await trivy('image', '--download-db-only', '--cache-dir', own, '--timeout', '60s', '--no-progress');
    await trivy(
      'image',
      '--download-java-db-only',
      '--cache-dir',
      own,
      '--timeout',
      '60s',
      '--no-progress',
      '--java-db-repository',
      'mirror.example/java-db:1',
    );
    const meta = JSON.parse(await readFile(path.join(own, 'db', 'metadata.json'), 'utf8'));
    assert.equal(meta.Version, 2);
    assert.ok(Date.parse(meta.NextUpdate) > Date.now());
    assert.ok(existsSync(path.join(own, 'java-db', 'trivy-java.db')));
    const version = JSON.parse(
      (await run(binary, ['version', '--format', 'json'], { env: { ...env, TRIVY_CACHE_DIR: own } })).stdout,
    );
    assert.deepEqual(Object.keys(version), ['Version', 'VulnerabilityDB', 'JavaDB']);

    for (const ref of [`docker.io/library/app@sha256:${'a'.repeat(64)}`, 'registry.example:5000/team/app:1.4']) {
      const output = path.join(dir, 'report.json');
      const started = Date.now();
      await trivy(
        'image',
        '--format',
        'json',
        '--output',
        output,
        '--scanners',
        'vuln',
        '--list-all-pkgs=false',
        '--image-src',
        'remote',
        '--no-progress',
        '--cache-dir',
        own,
        '--timeout',
        '300s',
        '--severity',
        'CRITICAL,HIGH,MEDIUM,LOW',
        '--skip-db-update',
        '--skip-java-db-update',
        '--skip-version-check',
        '--disable-telemetry',
        ref,
      );
      assert.ok(Date.now() - started >= 30, 'it takes FAST_TRIVY_LATENCY_MS');
      const report = JSON.parse(await readFile(output, 'utf8'));
      const digestRef = ref.includes('@')
        ? ref
        : `registry.example:5000/team/app@${readFileSync(path.join(template.dir, 'digest'), 'utf8').trim()}`;
      assert.equal(report.ArtifactName, ref, path.basename(binary));
      assert.deepEqual(report.Metadata.RepoDigests, [digestRef]);
      assert.equal(report.Results[0].Target, `${ref} (alpine 3.11.5)`);
      assert.deepEqual(report.Results.slice(1), fixture.Results.slice(1), 'the rest is the real report');
    }
    await assert.rejects(
      trivy('image', '--output', path.join(dir, 'x.json'), '--format', 'json', '--bogus', 'app:1'),
      /unknown flag: --bogus/,
    );
    await assert.rejects(trivy('image', '--format', 'json', 'app:1'), /fast-trivy needs --output/);
  }
  assert.equal(template.vulnerabilities, 236);
});

test(
  'fast-trivy.c: a scan ends L after its own start, the report written first (the ideal counts L per scan, writing included)',
  { timeout: 30_000 },
  async (t) => {
    const standIn = await trivyStandIn();
    if (standIn.kind !== 'c') {
      t.skip(`no C stand-in: ${standIn.note}`);
      return;
    }
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ephor-fast-trivy-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const template = await writeReportTemplate(path.join(dir, 'report'));
    const timeline = path.join(dir, 'timeline.txt');
    const output = path.join(dir, 'out.json');
    const latencyMs = 1500;
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir,
      FAST_TRIVY_REPORT: template.dir,
      FAST_TRIVY_LATENCY_MS: String(latencyMs),
      FAST_TRIVY_SCRIPT,
      FAST_TRIVY_TIMELINE: timeline,
    };
    let exited = false;
    const scan = run(
      standIn.binary,
      ['image', '--format', 'json', '--output', output, `docker.io/library/app@sha256:${'b'.repeat(64)}`],
      { env, timeout: 10_000 },
    ).finally(() => {
      exited = true;
    });
    // Real Trivy writes --output in place (it creates the file, then writes into it), and so does the stand-in: a read
    // may see the report half written, which is "not yet", never a failure. Polled until the process exits, with no
    // window of its own, so a slow machine only makes the loop run longer.
    const completeReport = (text: string): boolean => {
      try {
        return (JSON.parse(text) as { SchemaVersion?: unknown }).SchemaVersion === 2;
      } catch {
        return false;
      }
    };
    let completeBeforeExit = false;
    while (!exited && !completeBeforeExit) {
      const text = await readFile(output, 'utf8').catch(() => '');
      completeBeforeExit = completeReport(text) && !exited;
      if (!completeBeforeExit) await new Promise((r) => setTimeout(r, 20));
    }
    await scan;
    assert.ok(completeBeforeExit, 'the whole report was there while the scan was still running');
    const [start, end] = (await readFile(timeline, 'utf8'))
      .trim()
      .split(' ')
      .map((n) => Number(n) / 1e6);
    assert.ok(end! - start! >= latencyMs, `the scan lasted ${end! - start!} ms from its start: at least L`);
  },
);

test(
  'one measured run of the bundle: scanned, delivered, counted; the report renders',
  { timeout: 60_000 },
  async (t) => {
    assert.ok(existsSync(CLI_BUNDLE), 'npm run build first');
    const measurement = await measureRun(
      {
        label: 'smoke',
        cluster: { namespaces: 2, workloadsPerNamespace: 5, replicas: 2, images: 4 },
        concurrency: 2,
        latencyMs: 20,
        report: 'real_juice-shop-v10.2.0_alpine_node-pkg_236-vulns.json',
      },
      { timeoutMs: 45_000 },
    );
    assert.deepEqual(measurement.problems, []);
    assert.equal(measurement.exitCode, 0);
    assert.deepEqual(measurement.images, { total: 4, scanned: 4, failed: 0 });
    assert.equal(measurement.bytesPerNamespace.length, 2);
    assert.ok(measurement.bytesPerNamespace.every((b) => b > 0));
    assert.ok(measurement.idealMs >= Math.ceil(4 / 2) * 20);
    assert.ok((measurement.time.maxRssKiB ?? 0) > 10_000, 'GNU time measured the scanner');
    assert.ok(
      (measurement.cpuUserS ?? 0) > 0 &&
        measurement.discoveryMs !== undefined &&
        measurement.timeline.lastScanned !== undefined,
    );
    if (measurement.trivyStandIn.kind === 'c') {
      assert.equal(measurement.slots?.scans, 4, 'the C stand-in recorded every scan');
      assert.ok(measurement.slots.meanLifetimeMs >= 20 && measurement.slots.firstStartMs! > 0);
    }

    const machine = await describeMachine();
    const markdown = renderReport({
      machine,
      startedAt: new Date(),
      durationMs: 1000,
      quick: true,
      command: 'npm run bench -- --quick',
      results: [{ scenario: 'overhead', measurement }],
    });
    assert.match(markdown, /^# Performance/);
    assert.match(markdown, /\| nproc \|/);
    assert.match(markdown, /npm run bench/);
    assert.match(markdown, /Wall \/ ideal/);
    if (measurement.slots) assert.match(markdown, /### Trivy slots/);
    if (measurement.slots) assert.match(markdown, /### Where the overhead goes/);
    if (measurement.trivyStandIn.kind === 'c') {
      assert.ok(machine.processStartFromCMs! > 0, 'with a C compiler, the process start from C is measured too');
      assert.match(markdown, /posix_spawn, median of 30/);
    }
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ephor-bench-doc-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await writeFile(path.join(dir, 'performance.md'), markdown);
  },
);

test('Trivy slots: each exit is paired with the start that refilled its slot; empty slot time counts until the last start', () => {
  const ms = (n: number) => String(n * 1e6);
  const lines = [
    [0, 100],
    [0, 100],
    [105, 205],
    [110, 210],
  ]
    .map(([s, e]) => `${ms(s!)} ${ms(e!)}`)
    .join('\n');
  const stats = slotStats(lines, 2, -50);
  assert.deepEqual(stats, {
    scans: 4,
    meanLifetimeMs: 100,
    firstStartMs: 50,
    gapMedianMs: 10,
    gapP90Ms: 10,
    idleWallMs: 7.5,
  });
  assert.equal(slotStats('', 2, 0), undefined, 'no timeline: the bash stand-in');
});

test('where the overhead goes: each part from its own measurement, the rest is what they leave unexplained', () => {
  // U = 10, C = 4 → 3 rounds of L = 100 ms; T_db 40 ms → ideal 340 ms
  const measurement = {
    wallMs: 600,
    idealMs: 340,
    dbMs: { total: 40 },
    timeline: { lastScanned: 470, completed: 500 },
    slots: { scans: 10, meanLifetimeMs: 102, firstStartMs: 90, gapMedianMs: 5, gapP90Ms: 9, idleWallMs: 60 },
    config: { latencyMs: 100, concurrency: 4 },
    cluster: { images: 10 },
  } as unknown as Parameters<typeof overheadParts>[0];
  assert.deepEqual(overheadParts(measurement), {
    overhead: 260,
    outsideLog: 100,
    firstStartBeyondDb: 50,
    emptySlots: 60,
    lifetimeBeyondL: 6,
    afterLastScan: 30,
    rest: 14,
  });
  assert.equal(overheadParts({ ...measurement, slots: undefined }), undefined, 'no timeline: the bash stand-in');
});

test('options, plan and targets', () => {
  assert.deepEqual(parseArgs([]), {
    scenarios: ['overhead', 'discovery', 'memory', 'incremental', 'sharded'],
    quick: false,
    repeat: 3,
    output: DEFAULT_OUTPUT,
    json: undefined,
    fromJson: undefined,
    cpuProfDir: undefined,
    nodeArgs: [],
    keep: false,
  });
  assert.deepEqual(parseArgs(['--node-arg=--trace-gc', '--node-arg', '--max-old-space-size=200']).nodeArgs, [
    '--trace-gc',
    '--max-old-space-size=200',
  ]);
  assert.equal(parseArgs(['--quick']).output, undefined, 'a quick run writes nothing unless told');
  assert.deepEqual(parseArgs(['--scenario', 'overhead,memory', '--repeat=2']).scenarios, ['overhead', 'memory']);
  assert.throws(() => parseArgs(['--scenario', 'speed']), /unknown scenario speed/);
  const full = planRuns(['overhead', 'discovery', 'memory'], { quick: false, repeat: 3 });
  assert.deepEqual(
    full.map((r) => `${r.scenario}:${r.config.cluster.images}`),
    ['overhead:500', 'overhead:500', 'overhead:500', 'memory:250', 'memory:500', 'memory:1000', 'memory:2000'],
  );
  assert.equal(full.at(-1)!.config.cluster.namespaces * full.at(-1)!.config.cluster.workloadsPerNamespace, 20_000);
  assert.deepEqual(
    planRuns(['discovery'], { quick: false, repeat: 3 }).map((r) => `${r.scenario}:${r.config.cluster.images}`),
    ['discovery:250'],
  );
  assert.deepEqual(judge([], false), []);
  assert.deepEqual(parseGnuTime('\tMaximum resident set size (kbytes): 1234\n\tUser time (seconds): 1.50\n'), {
    maxRssKiB: 1234,
    userS: 1.5,
    systemS: undefined,
    elapsed: undefined,
  });
});
