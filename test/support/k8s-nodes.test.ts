// The stand-in kube-apiserver's nodes and the owner chains of other controllers, checked with the real kubectl
// (v1.32): `kubectl get nodes -o json` returns the stored Nodes with their platform labels and nodeInfo, a 403
// answers like RBAC at the cluster scope, and Pods carry spec.nodeName and the ownerReferences of a Rollout's
// ReplicaSet or of a custom resource.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { customResource, node, pod, rollout, rolloutReplicaSet, type KubeObject } from './k8s-objects.js';
import { startKubeServer, type KubeServer, type KubeServerOptions } from './k8s-server.js';

const KUBECTL = '/usr/bin/kubectl';
const TIMEOUT = { timeout: 60_000 };
const USER = 'system:serviceaccount:ephor:ephor-scanner';

async function start(t: TestContext, opts: KubeServerOptions) {
  const server = await startKubeServer(opts);
  t.after(() => server.close());
  const home = await mkdtemp(path.join(tmpdir(), 'ephor-k8s-nodes-'));
  t.after(() => rm(home, { recursive: true, force: true }));
  return { server, kubectl: await kubectlFor(server, home) };
}

async function kubectlFor(server: KubeServer, home: string) {
  assert.ok(existsSync(KUBECTL), `${KUBECTL} is required for the kubectl fidelity tests`);
  const kubeconfig = await server.writeKubeconfig(home);
  return (...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
      execFile(
        KUBECTL,
        [`--cache-dir=${path.join(home, 'cache')}`, '--request-timeout=10s', ...args],
        { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, KUBECONFIG: kubeconfig }, timeout: 30_000 },
        (error, stdout, stderr) => {
          if (error && typeof error.code !== 'number') reject(new Error(error.message, { cause: error }));
          else resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
        },
      );
    });
}

const withServerVersion = (item: KubeObject, built: KubeObject) => ({
  ...built,
  metadata: { ...built.metadata, resourceVersion: item.metadata.resourceVersion },
});

test(
  'kubectl get nodes -o json: the stored Nodes, labels and nodeInfo, sorted by name, no stderr',
  TIMEOUT,
  async (t) => {
    const nodes = [
      node({ name: 'worker-arm-1', arch: 'arm64' }),
      node({ name: 'worker-amd-1' }),
      node({ name: 'win-1', os: 'windows' }),
      node({ name: 'bare-1', arch: 'arm64', platformLabels: false }),
    ];
    const { server, kubectl } = await start(t, { objects: nodes });
    const result = await kubectl('get', 'nodes', '-o', 'json');
    assert.equal(result.stderr, '');
    assert.equal(result.code, 0);
    const list = JSON.parse(result.stdout) as { kind: string; items: KubeObject[] };
    assert.equal(list.kind, 'List');
    assert.deepEqual(
      list.items.map((n) => n.metadata.name),
      ['bare-1', 'win-1', 'worker-amd-1', 'worker-arm-1'],
    );
    for (const item of list.items) {
      const built = nodes.find((n) => n.metadata.name === item.metadata.name)!;
      assert.deepEqual(item, withServerVersion(item, built));
    }
    const arm = list.items.find((n) => n.metadata.name === 'worker-arm-1')!;
    assert.equal(arm.metadata.labels['kubernetes.io/arch'], 'arm64');
    assert.equal(arm.metadata.labels['kubernetes.io/os'], 'linux');
    assert.deepEqual([arm.status.nodeInfo.operatingSystem, arm.status.nodeInfo.architecture], ['linux', 'arm64']);
    const win = list.items.find((n) => n.metadata.name === 'win-1')!;
    assert.equal(win.metadata.labels['kubernetes.io/os'], 'windows');
    assert.equal(win.status.nodeInfo.osImage, 'Windows Server 2022 Datacenter');
    const bare = list.items.find((n) => n.metadata.name === 'bare-1')!;
    assert.equal(bare.metadata.labels['kubernetes.io/arch'], undefined);
    assert.equal(bare.status.nodeInfo.architecture, 'arm64');
    assert.deepEqual(
      server.requests.filter((r) => r.path === '/api/v1/nodes').map((r) => r.query.limit),
      ['500'],
    );
    assert.deepEqual(
      server.requests.filter((r) => r.status !== 200),
      [],
      'no failing discovery requests',
    );

    const one = await kubectl('get', 'node', 'worker-arm-1', '-o', 'json');
    assert.equal(one.code, 0, one.stderr);
    assert.deepEqual(JSON.parse(one.stdout).metadata.name, 'worker-arm-1');
    const labelled = await kubectl('get', 'nodes', '-l', 'kubernetes.io/arch=arm64', '-o', 'name');
    assert.equal(labelled.stdout, 'node/worker-arm-1\n');
  },
);

