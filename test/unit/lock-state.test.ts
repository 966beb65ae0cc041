// The run lock's state machine, in process, on a fake clock and an in-memory Lease with the API server's optimistic
// concurrency: creating, waiting (and saying for whom), taking over by client-go's observed-unchanged rule and by the
// stale-renewTime rule, 409 races, renewal timing, fencing (another holder; failed renewals eating the margin),
// release, and the old-RBAC fallback. Times below are fake milliseconds, so exact values are asserted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatMicroTime } from '../../src/lock/micro-time.js';
import { lockTiming } from '../../src/lock/policy.js';
import { LockLostError, RunLock, type AcquireOutcome } from '../../src/lock/run-lock.js';
import type { LeaseFailure, LeaseSpec } from '../../src/lock/lease-api.js';
import { FakeClock, FakeLeaseApi, FakeLeaseStore, captureLog, type CapturedLog } from '../lock/fakes.js';

const EPHOR_TIMEOUT = 300_000;
const KUBE_TIMEOUT = 30_000;
const TIMING = lockTiming(EPHOR_TIMEOUT, KUBE_TIMEOUT); // 450 s lease, renewed every 75 s
const PROGRESS = 30_000;
const ME = 'scanner-pod-1_6f1c9a52-0d5e-4c3b-9a57-3c1f7f0e2a10';
const USER = 'system:serviceaccount:ephor:ephor-scanner';

interface Contender {
  api: FakeLeaseApi;
  lock: RunLock;
  logs: CapturedLog;
}

function contender(
  store: FakeLeaseStore,
  clock: FakeClock,
  options: { identity?: string; waitLimitMs?: number } = {},
): Contender {
  const api = new FakeLeaseApi(store, clock);
  const logs = captureLog();
  const lock = new RunLock({
    api,
    identity: options.identity ?? ME,
    timing: TIMING,
    waitLimitMs: options.waitLimitMs ?? 600_000,
    progressIntervalMs: PROGRESS,
    log: logs.log,
    clock,
  });
  return { api, lock, logs };
}

function liveHolder(clock: FakeClock, holder: string, overrides: LeaseSpec = {}): LeaseSpec {
  const now = formatMicroTime(clock.wallMs());
  return {
    holderIdentity: holder,
    leaseDurationSeconds: 450,
    acquireTime: now,
    renewTime: now,
    leaseTransitions: 3,
    ...overrides,
  };
}

/** Another run that keeps renewing its lease every `everyMs` until stopped. */
function renewingElsewhere(store: FakeLeaseStore, clock: FakeClock, everyMs: number): { stop(): void } {
  const controller = new AbortController();
  void (async () => {
    while (!controller.signal.aborted) {
      await clock.sleep(everyMs, { signal: controller.signal });
      if (controller.signal.aborted || !store.lease) return;
      store.put({ ...store.lease.spec, renewTime: formatMicroTime(clock.wallMs()) });
    }
  })();
  return { stop: () => controller.abort() };
}

const MICRO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const forbidden = (verb: 'get' | 'create' | 'update'): LeaseFailure => ({
  kind: 'forbidden',
  verb,
  user: USER,
  message: `HTTP 403 Forbidden: leases.coordination.k8s.io is forbidden: User "${USER}" cannot ${verb} resource "leases"`,
});

function assertAcquired(outcome: AcquireOutcome): asserts outcome is Extract<AcquireOutcome, { outcome: 'acquired' }> {
  assert.equal(outcome.outcome, 'acquired', JSON.stringify(outcome));
}

test('a missing Lease is created in MicroTime with this run as holder, and the run holds it', async () => {
  const clock = new FakeClock();
  const store = new FakeLeaseStore();
  const { api, lock, logs } = contender(store, clock);

  const outcome = await clock.run(lock.acquire());
  assertAcquired(outcome);
  assert.deepEqual(
    api.calls.map((c) => [c.verb, c.result]),
    [
      ['get', 'not-found'],
      ['create', 'ok'],
    ],
  );
  const now = formatMicroTime(clock.wallMs());
  assert.match(now, MICRO_TIME);
  assert.deepEqual(store.lease?.spec, {
    holderIdentity: ME,
    leaseDurationSeconds: 450,
    acquireTime: now,
    renewTime: now,
    leaseTransitions: 0,
  });
  assert.equal(outcome.leaseDurationSeconds, 450);
  assert.equal(outcome.previousHolder, undefined);
  assert.equal(lock.validForMs(), TIMING.leaseDurationMs);
  assert.deepEqual(logs.messages('info'), ['run lock acquired']);
  assert.equal(logs.lines[0]?.lease, 'ephor/ephor-scanner');
  await lock.release();
});

