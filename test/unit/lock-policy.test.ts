// The run lock's pure parts: timing from EPHOR_TIMEOUT and KUBE_TIMEOUT, the takeover decision, the specs it
// writes, MicroTime, the classification of API errors, holder identity, default namespace and setting checks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeApiError } from '../../src/kube/client.js';
import {
  defaultLockNamespace,
  holderIdentity,
  lockNameProblem,
  lockNamespaceProblem,
} from '../../src/lock/identity.js';
import { classifyLeaseError, toLeaseObject } from '../../src/lock/lease-api.js';
import { formatDuration, missingLeaseRule } from '../../src/lock/messages.js';
import { formatMicroTime, parseMicroTime } from '../../src/lock/micro-time.js';
import { decide, lockTiming, observe, releasedSpec, takenSpec, type DecideInput } from '../../src/lock/policy.js';
import { canonicalMicroTime } from '../support/k8s-leases.js';

test('lock timing: the defaults (EPHOR_TIMEOUT 300 s, KUBE_TIMEOUT 30 s)', () => {
  assert.deepEqual(lockTiming(300_000, 30_000), {
    leaseDurationSeconds: 450,
    leaseDurationMs: 450_000,
    fenceMs: 300_000,
    renewIntervalMs: 75_000,
    retryIntervalMs: 5_000,
    pollIntervalMs: 5_000,
  });
});

test('lock timing: for any timeouts the lease outlasts one POST attempt plus two Kubernetes calls, and healthy renewals keep it longer than a POST', () => {
  for (const ephorMs of [1_000, 2_500, 30_000, 300_000, 1_800_000, 3_600_000]) {
    for (const kubeMs of [500, 1_000, 30_000, 120_000]) {
      const timing = lockTiming(ephorMs, kubeMs);
      const label = `EPHOR_TIMEOUT ${ephorMs}, KUBE_TIMEOUT ${kubeMs}`;
      assert.ok(Number.isInteger(timing.leaseDurationSeconds) && timing.leaseDurationSeconds >= 1, label);
      assert.ok(timing.leaseDurationMs >= ephorMs + 2 * kubeMs, label);
      assert.ok(timing.leaseDurationMs >= ephorMs * 1.5, label);
      assert.ok(timing.renewIntervalMs <= timing.leaseDurationMs / 3, `${label}: renewed at least every third`);
      assert.ok(
        timing.leaseDurationMs - timing.renewIntervalMs >= ephorMs + kubeMs,
        `${label}: just before a renewal, and after a renewal taking KUBE_TIMEOUT, a POST still fits`,
      );
      assert.ok(timing.retryIntervalMs > 0 && timing.retryIntervalMs <= timing.renewIntervalMs, label);
      assert.ok(timing.pollIntervalMs > 0 && timing.pollIntervalMs <= 5_000, label);
    }
  }
});

function input(overrides: Partial<DecideInput> & { spec: DecideInput['spec'] }): DecideInput {
  return {
    observation: observe(undefined, overrides.spec, 0),
    identity: 'me_1',
    nowMonotonicMs: 0,
    nowWallMs: Date.parse('2026-12-02T14:00:00Z'),
    ownDurationMs: 450_000,
    ...overrides,
  };
}

test('decide: released, ours, live, expired on our clock (exactly at the duration), stale by wall clock (past twice it)', () => {
  const renewTime = '2026-12-02T14:00:00.000000Z';
  const held = { holderIdentity: 'other_2', leaseDurationSeconds: 60, renewTime };
  assert.deepEqual(decide(input({ spec: { holderIdentity: '' } })), { action: 'take', reason: 'released' });
  assert.deepEqual(decide(input({ spec: {} })), { action: 'take', reason: 'released' });
  assert.deepEqual(decide(input({ spec: { ...held, holderIdentity: 'me_1' } })), { action: 'take', reason: 'ours' });
  assert.deepEqual(decide(input({ spec: held, nowMonotonicMs: 59_999 })), {
    action: 'wait',
    holder: 'other_2',
    recheckInMs: 1,
  });
  assert.deepEqual(decide(input({ spec: held, nowMonotonicMs: 60_000 })), { action: 'take', reason: 'expired' });
  const wall = Date.parse(renewTime);
  assert.equal(decide(input({ spec: held, nowWallMs: wall + 120_000 })).action, 'wait', 'exactly twice: not yet');
  assert.deepEqual(decide(input({ spec: held, nowWallMs: wall + 120_001 })), { action: 'take', reason: 'stale' });
  assert.equal(
    decide(input({ spec: { ...held, renewTime: 'garbage' }, nowWallMs: wall + 10_000_000 })).action,
    'wait',
    'an unreadable renewTime never shortcuts',
  );
  // no usable duration in the record: our own
  const noDuration = { holderIdentity: 'other_2' };
  assert.deepEqual(decide(input({ spec: noDuration, nowMonotonicMs: 449_999 })).action, 'wait');
  assert.deepEqual(decide(input({ spec: noDuration, nowMonotonicMs: 450_000 })).action, 'take');
});

