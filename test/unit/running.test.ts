import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { registryDigestOf } from '../../src/images/image-id.js';
import { toPodFacts, type PodFacts } from '../../src/kube/pods.js';
import { applyRunningPods } from '../../src/kube/running.js';
import type { Workload } from '../../src/types.js';
import { fixture } from '../support/paths.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const readJson = (...p: string[]) => JSON.parse(readFileSync(fixture('k8s', ...p), 'utf8'));

describe('imageID → the registry digest running', () => {
  const cases: Array<[string, string | undefined]> = [
    [`docker-pullable://nginx@${D('4')}`, `docker.io/library/nginx@${D('4')}`],
    [`docker.io/library/nginx@${D('4')}`, `docker.io/library/nginx@${D('4')}`],
    [`registry.local:5000/team/api@${D('a')}`, `registry.local:5000/team/api@${D('a')}`],
    [`docker.io/istio/base@${D('6')}`, `docker.io/istio/base@${D('6')}`],
    [`docker://${D('5')}`, undefined],
    [D('5'), undefined],
    ['', undefined],
    ['docker-pullable://not a ref', undefined],
  ];
  for (const [id, expected] of cases)
    test(JSON.stringify(id.slice(0, 40)), () => {
      assert.equal(registryDigestOf(id), expected);
    });

  test('the real fixtures: dockershim, containerd, and an image not pulled yet', () => {
    const init = toPodFacts(readJson('objects', 'k9s_pod_nginx-with-init.Pod.json'))!;
    assert.deepEqual(
      init.containers.map((c) => [c.name, c.role, registryDigestOf(c.imageID)]),
      [
        [
          'ic1',
          'init',
          'docker.io/library/nginx@sha256:482ead44b2203fa32b3390abdaf97cbdc8ad15c07fb03a3e68d7c35a19ad7595',
        ],
        [
          'nginx',
          'app',
          'docker.io/library/nginx@sha256:482ead44b2203fa32b3390abdaf97cbdc8ad15c07fb03a3e68d7c35a19ad7595',
        ],
      ],
    );
    const [running] = readJson('lists', 'troubleshoot_pods_default.PodList.json').items.map(toPodFacts) as PodFacts[];
    assert.deepEqual(running!.owner, { kind: 'ReplicaSet', group: 'apps', name: 'random-pod-75b66db9b9' });
    assert.equal(
      registryDigestOf(running!.containers[0]!.imageID),
      'docker.io/random-pod/server@sha256:7cd450642c54cc8cce64dd9b4b8664c8480e7df6de880c5e134f4a2ed6446c5c',
    );
    const [pending] = readJson('lists', 'troubleshoot_pods_image-pull-fail.PodList.json').items.map(
      toPodFacts,
    ) as PodFacts[];
    assert.equal(pending!.phase, 'Pending');
    assert.equal(pending!.containers[0]!.imageID, '');
  });

  test('a Pod keeps only the labels attribution and reporting read (pod-template-hash, ephor.dev/*)', () => {
    const [pod] = readJson('lists', 'troubleshoot_pods_default.PodList.json').items as Array<{
      metadata: { labels?: Record<string, string> };
    }>;
    const labels = {
      ...pod!.metadata.labels,
      app: 'web',
      'app.kubernetes.io/name': 'web',
      'pod-template-hash': '75b66db9b9',
      'ephor.dev/exposure': 'public',
    };
    const facts = toPodFacts({ ...pod, metadata: { ...pod!.metadata, labels } })!;
    assert.deepEqual(facts.labels, { 'pod-template-hash': '75b66db9b9', 'ephor.dev/exposure': 'public' });
  });
});

function workload(
  kind: Workload['kind'],
  name: string,
  containers: Array<[string, string]>,
  role: 'init' | 'app' = 'app',
): Workload {
  return {
    namespace: 'ns',
    kind,
    name,
    labels: {},
    containers: containers.map(([n, specImage]) => ({ name: n, role, specImage, running: [] })),
    pullSecrets: { namespace: 'ns', secretNames: ['tmpl-secret'], serviceAccount: 'app-sa' },
  };
}

function pod(
  name: string,
  owner: PodFacts['owner'],
  containers: Array<[string, string, string | undefined, PodFacts['containers'][0]['role']?]>,
  extra: Partial<PodFacts> = {},
): PodFacts {
  return {
    name,
    phase: 'Running',
    owner,
    labels: {},
    serviceAccount: 'app-sa',
    pullSecretNames: [],
    containers: containers.map(([n, image, imageID, role]) => ({ name: n, image, imageID, role: role ?? 'app' })),
    ...extra,
  };
}