test('while another live run holds it, the run waits, names the holder and since when at the progress interval, and gives up when RUN_LOCK_WAIT runs out', async () => {
  const clock = new FakeClock();
  const store = new FakeLeaseStore();
  const held = liveHolder(clock, 'scheduled-run_1111');
  store.put(held);
  const other = renewingElsewhere(store, clock, 60_000);
  const { api, lock, logs } = contender(store, clock, { waitLimitMs: 120_000 });

  const outcome = await clock.run(lock.acquire(), 1_000);
  other.stop();

  assert.equal(outcome.outcome, 'not-acquired');
  assert.equal(outcome.outcome === 'not-acquired' && outcome.reason, 'held');
  assert.ok(outcome.outcome === 'not-acquired');
  assert.equal(outcome.holder, 'scheduled-run_1111');
  assert.match(
    outcome.message,
    /^run lock ephor\/ephor-scanner not acquired: another run holds it: "scheduled-run_1111"/,
  );
  assert.ok(outcome.message.includes(`since ${held.acquireTime}`), outcome.message);
  assert.match(outcome.message, /gave up after waiting 2m0s \(RUN_LOCK_WAIT\)$/);
  assert.equal(clock.nowMs, 120_000);
  assert.deepEqual(api.writes(), [], 'nothing was written while waiting');

  const waiting = logs.lines.filter((l) => String(l.msg).startsWith('waiting for the run lock'));
  assert.deepEqual(
    waiting.map((l) => l.waited_s),
    [0, 30, 60, 90],
    'one line at the start, then one per progress interval',
  );
  for (const line of waiting) {
    assert.equal(line.holder, 'scheduled-run_1111');
    assert.equal(line.held_since, held.acquireTime);
    assert.equal(line.wait_limit_s, 120);
    assert.match(String(line.msg), /another run holds it: "scheduled-run_1111" since /);
  }
  assert.deepEqual(logs.messages('error'), [outcome.message]);
  await assert.rejects(lock.fence(), LockLostError, 'a run that did not get the lock may not post');
});

test('RUN_LOCK_WAIT=0: one look at a held Lease, then not acquired at once', async () => {
  const clock = new FakeClock();
  const store = new FakeLeaseStore();
  store.put(liveHolder(clock, 'other_2222'));
  const { api, lock, logs } = contender(store, clock, { waitLimitMs: 0 });

  const outcome = await clock.run(lock.acquire());
  assert.equal(outcome.outcome, 'not-acquired');
  assert.deepEqual(
    api.calls.map((c) => c.verb),
    ['get'],
  );
  assert.equal(clock.nowMs, 0);
  assert.deepEqual(logs.messages('info'), [], 'no waiting line for a wait that does not happen');
});

for (const [skew, skewMs] of [
  ["this run's wall clock an hour behind (the renewTime is in its future)", -3_600_000],
  ["this run's wall clock 50 s ahead (the renewTime looks older than the duration, never twice as old)", 50_000],
] as const) {
  test(`a Lease unchanged for its full leaseDurationSeconds on this run's monotonic clock is taken over: ${skew}`, async () => {
    const clock = new FakeClock();
    const store = new FakeLeaseStore();
    // the holder died: written once (its own 60 s duration, not ours), never renewed
    const dead = liveHolder(clock, 'crashed-run_3333', { leaseDurationSeconds: 60 });
    store.put(dead);
    clock.skewMs = skewMs;
    const { api, lock, logs } = contender(store, clock);

    const outcome = await clock.run(lock.acquire(), 1_000);
    assertAcquired(outcome);
    const writes = api.writes();
    assert.equal(writes.length, 1);
    assert.equal(writes[0]!.atMs, 60_000, 'taken exactly when it had been seen unchanged for 60 s, not before');
    assert.equal(outcome.previousHolder, 'crashed-run_3333');
    assert.equal(outcome.leaseTransitions, 4);
    const now = formatMicroTime(clock.wallMs());
    assert.deepEqual(store.lease?.spec, {
      holderIdentity: ME,
      leaseDurationSeconds: 450,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: 4,
    });
    const acquired = logs.lines.find((l) => l.msg === 'run lock acquired');
    assert.equal(acquired?.how, 'expired');
    assert.equal(acquired?.previous_holder, 'crashed-run_3333');
    await lock.release();
  });
}

