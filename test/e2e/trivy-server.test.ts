// Server mode with the built CLI: the scanner starts `trivy server` (the stand-in, which keeps its layer cache in
// files under --cache-dir and checks the token) and scans every image as its client. An unchanged cluster scanned
// again downloads no layer and delivers the same findings; a base layer shared by many images is downloaded at most
// once per concurrent scan; the token is only ever in the environment; no server outlives the run, however it ends;
// a dead server is restarted once and its scans retried; a server that never gets healthy means ephemeral mode; an
// external TRIVY_SERVER_URL is used as it is; the layer cache is cleared on a Trivy version change and over its bound.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import type { ScanIngestRequest } from '../../src/ephor/contract.js';
import {
  FAKE_TRIVY_BIN,
  startFakeTrivyServer,
  writeScenario,
  type FakeTrivyInvocation,
  type FakeTrivyScenario,
} from '../support/fake-trivy.js';
import { logsWith, runScanner, scannedRef, startStandIns, type ScannerRun, type StandIns } from '../support/harness.js';
import { processGone } from '../support/processes.js';
import { deployment } from '../support/k8s-objects.js';

const ALPINE_REPORT = 'trivy-v0.69.3_alpine-3.10_os-pkgs.json';
const DEBIAN_REPORT = 'trivy-v0.69.3_debian-buster_os-pkgs.json';
/** Eight images over two base layers; each has an application layer of its own. */
const IMAGES = Array.from({ length: 8 }, (_, i) => ({
  ref: `ghcr.io/acme/app-${i}:1.0`,
  base: i % 2 === 0 ? 'sha256:base-alpine' : 'sha256:base-debian',
  report: i % 2 === 0 ? ALPINE_REPORT : DEBIAN_REPORT,
}));

function cluster() {
  return {
    objects: IMAGES.map((image, i) =>
      deployment({
        namespace: i < 4 ? 'shop' : 'tools',
        name: `app-${i}`,
        containers: [{ name: 'app', image: image.ref }],
      }),
    ),
  };
}

function scenario(extra: Partial<FakeTrivyScenario> = {}): FakeTrivyScenario {
  return {
    images: Object.fromEntries(
      IMAGES.map((image, i) => [image.ref, { report: image.report, layers: [image.base, `sha256:app-${i}`] }]),
    ),
    layerMs: 150,
    ...extra,
  };
}

const env = (s: StandIns, extra: Record<string, string> = {}) => ({
  ...s.env,
  SCAN_NAMESPACES: 'shop,tools',
  SCAN_CONCURRENCY: '2',
  REGISTRY_AUTH_ENABLED: 'false',
  TRIVY_CACHE_MODE: 'server',
  ...extra,
});

/** The findings each namespace received, by workload and container (what Ephor stores). */
function findings(s: StandIns, from = 0): Record<string, string> {
  const result: Record<string, string> = {};
  for (const request of s.ephor.scanIngests().slice(from)) {
    const body = request.body as ScanIngestRequest;
    for (const workload of body.workloads)
      for (const container of workload.containers)
        result[`${body.namespace}/${workload.name}/${container.name}`] = JSON.stringify(container.vulnerabilities);
  }
  return result;
}

const servers = (invocations: FakeTrivyInvocation[]) => invocations.filter((i) => i.argv[0] === 'server');
const clients = (invocations: FakeTrivyInvocation[]) => invocations.filter((i) => i.argv.includes('--server'));
const argValue = (i: FakeTrivyInvocation, flag: string) => i.argv[i.argv.indexOf(flag) + 1];

/** Every word of `text` that could be a 32-byte base64url token, fingerprinted as the invocation log does. */
function tokenFingerprints(text: string): Set<string> {
  const words = text.match(/[A-Za-z0-9_-]{40,}/g) ?? [];
  return new Set(words.map((w) => `sha256:${createHash('sha256').update(w).digest('hex').slice(0, 16)}`));
}

