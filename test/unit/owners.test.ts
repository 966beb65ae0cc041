// Pods of other controllers (issue 14): the name an owner is reported under (its identity in Ephor for good), the
// exclusion list, which owner a Pod is attributed to, and the platform each running digest is scanned for.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { ValueError } from '../../src/config/parse.js';
import { nodeEntry, platformFacts } from '../../src/kube/nodes.js';
import { DEFAULT_EXCLUDED_OWNERS, formatOwnerKind, parseOwnerKinds } from '../../src/kube/owner-kinds.js';
import { ownerLabels, ownerWorkloadName } from '../../src/kube/owner-name.js';
import type { OwnerRef, PodFacts } from '../../src/kube/pods.js';
import { applyRunningPods, type AttributionOptions, type NamespacePods } from '../../src/kube/running.js';
import type { Workload } from '../../src/types.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;
/** A Pod name as the API server validates it (a DNS subdomain). */
const POD_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

describe('the name an owner is reported under', () => {
  const rollout: OwnerRef = { kind: 'Rollout', group: 'argoproj.io', name: 'checkout' };

  test('Kind.group/name, Kind/name for the core group; the API version is not part of it', () => {
    assert.equal(ownerWorkloadName(rollout), 'Rollout.argoproj.io/checkout');
    assert.equal(
      ownerWorkloadName({ kind: 'Cluster', group: 'postgresql.cnpg.io', name: 'main' }),
      'Cluster.postgresql.cnpg.io/main',
    );
    assert.equal(ownerWorkloadName({ kind: 'ReplicaSet', group: 'apps', name: 'legacy' }), 'ReplicaSet.apps/legacy');
    assert.equal(
      ownerWorkloadName({ kind: 'ReplicationController', group: '', name: 'web' }),
      'ReplicationController/web',
    );
  });

  test('never a Pod name (a "/" in it), and the owner kind and group are in the labels', () => {
    for (const owner of [rollout, { kind: 'Job', group: 'batch', name: 'migrate' }])
      assert.doesNotMatch(ownerWorkloadName(owner), POD_NAME);
    assert.deepEqual(ownerLabels(rollout), {
      'owner-kind': 'Rollout',
      'owner-api-group': 'argoproj.io',
      'owner-name': 'checkout',
    });
    assert.equal(ownerLabels({ kind: 'ReplicationController', group: '', name: 'web' })['owner-api-group'], 'core');
  });

  test('a name over 255 characters: its first 238, "~" and 16 hex digits of its SHA-256; stable and distinct', () => {
    const group = `${'g'.repeat(60)}.${'h'.repeat(60)}.example.com`;
    const long = (name: string): OwnerRef => ({ kind: 'Database', group, name });
    const a = ownerWorkloadName(long('a'.repeat(253)));
    const b = ownerWorkloadName(long(`${'a'.repeat(252)}b`));
    assert.equal(a.length, 255);
    assert.equal(b.length, 255);
    const full = `Database.${group}/${'a'.repeat(253)}`;
    assert.equal(a.slice(0, 238), full.slice(0, 238));
    assert.match(a, /^[^~]{238}~[0-9a-f]{16}$/);
    assert.notEqual(a, b, 'two owners that differ only past the cut get different names');
    assert.equal(ownerWorkloadName(long('a'.repeat(253))), a, 'the same owner gets the same name every run');
    const exactly255 = `Database.${group}/`;
    const fits = long('x'.repeat(255 - exactly255.length));
    assert.equal(ownerWorkloadName(fits), `${exactly255}${fits.name}`, 'a name of exactly 255 is kept whole');
    assert.equal(ownerWorkloadName({ ...fits, name: `${fits.name}y` }).length, 255);
    assert.match(ownerWorkloadName({ ...fits, name: `${fits.name}y` }), /~[0-9a-f]{16}$/);
  });
});

describe('SCAN_OTHER_CONTROLLERS_EXCLUDE', () => {
  test('Kind.group and Kind (core); none; kinds kept as written, groups lowercased; repeats dropped', () => {
    assert.deepEqual(parseOwnerKinds('Workflow.argoproj.io, TaskRun.tekton.dev,Pod,workflow.ARGOPROJ.io'), [
      { kind: 'Workflow', group: 'argoproj.io' },
      { kind: 'TaskRun', group: 'tekton.dev' },
      { kind: 'Pod', group: '' },
    ]);
    assert.deepEqual(parseOwnerKinds('None'), []);
    assert.deepEqual(parseOwnerKinds(DEFAULT_EXCLUDED_OWNERS).map(formatOwnerKind), DEFAULT_EXCLUDED_OWNERS.split(','));
  });

  test('a resource name, a version or an empty item is an error saying what is allowed', () => {
    for (const bad of ['workflows.argoproj.io/v1alpha1', 'argoproj.io/Workflow', 'Workflow.', 'Work flow', 'a,,b'])
      assert.throws(
        () => parseOwnerKinds(bad),
        (error: unknown) => error instanceof ValueError,
        bad,
      );
    assert.throws(
      () => parseOwnerKinds('argoproj.io/Workflow'),
      /write each as Kind\.group .*e\.g\. Workflow\.argoproj\.io/,
    );
  });
});