test("a renewTime older than twice the duration by this run's wall clock is taken at once; one just younger is not", async () => {
  const clock = new FakeClock();
  const staleStore = new FakeLeaseStore();
  staleStore.put(
    liveHolder(clock, 'old-run_4444', {
      leaseDurationSeconds: 60,
      renewTime: formatMicroTime(clock.wallMs() - 120_001),
    }),
  );
  const stale = contender(staleStore, clock);
  const outcome = await clock.run(stale.lock.acquire());
  assertAcquired(outcome);
  assert.equal(clock.nowMs, 0);
  assert.deepEqual(
    stale.api.calls.map((c) => c.verb),
    ['get', 'update'],
  );
  assert.equal(stale.logs.lines.find((l) => l.msg === 'run lock acquired')?.how, 'stale');
  await stale.lock.release();

  // older than the duration but younger than twice it: no shortcut, the full duration is waited out
  const youngerStore = new FakeLeaseStore();
  youngerStore.put(
    liveHolder(clock, 'old-run_5555', {
      leaseDurationSeconds: 60,
      renewTime: formatMicroTime(clock.wallMs() - 61_000),
    }),
  );
  const younger = contender(youngerStore, clock);
  const start = clock.nowMs;
  const later = await clock.run(younger.lock.acquire(), 1_000);
  assertAcquired(later);
  assert.equal(younger.api.writes()[0]!.atMs - start, 60_000, 'waited out the full duration instead');
  assert.equal(younger.logs.lines.find((l) => l.msg === 'run lock acquired')?.how, 'expired');
  await younger.lock.release();
});

test('a 409 race: two runs find the same released Lease, exactly one wins, the other reads again and waits', async () => {
  const clock = new FakeClock();
  const store = new FakeLeaseStore();
  store.put({ holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 7 });
  const a = contender(store, clock, { identity: 'run-a_aaaa', waitLimitMs: 10_000 });
  const b = contender(store, clock, { identity: 'run-b_bbbb', waitLimitMs: 10_000 });
  // both read the Lease before either writes
  let arrived = 0;
  let open!: () => void;
  const bothRead = new Promise<void>((resolve) => (open = resolve));
  const barrier = async () => {
    if (++arrived === 2) open();
    await bothRead;
  };
  a.api.beforeWrite = barrier;
  b.api.beforeWrite = barrier;

  const [first, second] = await clock.run(Promise.all([a.lock.acquire(), b.lock.acquire()]), 1_000);
  const outcomes = [first, second];
  assert.equal(outcomes.filter((o) => o.outcome === 'acquired').length, 1, JSON.stringify(outcomes));
  const winner = first.outcome === 'acquired' ? a : b;
  const loser = winner === a ? b : a;
  const lost = winner === a ? second : first;
  const winnerIdentity = winner === a ? 'run-a_aaaa' : 'run-b_bbbb';
  assert.equal(lost.outcome === 'not-acquired' && lost.holder, winnerIdentity);
  assert.deepEqual(
    loser.api.calls.slice(0, 3).map((c) => [c.verb, c.result]),
    [
      ['get', 'ok'],
      ['update', 'conflict'],
      ['get', 'ok'],
    ],
    'the loser got the 409, read again, and saw the winner',
  );
  assert.equal(store.lease?.spec.holderIdentity, winnerIdentity);
  assert.equal(store.lease?.spec.leaseTransitions, 8, 'one transition, not two');
  await winner.lock.release();
});