describe('server mode', { timeout: 240_000 }, () => {
  let s: StandIns;
  let ephemeral: ScannerRun;
  let first: ScannerRun;
  let second: ScannerRun;
  let firstCalls: FakeTrivyInvocation[];
  let secondCalls: FakeTrivyInvocation[];
  const delivered: Array<Record<string, string>> = [];

  test('setup: one ephemeral run, then two server runs over the same unchanged cluster and cache', async () => {
    s = await startStandIns({ cluster: cluster(), trivy: scenario() });
    ephemeral = await runScanner(env(s, { TRIVY_CACHE_MODE: 'ephemeral' }), { timeoutMs: 90_000 });
    assert.equal(ephemeral.exitCode, 0, ephemeral.stdout);
    delivered.push(findings(s));
    const before = (await s.invocations()).length;
    const posts = s.ephor.scanIngests().length;
    first = await runScanner(env(s), { timeoutMs: 90_000 });
    assert.equal(first.exitCode, 0, first.stdout);
    delivered.push(findings(s, posts));
    firstCalls = (await s.invocations()).slice(before);
    const middle = (await s.invocations()).length;
    second = await runScanner(env(s), { timeoutMs: 90_000 });
    assert.equal(second.exitCode, 0, second.stdout);
    delivered.push(findings(s, posts * 2));
    secondCalls = (await s.invocations()).slice(middle);
  });
  after(() => s?.close());

  test('the scanner starts one trivy server on a loopback port, with the prepared DBs, and every scan is its client', () => {
    const [server, ...more] = servers(firstCalls);
    assert.ok(server, 'a server was started');
    assert.deepEqual(more, []);
    const listen = argValue(server, '--listen')!;
    assert.match(listen, /^127\.0\.0\.1:\d+$/);
    assert.equal(argValue(server, '--cache-dir'), s.env.TRIVY_CACHE_DIR);
    assert.ok(server.argv.includes('--skip-db-update'));
    const scans = clients(firstCalls);
    assert.equal(scans.length, IMAGES.length);
    for (const scan of scans) {
      assert.equal(argValue(scan, '--server'), `http://${listen}`);
      assert.ok(!scan.argv.includes('--skip-db-update'), 'a client opens no vulnerability DB');
      assert.ok(scan.argv.includes('--skip-java-db-update'));
      assert.notEqual(argValue(scan, '--cache-dir'), s.env.TRIVY_CACHE_DIR, 'a private client cache');
    }
    assert.deepEqual(scans.map(scannedRef).sort(), IMAGES.map((i) => i.ref).sort());
  });

  test('the token is fresh per run and only in the environment of server and clients: never in argv or logs', () => {
    const tokenOf = (calls: FakeTrivyInvocation[]) => servers(calls)[0]!.env.TRIVY_TOKEN!;
    const token = tokenOf(firstCalls);
    assert.match(token, /^sha256:[0-9a-f]{16}$/, 'the invocation log writes only its fingerprint');
    for (const scan of clients(firstCalls)) assert.equal(scan.env.TRIVY_TOKEN, token);
    assert.notEqual(tokenOf(secondCalls), token, 'a new token for the second run');
    for (const [run, calls] of [
      [first, firstCalls],
      [second, secondCalls],
    ] as const) {
      const seen = tokenFingerprints([run.stdout, run.stderr, ...calls.flatMap((c) => c.argv)].join('\n'));
      assert.ok(!seen.has(tokenOf(calls)), 'the token appears in no argv and no log line');
      assert.ok(!run.stdout.includes('TRIVY_TOKEN='));
    }
  });

  test('findings are the same in ephemeral mode, in the first server run and in the unchanged second one', () => {
    assert.equal(Object.keys(delivered[0]!).length, IMAGES.length);
    assert.deepEqual(delivered[1], delivered[0]);
    assert.deepEqual(delivered[2], delivered[0]);
    assert.ok(
      Object.values(delivered[0]!).every((v) => v !== '[]' && v !== undefined),
      'real findings',
    );
  });

  test('the second run over the unchanged cluster downloads no layer: the new server process finds them all', () => {
    const scans = clients(secondCalls);
    assert.equal(scans.length, IMAGES.length);
    for (const scan of scans) {
      assert.deepEqual(scan.layers?.downloaded, [], scannedRef(scan));
      assert.equal(scan.layers?.cached.length, 2);
    }
    const [summary] = logsWith(second, 'ephor-scanner completed');
    const cache = summary!.layer_cache as { bytes_before: number; bytes_after: number; cleared?: string };
    assert.ok(cache.bytes_before > 0 && cache.bytes_after === cache.bytes_before, JSON.stringify(cache));
    assert.equal(cache.cleared, undefined);
  });

  test('a base layer shared by many images is downloaded at most once per concurrent scan in the first run', () => {
    const downloads = clients(firstCalls).flatMap((scan) => scan.layers?.downloaded ?? []);
    for (const base of ['sha256:base-alpine', 'sha256:base-debian']) {
      const times = downloads.filter((layer) => layer === base).length;
      assert.ok(times >= 1 && times <= 2, `${base} downloaded ${times} times with SCAN_CONCURRENCY=2`);
    }
    for (let i = 0; i < IMAGES.length; i++) assert.equal(downloads.filter((l) => l === `sha256:app-${i}`).length, 1);
    const [summary] = logsWith(first, 'ephor-scanner completed');
    const cache = summary!.layer_cache as { bytes_before: number; bytes_after: number };
    assert.ok(cache.bytes_after > cache.bytes_before, 'the layer cache grew in the first run');
  });

  test('no server outlives its run', async () => {
    for (const calls of [firstCalls, secondCalls]) assert.ok(await processGone(servers(calls)[0]!.pid));
  });

  test('scan_config says the mode the scans ran in', () => {
    const configs = s.ephor.scanIngests().map((r) => (r.body as ScanIngestRequest).scan_config.cache_mode);
    assert.deepEqual([...new Set(configs)], ['ephemeral', 'server']);
  });
});