describe('nodes → platforms', () => {
  test('the kubernetes.io/os and kubernetes.io/arch labels, nodeInfo where a label is missing', () => {
    const labels = { 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'arm64' };
    assert.deepEqual(nodeEntry({ metadata: { name: 'a', labels } }), ['a', 'linux/arm64']);
    assert.deepEqual(
      nodeEntry({
        metadata: { name: 'b', labels: { 'kubernetes.io/os': 'linux' } },
        status: { nodeInfo: { operatingSystem: 'windows', architecture: 'amd64' } },
      }),
      ['b', 'linux/amd64'],
      'each label wins over nodeInfo; nodeInfo fills what is missing',
    );
    assert.deepEqual(nodeEntry({ metadata: { name: 'c' } }), ['c', undefined]);
    assert.equal(nodeEntry({ metadata: {} }), undefined);
  });

  test('the Linux platforms, and the one they share (Windows nodes do not count)', () => {
    const facts = platformFacts(
      new Map([
        ['a', 'linux/amd64'],
        ['b', 'linux/amd64'],
        ['w', 'windows/amd64'],
        ['x', undefined],
      ]),
    );
    assert.deepEqual(facts, { listed: true, linuxPlatforms: ['linux/amd64'], clusterPlatform: 'linux/amd64' });
    const mixed = platformFacts(
      new Map([
        ['a', 'linux/amd64'],
        ['b', 'linux/arm64'],
      ]),
    );
    assert.deepEqual(mixed, { listed: true, linuxPlatforms: ['linux/amd64', 'linux/arm64'] });
  });
});

function pod(
  name: string,
  owner: OwnerRef | undefined,
  containers: Array<[string, string, string | undefined]>,
  extra: Partial<PodFacts> = {},
): PodFacts {
  return {
    name,
    phase: 'Running',
    owner,
    labels: {},
    serviceAccount: 'default',
    pullSecretNames: [],
    containers: containers.map(([n, image, imageID]) => ({ name: n, image, imageID, role: 'app' })),
    ...extra,
  };
}

const RS = (name: string): OwnerRef => ({ kind: 'ReplicaSet', group: 'apps', name });
const JOB = (name: string): OwnerRef => ({ kind: 'Job', group: 'batch', name });
const ROLLOUT: OwnerRef = { kind: 'Rollout', group: 'argoproj.io', name: 'checkout' };
const CLUSTER: OwnerRef = { kind: 'Cluster', group: 'postgresql.cnpg.io', name: 'main' };
const WORKFLOW: OwnerRef = { kind: 'Workflow', group: 'argoproj.io', name: 'nightly-x7k2p' };
const ON = { enabled: true, exclude: parseOwnerKinds(DEFAULT_EXCLUDED_OWNERS) };