test('renewals come at least every third of leaseDurationSeconds, and the lease never gets shorter than EPHOR_TIMEOUT while they succeed', async () => {
  const clock = new FakeClock();
  const store = new FakeLeaseStore();
  const { api, lock } = contender(store, clock);
  assertAcquired(await clock.run(lock.acquire()));

  for (let elapsed = 0; elapsed < 3_600_000; elapsed += 10_000) {
    await clock.advance(10_000);
    assert.ok(lock.validForMs() >= EPHOR_TIMEOUT, `valid for ${lock.validForMs()} ms at ${clock.nowMs}`);
  }
  const renewals = api.writes().filter((c) => c.verb === 'update');
  const times = [0, ...renewals.map((c) => c.atMs)];
  const gaps = times.slice(1).map((t, i) => t - times[i]!);
  assert.ok(renewals.length >= 3_600_000 / (TIMING.leaseDurationMs / 3), `${renewals.length} renewals in an hour`);
  assert.ok(
    gaps.every((gap) => gap > 0 && gap <= TIMING.leaseDurationMs / 3),
    `gaps ${gaps.join(',')}`,
  );
  assert.ok(
    renewals.every(
      (c) => c.result === 'ok' && c.spec?.holderIdentity === ME && MICRO_TIME.test(c.spec.renewTime ?? ''),
    ),
  );
  assert.equal(store.lease?.spec.acquireTime, formatMicroTime(clock.startWallMs), 'acquireTime stays the first one');

  await lock.release();
  assert.equal(clock.pendingSleeps(), 0, 'the renewal timer is stopped at once');
  const calls = api.calls.length;
  await clock.advance(3_600_000);
  assert.equal(api.calls.length, calls, 'no renewal after release');
});

test('fence renews before every POST attempt, and refuses for good once another run holds the Lease', async () => {
  const clock = new FakeClock();
  const store = new FakeLeaseStore();
  const { api, lock, logs } = contender(store, clock);
  assertAcquired(await clock.run(lock.acquire()));

  await clock.advance(5_000);
  await clock.run(lock.fence());
  assert.deepEqual(
    api.calls.slice(-1).map((c) => [c.verb, c.result, c.atMs]),
    [['update', 'ok', 5_000]],
  );
  await clock.run(lock.fence());
  assert.equal(api.calls.filter((c) => c.verb === 'update').length, 2, 'each fence renews');

  // another run overwrites the Lease (as the e2e test does after the first POST)
  store.put(liveHolder(clock, 'intruder_9999'));
  const refused = await clock.run(
    lock.fence().then(
      () => undefined,
      (error: unknown) => error,
    ),
  );
  assert.ok(refused instanceof LockLostError);
  assert.equal(refused.reason, 'taken');
  assert.equal(refused.holder, 'intruder_9999');
  assert.match(refused.message, /^run lock lost: the Lease ephor\/ephor-scanner is now held by "intruder_9999" since /);
  assert.deepEqual(
    api.calls.slice(-2).map((c) => [c.verb, c.result]),
    [
      ['update', 'conflict'],
      ['get', 'ok'],
    ],
  );

  const calls = api.calls.length;
  await assert.rejects(clock.run(lock.fence()), (error: unknown) => error === refused, 'the same refusal, every time');
  await clock.advance(3_600_000);
  assert.equal(api.calls.length, calls, 'no API call after the loss: no fence renewal, no background renewal');
  assert.equal(store.lease?.spec.holderIdentity, 'intruder_9999', 'the new holder is left alone');
  const errors = logs.lines.filter((l) => l.level === 'error');
  assert.equal(errors.length, 1);
  assert.match(String(errors[0]?.msg), /no further POST is made and nothing is written to the spool$/);
  await lock.release();
  assert.equal(api.calls.length, calls, 'release does not touch a Lease another run holds');
});

