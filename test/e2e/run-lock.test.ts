// The run lock end to end: the built CLI against the Kubernetes stand-in (which serves Leases) and the Ephor stand-in
// (which records every ingest POST and any two that overlapped). Two runs started together never post at the same
// time; a run that cannot get the lock in RUN_LOCK_WAIT scans and posts nothing; a released lock is taken at once; a
// dead holder's lock is taken over; an old chart's RBAC lets the run go on unlocked; a lock taken away mid-run or not
// renewable stops the posts and leaves the spool alone. Conditions are polled; nothing asserts how long anything took.
import assert from 'node:assert/strict';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { formatMicroTime } from '../../src/lock/micro-time.js';
import { deployment } from '../support/k8s-objects.js';
import { logsWith, runScanner, startStandIns, type ScannerRun, type StandIns } from '../support/harness.js';

const NAMESPACES = ['alpha', 'beta', 'gamma'];
const ALPINE = 'docker.io/library/alpine:3.10';
const objects = NAMESPACES.map((namespace) =>
  deployment({ namespace, name: 'web', containers: [{ name: 'app', image: 'alpine:3.10' }] }),
);
const trivy = { images: { [ALPINE]: { report: 'trivy-v0.69.3_alpine-3.10_os-pkgs.json', delayMs: 200 } } };
/** kubeconfig without a namespace: the lock lives in `default`. */
const LEASE = { namespace: 'default', name: 'ephor-scanner' };
const OTHER = 'ephor-scanner-manual-x7k2p_0b6c3b0e-93a5-4d0e-9e59-4f7f3a9b1c11';
/** A lease of 6 s renewed every second; a POST may start only while it stays valid 4 s more. */
const SHORT_LEASE = { EPHOR_TIMEOUT: '4s', KUBE_TIMEOUT: '1s' };

async function standIns(t: TestContext): Promise<StandIns> {
  const s = await startStandIns({ cluster: { objects }, trivy });
  t.after(() => s.close());
  return s;
}

const scanEnv = (s: StandIns, extra: Record<string, string> = {}) => ({
  ...s.env,
  SCAN_NAMESPACES: NAMESPACES.join(','),
  ...extra,
});

/** The Lease as another client (a live run elsewhere, or a dead one) wrote it. */
function seedLease(s: StandIns, holder: string, renewedAgoMs: number, durationSeconds = 3600): void {
  const renewTime = formatMicroTime(Date.now() - renewedAgoMs);
  s.kube.leases.put({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: LEASE,
    spec: {
      holderIdentity: holder,
      leaseDurationSeconds: durationSeconds,
      acquireTime: renewTime,
      renewTime,
      leaseTransitions: 4,
    },
  });
}

const holderNow = (s: StandIns) => s.kube.leases.get(LEASE.namespace, LEASE.name)?.spec.holderIdentity as string;
const summaryOf = (run: ScannerRun) => logsWith(run, 'ephor-scanner completed')[0]!;
const lockOf = (run: ScannerRun) => summaryOf(run).run_lock as { state: string; holder?: string; message?: string };
const groupOf = (run: ScannerRun) => run.logs[0]!.scan_group_id as string;
const acquired = (run: ScannerRun) => logsWith(run, 'run lock acquired')[0];