describe('Pods of other controllers → one workload of kind Pod per top-level owner', () => {
  const pods = (...extra: PodFacts[]): NamespacePods => ({
    pods: [
      pod(
        'checkout-7d9f-a',
        RS('checkout-7d9f'),
        [['app', 'ghcr.io/acme/checkout:3', `ghcr.io/acme/checkout@${D('1')}`]],
        {
          created: '2026-01-01T10:00:00Z',
          labels: { 'ephor.dev/team': 'payments' },
          pullSecretNames: ['ghcr'],
        },
      ),
      pod(
        'checkout-5c6b-b',
        RS('checkout-5c6b'),
        [['app', 'ghcr.io/acme/checkout:4', `ghcr.io/acme/checkout@${D('2')}`]],
        {
          created: '2026-01-02T10:00:00Z',
        },
      ),
      pod('main-1', CLUSTER, [
        ['postgres', 'ghcr.io/cloudnative-pg/postgresql:16', `ghcr.io/cloudnative-pg/postgresql@${D('3')}`],
      ]),
      pod('migrate-x', JOB('migrate'), [['m', 'migrate:1', `docker.io/library/migrate@${D('4')}`]]),
      pod('legacy-y', RS('legacy'), [['l', 'legacy:1', `docker.io/library/legacy@${D('5')}`]]),
      pod('nightly-x7k2p-main', WORKFLOW, [['main', 'argoproj/argosay:v2', `docker.io/argoproj/argosay@${D('6')}`]]),
      pod('nightly-x7k2p-old', WORKFLOW, [['main', 'argoproj/argosay:v2', undefined]], { phase: 'Succeeded' }),
      ...extra,
    ],
    replicaSets: new Map([
      ['checkout-7d9f', ROLLOUT],
      ['checkout-5c6b', ROLLOUT],
      ['legacy', undefined],
    ]),
    jobs: new Map([['migrate', undefined]]),
  });
  const run = (options: Partial<AttributionOptions>, namespacePods = pods()) =>
    applyRunningPods('shop', [], namespacePods, { standalonePods: false, ...options });

  test('a Rollout (Pod → ReplicaSet → Rollout), a custom resource, a bare Job and a bare ReplicaSet', () => {
    const result = run({ otherControllers: ON });
    assert.deepEqual(
      result.workloads.map((w) => [w.kind, w.name]),
      [
        ['Pod', 'Cluster.postgresql.cnpg.io/main'],
        ['Pod', 'Job.batch/migrate'],
        ['Pod', 'ReplicaSet.apps/legacy'],
        ['Pod', 'Rollout.argoproj.io/checkout'],
      ],
    );
    const checkout = result.workloads.find((w) => w.name === 'Rollout.argoproj.io/checkout')!;
    assert.deepEqual(
      checkout.containers.map((c) => [c.name, c.role, c.specImage, c.running]),
      [
        [
          'app',
          'app',
          'ghcr.io/acme/checkout:4',
          [`ghcr.io/acme/checkout@${D('1')}`, `ghcr.io/acme/checkout@${D('2')}`],
        ],
      ],
      'both revisions run: one container, both digests, the spec of the newest Pod',
    );
    assert.deepEqual(checkout.labels, {
      'owner-kind': 'Rollout',
      'owner-api-group': 'argoproj.io',
      'owner-name': 'checkout',
    });
    assert.deepEqual(checkout.pullSecrets, { namespace: 'shop', secretNames: ['ghcr'], serviceAccount: 'default' });
    assert.deepEqual(result.excluded, { 'Workflow.argoproj.io': 1 }, 'only active Pods are counted');
    assert.deepEqual(result.notAttributed, {});
  });

  test('the ephor.dev labels of the newest Pod are kept; the owner labels win', () => {
    const newest = pod('main-2', CLUSTER, [['postgres', 'x:1', undefined]], {
      created: '2026-03-01T00:00:00Z',
      labels: { 'ephor.dev/exposure': 'internal', 'ephor.dev/owner-kind': 'spoofed' },
    });
    const result = run({ otherControllers: ON }, pods(newest));
    const main = result.workloads.find((w) => w.name === 'Cluster.postgresql.cnpg.io/main')!;
    assert.deepEqual(main.labels, {
      exposure: 'internal',
      'owner-kind': 'Cluster',
      'owner-api-group': 'postgresql.cnpg.io',
      'owner-name': 'main',
    });
  });

  test('SCAN_OTHER_CONTROLLERS=false: none reported, each counted by its controller kind (as before)', () => {
    const result = run({ otherControllers: { enabled: false, exclude: [] } });
    assert.deepEqual(result.workloads, []);
    assert.deepEqual(result.notAttributed, { Rollout: 2, Cluster: 1, Job: 1, ReplicaSet: 1, Workflow: 1 });
    assert.deepEqual(result.excluded, {});
    assert.deepEqual(run({}).notAttributed, result.notAttributed, 'no option is the same');
  });

  test('an empty exclusion list reports the Workflow too', () => {
    const result = run({ otherControllers: { enabled: true, exclude: [] } });
    assert.ok(result.workloads.some((w) => w.name === 'Workflow.argoproj.io/nightly-x7k2p'));
    assert.deepEqual(result.excluded, {});
  });

  test('ReplicaSets that could not be listed: a Deployment is still found by name, anything else is not attributed', () => {
    const deployment: Workload = {
      namespace: 'shop',
      kind: 'Deployment',
      name: 'api',
      labels: {},
      containers: [{ name: 'app', role: 'app', specImage: 'api:1', running: [] }],
      pullSecrets: { namespace: 'shop', secretNames: [], serviceAccount: 'default' },
    };
    const result = applyRunningPods(
      'shop',
      [deployment],
      {
        pods: [
          pod('api-55-q', RS('api-55'), [['app', 'api:1', `docker.io/library/api@${D('7')}`]], {
            labels: { 'pod-template-hash': '55' },
          }),
          pod('checkout-7d9f-a', RS('checkout-7d9f'), [['app', 'c:1', undefined]]),
          pod('migrate-x', JOB('migrate'), [['m', 'm:1', undefined]]),
        ],
      },
      { standalonePods: false, otherControllers: ON },
    );
    assert.deepEqual(result.workloads[0]!.containers[0]!.running, [`docker.io/library/api@${D('7')}`]);
    assert.equal(result.workloads.length, 1, 'no owner is guessed: a Rollout would get a new row every rollout');
    assert.deepEqual(result.notAttributed, { ReplicaSet: 1, Job: 1 });
  });

  test('a StatefulSet of another API group (OpenKruise) is another controller, not the apps StatefulSet', () => {
    const kruise: OwnerRef = { kind: 'StatefulSet', group: 'apps.kruise.io', name: 'db' };
    const result = run({ otherControllers: ON }, { pods: [pod('db-0', kruise, [['db', 'db:1', undefined]])] });
    assert.deepEqual(
      result.workloads.map((w) => w.name),
      ['StatefulSet.apps.kruise.io/db'],
    );
  });
});