test('kubectl get nodes when RBAC forbids it: the 403 of a cluster-scoped list', TIMEOUT, async (t) => {
  const { kubectl } = await start(t, { objects: [node({ name: 'n1' })], faults: [{ resource: 'nodes', status: 403 }] });
  const result = await kubectl('get', 'nodes', '-o', 'json');
  assert.equal(result.code, 1);
  assert.equal(
    result.stderr.trim(),
    `Error from server (Forbidden): nodes is forbidden: User "${USER}" cannot list resource "nodes" in API group "" at the cluster scope`,
  );
  const canI = await kubectl('auth', 'can-i', 'list', 'nodes');
  assert.equal(canI.stdout.trim(), 'no');
});

test(
  'kubectl get pods: spec.nodeName and the owner chains of a Rollout and of a custom resource',
  TIMEOUT,
  async (t) => {
    const checkout = rollout({
      namespace: 'shop',
      name: 'checkout',
      containers: [{ name: 'app', image: 'ghcr.io/acme/checkout:3' }],
    });
    const [rev1, rev2] = [rolloutReplicaSet(checkout, 1), rolloutReplicaSet(checkout, 2)];
    const db = customResource({
      apiVersion: 'postgresql.cnpg.io/v1',
      kind: 'Cluster',
      namespace: 'shop',
      name: 'main',
    });
    const digest = `sha256:${'c'.repeat(64)}`;
    const pods = [
      pod({
        namespace: 'shop',
        owner: rev1,
        nodeName: 'worker-arm-1',
        imageIDs: { app: `ghcr.io/acme/checkout@${digest}` },
      }),
      pod({
        namespace: 'shop',
        name: 'main-1',
        owner: db,
        nodeName: 'worker-amd-1',
        containers: [{ name: 'postgres', image: 'ghcr.io/cloudnative-pg/postgresql:16.4' }],
        imageIDs: { postgres: `ghcr.io/cloudnative-pg/postgresql@${digest}` },
      }),
    ];
    const { kubectl } = await start(t, { objects: [rev1, rev2, ...pods] });
    const result = await kubectl('get', 'pods', '-n', 'shop', '-o', 'json');
    assert.equal(result.stderr, '');
    assert.equal(result.code, 0);
    const items = JSON.parse(result.stdout).items as KubeObject[];
    for (const item of items) {
      const built = pods.find((p) => p.metadata.name === item.metadata.name)!;
      assert.deepEqual(item, withServerVersion(item, built));
    }
    const [checkoutPod, dbPod] = [
      items.find((p) => p.metadata.name !== 'main-1')!,
      items.find((p) => p.metadata.name === 'main-1')!,
    ];
    assert.equal(checkoutPod.spec.nodeName, 'worker-arm-1');
    assert.match(checkoutPod.metadata.name, new RegExp(`^${rev1.metadata.name}-[a-z0-9]{5}$`));
    assert.deepEqual(checkoutPod.metadata.ownerReferences[0], {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      name: rev1.metadata.name,
      uid: rev1.metadata.uid,
      controller: true,
      blockOwnerDeletion: true,
    });
    assert.equal(
      checkoutPod.metadata.labels['rollouts-pod-template-hash'],
      rev1.metadata.name.slice('checkout-'.length),
    );
    assert.deepEqual(dbPod.metadata.ownerReferences[0].apiVersion, 'postgresql.cnpg.io/v1');
    assert.deepEqual(dbPod.metadata.ownerReferences[0].kind, 'Cluster');

    const replicaSets = await kubectl('get', 'replicasets', '-n', 'shop', '-o', 'json');
    assert.equal(replicaSets.code, 0, replicaSets.stderr);
    const rsItems = JSON.parse(replicaSets.stdout).items as KubeObject[];
    assert.notEqual(rev1.metadata.name, rev2.metadata.name, 'each revision has its own hash');
    for (const rs of rsItems) {
      assert.deepEqual(rs.metadata.ownerReferences, [
        {
          apiVersion: 'argoproj.io/v1alpha1',
          kind: 'Rollout',
          name: 'checkout',
          uid: checkout.metadata.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
      assert.equal(
        rs.spec.selector.matchLabels['rollouts-pod-template-hash'],
        rs.spec.template.metadata.labels['rollouts-pod-template-hash'],
      );
    }
  },
);