describe('pods → the images each workload runs', () => {
  const api = workload('Deployment', 'api', [['app', 'ghcr.io/acme/api:1.4']]);
  const db = workload('StatefulSet', 'db', [['pg', 'postgres:16']]);
  const job = workload('CronJob', 'nightly', [['run', 'alpine:3.20']]);
  const replicaSets = new Map([
    ['api-7d9f', { kind: 'Deployment', group: 'apps', name: 'api' }],
    ['orphan-1', undefined],
    ['roll-5', { kind: 'Rollout', group: 'argoproj.io', name: 'roll' }],
  ]);
  const jobs = new Map([
    ['nightly-29012345', { kind: 'CronJob', group: 'batch', name: 'nightly' }],
    ['migrate', undefined],
  ]);

  test('owner chains, a moved tag (two digests), injected and ephemeral containers, standalone and unsupported pods', () => {
    const pods: PodFacts[] = [
      pod(
        'api-7d9f-a',
        { kind: 'ReplicaSet', group: 'apps', name: 'api-7d9f' },
        [
          ['app', 'ghcr.io/acme/api:1.4', `ghcr.io/acme/api@${D('1')}`],
          ['istio-proxy', 'docker.io/istio/proxyv2:1.22', `docker.io/istio/proxyv2@${D('9')}`],
        ],
        { pullSecretNames: ['injected-secret'] },
      ),
      pod('api-7d9f-b', { kind: 'ReplicaSet', group: 'apps', name: 'api-7d9f' }, [
        ['app', 'ghcr.io/acme/api:1.4', `ghcr.io/acme/api@${D('2')}`],
        ['debugger', 'busybox:1.36', `docker.io/library/busybox@${D('3')}`, 'ephemeral'],
      ]),
      pod('db-0', { kind: 'StatefulSet', group: 'apps', name: 'db' }, [['pg', 'postgres:16', D('5')]]),
      pod(
        'nightly-29012345-x',
        { kind: 'Job', group: 'batch', name: 'nightly-29012345' },
        [['run', 'alpine:3.20', '']],
        {
          phase: 'Pending',
        },
      ),
      pod(
        'finished',
        { kind: 'Job', group: 'batch', name: 'nightly-29012345' },
        [['run', 'alpine:3.20', `docker.io/library/alpine@${D('7')}`]],
        { phase: 'Succeeded' },
      ),
      pod('debug', undefined, [['shell', 'alpine:3.20', `docker.io/library/alpine@${D('8')}`]]),
      pod('orphan-1-z', { kind: 'ReplicaSet', group: 'apps', name: 'orphan-1' }, [['x', 'x:1', undefined]]),
      pod('roll-5-z', { kind: 'ReplicaSet', group: 'apps', name: 'roll-5' }, [['x', 'x:1', undefined]]),
      pod('migrate-q', { kind: 'Job', group: 'batch', name: 'migrate' }, [['m', 'm:1', undefined]]),
      pod('node-proxy', { kind: 'Node', group: '', name: 'node-1' }, [['p', 'p:1', undefined]]),
    ];
    const result = applyRunningPods('ns', [api, db, job], { pods, replicaSets, jobs }, { standalonePods: true });
    const [apiOut, dbOut, jobOut, standalone] = result.workloads;
    assert.deepEqual(
      apiOut!.containers.map((c) => [c.name, c.role, c.specImage, c.running, c.tagReason]),
      [
        ['app', 'app', 'ghcr.io/acme/api:1.4', [`ghcr.io/acme/api@${D('1')}`, `ghcr.io/acme/api@${D('2')}`], undefined],
        ['istio-proxy', 'injected', 'docker.io/istio/proxyv2:1.22', [`docker.io/istio/proxyv2@${D('9')}`], undefined],
        ['debugger', 'ephemeral', 'busybox:1.36', [`docker.io/library/busybox@${D('3')}`], undefined],
      ],
    );
    assert.deepEqual(apiOut!.pullSecrets, {
      namespace: 'ns',
      secretNames: ['tmpl-secret', 'injected-secret'],
      serviceAccount: 'app-sa',
    });
    assert.deepEqual(
      [dbOut!.containers[0]!.running, dbOut!.containers[0]!.tagReason],
      [[], 'no_registry_digest'],
      'a bare image ID is no registry digest',
    );
    assert.deepEqual(
      [jobOut!.containers[0]!.running, jobOut!.containers[0]!.tagReason],
      [[], 'no_running_pod'],
      'a finished Pod is not running; a pending one has pulled nothing',
    );
    assert.deepEqual(
      [standalone!.kind, standalone!.name, standalone!.containers[0]!.running],
      ['Pod', 'debug', [`docker.io/library/alpine@${D('8')}`]],
    );
    assert.equal(result.workloads.length, 4);
    assert.deepEqual(result.notAttributed, { ReplicaSet: 1, Rollout: 1, Job: 1, Node: 1 });
  });

  test('standalone Pods are reported only when the Pod kind is enabled', () => {
    const result = applyRunningPods(
      'ns',
      [api],
      { pods: [pod('debug', undefined, [['shell', 'alpine:3.20', undefined]])], replicaSets, jobs },
      { standalonePods: false },
    );
    assert.equal(result.workloads.length, 1);
  });

  test("without the ReplicaSet and Job lists, the controllers' naming rules attribute the Pods", () => {
    const pods = [
      pod(
        'api-7d9f-a',
        { kind: 'ReplicaSet', group: 'apps', name: 'api-7d9f' },
        [['app', 'ghcr.io/acme/api:1.4', `ghcr.io/acme/api@${D('1')}`]],
        { labels: { 'pod-template-hash': '7d9f' } },
      ),
      pod('nightly-29012345-x', { kind: 'Job', group: 'batch', name: 'nightly-29012345' }, [
        ['run', 'alpine:3.20', `docker.io/library/alpine@${D('7')}`],
      ]),
      pod('other-55-q', { kind: 'ReplicaSet', group: 'apps', name: 'other-55' }, [['x', 'x:1', undefined]], {
        labels: { 'pod-template-hash': '55' },
      }),
    ];
    const result = applyRunningPods('ns', [api, job], { pods }, { standalonePods: false });
    assert.deepEqual(result.workloads[0]!.containers[0]!.running, [`ghcr.io/acme/api@${D('1')}`]);
    assert.deepEqual(result.workloads[1]!.containers[0]!.running, [`docker.io/library/alpine@${D('7')}`]);
    assert.deepEqual(result.notAttributed, { ReplicaSet: 1 });
  });

  test('Pods that could not be listed: every container is scanned by its spec tag', () => {
    const result = applyRunningPods('ns', [api], undefined, { standalonePods: true });
    assert.deepEqual(
      result.workloads[0]!.containers.map((c) => c.tagReason),
      ['pods_not_listed'],
    );
  });
});
