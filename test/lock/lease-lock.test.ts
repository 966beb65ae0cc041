// The run lock against the Kubernetes stand-in over real HTTP, with the scanner's own client: the adapter's typed
// outcomes for every answer the API server gives, two runs contending, release, takeover of a dead holder, fencing
// after an overwrite, old RBAC, and renewals that hang. Real time, short timeouts; conditions are polled, never timed.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { createKubeClient, loadKubeConfig, type KubeClient, type KubeJsonWriter } from '../../src/kube/client.js';
import {
  LockLostError,
  createRunLock,
  defaultLockNamespace,
  kubeLeaseApi,
  readLockStatus,
  type RunLock,
} from '../../src/lock/index.js';
import { formatMicroTime } from '../../src/lock/micro-time.js';
import { startKubeServer, type KubeServer } from '../support/k8s-server.js';
import { captureLog, type CapturedLog } from './fakes.js';

const TIMEOUT = { timeout: 60_000 };
const USER = 'system:serviceaccount:ephor:ephor-scanner';
const KUBE_TIMEOUT_MS = 500;
const EPHOR_TIMEOUT_MS = 1_000; // lease of 2 s, renewed every 0.5 s

interface Cluster {
  server: KubeServer;
  client: KubeClient & KubeJsonWriter;
  namespace: string;
}

async function cluster(t: TestContext): Promise<Cluster> {
  const server = await startKubeServer({ namespaces: { ephor: {} } });
  const dir = await mkdtemp(path.join(tmpdir(), 'ephor-lock-'));
  t.after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });
  const { kubeConfig } = loadKubeConfig({ KUBECONFIG: await server.writeKubeconfig(dir, { namespace: 'ephor' }) });
  return { server, client: createKubeClient(kubeConfig, KUBE_TIMEOUT_MS), namespace: defaultLockNamespace(kubeConfig) };
}

function runLock(c: Cluster, scanGroupId: string, waitLimitMs: number): { lock: RunLock; logs: CapturedLog } {
  const logs = captureLog();
  const lock = createRunLock({
    client: c.client,
    namespace: c.namespace,
    name: 'ephor-scanner',
    waitLimitMs,
    ephorTimeoutMs: EPHOR_TIMEOUT_MS,
    kubeTimeoutMs: KUBE_TIMEOUT_MS,
    scanGroupId,
    env: { KUBERNETES_SERVICE_HOST: '10.0.0.1', HOSTNAME: `pod-${scanGroupId}` },
    hostname: 'unused',
    progressIntervalMs: 200,
    log: logs.log,
  });
  return { lock, logs };
}

