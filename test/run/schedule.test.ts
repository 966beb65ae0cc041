// SCAN_DEADLINE: the decision "may one more scan start" as a pure function, the schedule around it with a fake
// clock, and a whole run in-process that reaches its deadline.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NO_TIME_LEFT } from '../../src/run/image-scan.js';
import { mayStartScan, ScanSchedule } from '../../src/run/schedule.js';
import { FakeClock, prepareRun, until, workload } from '../support/run-fakes.js';

const ALPINE = 'trivy-v0.69.3_alpine-3.10_os-pkgs.json';

describe('mayStartScan', () => {
  const at = (now: number, averageMs: number, waiting = 0, concurrency = 1) =>
    mayStartScan({ now, deadline: 10_000, averageMs, waiting, concurrency });

  test('without a deadline, always', () => {
    assert.equal(mayStartScan({ now: 1e12, averageMs: 1e9, waiting: 100, concurrency: 1 }), true);
  });

  test('before any scan finished (no average yet), until the deadline itself', () => {
    assert.equal(at(9_999, 0), true);
    assert.equal(at(10_000, 0), false);
  });

  test('only when one more scan of the average duration ends before the deadline', () => {
    assert.equal(at(6_999, 3_000), true);
    assert.equal(at(7_000, 3_000), false, 'ending exactly at the deadline is too late');
  });

  test('a scan waiting for a slot starts after those before it: each waiting one adds 1/concurrency of the average', () => {
    assert.equal(at(3_999, 3_000, 1, 1), true); // 3 999 + 3 000 × 2 < 10 000
    assert.equal(at(4_000, 3_000, 1, 1), false);
    assert.equal(at(5_499, 3_000, 2, 4), true); // 5 499 + 3 000 × 1.5 < 10 000
    assert.equal(at(5_500, 3_000, 2, 4), false);
  });
});

describe('ScanSchedule', () => {
  function schedule(clock: FakeClock, deadlineMs?: number, concurrency = 1) {
    const shutdown = new AbortController();
    const deadline = deadlineMs === undefined ? undefined : clock.now() + deadlineMs;
    return { shutdown, schedule: new ScanSchedule({ deadline, concurrency, clock, shutdown: shutdown.signal }) };
  }

  test('at the deadline its signal aborts (running scans are stopped) and the deadline counts as reached', () => {
    const clock = new FakeClock();
    const { schedule: s } = schedule(clock, 10_000);
    clock.advance(9_999);
    assert.deepEqual([s.signal.aborted, s.deadlineReached, s.mayStart()], [false, false, true]);
    clock.advance(1);
    assert.deepEqual([s.signal.aborted, s.deadlineReached, s.mayStart()], [true, true, false]);
  });

  test('the average of the scans finished so far, and the scans handed over still waiting for a slot, decide', () => {
    const clock = new FakeClock();
    const { schedule: s } = schedule(clock, 10_000);
    s.recordDuration(2_000);
    s.recordDuration(4_000); // average 3 000
    clock.advance(3_500);
    assert.equal(s.mayStart(), true, '3 500 + 3 000 < 10 000');
    const started = s.handedOver(); // one waits for a slot: the next starts after it
    assert.equal(s.mayStart(), true, '3 500 + 6 000 < 10 000');
    clock.advance(1_000);
    assert.equal(s.mayStart(), false, '4 500 + 6 000 ≥ 10 000');
    assert.equal(s.deadlineReached, true, 'a refusal counts as reaching the deadline');
    started();
    started(); // a second call changes nothing
    assert.equal(s.mayStart(), true, 'once it started: 4 500 + 3 000 < 10 000');
    assert.equal(s.signal.aborted, false, 'refusing a start stops nothing that runs');
  });

  test('a shutdown aborts its signal; dispose cancels the deadline timer', () => {
    const clock = new FakeClock();
    const { schedule: s, shutdown } = schedule(clock, 10_000);
    shutdown.abort();
    assert.equal(s.signal.aborted, true);
    assert.equal(s.deadlineReached, false);
    s.dispose();
    assert.equal(clock.pending, 0);
  });

  test('no deadline: no timer, every start allowed', () => {
    const clock = new FakeClock();
    const { schedule: s } = schedule(clock);
    s.recordDuration(1e9);
    assert.deepEqual([clock.pending, s.mayStart()], [0, true]);
  });
});

describe('a run that reaches SCAN_DEADLINE', () => {
  test('the scan running at the deadline is stopped, the scans not started are recorded as deadline, what is done is delivered, exit 0', async () => {
    // One slot: a is scanned in 4 s, b runs until the deadline stops it, c waits for the slot, d is never handed over.
    const names = ['a', 'b', 'c', 'd'];
    const prepared = await prepareRun({
      namespaces: ['slow'],
      workloads: names.map((n) => workload('slow', n, [{ name: 'app', image: `registry.local/${n}:1` }])),
      images: {
        'registry.local/a:1': { report: ALPINE, durationMs: 4_000 },
        'registry.local/b:1': { hang: true },
        'registry.local/c:1': { report: ALPINE },
        'registry.local/d:1': { report: ALPINE },
      },
      env: { SCAN_CONCURRENCY: '1', SCAN_DEADLINE: '10s' },
    });
    try {
      const running = prepared.start();
      await until(() => prepared.log.withMsg('image scanned').length === 1, 'a scanned');
      await until(() => prepared.trivy.calls.length === 2, 'b started');
      prepared.clock.advance(6_000);
      const summary = await running;

      assert.equal(summary.exitCode, 0);
      const [body] = prepared.ephor.bodiesOf('slow');
      assert.deepEqual(
        body!.workloads.map((w) => w.name),
        ['a'],
      );
      assert.deepEqual(
        body!.scan_config.not_delivered.map((e) => [e.workload, e.reason, e.detail]),
        [
          ['b', 'deadline', 'killed at SCAN_DEADLINE'],
          ['c', 'deadline', NO_TIME_LEFT],
          ['d', 'deadline', NO_TIME_LEFT],
        ],
      );
      assert.deepEqual(
        prepared.trivy.calls.map((c) => c.ref),
        ['registry.local/a:1', 'registry.local/b:1'],
      );
      assert.deepEqual(summary.images.failedByReason, { deadline: 3 });
      const [warning] = prepared.log.withMsg('SCAN_DEADLINE reached: delivering what is done');
      assert.equal(warning!.not_scanned, 3);
      assert.equal(summary.interrupted, false);
    } finally {
      await prepared.cleanup();
    }
  });
});