describe('server mode: the Trivy version and the size bound clear the layer cache', { timeout: 180_000 }, () => {
  test('a run with another Trivy version finds the cache cleared and downloads every layer again', async () => {
    const s = await startStandIns({ cluster: cluster(), trivy: scenario({ layerMs: 20 }) });
    try {
      const one = await runScanner(env(s), { timeoutMs: 90_000 });
      assert.equal(one.exitCode, 0, one.stdout);
      await writeScenario(s.dir, { ...scenario({ layerMs: 20 }), version: '0.68.2' });
      const before = (await s.invocations()).length;
      const two = await runScanner(env(s), { timeoutMs: 90_000 });
      assert.equal(two.exitCode, 0, two.stdout);
      const [cleared] = logsWith(
        two,
        'layer cache cleared: another Trivy version wrote it (its entries are keyed by analyzer versions)',
      );
      assert.equal(cleared?.written_by, '0.69.3');
      assert.equal(cleared?.trivy_version, '0.68.2');
      const scans = clients((await s.invocations()).slice(before));
      assert.equal(scans.length, IMAGES.length);
      const downloaded = scans.flatMap((c) => c.layers!.downloaded);
      for (let i = 0; i < IMAGES.length; i++)
        assert.ok(downloaded.includes(`sha256:app-${i}`), `app-${i} analysed again: nothing of the old cache was used`);
      const [summary] = logsWith(two, 'ephor-scanner completed');
      assert.equal((summary!.layer_cache as { cleared?: string }).cleared, 'trivy_version');
      const marker = JSON.parse(
        await readFile(path.join(s.env.TRIVY_CACHE_DIR!, 'fanal', 'ephor-scanner.json'), 'utf8'),
      );
      assert.deepEqual(marker, { trivy_version: '0.68.2' });
    } finally {
      await s.close();
    }
  });

  test('a layer cache larger than TRIVY_SCAN_CACHE_MAX_SIZE is cleared at the start; the DBs beside it are kept', async () => {
    const s = await startStandIns({ cluster: cluster(), trivy: scenario({ layerMs: 20 }) });
    try {
      const one = await runScanner(env(s), { timeoutMs: 90_000 });
      assert.equal(one.exitCode, 0, one.stdout);
      const fanal = path.join(s.env.TRIVY_CACHE_DIR!, 'fanal');
      await writeFile(path.join(fanal, 'grown.bin'), Buffer.alloc(2 * 1024 * 1024));
      const dbMeta = () => readFile(path.join(s.env.TRIVY_CACHE_DIR!, 'db', 'metadata.json'), 'utf8');
      const dbBefore = await dbMeta();
      const before = (await s.invocations()).length;
      const two = await runScanner(env(s, { TRIVY_SCAN_CACHE_MAX_SIZE: '1Mi' }), { timeoutMs: 90_000 });
      assert.equal(two.exitCode, 0, two.stdout);
      const [cleared] = logsWith(two, 'layer cache cleared: larger than TRIVY_SCAN_CACHE_MAX_SIZE');
      assert.ok(cleared && (cleared.bytes as number) > 2 * 1024 * 1024);
      assert.equal(existsSync(path.join(fanal, 'grown.bin')), false);
      assert.equal(await dbMeta(), dbBefore, 'the DB beside it is the same one (it was fresh: not downloaded again)');
      const downloaded = clients((await s.invocations()).slice(before)).flatMap((c) => c.layers!.downloaded);
      for (let i = 0; i < IMAGES.length; i++) assert.ok(downloaded.includes(`sha256:app-${i}`));
      const [summary] = logsWith(two, 'ephor-scanner completed');
      assert.equal((summary!.layer_cache as { cleared?: string }).cleared, 'size');
    } finally {
      await s.close();
    }
  });
});

