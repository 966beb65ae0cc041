// The run lock's settings as the loader reads them (RUN_LOCK, RUN_LOCK_NAME, RUN_LOCK_NAMESPACE, RUN_LOCK_WAIT) and
// the lines `check` makes of what it found out about the lock (describeLock, pure).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeLock, type LeaseAccess } from '../../src/check/lock.js';
import { ConfigError, loadConfig, type Config } from '../../src/config/index.js';

const load = (env: Record<string, string>): Config =>
  loadConfig(
    { EPHOR_API_URL: 'http://ephor-api:8080', SCAN_NAMESPACES: 'shop', ...env },
    { resolveExecutable: () => '/usr/local/bin/trivy', stdoutIsTerminal: false },
  );

function problems(env: Record<string, string>): string[] {
  try {
    load(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map((p) => p.message);
    throw error;
  }
  return [];
}

test('defaults: a lease lock named ephor-scanner in the default namespace of the run, waiting 30 minutes', () => {
  assert.deepEqual(load({}).lock, { mode: 'lease', name: 'ephor-scanner', namespace: undefined, waitMs: 1_800_000 });
  assert.deepEqual(
    load({ RUN_LOCK: 'NONE', RUN_LOCK_NAME: 'shared.lock-1', RUN_LOCK_NAMESPACE: ' platform ', RUN_LOCK_WAIT: '90s' })
      .lock,
    { mode: 'none', name: 'shared.lock-1', namespace: 'platform', waitMs: 90_000 },
  );
  for (const zero of ['0', '0s', '0m', '0.0h']) assert.equal(load({ RUN_LOCK_WAIT: zero }).lock.waitMs, 0, zero);
});

test('bad values are configuration errors naming the variable, the value and what is allowed', () => {
  assert.deepEqual(
    problems({ RUN_LOCK: 'redis', RUN_LOCK_NAME: 'Ephor_Scanner', RUN_LOCK_NAMESPACE: 'a.b', RUN_LOCK_WAIT: '-1' }),
    [
      'RUN_LOCK="redis" must be one of lease, none',
      'RUN_LOCK_NAME="Ephor_Scanner" must be a Kubernetes object name: lower-case letters, digits, "-" and ".", at most 253 characters, starting and ending with a letter or digit',
      'RUN_LOCK_NAMESPACE="a.b" must be a namespace name: lower-case letters, digits and "-", at most 63 characters, starting and ending with a letter or digit',
      'RUN_LOCK_WAIT="-1" must be integer seconds (300) or a duration such as 90s, 10m or 1h30m',
    ],
  );
  assert.match(problems({ RUN_LOCK_WAIT: '25h' })[0] ?? '', /^RUN_LOCK_WAIT="25h" must be at most 24h$/);
});

test('a wait as long as SCAN_DEADLINE leaves no time to scan: a warning; none without the lock', () => {
  assert.deepEqual(load({ RUN_LOCK_WAIT: '55m', SCAN_DEADLINE: '55m' }).warnings, [
    'RUN_LOCK_WAIT (3300 s) is not shorter than SCAN_DEADLINE (3300 s): a run that waits that long for the lock has no time left to scan; lower RUN_LOCK_WAIT',
  ]);
  assert.deepEqual(load({ RUN_LOCK_WAIT: '27m30s', SCAN_DEADLINE: '55m' }).warnings, []);
  assert.deepEqual(load({ RUN_LOCK: 'none', RUN_LOCK_WAIT: '55m', SCAN_DEADLINE: '55m' }).warnings, []);
});

const LEASE = { namespace: 'ephor', name: 'ephor-scanner' };
const USER = 'system:serviceaccount:ephor:ephor-scanner';
const all = (allowed: boolean): LeaseAccess[] =>
  (['get', 'update', 'create'] as const).map((verb) => ({ verb, allowed }));

test('check: permissions in one line, then who holds the lock', () => {
  const held = describeLock(
    LEASE,
    all(true),
    {
      state: 'held',
      holder: 'ephor-scanner-29034120-abcde_1b2c',
      acquireTime: '2026-12-02T14:00:00.000000Z',
      expiresInMs: 400_000,
    },
    USER,
    1_650_000,
  );
  assert.deepEqual(
    held.map((r) => [r.status, r.message]),
    [
      ['pass', 'the scanner may get, update and create the Lease ephor/ephor-scanner (the run lock)'],
      [
        'pass',
        'a live run holds the lock now: "ephor-scanner-29034120-abcde_1b2c" since 2026-12-02T14:00:00.000000Z (expires in 6m40s unless renewed); a run starting now waits for it, at most 27m30s (RUN_LOCK_WAIT)',
      ],
    ],
  );
  const expired = describeLock(LEASE, all(true), { state: 'free', detail: 'expired', holder: 'dead_1' }, USER, 0);
  assert.equal(expired[1]?.message, 'no run holds the lock now (its last holder "dead_1" stopped renewing it)');
  const unreadable = describeLock(LEASE, all(true), { state: 'error', message: 'HTTP 500' }, USER, 0);
  assert.deepEqual(
    [unreadable[1]?.status, unreadable[1]?.message],
    ['warn', 'the Lease ephor/ephor-scanner could not be read: HTTP 500'],
  );
});

test('check: a missing permission is a warning with each missing rule and the grant, never a blocker', () => {
  const answers: LeaseAccess[] = [
    { verb: 'get', allowed: true },
    { verb: 'update', allowed: false },
    { verb: 'create', allowed: false, reason: 'RBAC: role.rbac.authorization.k8s.io "ephor-scanner-lock" not found' },
  ];
  const [line, ...rest] = describeLock(LEASE, answers, { state: 'free', detail: 'missing' }, USER, 0);
  assert.equal(line?.status, 'warn');
  assert.equal(
    line?.message,
    'the scanner may not update and create the Lease ephor/ephor-scanner (RBAC: role.rbac.authorization.k8s.io "ephor-scanner-lock" not found): runs go on WITHOUT the run lock, so nothing keeps another run from posting to Ephor at the same time',
  );
  assert.match(
    line?.fix ?? '',
    /^allow verb "update" on resource "leases" \(apiGroup "coordination.k8s.io", resourceNames \["ephor-scanner"\]\) in namespace "ephor" for system:serviceaccount:ephor:ephor-scanner; allow verb "create" on resource "leases" \(apiGroup "coordination.k8s.io"\) in namespace "ephor" for system:serviceaccount:ephor:ephor-scanner: grant .* or set RUN_LOCK=none to run without the lock; or point RUN_LOCK_NAMESPACE \(chart: runLock.namespace\) at the namespace where the scanner has that Role$/,
  );
  assert.deepEqual(
    rest.map((r) => r.status),
    ['pass'],
  );
});