describe('the platform each running digest is scanned for', () => {
  const nodes = new Map([
    ['amd-1', 'linux/amd64'],
    ['arm-1', 'linux/arm64'],
    ['win-1', 'windows/amd64'],
  ]);
  const api: Workload = {
    namespace: 'shop',
    kind: 'DaemonSet',
    name: 'agent',
    labels: {},
    containers: [{ name: 'agent', role: 'app', specImage: 'agent:1', running: [] }],
    pullSecrets: { namespace: 'shop', secretNames: [], serviceAccount: 'default' },
  };
  const DS: OwnerRef = { kind: 'DaemonSet', group: 'apps', name: 'agent' };
  const agent = (name: string, nodeName: string | undefined, digest: string) =>
    pod(name, DS, [['agent', 'agent:1', `docker.io/library/agent@${digest}`]], nodeName ? { nodeName } : {});
  const attribute = (list: PodFacts[], withNodes = true) =>
    applyRunningPods('shop', [api], { pods: list }, { standalonePods: false, nodes: withNodes ? nodes : undefined })
      .workloads[0]!.containers[0]!;

  test('one digest on amd64 and arm64 nodes: both platforms; an unknown node adds none', () => {
    const container = attribute([agent('a', 'amd-1', D('1')), agent('b', 'arm-1', D('1')), agent('c', 'gone', D('1'))]);
    assert.deepEqual(container.running, [`docker.io/library/agent@${D('1')}`]);
    assert.deepEqual(container.platforms, { [`docker.io/library/agent@${D('1')}`]: ['linux/amd64', 'linux/arm64'] });
    assert.equal(container.unscannablePlatforms, undefined);
  });

  test('nodes not listed: the digests, with no platform', () => {
    const container = attribute([agent('a', 'amd-1', D('1'))], false);
    assert.deepEqual(container.running, [`docker.io/library/agent@${D('1')}`]);
    assert.equal(container.platforms, undefined);
  });

  test('Windows nodes: their instances are left out and named; only there, nothing is scanned (not even the tag)', () => {
    const mixed = attribute([agent('a', 'amd-1', D('1')), agent('w', 'win-1', D('9'))]);
    assert.deepEqual(mixed.running, [`docker.io/library/agent@${D('1')}`]);
    assert.deepEqual(mixed.unscannablePlatforms, ['windows/amd64']);
    const windowsOnly = attribute([agent('w', 'win-1', D('9'))]);
    assert.deepEqual(windowsOnly.running, []);
    assert.deepEqual(windowsOnly.unscannablePlatforms, ['windows/amd64']);
    assert.equal(windowsOnly.tagReason, undefined);
  });
});

describe('the settings', () => {
  const env = { EPHOR_API_URL: 'http://ephor-api:8080', SCAN_NAMESPACES: 'shop' };
  const options = { resolveExecutable: () => '/usr/local/bin/trivy', stdoutIsTerminal: false };

  test('on by default, with the workflow engines excluded; off and "none" as written', () => {
    const defaults = loadConfig(env, options).scan.otherControllers;
    assert.equal(defaults.enabled, true);
    assert.deepEqual(defaults.exclude.map(formatOwnerKind), DEFAULT_EXCLUDED_OWNERS.split(','));
    const off = loadConfig({ ...env, SCAN_OTHER_CONTROLLERS: 'false', SCAN_OTHER_CONTROLLERS_EXCLUDE: 'none' }, options)
      .scan.otherControllers;
    assert.deepEqual(off, { enabled: false, exclude: [] });
  });

  test('a bad exclusion list stops the run, naming the variable, its value and what is allowed', () => {
    assert.throws(
      () => loadConfig({ ...env, SCAN_OTHER_CONTROLLERS_EXCLUDE: 'workflows.argoproj.io/v1alpha1' }, options),
      (error: unknown) =>
        error instanceof ConfigError &&
        /SCAN_OTHER_CONTROLLERS_EXCLUDE/.test(error.message) &&
        /workflows\.argoproj\.io\/v1alpha1/.test(error.message) &&
        /Kind\.group/.test(error.message),
    );
  });
});
