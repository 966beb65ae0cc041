// A sharded run end to end (README "Scaling out"): three scanner processes started at once against one stand-in
// cluster and one Ephor stand-in, as an Indexed Job of three Pods would run them: index 0 listens on a loopback port,
// the others are given its URL. Only index 0 posts, never two POSTs at once, each image is scanned once across the
// three, and the payloads are a single process's; a shard killed mid-run is made up for by index 0; a wrong token is
// refused. Conditions are polled or awaited; nothing asserts how long anything took.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { formatMicroTime } from '../../src/lock/micro-time.js';
import type { ScanIngestRequest } from '../../src/types.js';
import { deployment, statefulSet } from '../support/k8s-objects.js';
import {
  logsWith,
  runScanner,
  scannedRef,
  startStandIns,
  type RunOptions,
  type ScannerRun,
  type StandIns,
} from '../support/harness.js';
import { freePort } from '../../src/trivy/server.js';

const TOKEN = 'e2e-shard-token-5b0f1c7e9a2d4c68b3e1';
const NAMESPACES = ['alpha', 'beta', 'gamma'];
const REPORTS = [
  'trivy-v0.69.3_alpine-3.10_os-pkgs.json',
  'trivy-v0.69.3_debian-buster_os-pkgs.json',
  'trivy-v0.69.3_distroless-base_debian.json',
];
/** Nine images, three per namespace, two shared with the next namespace. */
const IMAGES = Array.from({ length: 9 }, (_, i) => `registry.local:5000/acme/app-${i}:1.0`);
const objects = NAMESPACES.flatMap((namespace, n) => [
  deployment({
    namespace,
    name: 'web',
    containers: [0, 1, 2].map((k) => ({ name: `c${k}`, image: IMAGES[(n * 3 + k) % 9]! })),
  }),
  statefulSet({ namespace, name: 'db', containers: [{ name: 'db', image: IMAGES[(n * 3 + 3) % 9]! }] }),
]);
const trivy = {
  images: Object.fromEntries(IMAGES.map((ref, i) => [ref, { report: REPORTS[i % 3]!, delayMs: 300 }])),
};

async function standIns(t: TestContext): Promise<StandIns> {
  const s = await startStandIns({ cluster: { objects }, trivy });
  t.after(() => s.close());
  return s;
}