async function until(condition: () => boolean, what: string, limitMs = 20_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${limitMs} ms: ${what}`);
    await delay(20);
  }
}

test('the Lease adapter over HTTP: every answer of the API server becomes its typed outcome', TIMEOUT, async (t) => {
  const c = await cluster(t);
  assert.equal(c.namespace, 'ephor', "the default namespace is the kubeconfig context's");
  const api = kubeLeaseApi(c.client, 'ephor', 'ephor-scanner');
  const now = formatMicroTime(Date.now());
  const spec = {
    holderIdentity: 'me_1',
    leaseDurationSeconds: 2,
    acquireTime: now,
    renewTime: now,
    leaseTransitions: 0,
  };

  assert.deepEqual(await api.get(), { kind: 'not-found' });
  const created = await api.create(spec);
  assert.ok(created.kind === 'ok');
  assert.deepEqual(created.lease.spec, spec, 'six-digit MicroTimes are stored as written');
  const renewed = await api.update(created.lease, { ...spec, renewTime: formatMicroTime(Date.now() + 1) });
  assert.ok(renewed.kind === 'ok');
  assert.notEqual(renewed.lease.metadata.resourceVersion, created.lease.metadata.resourceVersion);
  assert.equal((await api.update(created.lease, spec)).kind, 'conflict', 'a write with a stale resourceVersion');
  assert.equal((await api.create(spec)).kind, 'conflict', 'AlreadyExists');
  const sent = c.server.leases.requests.filter((r) => r.verb === 'update')[0]?.body;
  assert.equal(sent?.metadata.uid, created.lease.metadata.uid, 'the uid goes back as a precondition');
  assert.equal(sent?.metadata.resourceVersion, created.lease.metadata.resourceVersion);
  assert.equal(c.server.connections, 1, 'one keep-alive connection for every call');

  c.server.leases.setFaults([
    { status: 403, verbs: ['get'], times: 1 },
    { status: 403, verbs: ['create'], times: 1 },
    { status: 404, times: 1 },
    { status: 500, times: 1 },
  ]);
  const forbidden = await api.get();
  assert.deepEqual(forbidden.kind === 'forbidden' && [forbidden.verb, forbidden.user], ['get', USER]);
  const noCreate = await api.create(spec);
  assert.deepEqual(noCreate.kind === 'forbidden' && [noCreate.verb, noCreate.user], ['create', USER]);
  assert.equal((await api.get()).kind, 'api-missing');
  const internal = await api.get();
  assert.deepEqual(internal.kind === 'failed' && [internal.transient, internal.message], [
    true,
    'GET /apis/coordination.k8s.io/v1/namespaces/ephor/leases/ephor-scanner: HTTP 500 InternalError: Internal error occurred: etcdserver: request timed out',
  ]);
  const elsewhere = kubeLeaseApi(c.client, 'nope', 'ephor-scanner');
  assert.equal((await elsewhere.get()).kind, 'not-found');
  assert.equal((await elsewhere.create(spec)).kind, 'namespace-missing');

  c.server.leases.setFaults([{ stallMs: Number.POSITIVE_INFINITY }]);
  const hung = await api.get();
  assert.ok(hung.kind === 'failed' && hung.transient);
  assert.match(hung.message, /no answer within 500 ms \(KUBE_TIMEOUT\)/);
});

test(
  'two runs over HTTP: the second waits and names the first, and takes the lock as soon as the first releases it',
  TIMEOUT,
  async (t) => {
    const c = await cluster(t);
    const a = runLock(c, 'aaaa', 0);
    const b = runLock(c, 'bbbb', 30_000);

    assert.equal((await a.lock.acquire()).outcome, 'acquired');
    const waiting = b.lock.acquire();
    await until(() => b.logs.lines.some((l) => String(l.msg).startsWith('waiting for the run lock')), 'b waits');
    const line = b.logs.lines.find((l) => String(l.msg).startsWith('waiting for the run lock'));
    assert.equal(line?.holder, 'pod-aaaa_aaaa');
    assert.equal(line?.held_since, c.server.leases.get('ephor', 'ephor-scanner')?.spec.acquireTime);
    await a.lock.fence();
    assert.equal(c.server.leases.get('ephor', 'ephor-scanner')?.spec.holderIdentity, 'pod-aaaa_aaaa');

    await a.lock.release();
    const released = c.server.leases.requests.filter((r) => r.verb === 'update' && r.body?.spec?.holderIdentity === '');
    assert.equal(released.length, 1);
    const outcome = await waiting;
    assert.equal(outcome.outcome, 'acquired', JSON.stringify(outcome));
    const lease = c.server.leases.get('ephor', 'ephor-scanner');
    assert.equal(lease?.spec.holderIdentity, 'pod-bbbb_bbbb');
    assert.equal(lease?.spec.leaseTransitions, 1);
    assert.equal(lease?.spec.leaseDurationSeconds, 2);
    const takenAt = c.server.leases.requests.findIndex((r) => r.body?.spec?.holderIdentity === 'pod-bbbb_bbbb');
    assert.ok(takenAt > c.server.leases.requests.indexOf(released[0]!), 'taken after the release');
    assert.deepEqual(
      await readLockStatus(kubeLeaseApi(c.client, 'ephor', 'ephor-scanner'), Date.now()).then((s) => [
        s.state,
        s.state === 'held' && s.holder,
      ]),
      ['held', 'pod-bbbb_bbbb'],
    );
    await assert.rejects(a.lock.fence(), LockLostError);
    await b.lock.release();
    assert.equal((await readLockStatus(kubeLeaseApi(c.client, 'ephor', 'ephor-scanner'), Date.now())).state, 'free');
  },
);

test(
  'over HTTP: a holder that stopped renewing is taken over after its duration; an overwrite by another run stops the fences',
  TIMEOUT,
  async (t) => {
    const c = await cluster(t);
    // the ghost's clock runs a minute ahead: only this run's own clock can tell that it stopped renewing
    const ahead = formatMicroTime(Date.now() + 60_000);
    c.server.leases.put({
      metadata: { name: 'ephor-scanner', namespace: 'ephor' },
      spec: {
        holderIdentity: 'ghost_0',
        leaseDurationSeconds: 1,
        acquireTime: ahead,
        renewTime: ahead,
        leaseTransitions: 5,
      },
    });
    const b = runLock(c, 'bbbb', 30_000);
    const outcome = await b.lock.acquire();
    assert.ok(outcome.outcome === 'acquired', JSON.stringify(outcome));
    assert.equal(outcome.previousHolder, 'ghost_0');
    assert.equal(b.logs.lines.find((l) => l.msg === 'run lock acquired')?.how, 'expired');
    assert.equal(outcome.leaseTransitions, 6);
    const reads = c.server.leases.requests.filter((r) => r.verb === 'get');
    assert.ok(reads.length >= 2, 'it looked more than once before taking it');
    await b.lock.fence();

    c.server.leases.put({
      metadata: { name: 'ephor-scanner', namespace: 'ephor' },
      spec: { holderIdentity: 'intruder_9', leaseDurationSeconds: 60, renewTime: formatMicroTime(Date.now()) },
    });
    await assert.rejects(b.lock.fence(), (error: unknown) => {
      assert.ok(error instanceof LockLostError);
      assert.equal(error.reason, 'taken');
      assert.equal(error.holder, 'intruder_9');
      return true;
    });
    assert.equal(c.server.leases.get('ephor', 'ephor-scanner')?.spec.holderIdentity, 'intruder_9');
    await b.lock.release();
    assert.equal(c.server.leases.get('ephor', 'ephor-scanner')?.spec.holderIdentity, 'intruder_9', 'left alone');
  },
);

test(
  'over HTTP: an older chart without Lease RBAC gives one warning with the rule, and the run goes on unlocked',
  TIMEOUT,
  async (t) => {
    const c = await cluster(t);
    c.server.leases.setFaults([{ status: 403 }]);
    const { lock, logs } = runLock(c, 'aaaa', 30_000);
    const outcome = await lock.acquire();
    assert.ok(outcome.outcome === 'unavailable' && outcome.reason === 'forbidden');
    assert.ok(
      outcome.warning.includes(
        `missing RBAC rule: allow verb "get" on resource "leases" (apiGroup "coordination.k8s.io", resourceNames ["ephor-scanner"]) in namespace "ephor" for ${USER}`,
      ),
      outcome.warning,
    );
    assert.deepEqual(logs.messages('warn'), [outcome.warning]);
    await lock.fence();
    await lock.release();
    assert.equal(c.server.leases.requests.length, 1, 'one look, nothing more');
    const status = await readLockStatus(kubeLeaseApi(c.client, 'ephor', 'ephor-scanner'), Date.now());
    assert.ok(status.state === 'unavailable' && status.warning === outcome.warning);
  },
);

test(
  'over HTTP: renewals that hang past KUBE_TIMEOUT stop the fences once the lease no longer covers a POST',
  TIMEOUT,
  async (t) => {
    const c = await cluster(t);
    const { lock, logs } = runLock(c, 'aaaa', 0);
    assert.equal((await lock.acquire()).outcome, 'acquired');
    c.server.leases.setFaults([{ verbs: ['update'], stallMs: Number.POSITIVE_INFINITY }]);
    const faultFrom = c.server.leases.requests.length;

    let refusal: unknown;
    for (let post = 0; post < 100 && refusal === undefined; post++) {
      try {
        await lock.fence();
        await delay(50);
      } catch (error) {
        refusal = error;
      }
    }
    assert.ok(refusal instanceof LockLostError, String(refusal));
    assert.equal(refusal.reason, 'renewals-failed');
    assert.match(refusal.message, /no answer within 500 ms \(KUBE_TIMEOUT\)/);
    assert.ok(lock.validForMs() < EPHOR_TIMEOUT_MS);
    assert.ok(
      c.server.leases.requests.slice(faultFrom).every((r) => r.status === 0),
      'no renewal got through after the fault',
    );
    assert.ok(logs.messages('warn').some((m) => m.startsWith('run lock renewal failed')));
    assert.equal(logs.messages('error').length, 1);
    await lock.release();
  },
);