async function until(condition: () => boolean, what: string, limitMs = 60_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${limitMs} ms: ${what}`);
    await delay(20);
  }
}

/** Every file under the spool, with its size and modification time. */
async function spoolSnapshot(s: StandIns): Promise<string[]> {
  const root = path.join(s.env.TRIVY_CACHE_DIR!, 'spool');
  const entries = await readdir(root, { recursive: true }).catch(() => [] as string[]);
  const files: string[] = [];
  for (const entry of entries.sort()) {
    const info = await stat(path.join(root, entry));
    files.push(`${entry} ${info.isFile() ? info.size : 'dir'} ${info.mtimeMs}`);
  }
  return files;
}

/** A payload an earlier run spooled for gamma an hour ago: a run that lost the lock must leave it as it is. */
async function seedSpool(s: StandIns): Promise<void> {
  const dir = path.join(s.env.TRIVY_CACHE_DIR!, 'spool', 'gamma');
  await mkdir(dir, { recursive: true });
  await writeFile(
    path.join(dir, `${Date.now() - 3_600_000}-${OTHER.split('_')[1]}-1of1.json`),
    '{"namespace":"gamma"}',
  );
}

describe('run lock, end to end', { timeout: 300_000 }, () => {
  test('two runs started together never overlap their POSTs, and both deliver (exit 0)', async (t) => {
    const s = await standIns(t);
    // slow POSTs: without the lock the two runs' POSTs would overlap
    s.ephor.pushScript(...Array.from({ length: 6 }, () => ({ delayMs: 400 })));
    const [a, b] = await Promise.all([runScanner(scanEnv(s)), runScanner(scanEnv(s))]);

    assert.deepEqual([a.exitCode, b.exitCode], [0, 0], `${a.stdout}\n${b.stdout}`);
    assert.equal(s.ephor.scanIngests().length, 6);
    assert.deepEqual(s.ephor.overlappingPosts(), [], 'no POST arrived while another was being handled');
    assert.equal(s.ephor.maxConcurrentPosts, 1);
    for (const run of [a, b]) assert.equal(lockOf(run).state, 'acquired');
    // the second run took the lock as the first released it: first's release is written before second's acquisition
    const writes = s.kube.leases.requests.filter((r) => r.verb !== 'get' && r.status < 300);
    const holders = writes.map((w) => (w.body?.spec as { holderIdentity?: string }).holderIdentity ?? '');
    const [first, second] = holders[0]!.endsWith(groupOf(a)) ? [a, b] : [b, a];
    const lastOfFirst = holders.lastIndexOf(`${hostname()}_${groupOf(first)}`);
    const firstOfSecond = holders.indexOf(`${hostname()}_${groupOf(second)}`);
    assert.equal(holders[lastOfFirst + 1], '', 'the first run released the lock after its last renewal');
    assert.ok(firstOfSecond > lastOfFirst + 1, 'the second run took it only after that');
    assert.equal(acquired(second)?.how, 'released');
    assert.equal(holderNow(s), '', 'released at the end');
  });

  test('another live run holds the lock past a short RUN_LOCK_WAIT: exit 1, nothing scanned or posted', async (t) => {
    const s = await standIns(t);
    seedLease(s, OTHER, 0);
    const run = await runScanner(scanEnv(s, { RUN_LOCK_WAIT: '1s' }));

    assert.equal(run.exitCode, 1, run.stdout);
    assert.deepEqual(await s.invocations(), [], 'Trivy never ran, not even for its DB');
    assert.equal(s.ephor.requests.length, 0);
    const waiting = logsWith(run, `waiting for the run lock: another run holds it: ${describeOther(s)}`);
    assert.equal(waiting[0]?.holder, OTHER);
    assert.deepEqual(lockOf(run), {
      state: 'not-acquired',
      lease: 'default/ephor-scanner',
      holder: OTHER,
      message: `run lock default/ephor-scanner not acquired: another run holds it: ${describeOther(s)}; gave up after waiting 1s (RUN_LOCK_WAIT): nothing was scanned or posted`,
    });
    assert.equal(holderNow(s), OTHER, 'the holder keeps it');
    assert.ok(
      s.kube.requests.every((r) => r.path.includes('/leases/')),
      'nothing but the Lease was asked for: no discovery',
    );
  });

  test('a released lock lets the next run start at once; a dead holder is taken over', async (t) => {
    const s = await standIns(t);
    const first = await runScanner(scanEnv(s));
    assert.equal(first.exitCode, 0, first.stdout);
    assert.equal(holderNow(s), '', 'released');
    // the lease lasts 450 s with the default EPHOR_TIMEOUT: a run that had to wait for it would not be done yet
    const next = await runScanner(scanEnv(s));
    assert.equal(next.exitCode, 0, next.stdout);
    assert.equal(acquired(next)?.how, 'released');
    assert.equal(logsWith(next, 'waiting for the run lock').length, 0);

    // a run that died two hours ago without releasing: its renewTime is long past twice its duration
    seedLease(s, 'ephor-scanner-28312345-dead1_6a1f0a52-1111-4c8e-9b1e-0d5b3d0f0c77', 2 * 3_600_000, 450);
    const takeover = await runScanner(scanEnv(s));
    assert.equal(takeover.exitCode, 0, takeover.stdout);
    const line = acquired(takeover)!;
    assert.equal(line.how, 'stale');
    assert.equal(line.previous_holder, 'ephor-scanner-28312345-dead1_6a1f0a52-1111-4c8e-9b1e-0d5b3d0f0c77');
    assert.equal(line.lease_transitions, 5);
    assert.equal(s.ephor.scanIngests().length, 9);
  });

  test('the Lease API forbidden (an older chart): one warning with the rule, delivered unlocked, exit 0', async (t) => {
    const s = await standIns(t);
    s.kube.leases.setFaults([{ status: 403 }]);
    const run = await runScanner(scanEnv(s));

    assert.equal(run.exitCode, 0, run.stdout);
    assert.equal(s.ephor.scanIngests().length, 3);
    const warnings = run.logs.filter((l) => l.msg.startsWith('run lock unavailable'));
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0]!.msg,
      /^run lock unavailable: the Kubernetes API refused to get the Lease default\/ephor-scanner \(HTTP 403\): missing RBAC rule: allow verb "get" on resource "leases" \(apiGroup "coordination.k8s.io", resourceNames \["ephor-scanner"\]\) in namespace "default" for system:serviceaccount:ephor:ephor-scanner; this run goes on WITHOUT the run lock/,
    );
    assert.match(warnings[0]!.msg, /to fix it, grant the scanner's service account a Role in namespace "default"/);
    assert.equal(lockOf(run).state, 'unlocked');
    assert.deepEqual(
      s.kube.leases.requests.map((r) => r.verb),
      ['get'],
      'one try, no write',
    );
  });

  test('the lease taken by another run after the first POST: no more POSTs, the spool untouched, exit 1', async (t) => {
    const s = await standIns(t);
    await seedSpool(s);
    const spoolBefore = await spoolSnapshot(s);
    s.ephor.pushScript({ delayMs: 1500 }); // the first POST stays open while the lease is overwritten
    const running = runScanner(scanEnv(s));
    await until(() => s.ephor.requests.length === 1, 'the first POST');
    seedLease(s, OTHER, 0);
    const run = await running;

    assert.equal(run.exitCode, 1, run.stdout);
    assert.equal(s.ephor.requests.length, 1, 'no POST after the first, no spooled payload posted');
    assert.equal(s.ephor.scanIngests().length, 1, 'the first one, fenced before the overwrite, was delivered');
    assert.deepEqual(await spoolSnapshot(s), spoolBefore, 'nothing written to or removed from the spool');
    const lost = run.logs.filter((l) => l.msg.startsWith('run lock lost'));
    assert.equal(lost.length, 1);
    assert.equal(lost[0]!.holder, OTHER);
    assert.match(lost[0]!.msg, /no further POST is made and nothing is written to the spool$/);
    assert.equal(lockOf(run).state, 'lost');
    const summary = summaryOf(run).per_namespace as Array<{ delivered: boolean; error?: string }>;
    assert.equal(summary.filter((n) => n.delivered).length, 1);
    for (const n of summary.filter((ns) => !ns.delivered)) assert.match(n.error ?? '', /run lock lost/);
    assert.equal(holderNow(s), OTHER, 'a lost lock is not released');
  });

  test('renewals that keep failing stop the posts while the lease is still valid: exit 1', async (t) => {
    const s = await standIns(t);
    // each POST takes 1.5 s; from the first POST on, every Lease call fails (an API outage)
    s.ephor.pushScript(...Array.from({ length: 3 }, () => ({ delayMs: 1500 })));
    const running = runScanner(scanEnv(s, SHORT_LEASE));
    await until(() => s.ephor.requests.length === 1, 'the first POST');
    s.kube.leases.setFaults([{ status: 500 }]);
    const run = await running;

    assert.equal(run.exitCode, 1, run.stdout);
    const posts = s.ephor.requests;
    assert.ok(posts.length >= 1 && posts.length < 3, `${posts.length} POSTs: the run stopped posting`);
    const lost = run.logs.find((l) => l.msg.startsWith('run lock lost'));
    assert.match(lost?.msg ?? '', /could not be renewed \(\d+ failed renewals, last: .*HTTP 500/);
    assert.equal(lockOf(run).state, 'lost');
    // the lease as the API server last stored it was still valid when the last POST was answered
    const stored = s.kube.leases.get(LEASE.namespace, LEASE.name)!.spec as {
      renewTime: string;
      leaseDurationSeconds: number;
    };
    const expiresAt = Date.parse(stored.renewTime) + stored.leaseDurationSeconds * 1000;
    assert.equal(stored.leaseDurationSeconds, 6);
    for (const post of posts) assert.ok(post.finishedAt! < expiresAt, 'a POST ended after the lease expired');
  });
});

describe('check: the lock group', { timeout: 120_000 }, () => {
  interface Check {
    group: string;
    status: string;
    message: string;
    fix?: string;
  }
  const lockChecks = async (s: StandIns, extra: Record<string, string> = {}): Promise<Check[]> => {
    const run = await runScanner(scanEnv(s, extra), { args: ['check', '--output', 'json'], timeoutMs: 30_000 });
    return (JSON.parse(run.stdout) as { checks: Check[] }).checks.filter((c) => c.group === 'lock');
  };

  test('may use the Lease, and who holds it now; it only reads', async (t) => {
    const s = await standIns(t);
    assert.deepEqual(await lockChecks(s), [
      {
        group: 'lock',
        status: 'pass',
        message: 'the scanner may get, update and create the Lease default/ephor-scanner (the run lock)',
      },
      {
        group: 'lock',
        status: 'pass',
        message: 'no run holds the lock now (the Lease does not exist yet; the first run creates it)',
      },
    ]);
    seedLease(s, OTHER, 0);
    const [, held] = await lockChecks(s, { RUN_LOCK_WAIT: '10m' });
    const since = s.kube.leases.get(LEASE.namespace, LEASE.name)!.spec.acquireTime as string;
    assert.equal(held?.status, 'pass');
    assert.match(
      held?.message ?? '',
      new RegExp(
        `^a live run holds the lock now: "${OTHER}" since ${since.replaceAll('.', '\\.')} \\(expires in (59m|1h0m)[0-9.]+s unless renewed\\); a run starting now waits for it, at most 10m0s \\(RUN_LOCK_WAIT\\)$`,
      ),
    );
    assert.deepEqual(new Set(s.kube.leases.requests.map((r) => r.verb)), new Set(['get']), 'never written');
  });

  test('Leases forbidden: a warning naming the missing rules and how to grant them, not a blocker', async (t) => {
    const s = await standIns(t);
    s.kube.leases.setFaults([{ status: 403 }]);
    const checks = await lockChecks(s);
    assert.equal(checks.length, 1);
    assert.equal(checks[0]!.status, 'warn');
    assert.equal(
      checks[0]!.message,
      'the scanner may not get, update and create the Lease default/ephor-scanner: runs go on WITHOUT the run lock, so nothing keeps another run from posting to Ephor at the same time',
    );
    const user = 'system:serviceaccount:ephor:ephor-scanner';
    assert.ok(
      checks[0]!.fix?.startsWith(
        `allow verb "get" on resource "leases" (apiGroup "coordination.k8s.io", resourceNames ["ephor-scanner"]) in namespace "default" for ${user}; ` +
          `allow verb "update" on resource "leases" (apiGroup "coordination.k8s.io", resourceNames ["ephor-scanner"]) in namespace "default" for ${user}; ` +
          `allow verb "create" on resource "leases" (apiGroup "coordination.k8s.io") in namespace "default" for ${user}: grant the scanner's service account a Role in namespace "default"`,
      ),
      checks[0]!.fix,
    );
  });

  test('RUN_LOCK=none: one line saying the lock is off', async (t) => {
    const s = await standIns(t);
    assert.deepEqual(await lockChecks(s, { RUN_LOCK: 'none' }), [
      {
        group: 'lock',
        status: 'pass',
        message: 'RUN_LOCK=none: runs take no lock (nothing keeps two runs from posting to Ephor at the same time)',
      },
    ]);
    assert.equal(s.kube.leases.requests.length, 0);
  });
});

function describeOther(s: StandIns): string {
  const spec = s.kube.leases.get(LEASE.namespace, LEASE.name)!.spec as { acquireTime: string; renewTime: string };
  return `"${OTHER}" since ${spec.acquireTime}, renewed ${spec.renewTime}`;
}