test('while renewals fail, fence lets POSTs start as long as the lease stays valid for EPHOR_TIMEOUT, and refuses from the moment it does not', async () => {
  const clock = new FakeClock();
  const store = new FakeLeaseStore();
  const { api, lock, logs } = contender(store, clock);
  assertAcquired(await clock.run(lock.acquire())); // sent at 0: valid until 450 s
  const outage: LeaseFailure = { kind: 'failed', transient: true, message: 'HTTP 503 ServiceUnavailable' };
  api.inject = (verb) => (verb === 'update' ? { failure: outage } : undefined);

  for (const atMs of [10_000, 75_000, 120_000, 150_000]) {
    await clock.advance(atMs - clock.nowMs);
    await clock.run(lock.fence());
    assert.ok(lock.validForMs() >= EPHOR_TIMEOUT, `fence at ${atMs} passed with ${lock.validForMs()} ms left`);
  }
  await clock.advance(1);
  const refused = await clock.run(
    lock.fence().then(
      () => undefined,
      (error: unknown) => error,
    ),
  );
  assert.ok(refused instanceof LockLostError, 'refused 1 ms after the margin was used up');
  assert.equal(refused.reason, 'renewals-failed');
  assert.match(refused.message, /could not be renewed \(\d+ failed renewals, last: HTTP 503 ServiceUnavailable\)/);
  assert.match(
    refused.message,
    /the lease is valid only 4m59\.999s more by this run's clock, less than one POST may take \(EPHOR_TIMEOUT 5m0s\)/,
  );
  assert.ok(api.calls.filter((c) => c.verb === 'update').every((c) => c.result === 'failed'));

  api.inject = () => undefined; // the API is back: the loss stands
  const calls = api.calls.length;
  await assert.rejects(clock.run(lock.fence()), (error: unknown) => error === refused);
  assert.equal(api.calls.length, calls);
  const warnings = logs.lines.filter(
    (l) => l.msg === 'run lock renewal failed; POSTs go on only while the lease stays valid for EPHOR_TIMEOUT more',
  );
  assert.ok(warnings.length >= 1 && warnings.length <= 6, `${warnings.length} warnings over 150 s: throttled`);
  await lock.release();
});

test('renewals that hang for KUBE_TIMEOUT: a fence passes only if the lease is still valid for EPHOR_TIMEOUT after the hung call', async () => {
  const clock = new FakeClock();
  const store = new FakeLeaseStore();
  const { api, lock } = contender(store, clock);
  assertAcquired(await clock.run(lock.acquire()));
  const timeout: LeaseFailure = {
    kind: 'failed',
    transient: true,
    message: 'PUT …: no answer within 30000 ms (KUBE_TIMEOUT)',
  };
  api.inject = (verb) => (verb === 'update' ? { failure: timeout, delayMs: KUBE_TIMEOUT } : undefined);

  const passed: number[] = [];
  let refusal: unknown;
  for (let post = 0; post < 100 && refusal === undefined; post++) {
    try {
      await clock.run(lock.fence(), 1_000);
      passed.push(lock.validForMs());
      await clock.advance(5_000); // the POST
    } catch (error) {
      refusal = error;
    }
  }
  assert.ok(passed.length >= 1, 'the first fences passed');
  assert.ok(
    passed.every((validMs) => validMs >= EPHOR_TIMEOUT),
    `validity after each passed fence: ${passed.join(',')}`,
  );
  assert.ok(refusal instanceof LockLostError && refusal.reason === 'renewals-failed');
  assert.ok(lock.validForMs() < EPHOR_TIMEOUT);
  await lock.release();
});

test('a renewal the server carried out but whose answer was lost is not a lost lock: the 409 shows this run still holds it', async () => {
  const clock = new FakeClock();
  const store = new FakeLeaseStore();
  const { api, lock } = contender(store, clock);
  assertAcquired(await clock.run(lock.acquire()));
  let once = true;
  api.inject = (verb) => {
    if (verb !== 'update' || !once) return undefined;
    once = false;
    return { applied: true, failure: { kind: 'failed', transient: true, message: 'socket hang up' } };
  };
  await clock.run(lock.fence()); // applied, answer lost: still valid from the earlier write
  await clock.run(lock.fence()); // stale resourceVersion: 409, read: still ours, write again
  assert.deepEqual(
    api.calls.slice(-4).map((c) => [c.verb, c.result]),
    [
      ['update', 'failed'],
      ['update', 'conflict'],
      ['get', 'ok'],
      ['update', 'ok'],
    ],
  );
  assert.equal(store.lease?.spec.holderIdentity, ME);
  await lock.release();
});