describe('server mode: failures of the server', { timeout: 240_000 }, () => {
  test('a server killed mid-run is restarted once and its scans in flight are scanned again', async () => {
    // The 5th Twirp request kills the first server process with a scan in flight; the second one serves.
    const s = await startStandIns({ cluster: cluster(), trivy: scenario({ server: { crash: { onRequest: 5 } } }) });
    try {
      const run = await runScanner(env(s), { timeoutMs: 90_000 });
      assert.equal(run.exitCode, 0, run.stdout);
      const calls = await s.invocations();
      const started = servers(calls);
      assert.equal(started.length, 2, 'one restart');
      assert.notEqual(argValue(started[0]!, '--listen'), argValue(started[1]!, '--listen'), 'on a fresh port');
      assert.equal(logsWith(run, 'the Trivy server failed during the run').length, 1);
      const [restarted] = logsWith(run, 'the Trivy server was restarted: its scans in flight are scanned again');
      assert.ok(restarted);
      const failed = clients(calls).filter((c) => c.exitCode !== 0);
      assert.ok(failed.length >= 1, 'a scan failed with the server');
      for (const scan of failed) {
        const again = clients(calls).filter((c) => scannedRef(c) === scannedRef(scan) && c.exitCode === 0);
        assert.equal(again.length, 1, `${scannedRef(scan)} scanned again`);
        assert.equal(argValue(again[0]!, '--server'), `http://${argValue(started[1]!, '--listen')}`);
      }
      const [summary] = logsWith(run, 'ephor-scanner completed');
      assert.deepEqual(summary!.images, { total: 8, scanned: 8, failed: 0, failed_by_reason: {} });
      for (const server of started) assert.ok(await processGone(server.pid));
    } finally {
      await s.close();
    }
  });

  test('a server that dies a second time leaves the rest of the run to ephemeral scans', async () => {
    const s = await startStandIns({
      cluster: cluster(),
      trivy: scenario({ server: { crash: { onRequest: 3, times: 2 } } }),
    });
    try {
      const run = await runScanner(env(s), { timeoutMs: 90_000 });
      assert.equal(run.exitCode, 0, run.stdout);
      const calls = await s.invocations();
      assert.equal(servers(calls).length, 2);
      assert.equal(
        logsWith(run, 'the Trivy server failed a second time: scanning the rest in ephemeral mode').length,
        1,
      );
      const local = calls.filter((c) => c.argv[0] === 'image' && c.behaviour === 'report');
      assert.ok(local.length >= 1, 'the rest was scanned locally');
      for (const scan of local) assert.ok(scan.argv.includes('--skip-db-update'));
      const [summary] = logsWith(run, 'ephor-scanner completed');
      assert.deepEqual(summary!.images, { total: 8, scanned: 8, failed: 0, failed_by_reason: {} });
    } finally {
      await s.close();
    }
  });

  test('a server that never answers /healthz: one warning, the server killed, every scan ephemeral, exit 0', async () => {
    const s = await startStandIns({ cluster: cluster(), trivy: scenario({ server: { startDelayMs: 120_000 } }) });
    try {
      const run = await runScanner(env(s, { TRIVY_SERVER_START_TIMEOUT: '2s' }), { timeoutMs: 90_000 });
      assert.equal(run.exitCode, 0, run.stdout);
      const warnings = logsWith(
        run,
        'the Trivy server could not be started: scanning in ephemeral mode (each scan downloads every layer)',
      );
      assert.equal(warnings.length, 1);
      assert.match(String(warnings[0]!.error), /did not answer GET \/healthz with "ok" within 2 s/);
      const calls = await s.invocations();
      assert.equal(clients(calls).length, 0);
      assert.equal(calls.filter((c) => c.behaviour === 'report').length, IMAGES.length);
      assert.ok(await processGone(servers(calls)[0]!.pid), 'the stuck server was killed');
      const [summary] = logsWith(run, 'ephor-scanner completed');
      assert.deepEqual(summary!.images, { total: 8, scanned: 8, failed: 0, failed_by_reason: {} });
      const modes = s.ephor.scanIngests().map((r) => (r.body as ScanIngestRequest).scan_config.cache_mode);
      assert.deepEqual([...new Set(modes)], ['ephemeral']);
    } finally {
      await s.close();
    }
  });

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    test(`${signal} to the scanner while clients scan: the server does not outlive it`, async () => {
      const s = await startStandIns({ cluster: cluster(), trivy: scenario({ layerMs: 60_000 }) });
      try {
        let child: ChildProcess | undefined;
        let sent = false;
        const run = await runScanner(env(s, { TRIVY_TIMEOUT: '10m' }), {
          timeoutMs: 60_000,
          onSpawn: (c) => {
            child = c;
          },
          onLog: (line, c) => {
            if (line.msg !== 'Trivy server ready' || sent) return;
            sent = true;
            // half a second later the clients are analysing their first layers (a minute each)
            setTimeout(() => c.kill(signal), 500);
          },
        });
        assert.ok(child && sent);
        if (signal === 'SIGTERM') assert.equal(run.exitCode, 1, run.stdout);
        else assert.equal(run.signal, 'SIGKILL');
        const calls = await s.invocations();
        const [server] = servers(calls);
        assert.ok(server);
        assert.ok(await processGone(server.pid), 'the server is gone');
      } finally {
        await s.close();
      }
    });
  }
});