test('observe: any change of the record restarts the wait; the same record keeps its first sighting', () => {
  const spec = { holderIdentity: 'other_2', leaseDurationSeconds: 60, renewTime: '2026-12-02T14:00:00.000000Z' };
  const first = observe(undefined, spec, 1_000);
  assert.equal(observe(first, { ...spec }, 50_000), first);
  assert.equal(observe(first, { ...spec, renewTime: '2026-12-02T14:00:10.000000Z' }, 50_000).sinceMs, 50_000);
  assert.equal(observe(first, { ...spec, leaseTransitions: 1 }, 50_000).sinceMs, 50_000);
  assert.equal(observe(first, { ...spec, holderIdentity: '' }, 50_000).sinceMs, 50_000);
});

test('the specs written: created, taken over (+1 transition), renewed as ours (acquireTime kept), released as client-go does', () => {
  const timing = lockTiming(300_000, 30_000);
  const now = '2026-12-02T14:39:06.123456Z';
  const previous = { holderIdentity: 'x', acquireTime: '2026-12-01T00:00:00.000000Z', leaseTransitions: 4 };
  assert.deepEqual(takenSpec(undefined, 'created', 'me', timing, now), {
    holderIdentity: 'me',
    leaseDurationSeconds: 450,
    acquireTime: now,
    renewTime: now,
    leaseTransitions: 0,
  });
  assert.equal(takenSpec(previous, 'expired', 'me', timing, now).leaseTransitions, 5);
  assert.equal(takenSpec(previous, 'released', 'me', timing, now).leaseTransitions, 5);
  assert.deepEqual(takenSpec(previous, 'ours', 'me', timing, now), {
    holderIdentity: 'me',
    leaseDurationSeconds: 450,
    acquireTime: previous.acquireTime,
    renewTime: now,
    leaseTransitions: 4,
  });
  assert.deepEqual(releasedSpec(previous, now), {
    holderIdentity: '',
    leaseDurationSeconds: 1,
    acquireTime: now,
    renewTime: now,
    leaseTransitions: 4,
  });
});

test('MicroTime: written with six fraction digits in UTC (what the API server requires), read in any RFC 3339 form', () => {
  const ms = Date.parse('2026-12-02T14:39:06.123Z') + 0.456;
  assert.equal(formatMicroTime(ms), '2026-12-02T14:39:06.123456Z');
  assert.equal(formatMicroTime(Date.parse('2026-12-02T14:39:06Z')), '2026-12-02T14:39:06.000000Z');
  assert.equal(parseMicroTime('2026-12-02T14:39:06.123456Z'), ms);
  assert.equal(parseMicroTime('2026-12-02T15:39:06.123456+01:00'), ms);
  assert.equal(parseMicroTime('2026-12-02T14:39:06Z'), Date.parse('2026-12-02T14:39:06Z'));
  assert.equal(parseMicroTime('2026-12-02T14:39:06.123456789Z'), ms, 'digits past the microsecond are dropped');
  for (const bad of ['', 'yesterday', '2026-12-02 14:39:06Z', '2026-13-02T14:39:06Z', '2026-12-02T14:39:06'])
    assert.equal(parseMicroTime(bad), undefined, bad);
  // what the stand-in (after Go's time.Parse with RFC3339Micro) accepts, and stores unchanged
  for (const sample of [0, ms, Date.now(), Date.now() + 0.001])
    assert.deepEqual(canonicalMicroTime(formatMicroTime(sample)), { time: formatMicroTime(sample) });
  assert.ok('error' in canonicalMicroTime(new Date(ms).toISOString()), 'three digits would be refused');
});

test('API errors become typed outcomes: the three 404s, 409, 403 with its user, transient and not', () => {
  const http = (status: number, reason: string, message: string) =>
    new KubeApiError(`PUT /apis/...: HTTP ${status} ${reason}: ${message}`, 'http', status, reason);
  const classify = (error: unknown, verb: 'get' | 'create' | 'update' = 'get') =>
    classifyLeaseError(error, verb, 'ephor', 'ephor-scanner');
  assert.deepEqual(classify(http(404, 'NotFound', 'leases.coordination.k8s.io "ephor-scanner" not found')), {
    kind: 'not-found',
  });
  assert.equal(classify(http(404, 'NotFound', 'namespaces "ephor" not found'), 'create').kind, 'namespace-missing');
  assert.equal(classify(http(404, 'NotFound', 'the server could not find the requested resource')).kind, 'api-missing');
  assert.equal(classify(http(409, 'Conflict', 'Operation cannot be fulfilled …')).kind, 'conflict');
  assert.equal(classify(http(409, 'AlreadyExists', '… already exists'), 'create').kind, 'conflict');
  const user = 'system:serviceaccount:ephor:ephor-scanner';
  assert.deepEqual(
    classify(
      http(403, 'Forbidden', `leases.coordination.k8s.io "ephor-scanner" is forbidden: User "${user}" cannot update`),
      'update',
    ),
    {
      kind: 'forbidden',
      verb: 'update',
      user,
      message: `PUT /apis/...: HTTP 403 Forbidden: leases.coordination.k8s.io "ephor-scanner" is forbidden: User "${user}" cannot update`,
    },
  );
  for (const [error, transient] of [
    [http(500, 'InternalError', 'etcdserver: request timed out'), true],
    [http(503, 'ServiceUnavailable', ''), true],
    [http(429, 'TooManyRequests', ''), true],
    [new KubeApiError('GET x: no answer within 30000 ms (KUBE_TIMEOUT)', 'timeout'), true],
    [new KubeApiError('GET x: ECONNREFUSED', 'network'), true],
    [http(401, 'Unauthorized', 'Unauthorized'), false],
    [http(422, 'Invalid', 'spec.leaseDurationSeconds: Invalid value'), false],
    [new Error('boom'), false],
  ] as const) {
    const failure = classify(error);
    assert.deepEqual(
      [failure.kind, failure.kind === 'failed' && failure.transient],
      ['failed', transient],
      String(error),
    );
  }
});