test('release gives the Lease up as client-go does, and a waiting run takes it at the next look instead of waiting it out', async () => {
  const clock = new FakeClock();
  const store = new FakeLeaseStore();
  const a = contender(store, clock, { identity: 'run-a_aaaa' });
  const b = contender(store, clock, { identity: 'run-b_bbbb', waitLimitMs: 3_600_000 });
  assertAcquired(await clock.run(a.lock.acquire()));
  const waiting = b.lock.acquire();
  await clock.advance(60_000);
  const transitionsBefore = store.lease?.spec.leaseTransitions ?? 0;

  await clock.run(a.lock.release());
  const releasedAt = clock.nowMs;
  const now = formatMicroTime(clock.wallMs());
  assert.deepEqual(store.lease?.spec, {
    holderIdentity: '',
    leaseDurationSeconds: 1,
    acquireTime: now,
    renewTime: now,
    leaseTransitions: transitionsBefore,
  });
  assert.deepEqual(a.logs.messages('info').at(-1), 'run lock released');

  const outcome = await clock.run(waiting, 1_000);
  assertAcquired(outcome);
  const taken = b.api.writes()[0]!;
  assert.ok(taken.atMs - releasedAt <= TIMING.pollIntervalMs, `taken ${taken.atMs - releasedAt} ms after the release`);
  assert.equal(outcome.leaseTransitions, transitionsBefore + 1);
  assert.equal(b.logs.lines.find((l) => l.msg === 'run lock acquired')?.how, 'released');
  await assert.rejects(
    a.lock.fence(),
    (error: unknown) => error instanceof LockLostError && error.reason === 'released',
  );
  await clock.run(b.lock.release());
});

test('release after a POST that got no answer leaves the lease to expire (Ephor may still be processing it)', async () => {
  const clock = new FakeClock();
  const store = new FakeLeaseStore();
  const { api, lock, logs } = contender(store, clock);
  assertAcquired(await clock.run(lock.acquire()));
  const calls = api.calls.length;
  await clock.run(lock.release({ lastPostUnanswered: true }));
  assert.equal(api.calls.length, calls, 'no write');
  assert.equal(store.lease?.spec.holderIdentity, ME);
  assert.match(logs.messages('warn').join('\n'), /left to expire instead of released/);
});

for (const [what, inject, rule] of [
  [
    'get',
    (verb: string) => (verb === 'get' ? forbidden('get') : undefined),
    `allow verb "get" on resource "leases" (apiGroup "coordination.k8s.io", resourceNames ["ephor-scanner"]) in namespace "ephor" for ${USER}`,
  ],
  [
    'create (the Lease does not exist yet)',
    (verb: string) => (verb === 'create' ? forbidden('create') : undefined),
    `allow verb "create" on resource "leases" (apiGroup "coordination.k8s.io") in namespace "ephor" for ${USER}`,
  ],
  [
    'update (a released Lease)',
    (verb: string) => (verb === 'update' ? forbidden('update') : undefined),
    `allow verb "update" on resource "leases" (apiGroup "coordination.k8s.io", resourceNames ["ephor-scanner"]) in namespace "ephor" for ${USER}`,
  ],
] as const) {
  test(`a 403 on ${what} at the start: unavailable, with one warning naming the missing rule and how to grant it`, async () => {
    const clock = new FakeClock();
    const store = new FakeLeaseStore();
    if (what.startsWith('update')) store.put({ holderIdentity: '', leaseDurationSeconds: 1 });
    const { api, lock, logs } = contender(store, clock);
    api.inject = (verb) => {
      const failure = inject(verb);
      return failure && { failure };
    };

    const outcome = await clock.run(lock.acquire());
    assert.equal(outcome.outcome, 'unavailable');
    assert.ok(outcome.outcome === 'unavailable');
    assert.equal(outcome.reason, 'forbidden');
    assert.ok(outcome.warning.includes(`missing RBAC rule: ${rule};`), outcome.warning);
    assert.match(outcome.warning, /WITHOUT the run lock/);
    assert.match(outcome.warning, /verbs \["get", "update"\] for resourceNames \["ephor-scanner"\] and verb "create"/);
    assert.match(outcome.warning, /RUN_LOCK=none/);
    assert.deepEqual(logs.messages('warn'), [outcome.warning], 'exactly one warning');
    assert.deepEqual(logs.messages('error'), []);
    const calls = api.calls.length;
    await clock.run(lock.fence());
    await clock.run(lock.release());
    assert.equal(api.calls.length, calls, 'unlocked: fence and release make no call');
  });
}