describe('an external Trivy server (TRIVY_SERVER_URL)', { timeout: 120_000 }, () => {
  const TOKEN = 'ext-Server-Token-5d2a9c';

  /** The stand-in server the way an operator runs one: on its own, with its own cache and token. */
  async function externalServer(dir: string): Promise<{ url: string; process: ChildProcess; log: string }> {
    const home = path.join(dir, 'external');
    await mkdir(home, { recursive: true });
    const { scenarioPath, logPath } = await writeScenario(home, {
      ...scenario({ layerMs: 20 }),
      log: path.join(home, 'trivy.jsonl'),
    });
    const childEnv = { PATH: process.env.PATH, FAKE_TRIVY_SCENARIO: scenarioPath, TRIVY_TOKEN: TOKEN, HOME: home };
    const cache = path.join(home, 'cache');
    const download = spawn(FAKE_TRIVY_BIN, ['image', '--download-db-only', '--cache-dir', cache], { env: childEnv });
    await new Promise((resolve) => download.on('exit', resolve));
    const { url, child } = await startFakeTrivyServer({ env: childEnv, cacheDir: cache });
    return { url, process: child, log: logPath };
  }

  test('every scan is a client of it; the scanner starts no server and downloads no vulnerability DB', async () => {
    const s = await startStandIns({ cluster: cluster(), trivy: scenario() });
    const external = await externalServer(s.dir);
    try {
      const run = await runScanner(
        env(s, { TRIVY_CACHE_MODE: '', TRIVY_SERVER_URL: external.url, TRIVY_SERVER_TOKEN: TOKEN }),
        { timeoutMs: 90_000 },
      );
      assert.equal(run.exitCode, 0, run.stdout);
      const calls = await s.invocations();
      assert.deepEqual(servers(calls), [], 'no server started');
      assert.equal(
        calls.filter((c) => c.argv.includes('--download-db-only')).length,
        0,
        'no vulnerability DB download',
      );
      assert.equal(
        calls.filter((c) => c.argv.includes('--download-java-db-only')).length,
        1,
        "the Java DB is the client's",
      );
      const scans = clients(calls);
      assert.equal(scans.length, IMAGES.length);
      const fingerprint = `sha256:${createHash('sha256').update(TOKEN).digest('hex').slice(0, 16)}`;
      for (const scan of scans) {
        assert.equal(argValue(scan, '--server'), external.url);
        assert.equal(scan.env.TRIVY_TOKEN, fingerprint);
        assert.ok(!scan.argv.join(' ').includes(TOKEN));
      }
      assert.ok(!run.stdout.includes(TOKEN) && !run.stderr.includes(TOKEN));
      assert.equal(logsWith(run, 'using the external Trivy server: the scanner starts none').length, 1);
      const modes = s.ephor.scanIngests().map((r) => (r.body as ScanIngestRequest).scan_config.cache_mode);
      assert.deepEqual([...new Set(modes)], ['external_server']);
      const [summary] = logsWith(run, 'ephor-scanner completed');
      assert.equal(summary!.layer_cache, undefined, "the layer cache is the server's");
    } finally {
      external.process.kill('SIGKILL');
      await s.close();
    }
  });

  test('a token it refuses stops the run before any scan, with the reason', async () => {
    const s = await startStandIns({ cluster: cluster(), trivy: scenario() });
    const external = await externalServer(s.dir);
    try {
      const run = await runScanner(env(s, { TRIVY_SERVER_URL: external.url, TRIVY_SERVER_TOKEN: 'not-the-token-77' }), {
        timeoutMs: 60_000,
      });
      assert.equal(run.exitCode, 1);
      const [error] = logsWith(run, 'trivy cannot scan: nothing was scanned or delivered');
      assert.match(String(error!.error), /refused the token \(twirp error unauthenticated: invalid token\)/);
      assert.deepEqual(clients(await s.invocations()), []);
      assert.ok(!run.stdout.includes('not-the-token-77'));
    } finally {
      external.process.kill('SIGKILL');
      await s.close();
    }
  });
});