test('a Lease read from the API keeps only well-typed spec fields and the whole metadata', () => {
  assert.equal(toLeaseObject({ metadata: { name: 'x' } }), undefined);
  assert.equal(toLeaseObject('nope'), undefined);
  const lease = toLeaseObject({
    kind: 'Lease',
    metadata: { name: 'x', namespace: 'ns', resourceVersion: '7', uid: 'u', labels: { a: 'b' } },
    spec: { holderIdentity: 42, leaseDurationSeconds: 60, renewTime: '2026-12-02T14:39:06.123456Z', extra: true },
  });
  assert.deepEqual(lease, {
    metadata: { name: 'x', namespace: 'ns', resourceVersion: '7', uid: 'u', labels: { a: 'b' } },
    spec: { leaseDurationSeconds: 60, renewTime: '2026-12-02T14:39:06.123456Z' },
  });
});

test('holder identity: Pod name in a cluster, host name elsewhere, always with the scan_group_id', () => {
  const id = '6f1c9a52-0d5e-4c3b-9a57-3c1f7f0e2a10';
  const pod = { KUBERNETES_SERVICE_HOST: '10.0.0.1', HOSTNAME: 'ephor-scanner-29012345-abcde' };
  assert.equal(holderIdentity(id, pod, 'node-host'), `ephor-scanner-29012345-abcde_${id}`);
  assert.equal(holderIdentity(id, { ...pod, POD_NAME: 'from-downward-api' }, 'node-host'), `from-downward-api_${id}`);
  assert.equal(holderIdentity(id, { HOSTNAME: 'ignored-outside-a-pod' }, 'laptop-jdoe'), `laptop-jdoe_${id}`);
  assert.equal(holderIdentity(id, {}, ''), `unknown-host_${id}`);
});

test("RUN_LOCK_NAMESPACE's default: the current context's namespace (the Pod's own, in a cluster), else default", () => {
  const config = (namespace?: string) => {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', skipTLSVerify: false }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'ctx', cluster: 'c', user: 'u', ...(namespace !== undefined && { namespace }) }],
      currentContext: 'ctx',
    });
    return kubeConfig;
  };
  assert.equal(defaultLockNamespace(config('ephor')), 'ephor');
  assert.equal(defaultLockNamespace(config('ephor\n')), 'ephor');
  assert.equal(defaultLockNamespace(config()), 'default');
  assert.equal(defaultLockNamespace(config('')), 'default');
});

test('RUN_LOCK_NAME and RUN_LOCK_NAMESPACE must be names Kubernetes accepts', () => {
  for (const good of ['ephor-scanner', 'ephor.scanner-2', 'a']) assert.equal(lockNameProblem(good), undefined, good);
  for (const bad of ['', 'Ephor', 'ephor_scanner', '-x', 'x-', 'a..b', 'x'.repeat(254)])
    assert.match(lockNameProblem(bad) ?? '', /must be a Kubernetes object name/, bad);
  for (const good of ['ephor', 'team-a', 'x'.repeat(63)]) assert.equal(lockNamespaceProblem(good), undefined, good);
  for (const bad of ['', 'a.b', 'Team', 'x'.repeat(64)])
    assert.match(lockNamespaceProblem(bad) ?? '', /must be a namespace name/, bad);
});

test('messages: the missing rule of each verb, and durations to the millisecond', () => {
  const api = { namespace: 'ephor', name: 'ephor-scanner' };
  assert.equal(
    missingLeaseRule('update', api, 'u'),
    'allow verb "update" on resource "leases" (apiGroup "coordination.k8s.io", resourceNames ["ephor-scanner"]) in namespace "ephor" for u',
  );
  assert.equal(
    missingLeaseRule('create', api),
    `allow verb "create" on resource "leases" (apiGroup "coordination.k8s.io") in namespace "ephor" for the scanner's service account`,
  );
  assert.deepEqual([299_999, 300_000, 45_000, 1_500, 5_400_000, 36_000_250].map(formatDuration), [
    '4m59.999s',
    '5m0s',
    '45s',
    '1.5s',
    '1h30m0s',
    '10h0m0.25s',
  ]);
});