test('a 404 on the Lease API itself (not on the object) at the start: unavailable', async () => {
  const clock = new FakeClock();
  const { api, lock, logs } = contender(new FakeLeaseStore(), clock);
  api.inject = () => ({
    failure: { kind: 'api-missing', message: 'HTTP 404 NotFound: the server could not find the requested resource' },
  });
  const outcome = await clock.run(lock.acquire());
  assert.ok(outcome.outcome === 'unavailable' && outcome.reason === 'api-missing');
  assert.match(outcome.warning, /serves no coordination\.k8s\.io\/v1 Leases \(HTTP 404/);
  assert.equal(logs.messages('warn').length, 1);
});

test('a missing lock namespace or a rejected request ends the attempt at once; a failing API is retried until the wait runs out', async () => {
  const clock = new FakeClock();
  const cases: Array<[LeaseFailure, string, RegExp]> = [
    [
      { kind: 'namespace-missing', message: 'HTTP 404 NotFound: namespaces "ephor" not found' },
      'namespace-missing',
      /its namespace "ephor" does not exist \(RUN_LOCK_NAMESPACE\)/,
    ],
    [
      { kind: 'failed', transient: false, message: 'HTTP 401 Unauthorized: Unauthorized' },
      'rejected',
      /rejected the Lease ephor\/ephor-scanner: HTTP 401/,
    ],
  ];
  for (const [failure, reason, message] of cases) {
    const { api, lock } = contender(new FakeLeaseStore(), clock);
    api.inject = (verb) => (verb === 'create' ? { failure } : undefined);
    const start = clock.nowMs;
    const outcome = await clock.run(lock.acquire());
    assert.ok(outcome.outcome === 'not-acquired', JSON.stringify(outcome));
    assert.equal(outcome.reason, reason);
    assert.match(outcome.message, message);
    assert.equal(clock.nowMs, start, 'at once');
  }

  const { api, lock, logs } = contender(new FakeLeaseStore(), clock, { waitLimitMs: 60_000 });
  api.inject = () => ({ failure: { kind: 'failed', transient: true, message: 'GET …: ECONNREFUSED' } });
  const start = clock.nowMs;
  const outcome = await clock.run(lock.acquire(), 1_000);
  assert.ok(outcome.outcome === 'not-acquired' && outcome.reason === 'api-failing');
  assert.match(outcome.message, /the Kubernetes API kept failing \(GET …: ECONNREFUSED\); gave up after waiting 1m0s/);
  assert.equal(clock.nowMs - start, 60_000);
  assert.equal(api.calls.length, 60_000 / TIMING.pollIntervalMs + 1, 'one read per poll interval');
  assert.equal(logs.messages('warn').length, 2, 'a warning at the start and after one progress interval');
});

test('a waiting run stops waiting when its signal aborts (the run is shutting down)', async () => {
  const clock = new FakeClock();
  const store = new FakeLeaseStore();
  store.put(liveHolder(clock, 'other_7777'));
  const keepAlive = renewingElsewhere(store, clock, 60_000);
  const { lock } = contender(store, clock);
  const controller = new AbortController();
  const waiting = lock.acquire(controller.signal);
  await clock.advance(20_000);
  controller.abort();
  const outcome = await clock.run(waiting);
  keepAlive.stop();
  assert.ok(outcome.outcome === 'not-acquired' && outcome.reason === 'aborted');
  assert.equal(clock.nowMs, 20_000);
});