/** Answers every push with 200 and records its path (the real Pushgateway is tested in metrics.test.ts). */
async function countingPushgateway(t: TestContext): Promise<{ url: string; paths: () => string[] }> {
  const paths: string[] = [];
  const server = http.createServer((request, response) => {
    paths.push(request.url ?? '');
    request.resume();
    request.on('end', () => response.writeHead(200).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, paths: () => [...paths] };
}

interface Shards {
  runs: ScannerRun[];
  port: number;
}

/** Three shards started together; `tokens` per index (default: the same for all), `options` per index. */
async function runShards(
  s: StandIns,
  extra: Record<string, string> = {},
  perIndex: Array<{ token?: string; options?: RunOptions }> = [],
): Promise<Shards> {
  const port = await freePort();
  const env = (index: number) => ({
    ...s.env,
    SCAN_NAMESPACES: NAMESPACES.join(','),
    SCAN_CONCURRENCY: '2',
    SHARD_COUNT: '3',
    JOB_COMPLETION_INDEX: String(index),
    SHARD_TOKEN: perIndex[index]?.token ?? TOKEN,
    SHARD_TIMEOUT: '4s',
    ...(index === 0 ? { SHARD_LISTEN: `127.0.0.1:${port}` } : { SHARD_COORDINATOR_URL: `http://127.0.0.1:${port}` }),
    ...extra,
  });
  const runs = await Promise.all(
    [0, 1, 2].map((index) => runScanner(env(index), { timeoutMs: 90_000, ...perIndex[index]?.options })),
  );
  return { runs, port };
}

/** The payloads without what differs between any two runs (ids, timestamps), by namespace. */
function payloads(s: StandIns): Record<string, unknown[]> {
  const byNamespace: Record<string, unknown[]> = {};
  for (const request of s.ephor.scanIngests()) {
    const body = structuredClone(request.body) as ScanIngestRequest & Record<string, unknown>;
    for (const key of ['scan_group_id', 'started_at', 'completed_at']) Reflect.deleteProperty(body, key);
    // each run's stand-in Trivy downloads its databases afresh: their times are the run's own
    const config = body.scan_config as unknown as Record<string, Record<string, unknown>>;
    for (const db of [config.vulnerability_db!, config.java_db!])
      for (const key of ['updated_at', 'downloaded_at']) Reflect.deleteProperty(db, key);
    (byNamespace[body.namespace] ??= []).push(body);
  }
  return byNamespace;
}

async function singleProcessPayloads(t: TestContext): Promise<Record<string, unknown[]>> {
  const s = await standIns(t);
  const run = await runScanner({ ...s.env, SCAN_NAMESPACES: NAMESPACES.join(','), SCAN_CONCURRENCY: '2' });
  assert.equal(run.exitCode, 0, run.stdout);
  return payloads(s);
}

const output = (runs: ScannerRun[]) => runs.map((r, i) => `--- shard ${i}\n${r.stdout}${r.stderr}`).join('\n');

describe('sharded run, end to end', { timeout: 400_000 }, () => {
  test('three shards: only index 0 posts, one POST at a time, each image scanned once, payloads as one process', async (t) => {
    const expected = await singleProcessPayloads(t);
    const s = await standIns(t);
    s.ephor.pushScript(...NAMESPACES.map(() => ({ delayMs: 200 })));
    const pushes = await countingPushgateway(t);
    const { runs } = await runShards(s, { METRICS_PUSHGATEWAY_URL: pushes.url });

    assert.deepEqual(
      runs.map((r) => r.exitCode),
      [0, 0, 0],
      output(runs),
    );
    assert.deepEqual(s.ephor.overlappingPosts(), []);
    assert.equal(s.ephor.scanIngests().length, NAMESPACES.length);
    const scanned = (await s.scans()).map(scannedRef).sort();
    assert.deepEqual(scanned, [...IMAGES].sort(), 'each image scanned exactly once across the three');
    assert.deepEqual(payloads(s), expected);
    // only index 0 posted: the other two never logged a delivery, and each said what it had to do
    for (const index of [1, 2]) {
      assert.equal(logsWith(runs[index]!, 'scan results delivered').length, 0);
      const [plan] = logsWith(runs[index]!, `shard ${index} scans 3 of 9 images`);
      assert.equal(plan?.shard, index, output(runs));
      assert.ok(logsWith(runs[index]!, 'shard completed: index 0 acknowledged every result and ended the run')[0]);
      // each Pod's log names the run's scan_group_id, the one the payloads carry, beside its own
      const [go] = logsWith(runs[index]!, 'index 0 holds the run lock: scanning may start');
      const payloadGroup = (s.ephor.scanIngests()[0]?.body as ScanIngestRequest | undefined)?.scan_group_id;
      assert.ok(payloadGroup !== undefined && go?.index_0_scan_group_id === payloadGroup, output(runs));
    }
    const [end] = logsWith(runs[0]!, 'shards at the end of the run');
    assert.deepEqual(
      (end!.shards as Array<{ shard: number; finished: boolean; lost: boolean }>).map((x) => [
        x.shard,
        x.finished,
        x.lost,
      ]),
      [
        [1, true, false],
        [2, true, false],
      ],
    );
    for (const run of runs) assert.doesNotMatch(run.stdout + run.stderr, new RegExp(TOKEN));
    // only index 0 pushes metrics, once
    assert.deepEqual(pushes.paths(), ['/metrics/job/ephor-scanner']);
    assert.equal(logsWith(runs[0]!, 'metrics pushed to the Pushgateway').length, 1);
  });

  test('a shard killed after its first scan: index 0 scans its part, every namespace delivered, exit 0', async (t) => {
    const expected = await singleProcessPayloads(t);
    const s = await standIns(t);
    let killed = false;
    const killOnFirstScan = {
      onLog: (line: { msg: string }, child: ChildProcess) => {
        if (line.msg !== 'image scanned' || killed) return;
        killed = true;
        child.kill('SIGKILL');
      },
    };
    const { runs } = await runShards(s, {}, [{}, { options: killOnFirstScan }]);

    assert.equal(runs[1]!.signal, 'SIGKILL');
    assert.equal(runs[0]!.exitCode, 0, output(runs));
    assert.equal(runs[2]!.exitCode, 0, output(runs));
    assert.deepEqual(s.ephor.overlappingPosts(), []);
    const [lost] = logsWith(
      runs[0]!,
      'shard lost: not heard from within SHARD_TIMEOUT; index 0 scans what it did not hand over',
    );
    assert.equal(lost?.shard, 1, output(runs));
    // every container correct: the payloads are a single process's
    assert.deepEqual(payloads(s), expected);
  });

  test('index 0 cannot get the run lock: no shard scans anything, index 0 exits 1, the others 0', async (t) => {
    const s = await standIns(t);
    // another live run holds the lock for the next hour
    const now = formatMicroTime(Date.now());
    s.kube.leases.put({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { namespace: 'default', name: 'ephor-scanner' },
      spec: { holderIdentity: 'other-run_x', leaseDurationSeconds: 3600, acquireTime: now, renewTime: now },
    });
    const { runs } = await runShards(s, { RUN_LOCK_WAIT: '2s' });

    assert.deepEqual(
      runs.map((r) => r.exitCode),
      [1, 0, 0],
      output(runs),
    );
    assert.deepEqual(await s.scans(), [], 'nothing scanned anywhere');
    assert.equal(s.ephor.scanIngests().length, 0);
    for (const index of [1, 2])
      assert.equal(logsWith(runs[index]!, 'index 0 ended the run before this shard scanned anything').length, 1);
  });

  test('index 0 killed and started again (empty disk): the shards hand over again, the new index 0 delivers all', async (t) => {
    const expected = await singleProcessPayloads(t);
    const s = await standIns(t);
    const port = await freePort();
    // RUN_LOCK=none: the dead index 0's Lease would otherwise keep the new one waiting for its expiry
    const env = (index: number, extra: Record<string, string> = {}) => ({
      ...s.env,
      SCAN_NAMESPACES: NAMESPACES.join(','),
      SCAN_CONCURRENCY: '2',
      RUN_LOCK: 'none',
      SHARD_COUNT: '3',
      JOB_COMPLETION_INDEX: String(index),
      SHARD_TOKEN: TOKEN,
      SHARD_TIMEOUT: '20s',
      ...(index === 0 ? { SHARD_LISTEN: `127.0.0.1:${port}` } : { SHARD_COORDINATOR_URL: `http://127.0.0.1:${port}` }),
      ...extra,
    });
    // the first index 0 dies once both shards finished and it scanned its part, before its run is done: its first
    // namespace is slow to post, so it is still delivering then
    s.ephor.pushScript({ delayMs: 3000 });
    // Both conditions, in whichever order a loaded machine brings them: the shards may finish before index 0 has
    // scanned its own three images.
    let finished = 0;
    let scanned = 0;
    const first = runScanner(env(0), {
      timeoutMs: 90_000,
      onLog: (line, child) => {
        if (line.msg === 'shard finished: every result handed over') finished++;
        if (line.msg === 'image scanned') scanned++;
        if (finished === 2 && scanned === 3) child.kill('SIGKILL');
      },
    });
    const shards = [1, 2].map((index) => runScanner(env(index), { timeoutMs: 90_000 }));
    const killed = await first;
    assert.equal(killed.signal, 'SIGKILL', killed.stdout);
    const again = await runScanner(env(0), { timeoutMs: 90_000 });
    const runs = [again, ...(await Promise.all(shards))];

    assert.deepEqual(
      runs.map((r) => r.exitCode),
      [0, 0, 0],
      output([killed, ...runs]),
    );
    for (const index of [1, 2])
      assert.equal(
        logsWith(
          runs[index]!,
          'index 0 restarted (its instance changed): handing over again every result this shard holds',
        ).length,
        1,
        output(runs),
      );
    // the shards scanned their parts once; only index 0's own part was scanned twice (once per instance)
    const counts = new Map<string, number>();
    for (const ref of (await s.scans()).map(scannedRef)) counts.set(ref, (counts.get(ref) ?? 0) + 1);
    const twice = [...counts].filter(([, n]) => n === 2).map(([ref]) => ref);
    assert.equal(twice.length, 3, `index 0's three images: ${JSON.stringify([...counts])}`);
    assert.deepEqual([...counts.keys()].sort(), [...IMAGES].sort());
    // what the new index 0 delivered is a single process's run
    const latest = payloads(s);
    for (const namespace of NAMESPACES) assert.deepEqual(latest[namespace]!.at(-1), expected[namespace]![0], namespace);
  });

  test('a shard with a wrong token is refused (401, logged without any token) and exits 1; index 0 covers its part', async (t) => {
    const s = await standIns(t);
    const wrong = 'wrong-shard-token-000000000000000000000';
    const { runs } = await runShards(s, {}, [{}, {}, { token: wrong }]);

    assert.equal(runs[2]!.exitCode, 1, output(runs));
    const [stopped] = logsWith(runs[2]!, 'shard stopped');
    assert.match(String(stopped?.error), /refused this shard's SHARD_TOKEN \(401\)/);
    const refusals = logsWith(runs[0]!, 'a request to the shard port was refused: no or wrong SHARD_TOKEN');
    assert.ok(refusals.length > 0, output(runs));
    assert.equal(runs[0]!.exitCode, 0, output(runs));
    assert.equal(runs[1]!.exitCode, 0, output(runs));
    assert.equal(s.ephor.scanIngests().length, NAMESPACES.length);
    for (const run of runs) {
      assert.doesNotMatch(run.stdout + run.stderr, new RegExp(TOKEN));
      assert.doesNotMatch(run.stdout + run.stderr, new RegExp(wrong));
    }
  });
});
