// Fidelity of the stand-in kube-apiserver: the real /usr/bin/kubectl (v1.32) against it, plus direct HTTP checks
// against the real Status bodies in ../shared/fixtures/k8s/status. Access reviews are checked with `kubectl auth
// can-i` and `kubectl auth whoami`; a server started without ../shared must still serve kubectl.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { AppsV1Api, KubeConfig } from '@kubernetes/client-node';
import {
  cronJob,
  cronJobJobName,
  daemonSet,
  deployment,
  imagePullSecret,
  job,
  pod,
  podTemplateHash,
  replicaSet,
  serviceAccount,
  statefulSet,
  type KubeObject,
} from './k8s-objects.js';
import { negotiateRepresentation, startKubeServer, type KubeServer, type KubeServerOptions } from './k8s-server.js';
import { K8S_FIXTURES_DIR } from './paths.js';
import { SAFETY_NET_MS } from './wait.js';

const KUBECTL = '/usr/bin/kubectl';
const TIMEOUT = { timeout: 60_000 };
const SCANNER_USER = 'system:serviceaccount:ephor:ephor-scanner';

// ---------------------------------------------------------------- helpers

function realStatus(file: string): KubeObject {
  return JSON.parse(readFileSync(path.join(K8S_FIXTURES_DIR, 'status', file), 'utf8'));
}

function web(namespace: string, name: string, image: string): KubeObject {
  return deployment({ namespace, name, containers: [{ name: 'app', image }] });
}

function decodeToken(token: string): unknown {
  return JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'ephor-k8s-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function startServer(t: TestContext, opts: KubeServerOptions): Promise<KubeServer> {
  const server = await startKubeServer(opts);
  t.after(() => server.close());
  return server;
}

interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}
type Kubectl = (...args: string[]) => Promise<KubectlResult>;

/** kubectl with its own HOME, kubeconfig (HOME/kubeconfig) and discovery cache (facts §1: the cache lives 6 h otherwise). */
async function kubectlFor(
  t: TestContext,
  server: KubeServer,
  kubeconfigOpts?: { token?: string; namespace?: string },
): Promise<Kubectl & { home: string }> {
  assert.ok(existsSync(KUBECTL), `${KUBECTL} is required for the kubectl fidelity tests`);
  const home = await tempDir(t);
  const kubeconfig = await server.writeKubeconfig(home, kubeconfigOpts);
  const kubectl: Kubectl = (...args) =>
    new Promise((resolve, reject) => {
      execFile(
        KUBECTL,
        [`--cache-dir=${path.join(home, 'cache')}`, '--request-timeout=10s', ...args],
        {
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, KUBECONFIG: kubeconfig },
          timeout: 30_000,
        },
        (error, stdout, stderr) => {
          if (error && typeof error.code !== 'number')
            reject(new Error(error.message, { cause: error })); // not started, or killed by the timeout
          else resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
        },
      );
    });
  return Object.assign(kubectl, { home });
}

async function get(server: KubeServer, pathAndQuery: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${server.url}${pathAndQuery}`, { headers, signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  const json = response.headers.get('content-type')?.startsWith('application/json') ?? false;
  return { status: response.status, headers: response.headers, body: json ? JSON.parse(text) : text };
}

/** Polls until `condition` holds; the bound is only a safety net against a request that never arrives. */
async function waitFor(condition: () => boolean, timeoutMs = SAFETY_NET_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await delay(10);
  }
}

const listCalls = (server: KubeServer, listPath: string) => server.requests.filter((r) => r.path === listPath);

// ---------------------------------------------------------------- kubectl fidelity

test('kubectl get deployments -o json returns exactly the stored objects, with no stderr', TIMEOUT, async (t) => {
  const objects = [
    web('team-a', 'web', 'nginx:1.25'),
    web('team-a', 'api', 'ghcr.io/acme/api:2.0@sha256:' + 'a'.repeat(64)),
    web('team-b', 'other', 'redis:7'),
  ];
  const server = await startServer(t, { objects });
  const kubectl = await kubectlFor(t, server);

  const result = await kubectl('get', 'deployments', '-n', 'team-a', '-o', 'json');

  assert.equal(result.stderr, '');
  assert.equal(result.code, 0);
  const list = JSON.parse(result.stdout);
  assert.equal(list.kind, 'List');
  const [api, webDeployment] = [objects[1]!, objects[0]!];
  assert.deepEqual(
    list.items.map((item: KubeObject) => item.metadata.name),
    ['api', 'web'],
  );
  for (const [item, built] of [
    [list.items[0], api],
    [list.items[1], webDeployment],
  ] as const) {
    // kubectl re-adds kind/apiVersion to items; only resourceVersion is the server's own
    assert.deepEqual(item, {
      ...built,
      metadata: { ...built.metadata, resourceVersion: item.metadata.resourceVersion },
    });
  }
  const calls = listCalls(server, '/apis/apps/v1/namespaces/team-a/deployments');
  assert.equal(calls.length, 1);
  assert.equal(calls[0]!.query.limit, '500');
  assert.deepEqual(
    server.requests.filter((r) => r.status !== 200),
    [],
    'no failing discovery requests',
  );
});

test('kubectl --chunk-size=2 over 5 deployments makes 3 list requests and gets all 5', TIMEOUT, async (t) => {
  const names = ['a1', 'a2', 'a3', 'a4', 'a5'];
  const server = await startServer(t, { objects: names.map((name) => web('team-a', name, `nginx:${name}`)) });
  const kubectl = await kubectlFor(t, server);

  const result = await kubectl('get', 'deployments', '-n', 'team-a', '-o', 'json', '--chunk-size=2');

  assert.equal(result.stderr, '');
  assert.equal(result.code, 0);
  assert.deepEqual(
    JSON.parse(result.stdout).items.map((item: KubeObject) => item.metadata.name),
    names,
  );
  const calls = listCalls(server, '/apis/apps/v1/namespaces/team-a/deployments');
  assert.equal(calls.length, 3);
  assert.deepEqual(
    calls.map((c) => c.query.limit),
    ['2', '2', '2'],
  );
  assert.equal(calls[0]!.query.continue, undefined);
  assert.ok(calls[1]!.query.continue && calls[2]!.query.continue);
});

test('kubectl get cronjobs (batch/v1)', TIMEOUT, async (t) => {
  const nightly = cronJob({
    namespace: 'jobs',
    name: 'nightly',
    containers: [{ name: 'backup', image: 'ghcr.io/acme/backup:3.1' }],
  });
  const server = await startServer(t, { objects: [nightly] });
  const kubectl = await kubectlFor(t, server);

  const result = await kubectl('get', 'cronjobs', '-n', 'jobs', '-o', 'json');

  assert.equal(result.stderr, '');
  assert.equal(result.code, 0);
  const [item] = JSON.parse(result.stdout).items;
  assert.equal(item.apiVersion, 'batch/v1');
  assert.equal(item.kind, 'CronJob');
  assert.equal(item.spec.jobTemplate.spec.template.spec.containers[0].image, 'ghcr.io/acme/backup:3.1');
  assert.equal(listCalls(server, '/apis/batch/v1/namespaces/jobs/cronjobs').length, 1);
});

test('kubectl reports a 403 fault exactly like RBAC denial, and still prints an empty List', TIMEOUT, async (t) => {
  const server = await startServer(t, {
    objects: [web('forbidden', 'web', 'nginx:1')],
    faults: [{ resource: 'deployments', namespace: 'forbidden', status: 403 }],
  });
  const kubectl = await kubectlFor(t, server);

  const result = await kubectl('get', 'deployments', '-n', 'forbidden', '-o', 'json');

  assert.equal(result.code, 1);
  assert.equal(
    result.stderr.trim(),
    `Error from server (Forbidden): deployments.apps is forbidden: User "${SCANNER_USER}" cannot list resource "deployments" in API group "apps" in the namespace "forbidden"`,
  );
  assert.deepEqual(JSON.parse(result.stdout), {
    apiVersion: 'v1',
    items: [],
    kind: 'List',
    metadata: { resourceVersion: '' },
  });
});

test('kubectl stops at a 410 on a continue page: exit 1, Expired, partial List', TIMEOUT, async (t) => {
  const names = ['d1', 'd2', 'd3', 'd4'];
  const server = await startServer(t, {
    objects: names.map((name) => web('expire', name, 'nginx:1')),
    faults: [{ resource: 'deployments', namespace: 'expire', status: 410, onlyContinue: true }],
  });
  const kubectl = await kubectlFor(t, server);

  const result = await kubectl('get', 'deployments', '-n', 'expire', '-o', 'json', '--chunk-size=2');

  assert.equal(result.code, 1);
  assert.match(result.stderr, /^Error from server \(Expired\): The provided continue parameter is too old/);
  assert.deepEqual(
    JSON.parse(result.stdout).items.map((item: KubeObject) => item.metadata.name),
    ['d1', 'd2'],
  );
  assert.deepEqual(
    listCalls(server, '/apis/apps/v1/namespaces/expire/deployments').map((c) => c.status),
    [200, 410],
  );
});

test('kubectl reports a 404 fault on a list as "Unable to list"', TIMEOUT, async (t) => {
  const server = await startServer(t, { objects: [], faults: [{ resource: 'pods', status: 404 }] });
  const kubectl = await kubectlFor(t, server);

  const result = await kubectl('get', 'pods', '-n', 'team-a', '-o', 'json');

  assert.equal(result.code, 1);
  assert.equal(
    result.stderr.trim(),
    'Error from server (NotFound): Unable to list "/v1, Resource=pods": the server could not find the requested resource',
  );
});

test('kubectl get pods shows container image IDs from status', TIMEOUT, async (t) => {
  const owner = replicaSet({
    namespace: 'team-a',
    name: 'web-7d9f',
    containers: [{ name: 'app', image: 'nginx:1.25' }],
  });
  const digest = `sha256:${'b'.repeat(64)}`;
  const running = pod({
    namespace: 'team-a',
    name: 'web-7d9f-x2kq',
    owner,
    initContainers: [{ name: 'init', image: 'busybox:1.36' }],
    containers: [{ name: 'app', image: 'nginx:1.25' }],
    imageIDs: { init: `docker.io/library/busybox@${digest}`, app: `docker.io/library/nginx@${digest}` },
  });
  const server = await startServer(t, { objects: [owner, running] });
  const kubectl = await kubectlFor(t, server);

  const result = await kubectl('get', 'pods', '-n', 'team-a', '-o', 'json');

  assert.equal(result.stderr, '');
  assert.equal(result.code, 0);
  const [item] = JSON.parse(result.stdout).items;
  assert.deepEqual(
    item.status.containerStatuses.map((s: KubeObject) => [s.name, s.imageID]),
    [['app', `docker.io/library/nginx@${digest}`]],
  );
  assert.deepEqual(
    item.status.initContainerStatuses.map((s: KubeObject) => [s.name, s.imageID]),
    [['init', `docker.io/library/busybox@${digest}`]],
  );
  assert.equal(item.metadata.ownerReferences[0].uid, owner.metadata.uid);
});

test(
  'kubectl asks for full objects: plain JSON for -o json/name, Table for human output (no command asks for metadata only)',
  TIMEOUT,
  async (t) => {
    const owner = deployment({ namespace: 'team-a', name: 'web', containers: [{ name: 'app', image: 'nginx:1.25' }] });
    const server = await startServer(t, { objects: [owner, replicaSet({ namespace: 'team-a', owner })] });
    const kubectl = await kubectlFor(t, server);
    const listPath = '/apis/apps/v1/namespaces/team-a/replicasets';

    const asJson = await kubectl('get', 'replicasets', '-n', 'team-a', '-o', 'json', '--show-managed-fields=false');
    const asName = await kubectl('get', 'replicasets', '-n', 'team-a', '-o', 'name');
    const asTable = await kubectl('get', 'replicasets', '-n', 'team-a');

    assert.deepEqual([asJson.code, asName.code, asTable.code], [0, 0, 0]);
    assert.equal(asJson.stderr + asName.stderr + asTable.stderr, '');
    const [item] = JSON.parse(asJson.stdout).items;
    assert.equal(item.kind, 'ReplicaSet');
    assert.equal(item.spec.template.spec.containers[0].image, 'nginx:1.25');
    assert.equal(asName.stdout, `replicaset.apps/web-${podTemplateHash(owner)}\n`);
    assert.match(asTable.stdout, new RegExp(`^NAME\\s+AGE\\nweb-${podTemplateHash(owner)}\\s`)); // client-side printing of a plain list
    assert.deepEqual(
      listCalls(server, listPath).map((c) => c.headers.accept),
      [
        'application/json',
        'application/json',
        'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json',
      ],
    );
  },
);

test('kubectl get namespaces -l filters by label', TIMEOUT, async (t) => {
  const server = await startServer(t, {
    namespaces: { 'team-a': { team: 'a' }, 'team-a2': { team: 'a' }, 'team-b': { team: 'b' }, 'kube-system': {} },
  });
  const kubectl = await kubectlFor(t, server);

  const result = await kubectl('get', 'namespaces', '-l', 'team=a', '-o', 'json');

  assert.equal(result.stderr, '');
  assert.equal(result.code, 0);
  assert.deepEqual(
    JSON.parse(result.stdout).items.map((item: KubeObject) => item.metadata.name),
    ['team-a', 'team-a2'],
  );
  assert.equal(listCalls(server, '/api/v1/namespaces')[0]!.query.labelSelector, 'team=a');
});

test('kubectl get secret by name, and a missing one gives NotFound', TIMEOUT, async (t) => {
  const pull = imagePullSecret({
    namespace: 'team-a',
    name: 'regcred',
    auths: { 'ghcr.io': { username: 'bot', password: 'pw' } },
  });
  const server = await startServer(t, { objects: [pull] });
  const kubectl = await kubectlFor(t, server);

  const found = await kubectl('get', 'secret', 'regcred', '-n', 'team-a', '-o', 'json');
  const missing = await kubectl('get', 'secret', 'nope', '-n', 'team-a', '-o', 'json');

  assert.equal(found.code, 0);
  assert.equal(JSON.parse(found.stdout).type, 'kubernetes.io/dockerconfigjson');
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr.trim(), 'Error from server (NotFound): secrets "nope" not found');
});

test('kubectl over TLS with the required bearer token works; a wrong token is Unauthorized', TIMEOUT, async (t) => {
  const server = await startServer(t, { tls: true, token: 's3cret-token', objects: [web('team-a', 'web', 'nginx:1')] });
  const kubectl = await kubectlFor(t, server);
  const args = ['get', 'deployments', '-n', 'team-a', '-o', 'json'];

  const ok = await kubectl(...args);
  const coldDenied = await (await kubectlFor(t, server, { token: 'wrong' }))(...args);
  await server.writeKubeconfig(kubectl.home, { token: 'wrong' }); // warm discovery cache: only the list call is made
  const warmDenied = await kubectl(...args);

  assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(ok.stderr, '');
  assert.equal(ok.code, 0);
  assert.equal(JSON.parse(ok.stdout).items.length, 1);
  // discovery fails first, and client-go words a 401 there itself
  assert.equal(coldDenied.code, 1);
  assert.equal(
    coldDenied.stderr.trim().split('\n').at(-1),
    'error: You must be logged in to the server (the server has asked for the client to provide credentials)',
  );
  // on the list call kubectl prints the Status message of the real 401 body
  assert.equal(warmDenied.code, 1);
  assert.equal(warmDenied.stderr.trim(), 'error: You must be logged in to the server (Unauthorized)');
  assert.ok(server.requests.some((r) => r.status === 401 && r.headers.authorization === 'Bearer wrong'));
});

test(
  'kubectl never sends its token over plain HTTP (client-go sends credentials only over TLS)',
  TIMEOUT,
  async (t) => {
    const server = await startServer(t, { token: 's3cret-token' });
    const kubectl = await kubectlFor(t, server);

    const result = await kubectl('get', 'namespaces', '-o', 'json');

    assert.equal(result.code, 1);
    assert.match(result.stderr, /You must be logged in to the server/);
    assert.ok(server.requests.length > 0);
    assert.ok(server.requests.every((r) => r.headers.authorization === undefined && r.status === 401));
  },
);

test('the kubeconfig also works for @kubernetes/client-node, over HTTP and TLS, with the token', TIMEOUT, async (t) => {
  for (const tls of [false, true]) {
    const server = await startServer(t, {
      tls,
      token: 'tok',
      objects: [web('team-a', 'a', 'nginx:1'), web('team-a', 'b', 'nginx:2')],
    });
    const config = new KubeConfig();
    // client-node's own API client needs the flag for plain http (the scanner copes without it; see its e2e tests)
    config.loadFromFile(await server.writeKubeconfig(await tempDir(t), { insecureSkipTlsVerify: !tls }));
    const apps = config.makeApiClient(AppsV1Api);

    const first = await apps.listNamespacedDeployment({ namespace: 'team-a', limit: 1 });
    const second = await apps.listNamespacedDeployment({
      namespace: 'team-a',
      limit: 1,
      _continue: first.metadata?._continue,
    });

    assert.deepEqual(
      [...first.items, ...second.items].map((d) => d.spec?.template.spec?.containers[0]?.image),
      ['nginx:1', 'nginx:2'],
    );
    assert.equal(first.metadata?.remainingItemCount, 1);
    assert.ok(server.requests.every((r) => r.headers.authorization === 'Bearer tok'));
  }
});

test(
  'by default the kubeconfig of a plain http server is what a kubectl user writes: no insecure-skip-tls-verify',
  TIMEOUT,
  async (t) => {
    const server = await startServer(t, {});
    const config = new KubeConfig();
    config.loadFromFile(await server.writeKubeconfig(await tempDir(t)));
    assert.match(config.getCurrentCluster()!.server, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(config.getCurrentCluster()!.skipTLSVerify, false);
    await assert.rejects(
      config.makeApiClient(AppsV1Api).listNamespacedDeployment({ namespace: 'team-a' }),
      /HTTP protocol is not allowed when skipTLSVerify is not set/,
    );
  },
);

// ---------------------------------------------------------------- direct HTTP

test(
  'pagination: opaque tokens, one resourceVersion per list, remainingItemCount, no type meta on items',
  TIMEOUT,
  async (t) => {
    const server = await startServer(t, {
      objects: ['e', 'c', 'a', 'd', 'b'].map((name) => web('team-a', name, 'nginx:1')),
    });
    const listPath = '/apis/apps/v1/namespaces/team-a/deployments';

    const first = await get(server, `${listPath}?limit=2`);
    server.addObjects(web('team-a', 'bb', 'nginx:2')); // not visible to the pages of the list already started
    const second = await get(server, `${listPath}?limit=2&continue=${first.body.metadata.continue}`);
    const third = await get(server, `${listPath}?limit=2&continue=${second.body.metadata.continue}`);
    const fresh = await get(server, listPath);

    assert.equal(first.headers.get('content-type'), 'application/json');
    assert.equal(first.body.kind, 'DeploymentList');
    assert.equal(first.body.apiVersion, 'apps/v1');
    const rv = first.body.metadata.resourceVersion;
    assert.deepEqual(decodeToken(first.body.metadata.continue), {
      v: 'meta.k8s.io/v1',
      rv: Number(rv),
      start: 'b\u0000',
    });
    assert.deepEqual(
      [first, second, third].map((page) => page.body.items.map((i: KubeObject) => i.metadata.name)),
      [['a', 'b'], ['c', 'd'], ['e']],
    );
    assert.deepEqual(
      [first, second, third].map((page) => page.body.metadata.resourceVersion),
      [rv, rv, rv],
    );
    assert.deepEqual(
      [first, second, third].map((page) => page.body.metadata.remainingItemCount),
      [3, 1, undefined],
    );
    assert.deepEqual(Object.keys(third.body.metadata), ['resourceVersion']);
    for (const item of [...first.body.items, ...second.body.items, ...third.body.items]) {
      assert.equal(item.kind, undefined);
      assert.equal(item.apiVersion, undefined);
      assert.deepEqual(Object.keys(item), ['metadata', 'spec', 'status']);
    }
    assert.deepEqual(
      fresh.body.items.map((i: KubeObject) => i.metadata.name),
      ['a', 'b', 'bb', 'c', 'd', 'e'],
    );
    assert.ok(Number(fresh.body.metadata.resourceVersion) > Number(rv));
  },
);

test(
  'continue: garbage, a token of another list, and resourceVersion with continue are 400 BadRequest',
  TIMEOUT,
  async (t) => {
    const server = await startServer(t, {
      objects: [
        web('team-a', 'a', 'nginx:1'),
        web('team-a', 'b', 'nginx:1'),
        pod({ namespace: 'team-a', name: 'p1', containers: [{ name: 'c', image: 'x:1' }] }),
        pod({ namespace: 'team-a', name: 'p2', containers: [{ name: 'c', image: 'x:1' }] }),
      ],
    });
    const deployments = '/apis/apps/v1/namespaces/team-a/deployments';
    const podToken = (await get(server, '/api/v1/namespaces/team-a/pods?limit=1')).body.metadata.continue;
    const deploymentToken = (await get(server, `${deployments}?limit=1`)).body.metadata.continue;

    const garbage = await get(server, `${deployments}?limit=1&continue=not-a-token`);
    const foreign = await get(server, `${deployments}?limit=1&continue=${podToken}`);
    const withRv = await get(server, `${deployments}?limit=1&continue=${deploymentToken}&resourceVersion=5`);
    const withRvZero = await get(server, `${deployments}?limit=1&continue=${deploymentToken}&resourceVersion=0`);

    for (const answer of [garbage, foreign, withRv]) {
      assert.equal(answer.status, 400);
      assert.deepEqual(Object.keys(answer.body), [
        'kind',
        'apiVersion',
        'metadata',
        'status',
        'message',
        'reason',
        'code',
      ]);
      assert.equal(answer.body.reason, 'BadRequest');
      assert.equal(answer.body.code, 400);
    }
    assert.match(garbage.body.message, /^invalid continue token: continue key is not valid: /);
    assert.match(foreign.body.message, /^invalid continue token: /);
    assert.equal(withRv.body.message, 'specifying resource version is not allowed when using continue');
    assert.equal(withRvZero.status, 200);
    assert.deepEqual(
      withRvZero.body.items.map((i: KubeObject) => i.metadata.name),
      ['b'],
    );
  },
);

test('a stalled request never answers, and close() releases it at once', TIMEOUT, async () => {
  const server = await startKubeServer({
    objects: [web('team-a', 'web', 'nginx:1')],
    faults: [{ resource: 'deployments', stallMs: Number.MAX_SAFE_INTEGER }],
  });
  try {
    // The stall never ends on its own: only close() can settle this request (else the test's timeout ends it).
    const outcome = fetch(`${server.url}/apis/apps/v1/namespaces/team-a/deployments`).then(
      () => 'answered',
      () => 'connection closed',
    );
    await waitFor(() => server.requests.length === 1);
    assert.equal(await Promise.race([outcome, delay(300, 'still waiting')]), 'still waiting');
    assert.equal(server.requests[0]!.status, 0);

    await server.close();

    assert.equal(await outcome, 'connection closed');
  } finally {
    await server.close();
  }
});

test('a finite stall without status answers normally; times limits how often a fault hits', TIMEOUT, async (t) => {
  const server = await startServer(t, {
    objects: [web('team-a', 'web', 'nginx:1')],
    faults: [
      { resource: 'deployments', stallMs: 200, times: 1 },
      { resource: 'deployments', namespace: 'team-a', status: 500, times: 1 },
    ],
  });
  const listPath = '/apis/apps/v1/namespaces/team-a/deployments';

  const started = Date.now();
  const slow = await get(server, listPath);
  const slowMs = Date.now() - started;
  const failing = await get(server, listPath);
  const normal = await get(server, listPath);

  assert.equal(slow.status, 200);
  assert.ok(slowMs >= 190, `answered after ${slowMs} ms`);
  assert.equal(failing.status, 500);
  assert.equal(failing.body.reason, 'InternalError');
  assert.equal(normal.status, 200);
});

test('403, 401, 404 and 410 bodies are the real Status objects', TIMEOUT, async (t) => {
  const server = await startServer(t, {
    objects: ['a', 'b', 'c'].map((name) => web('team-a', name, 'nginx:1')),
    faults: [
      { resource: 'deployments', namespace: 'team-a', status: 403, times: 1 },
      { resource: 'pods', status: 403 },
      { resource: 'deployments', status: 410, onlyContinue: true, times: 1 },
    ],
  });
  const deployments = '/apis/apps/v1/namespaces/team-a/deployments';

  const namespaced = await get(server, deployments);
  const clusterWide = await get(server, '/api/v1/pods');
  const unknownPath = await get(server, '/apis/networking.k8s.io/v1/ingresses');
  const firstPage = await get(server, `${deployments}?limit=1`);
  const expired = await get(server, `${deployments}?limit=1&continue=${firstPage.body.metadata.continue}`);
  const resumed = await get(server, `${deployments}?limit=1&continue=${expired.body.metadata.continue}`);

  const teamA = realStatus('403_forbidden_list_deployments.json');
  assert.deepEqual(namespaced.body, teamA);
  assert.equal(JSON.stringify(namespaced.body), JSON.stringify(teamA), 'field order too');
  assert.deepEqual(clusterWide.body, realStatus('403_forbidden_list_pods_cluster_scope.json'));
  assert.deepEqual(unknownPath.body, realStatus('404_notfound_resource.json'));
  assert.equal(unknownPath.status, 404);

  const realExpired = realStatus('410_expired_continue_with_token.json');
  assert.equal(expired.status, 410);
  assert.deepEqual({ ...expired.body, metadata: {} }, { ...realExpired, metadata: {} });
  assert.deepEqual(decodeToken(expired.body.metadata.continue), { v: 'meta.k8s.io/v1', rv: -1, start: 'a\u0000' });
  // the inconsistent token continues at the latest revision
  assert.equal(resumed.status, 200);
  assert.deepEqual(
    resumed.body.items.map((i: KubeObject) => i.metadata.name),
    ['b'],
  );

  const secured = await startServer(t, { token: 'right' });
  assert.deepEqual((await get(secured, '/api/v1/namespaces')).body, realStatus('401_unauthorized.json'));
  assert.equal((await get(secured, '/api/v1/namespaces', { authorization: 'Bearer wrong' })).status, 401);
  assert.equal((await get(secured, '/api/v1/namespaces', { authorization: 'Bearer right' })).status, 200);
});

test('403 messages for core group, named objects and a custom user', TIMEOUT, async (t) => {
  const server = await startServer(t, {
    user: 'system:serviceaccount:x:y',
    faults: [
      { resource: 'pods', namespace: 'team-a', status: 403 },
      { resource: 'secrets', status: 403 },
    ],
  });

  const pods = await get(server, '/api/v1/namespaces/team-a/pods');
  const secret = await get(server, '/api/v1/namespaces/team-a/secrets/regcred');

  assert.equal(
    pods.body.message,
    'pods is forbidden: User "system:serviceaccount:x:y" cannot list resource "pods" in API group "" in the namespace "team-a"',
  );
  assert.deepEqual(pods.body.details, { kind: 'pods' });
  assert.equal(
    secret.body.message,
    'secrets "regcred" is forbidden: User "system:serviceaccount:x:y" cannot get resource "secrets" in API group "" in the namespace "team-a"',
  );
  assert.deepEqual(secret.body.details, { name: 'regcred', kind: 'secrets' });
});

test('429 carries Retry-After; 500 and 503 are Status objects', TIMEOUT, async (t) => {
  const server = await startServer(t, {
    faults: [
      { resource: 'deployments', status: 429, times: 1 },
      { resource: 'deployments', status: 429, plainText: true, times: 1 },
      { resource: 'daemonsets', status: 503 },
    ],
  });
  const statusBody = await get(server, '/apis/apps/v1/deployments');
  const plain = await get(server, '/apis/apps/v1/deployments');
  const unavailable = await get(server, '/apis/apps/v1/daemonsets');

  assert.equal(statusBody.status, 429);
  assert.equal(statusBody.headers.get('retry-after'), '1');
  assert.deepEqual(statusBody.body, {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: 'storage is (re)initializing',
    reason: 'TooManyRequests',
    details: { retryAfterSeconds: 1 },
    code: 429,
  });
  assert.equal(plain.status, 429);
  assert.equal(plain.headers.get('retry-after'), '1');
  assert.equal(plain.body, 'Too many requests, please try again later.\n');
  assert.equal(unavailable.status, 503);
  assert.equal(unavailable.body.reason, 'ServiceUnavailable');
});

test('namespace label selectors: equality, inequality, existence and sets', TIMEOUT, async (t) => {
  const server = await startServer(t, {
    namespaces: {
      alpha: { team: 'a', tier: 'prod' },
      beta: { team: 'b' },
      gamma: {},
      delta: { team: 'c', tier: 'dev' },
    },
  });
  const names = async (selector: string) =>
    (await get(server, `/api/v1/namespaces?labelSelector=${encodeURIComponent(selector)}`)).body.items.map(
      (i: KubeObject) => i.metadata.name,
    );

  assert.deepEqual(await names('team=a'), ['alpha']);
  assert.deepEqual(await names('team==a'), ['alpha']);
  assert.deepEqual(await names('team!=a'), ['beta', 'delta', 'gamma']);
  assert.deepEqual(await names('team'), ['alpha', 'beta', 'delta']);
  assert.deepEqual(await names('!team'), ['gamma']);
  assert.deepEqual(await names('team in (a,b)'), ['alpha', 'beta']);
  assert.deepEqual(await names('team notin (a)'), ['beta', 'delta', 'gamma']);
  assert.deepEqual(await names('team in (a, c),tier'), ['alpha', 'delta']);
  assert.deepEqual(await names('kubernetes.io/metadata.name=beta'), ['beta']);
  const invalid = await get(server, `/api/v1/namespaces?labelSelector=${encodeURIComponent('team=(a')}`);
  assert.equal(invalid.status, 400);
  assert.equal(invalid.body.reason, 'BadRequest');
  // filtered lists carry no remainingItemCount (facts §4)
  const paged = await get(server, `/api/v1/namespaces?limit=1&labelSelector=team`);
  assert.ok(paged.body.metadata.continue);
  assert.equal(paged.body.metadata.remainingItemCount, undefined);
});

test('single GET of secrets and serviceaccounts; missing ones are NotFound with details.name', TIMEOUT, async (t) => {
  const sa = serviceAccount({ namespace: 'team-a', name: 'builder', imagePullSecrets: ['regcred'] });
  const server = await startServer(t, { objects: [sa] });

  const found = await get(server, '/api/v1/namespaces/team-a/serviceaccounts/builder');
  const missing = await get(server, '/api/v1/namespaces/team-a/secrets/regcred');

  assert.equal(found.status, 200);
  assert.equal(found.body.kind, 'ServiceAccount'); // single objects keep their type meta
  assert.deepEqual(found.body.imagePullSecrets, [{ name: 'regcred' }]);
  assert.equal(missing.status, 404);
  assert.deepEqual(missing.body, {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: 'secrets "regcred" not found',
    reason: 'NotFound',
    details: { name: 'regcred', kind: 'secrets' },
    code: 404,
  });
});

test(
  'cluster-wide lists are sorted by etcd key; maxPageSize caps limit; onlyContinue spares first pages',
  TIMEOUT,
  async (t) => {
    const server = await startServer(t, {
      objects: [web('b', 'x', 'nginx:1'), web('a', 'z', 'nginx:1'), web('a-b', 'y', 'nginx:1')],
      maxPageSize: 2,
      faults: [{ resource: 'deployments', status: 503, onlyContinue: true }],
    });

    const all = await get(server, '/apis/apps/v1/deployments');
    const capped = await get(server, '/apis/apps/v1/deployments?limit=100');
    const next = await get(server, `/apis/apps/v1/deployments?limit=100&continue=${capped.body.metadata.continue}`);

    // keys are "<namespace>/<name>": '-' sorts before '/', so namespace a-b comes before a
    assert.deepEqual(
      all.body.items.map((i: KubeObject) => `${i.metadata.namespace}/${i.metadata.name}`),
      ['a-b/y', 'a/z', 'b/x'],
    );
    assert.equal(capped.status, 200);
    assert.equal(capped.body.items.length, 2);
    assert.deepEqual(decodeToken(capped.body.metadata.continue), {
      v: 'meta.k8s.io/v1',
      rv: Number(capped.body.metadata.resourceVersion),
      start: 'a/z\u0000',
    });
    assert.equal(next.status, 503);
    assert.deepEqual(
      (await get(server, '/api/v1/namespaces')).body.items.map((i: KubeObject) => i.metadata.name),
      ['a', 'a-b', 'b'],
    );
  },
);

test('builders: owner references, pods without status entries for unstarted containers', TIMEOUT, () => {
  const owner = deployment({
    namespace: 'n',
    name: 'web',
    labels: { team: 'a' },
    containers: [{ name: 'app', image: 'nginx' }],
  });
  const rs = replicaSet({ namespace: 'n', name: 'web-5f7c', owner, containers: [{ name: 'app', image: 'nginx' }] });
  const starting = pod({
    namespace: 'n',
    name: 'web-5f7c-abcde',
    owner: rs,
    containers: [
      { name: 'app', image: 'nginx' },
      { name: 'sidecar', image: 'envoy:1' },
    ],
    imageIDs: { app: 'sha256:' + 'c'.repeat(64) },
  });

  assert.deepEqual(rs.metadata.ownerReferences, [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: 'web',
      uid: owner.metadata.uid,
      controller: true,
      blockOwnerDeletion: true,
    },
  ]);
  assert.equal(starting.metadata.ownerReferences[0].kind, 'ReplicaSet');
  assert.deepEqual(
    starting.status.containerStatuses.map((s: KubeObject) => s.name),
    ['app'],
  );
  assert.equal(starting.status.phase, 'Pending');
  assert.equal(starting.spec.containers[0].imagePullPolicy, 'Always'); // untagged = latest
  assert.deepEqual(owner.metadata.labels, { team: 'a' });
  assert.equal(
    deployment({ namespace: 'n', name: 'web', containers: [] }).metadata.uid,
    owner.metadata.uid,
    'uid is deterministic',
  );
  for (const object of [owner, rs, starting]) {
    assert.equal(object.metadata.managedFields, undefined);
    assert.equal(object.metadata.selfLink, undefined);
    assert.equal(object.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration'], undefined);
  }
});

// ---------------------------------------------------------------- metadata-only lists (PartialObjectMetadataList)

/** What client-go's metadata client and the scanner send (kubectl has no command that sends it). */
const METADATA_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';
const METADATA_ONE = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';
const CLIENT_GO_METADATA_LIST =
  'application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';

function deploymentWithReplicaSets(namespace: string, names: string[]): KubeObject[] {
  return names.flatMap((name) => {
    const owner = deployment({ namespace, name, containers: [{ name: 'app', image: `ghcr.io/acme/${name}:1` }] });
    return [owner, replicaSet({ namespace, owner })];
  });
}

test(
  'metadata-only list: PartialObjectMetadataList of PartialObjectMetadata items with the full metadata, plain application/json',
  TIMEOUT,
  async (t) => {
    const objects = deploymentWithReplicaSets('team-a', ['web', 'api']);
    const server = await startServer(t, { objects });
    const listPath = '/apis/apps/v1/namespaces/team-a/replicasets';

    const partial = await get(server, listPath, { accept: METADATA_LIST });
    const full = await get(server, listPath, { accept: 'application/json' });

    assert.equal(partial.status, 200);
    // transformResponseObject → WriteObjectNegotiated(…, listGVKInContentType=false): the media type without parameters
    assert.equal(partial.headers.get('content-type'), 'application/json');
    assert.deepEqual(Object.keys(partial.body), ['kind', 'apiVersion', 'metadata', 'items']);
    assert.equal(partial.body.kind, 'PartialObjectMetadataList');
    assert.equal(partial.body.apiVersion, 'meta.k8s.io/v1');
    assert.deepEqual(partial.body.metadata, full.body.metadata);
    assert.equal(partial.body.items.length, 2);
    for (const [index, item] of partial.body.items.entries()) {
      assert.deepEqual(Object.keys(item), ['kind', 'apiVersion', 'metadata']);
      assert.equal(item.kind, 'PartialObjectMetadata');
      assert.equal(item.apiVersion, 'meta.k8s.io/v1');
      assert.deepEqual(item.metadata, full.body.items[index].metadata);
    }
    const api = partial.body.items[0].metadata;
    const apiDeployment = objects[0]!.metadata.name === 'web' ? objects[2]! : objects[0]!;
    assert.equal(api.name, `api-${podTemplateHash(apiDeployment)}`);
    assert.equal(api.labels['pod-template-hash'], podTemplateHash(apiDeployment));
    assert.deepEqual(api.ownerReferences, [
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        name: 'api',
        uid: apiDeployment.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    // a plain request still gets whole ReplicaSets, pod template included
    assert.equal(full.body.kind, 'ReplicaSetList');
    assert.ok(full.body.items.every((item: KubeObject) => item.spec.template.spec.containers.length === 1));
  },
);

test(
  'metadata-only list: paging, continue tokens and selectors behave as for full lists; an empty page has items null',
  TIMEOUT,
  async (t) => {
    const server = await startServer(t, { objects: deploymentWithReplicaSets('team-a', ['a', 'b', 'c']) });
    const listPath = '/apis/apps/v1/namespaces/team-a/replicasets';

    const first = await get(server, `${listPath}?limit=2`, { accept: METADATA_LIST });
    const second = await get(server, `${listPath}?limit=2&continue=${first.body.metadata.continue}`, {
      accept: METADATA_LIST,
    });
    // a token from a metadata-only page continues a full list too: it names a position, not a representation
    const mixed = await get(server, `${listPath}?limit=2&continue=${first.body.metadata.continue}`);
    const none = await get(server, `${listPath}?labelSelector=app%3Dnope`, { accept: METADATA_LIST });
    const emptyNamespace = await get(server, '/apis/batch/v1/namespaces/empty/jobs', { accept: METADATA_LIST });

    assert.deepEqual(
      first.body.items.map((i: KubeObject) => i.metadata.name.split('-')[0]),
      ['a', 'b'],
    );
    assert.equal(first.body.metadata.remainingItemCount, 1);
    assert.deepEqual(
      second.body.items.map((i: KubeObject) => i.metadata.name.split('-')[0]),
      ['c'],
    );
    assert.deepEqual(Object.keys(second.body.metadata), ['resourceVersion']);
    assert.equal(second.body.metadata.resourceVersion, first.body.metadata.resourceVersion);
    assert.equal(mixed.body.kind, 'ReplicaSetList');
    assert.deepEqual(
      mixed.body.items.map((i: KubeObject) => i.metadata.name),
      second.body.items.map((i: KubeObject) => i.metadata.name),
    );
    // asPartialObjectMetadataList appends to a nil slice: no match → "items": null (kube-rs#1199 met exactly this)
    assert.equal(none.status, 200);
    assert.equal(none.body.items, null);
    assert.equal(emptyNamespace.body.items, null);
    assert.deepEqual(
      (await get(server, '/apis/batch/v1/namespaces/empty/jobs')).body.items,
      [],
      'a full empty list keeps []',
    );
  },
);

test('metadata-only list: faults are the same Status answers', TIMEOUT, async (t) => {
  const server = await startServer(t, {
    objects: deploymentWithReplicaSets('team-a', ['a', 'b']),
    faults: [
      { resource: 'replicasets', namespace: 'forbidden', status: 403 },
      { resource: 'jobs', status: 500, times: 1 },
      { resource: 'replicasets', namespace: 'team-a', status: 410, onlyContinue: true, times: 1 },
    ],
  });
  const denied = await get(server, '/apis/apps/v1/namespaces/forbidden/replicasets', { accept: METADATA_LIST });
  const failing = await get(server, '/apis/batch/v1/namespaces/team-a/jobs', { accept: METADATA_LIST });
  const first = await get(server, '/apis/apps/v1/namespaces/team-a/replicasets?limit=1', { accept: METADATA_LIST });
  const expired = await get(
    server,
    `/apis/apps/v1/namespaces/team-a/replicasets?limit=1&continue=${first.body.metadata.continue}`,
    { accept: METADATA_LIST },
  );

  assert.equal(denied.status, 403);
  assert.equal(
    denied.body.message,
    `replicasets.apps is forbidden: User "${SCANNER_USER}" cannot list resource "replicasets" in API group "apps" in the namespace "forbidden"`,
  );
  assert.equal(failing.status, 500);
  assert.equal(failing.body.reason, 'InternalError');
  assert.equal(expired.status, 410);
  assert.equal(expired.body.reason, 'Expired');
});

test(
  'metadata-only GET of one object; the single form on a list and the list form on an object are 406',
  TIMEOUT,
  async (t) => {
    const server = await startServer(t, { objects: deploymentWithReplicaSets('team-a', ['web']) });
    const [name] = (await get(server, '/apis/apps/v1/namespaces/team-a/replicasets')).body.items.map(
      (i: KubeObject) => i.metadata.name,
    );

    const one = await get(server, `/apis/apps/v1/namespaces/team-a/replicasets/${name}`, { accept: METADATA_ONE });
    const singleOnList = await get(server, '/apis/apps/v1/namespaces/team-a/replicasets', { accept: METADATA_ONE });
    const listOnObject = await get(server, `/apis/apps/v1/namespaces/team-a/replicasets/${name}`, {
      accept: METADATA_LIST,
    });
    const listOnPods = await get(server, '/api/v1/namespaces/team-a/pods', { accept: METADATA_ONE });
    const missing = await get(server, '/apis/apps/v1/namespaces/team-a/replicasets/nope', { accept: METADATA_LIST });

    assert.equal(one.status, 200);
    assert.deepEqual(Object.keys(one.body), ['kind', 'apiVersion', 'metadata']);
    assert.equal(one.body.kind, 'PartialObjectMetadata');
    assert.equal(one.body.metadata.name, name);
    // RequestScope.AllowsMediaTypeTransform lets both kinds through ("TODO: should delineate between lists and non-list
    // endpoints"); the transform then refuses: no fallback to the plain application/json offered after the comma
    assert.equal(singleOnList.status, 406);
    assert.deepEqual(singleOnList.body, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'you requested PartialObjectMetadata, but the requested object is a list (*apps.ReplicaSetList)',
      reason: 'NotAcceptable',
      code: 406,
    });
    assert.equal(listOnObject.status, 406);
    assert.equal(
      listOnObject.body.message,
      'you requested PartialObjectMetadataList, but the requested object is not a list (*apps.ReplicaSet)',
    );
    assert.equal(
      listOnPods.body.message,
      'you requested PartialObjectMetadata, but the requested object is a list (*core.PodList)',
    );
    assert.equal(missing.status, 404, 'storage answers before the transform');
  },
);

test(
  'Accept negotiation: client-go metadata client header, v1beta1, q values, Table, unknown kinds, nothing acceptable',
  TIMEOUT,
  async (t) => {
    assert.deepEqual(negotiateRepresentation(CLIENT_GO_METADATA_LIST), {
      as: 'PartialObjectMetadataList',
      version: 'v1',
    });
    assert.deepEqual(negotiateRepresentation('application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1beta1'), {
      as: 'PartialObjectMetadataList',
      version: 'v1beta1',
    });
    assert.deepEqual(
      negotiateRepresentation('application/json;v=v1;g=meta.k8s.io;as=PartialObjectMetadataList'),
      { as: 'PartialObjectMetadataList', version: 'v1' },
      'parameter order is free',
    );
    assert.deepEqual(
      negotiateRepresentation(
        'application/json;q=0.5,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1',
      ),
      { as: 'PartialObjectMetadataList', version: 'v1' },
    );
    assert.deepEqual(
      negotiateRepresentation('application/json;as=PartialObjectMetadataList;g=apps;v=v1,application/json'),
      { as: 'full' },
      'wrong group: skipped',
    );
    assert.deepEqual(negotiateRepresentation('application/json;as=Widget;g=meta.k8s.io;v=v1,application/json'), {
      as: 'full',
    });
    assert.deepEqual(
      negotiateRepresentation('application/json;as=Table;v=v1;g=meta.k8s.io,application/json'),
      { as: 'full' },
      'no Table support: the plain list',
    );
    assert.deepEqual(negotiateRepresentation(undefined), { as: 'full' });
    assert.deepEqual(negotiateRepresentation('*/*'), { as: 'full' });
    assert.equal(negotiateRepresentation('text/html'), undefined);
    assert.equal(
      negotiateRepresentation('application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v2'),
      undefined,
    );

    const server = await startServer(t, { objects: deploymentWithReplicaSets('team-a', ['web']) });
    const viaClientGo = await get(server, '/apis/apps/v1/namespaces/team-a/replicasets', {
      accept: CLIENT_GO_METADATA_LIST,
    });
    const html = await fetch(`${server.url}/apis/apps/v1/namespaces/team-a/replicasets`, {
      headers: { accept: 'text/html' },
    });
    assert.equal(
      viaClientGo.body.kind,
      'PartialObjectMetadataList',
      'the protobuf clause wins; the stand-in answers it in JSON',
    );
    assert.equal(html.status, 406);
    assert.equal(html.headers.get('content-type'), 'application/json');
    // nothing could be negotiated, so the Status is written raw (json.MarshalIndent)
    assert.equal(
      await html.text(),
      JSON.stringify(
        {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message:
            'only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf',
          reason: 'NotAcceptable',
          code: 406,
        },
        null,
        2,
      ),
    );
  },
);

test('builders: the ownership chains controllers create', TIMEOUT, () => {
  const web = deployment({
    namespace: 'n',
    name: 'web',
    containers: [{ name: 'app', image: 'nginx:1.25' }],
    serviceAccountName: 'web-sa',
    imagePullSecrets: ['regcred'],
  });
  const hash = podTemplateHash(web);
  const rs = replicaSet({ namespace: 'n', owner: web });
  const rs2 = replicaSet({
    namespace: 'n',
    owner: web,
    revision: 2,
    containers: [{ name: 'app', image: 'nginx:1.27' }],
  });
  const webPod = pod({
    namespace: 'n',
    owner: rs,
    imageIDs: { app: `docker.io/library/nginx@sha256:${'a'.repeat(64)}` },
  });

  assert.match(hash, /^[bcdfghjklmnpqrstvwxz2456789]{10}$/);
  assert.equal(rs.metadata.name, `web-${hash}`);
  assert.ok(
    web.status.conditions.some(
      (c: KubeObject) => c.message === `ReplicaSet "web-${hash}" has successfully progressed.`,
    ),
  );
  assert.deepEqual(rs.metadata.labels, { app: 'web', 'pod-template-hash': hash });
  assert.deepEqual(rs.spec.selector.matchLabels, { app: 'web', 'pod-template-hash': hash });
  assert.deepEqual(rs.spec.template.metadata.labels, { app: 'web', 'pod-template-hash': hash });
  assert.equal(rs.spec.template.spec.serviceAccountName, 'web-sa');
  assert.deepEqual(rs.metadata.ownerReferences, [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: 'web',
      uid: web.metadata.uid,
      controller: true,
      blockOwnerDeletion: true,
    },
  ]);
  assert.equal(rs.metadata.annotations['deployment.kubernetes.io/revision'], '1');
  assert.notEqual(rs2.metadata.name, rs.metadata.name);
  assert.equal(rs2.metadata.annotations['deployment.kubernetes.io/revision'], '2');
  assert.equal(rs2.spec.template.spec.containers[0].image, 'nginx:1.27');
  assert.equal(
    replicaSet({ namespace: 'n', name: 'web-5f7c', owner: web, containers: [] }).metadata.labels['pod-template-hash'],
    '5f7c',
  );

  assert.match(webPod.metadata.name, new RegExp(`^web-${hash}-[bcdfghjklmnpqrstvwxz2456789]{5}$`));
  assert.equal(webPod.metadata.generateName, `web-${hash}-`);
  assert.deepEqual(webPod.metadata.ownerReferences, [
    {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      name: rs.metadata.name,
      uid: rs.metadata.uid,
      controller: true,
      blockOwnerDeletion: true,
    },
  ]);
  assert.deepEqual(webPod.metadata.labels, { app: 'web', 'pod-template-hash': hash });
  assert.deepEqual([webPod.spec.serviceAccountName, webPod.spec.imagePullSecrets], ['web-sa', [{ name: 'regcred' }]]);
  assert.deepEqual(
    webPod.spec.containers.map((c: KubeObject) => c.image),
    ['nginx:1.25'],
  );
  assert.equal(webPod.status.phase, 'Running');

  const nightly = cronJob({
    namespace: 'n',
    name: 'nightly',
    containers: [{ name: 'backup', image: 'ghcr.io/acme/backup:3' }],
  });
  const run = job({ namespace: 'n', owner: nightly, scheduledTime: '2025-01-15T02:00:00Z' });
  const runPod = pod({
    namespace: 'n',
    owner: run,
    phase: 'Succeeded',
    imageIDs: { backup: `ghcr.io/acme/backup@sha256:${'b'.repeat(64)}` },
  });
  assert.equal(
    cronJobJobName(nightly, '2025-01-15T02:00:00Z'),
    `nightly-${Date.parse('2025-01-15T02:00:00Z') / 60_000}`,
  );
  assert.equal(run.metadata.name, 'nightly-28948440');
  assert.equal(run.metadata.ownerReferences[0].kind, 'CronJob');
  assert.equal(run.metadata.ownerReferences[0].controller, true);
  assert.equal(run.metadata.annotations['batch.kubernetes.io/cronjob-scheduled-timestamp'], '2025-01-15T02:00:00Z');
  assert.deepEqual(run.spec.selector.matchLabels, { 'batch.kubernetes.io/controller-uid': run.metadata.uid });
  assert.equal(run.spec.template.spec.containers[0].image, 'ghcr.io/acme/backup:3');
  assert.equal(runPod.metadata.ownerReferences[0].kind, 'Job');
  assert.equal(runPod.metadata.labels['job-name'], 'nightly-28948440');
  assert.equal(runPod.metadata.labels['batch.kubernetes.io/controller-uid'], run.metadata.uid);
  assert.equal(runPod.spec.restartPolicy, 'OnFailure', 'from the CronJob job template');

  const db = statefulSet({ namespace: 'n', name: 'db', containers: [{ name: 'pg', image: 'postgres:16' }] });
  const dbPod = pod({ namespace: 'n', owner: db });
  assert.equal(dbPod.metadata.name, 'db-0');
  assert.equal(dbPod.metadata.generateName, undefined);
  assert.equal(dbPod.metadata.ownerReferences[0].kind, 'StatefulSet');
  assert.equal(dbPod.metadata.labels['statefulset.kubernetes.io/pod-name'], 'db-0');
  assert.equal(dbPod.metadata.labels['controller-revision-hash'], db.status.updateRevision);
  const agent = daemonSet({ namespace: 'n', name: 'agent', containers: [{ name: 'a', image: 'agent:1' }] });
  const agentPod = pod({ namespace: 'n', owner: agent });
  assert.equal(agentPod.metadata.ownerReferences[0].kind, 'DaemonSet');
  assert.ok(
    agentPod.metadata.labels['controller-revision-hash'] && agentPod.metadata.labels['pod-template-generation'],
  );

  const standalone = pod({ namespace: 'n', name: 'debug', containers: [{ name: 'shell', image: 'busybox' }] });
  assert.equal(standalone.metadata.ownerReferences, undefined);
  assert.equal(standalone.metadata.generateName, undefined);
  assert.equal(standalone.metadata.labels, undefined);
  assert.throws(() => pod({ namespace: 'n' }), /give a name, or an owner/);
});

test('builders: phases, every image ID form, ephemeral containers', TIMEOUT, () => {
  const digest = `sha256:${'c'.repeat(64)}`;
  const containers = [
    { name: 'a', image: 'nginx:1.25' },
    { name: 'b', image: 'redis:7' },
    { name: 'c', image: 'local/app:dev' },
    { name: 'd', image: 'ghcr.io/acme/d:1' },
    { name: 'e', image: 'e:1' },
  ];
  const imageIDs = { a: `docker-pullable://nginx@${digest}`, b: `docker.io/library/redis@${digest}`, c: digest, d: '' };
  const mixed = pod({
    namespace: 'n',
    name: 'mixed',
    containers,
    imageIDs,
    ephemeralContainers: [{ name: 'debugger', image: 'busybox:1.36' }],
  });
  const statusOf = (object: KubeObject, name: string) =>
    object.status.containerStatuses.find((s: KubeObject) => s.name === name);

  assert.equal(mixed.status.phase, 'Pending', 'd is pulling, e has not started');
  assert.deepEqual(
    mixed.status.containerStatuses.map((s: KubeObject) => [s.name, s.imageID]),
    [
      ['a', imageIDs.a],
      ['b', imageIDs.b],
      ['c', digest],
      ['d', ''],
    ],
  );
  assert.match(statusOf(mixed, 'a').containerID, /^docker:\/\//);
  assert.match(statusOf(mixed, 'b').containerID, /^containerd:\/\//);
  assert.equal(statusOf(mixed, 'b').image, 'docker.io/library/redis:7');
  assert.equal(statusOf(mixed, 'd').state.waiting.reason, 'ImagePullBackOff');
  assert.equal(statusOf(mixed, 'e'), undefined);
  assert.equal(
    mixed.status.conditions.find((c: KubeObject) => c.type === 'Ready').message,
    'containers with unready status: [d e]',
  );
  assert.deepEqual(
    mixed.spec.ephemeralContainers.map((c: KubeObject) => [c.name, c.image]),
    [['debugger', 'busybox:1.36']],
  );
  assert.equal(mixed.status.ephemeralContainerStatuses, undefined, 'no status until it starts');

  const debugged = pod({
    namespace: 'n',
    name: 'debugged',
    containers: [{ name: 'app', image: 'nginx:1.25' }],
    ephemeralContainers: [{ name: 'debugger', image: 'busybox:1.36' }],
    imageIDs: { app: `docker.io/library/nginx@${digest}`, debugger: `docker.io/library/busybox@${digest}` },
  });
  assert.equal(debugged.status.phase, 'Running');
  assert.deepEqual(
    debugged.status.ephemeralContainerStatuses.map((s: KubeObject) => [
      s.name,
      s.imageID,
      s.ready,
      Object.keys(s.state),
    ]),
    [['debugger', `docker.io/library/busybox@${digest}`, false, ['running']]],
  );

  for (const [phase, exitCode, reason, conditionReason] of [
    ['Succeeded', 0, 'Completed', 'PodCompleted'],
    ['Failed', 1, 'Error', 'PodFailed'],
  ] as const) {
    const done = pod({
      namespace: 'n',
      name: `done-${phase}`,
      containers: [{ name: 'app', image: 'nginx:1.25' }],
      imageIDs: { app: `docker.io/library/nginx@${digest}` },
      phase,
    });
    const [status] = done.status.containerStatuses;
    assert.equal(done.status.phase, phase);
    assert.deepEqual(
      [status.state.terminated.exitCode, status.state.terminated.reason, status.ready, status.started],
      [exitCode, reason, false, false],
    );
    assert.equal(status.imageID, `docker.io/library/nginx@${digest}`, 'terminated containers keep their image ID');
    const ready = done.status.conditions.find((c: KubeObject) => c.type === 'Ready');
    assert.deepEqual([ready.status, ready.reason], ['False', conditionReason]);
  }
  assert.equal(
    pod({ namespace: 'n', name: 'p', containers: [{ name: 'app', image: 'x:1' }], phase: 'Pending' }).status.phase,
    'Pending',
  );
});

// ---------------------------------------------------------------- access reviews (kubectl auth can-i / whoami)

async function post(server: KubeServer, apiPath: string, body: string, contentType = 'application/json') {
  const response = await fetch(`${server.url}${apiPath}`, {
    method: 'POST',
    headers: { 'Content-Type': contentType },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, body: JSON.parse(await response.text()) };
}

const SSAR = '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews';
const SSR = '/apis/authentication.k8s.io/v1/selfsubjectreviews';
const review = (resourceAttributes: Record<string, string>) =>
  JSON.stringify({
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SelfSubjectAccessReview',
    spec: { resourceAttributes },
  });

test(
  'kubectl auth can-i (protobuf SelfSubjectAccessReview): read verbs allowed, a 403 fault denies its namespace and the cluster-wide question, writes are denied',
  TIMEOUT,
  async (t) => {
    const server = await startServer(t, { faults: [{ resource: 'deployments', namespace: 'payments', status: 403 }] });
    const kubectl = await kubectlFor(t, server);
    assert.deepEqual(await kubectl('auth', 'can-i', 'list', 'deployments', '-n', 'shop'), {
      code: 0,
      stdout: 'yes\n',
      stderr: '',
    });
    assert.deepEqual(await kubectl('auth', 'can-i', 'list', 'deployments.apps', '-n', 'payments'), {
      code: 1,
      stdout: 'no\n',
      stderr: '',
    });
    assert.deepEqual(await kubectl('auth', 'can-i', 'list', 'deployments', '--all-namespaces'), {
      code: 1,
      stdout: 'no\n',
      stderr: '',
    });
    assert.deepEqual(await kubectl('auth', 'can-i', 'list', 'statefulsets', '--all-namespaces'), {
      code: 0,
      stdout: 'yes\n',
      stderr: '',
    });
    assert.deepEqual(await kubectl('auth', 'can-i', 'delete', 'pods', '-n', 'shop'), {
      code: 1,
      stdout: 'no\n',
      stderr: '',
    });
    const posts = server.requests.filter((r) => r.path === SSAR);
    assert.equal(posts.length, 5);
    assert.ok(
      posts.every(
        (r) =>
          r.method === 'POST' &&
          r.headers['content-type'] === 'application/vnd.kubernetes.protobuf' &&
          r.status === 201,
      ),
    );
  },
);

test('kubectl auth can-i prints the reason a denial carries (a binding naming a missing role)', TIMEOUT, async (t) => {
  const reviewReason = 'RBAC: clusterrole.rbac.authorization.k8s.io "ephor-scanner" not found';
  const server = await startServer(t, { faults: [{ resource: 'secrets', status: 403, reviewReason }] });
  const kubectl = await kubectlFor(t, server);
  assert.deepEqual(await kubectl('auth', 'can-i', 'get', 'secrets', '-n', 'shop'), {
    code: 1,
    stdout: `no - ${reviewReason}\n`,
    stderr: '',
  });
});

test(
  'kubectl auth whoami (SelfSubjectReview): the service account and its groups; without the API, kubectl says so',
  TIMEOUT,
  async (t) => {
    const server = await startServer(t, {});
    const kubectl = await kubectlFor(t, server);
    const whoami = await kubectl('auth', 'whoami', '-o', 'json');
    assert.equal(whoami.code, 0, whoami.stderr);
    const { status, kind, apiVersion } = JSON.parse(whoami.stdout);
    assert.deepEqual([kind, apiVersion], ['SelfSubjectReview', 'authentication.k8s.io/v1']);
    assert.equal(status.userInfo.username, SCANNER_USER);
    assert.deepEqual(status.userInfo.groups, [
      'system:serviceaccounts',
      'system:serviceaccounts:ephor',
      'system:authenticated',
    ]);
    assert.match(status.userInfo.uid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);

    const old = await startServer(t, { selfSubjectReview: false });
    const oldKubectl = await kubectlFor(t, old);
    const missing = await oldKubectl('auth', 'whoami');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /the selfsubjectreviews API is not enabled in the cluster/);
  },
);

test(
  'SelfSubjectAccessReview over JSON: 201, the spec echoed, the RBAC reason of an allowed request; faults are looked at, not used up',
  TIMEOUT,
  async (t) => {
    const server = await startServer(t, {
      objects: [web('payments', 'api', 'nginx:1.25')],
      faults: [{ resource: 'deployments', namespace: 'payments', status: 403, times: 1 }],
    });
    const allowed = await post(
      server,
      SSAR,
      review({ namespace: 'shop', verb: 'list', group: 'apps', resource: 'deployments' }),
    );
    assert.equal(allowed.status, 201);
    assert.deepEqual(allowed.body, {
      kind: 'SelfSubjectAccessReview',
      apiVersion: 'authorization.k8s.io/v1',
      metadata: { creationTimestamp: null },
      spec: { resourceAttributes: { namespace: 'shop', verb: 'list', group: 'apps', resource: 'deployments' } },
      status: {
        allowed: true,
        reason:
          'RBAC: allowed by ClusterRoleBinding "ephor-scanner" of ClusterRole "ephor-scanner" to ServiceAccount "ephor-scanner/ephor"',
      },
    });
    const denied = await post(
      server,
      SSAR,
      review({ namespace: 'payments', verb: 'list', group: 'apps', resource: 'deployments' }),
    );
    assert.deepEqual(denied.body.status, { allowed: false }, 'RBAC gives no reason for a plain denial');
    const again = await post(
      server,
      SSAR,
      review({ namespace: 'payments', verb: 'list', group: 'apps', resource: 'deployments' }),
    );
    assert.deepEqual(again.body.status, { allowed: false }, 'the review did not use up the fault');
    assert.equal(
      (await get(server, '/apis/apps/v1/namespaces/payments/deployments')).status,
      403,
      'the list meets the fault',
    );
    assert.equal(
      (await get(server, '/apis/apps/v1/namespaces/payments/deployments')).status,
      200,
      'times: 1 counted only the list',
    );
    const wrongGroup = await post(
      server,
      SSAR,
      review({ namespace: 'shop', verb: 'list', group: '', resource: 'deployments' }),
    );
    assert.deepEqual(wrongGroup.body.status, { allowed: false }, 'deployments are not in the core group');
  },
);

test(
  'access reviews: invalid bodies are 400/415/422 Status objects, GET is 405, a wrong token is 401',
  TIMEOUT,
  async (t) => {
    const server = await startServer(t, {});
    const garbage = await post(server, SSAR, '{not json');
    assert.equal(garbage.status, 400);
    assert.equal(garbage.body.reason, 'BadRequest');
    const empty = await post(
      server,
      SSAR,
      JSON.stringify({ apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: {} }),
    );
    assert.equal(empty.status, 422);
    assert.equal(empty.body.reason, 'Invalid');
    assert.match(empty.body.message, /exactly one of nonResourceAttributes or resourceAttributes must be specified/);
    const text = await post(server, SSAR, 'x', 'text/plain');
    assert.equal(text.status, 415);
    assert.equal((await get(server, SSAR)).status, 405);
    const nonResource = await post(
      server,
      SSAR,
      JSON.stringify({
        kind: 'SelfSubjectAccessReview',
        apiVersion: 'authorization.k8s.io/v1',
        spec: { nonResourceAttributes: { path: '/version', verb: 'get' } },
      }),
    );
    assert.equal(nonResource.body.status.allowed, true);
    const who = await post(
      server,
      SSR,
      JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }),
    );
    assert.equal(who.status, 201);
    assert.equal(who.body.status.userInfo.username, SCANNER_USER);

    const guarded = await startServer(t, { token: 'good-token' });
    const refused = await fetch(`${guarded.url}${SSAR}`, {
      method: 'POST',
      body: review({ verb: 'list', resource: 'pods' }),
      headers: { Authorization: 'Bearer bad' },
    });
    assert.equal(refused.status, 401);
  },
);

test(
  'starts and answers without ../shared: built-in discovery and Status documents, and kubectl still works',
  TIMEOUT,
  async (t) => {
    const dir = await tempDir(t);
    const script = path.join(dir, 'serve.mts');
    await writeFile(
      script,
      [
        `import { startKubeServer } from ${JSON.stringify(new URL('./k8s-server.ts', import.meta.url).pathname)};`,
        `const server = await startKubeServer({ objects: [{ kind: 'Deployment', apiVersion: 'apps/v1', metadata: { name: 'web', namespace: 'shop' }, spec: {} }] });`,
        `const guarded = await startKubeServer({ token: 'demo-token' });`,
        `await server.writeKubeconfig(${JSON.stringify(dir)});`,
        `process.stdout.write(server.url + ' ' + guarded.url + '\\n');`,
      ].join('\n'),
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      cwd: new URL('../../', import.meta.url).pathname,
      env: { ...process.env, EPHOR_SHARED_DIR: path.join(dir, 'no-shared-here') },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    t.after(() => child.kill('SIGKILL'));
    const [url, guardedUrl] = await new Promise<string[]>((resolve, reject) => {
      child.stdout.setEncoding('utf8').once('data', (chunk: string) => {
        resolve(chunk.trim().split(' '));
      });
      child.once('exit', (code) => {
        reject(new Error(`the server exited with ${code}`));
      });
    });
    const server = { url } as KubeServer;
    const guarded = { url: guardedUrl } as KubeServer;
    const auth = { Authorization: 'Bearer demo-token' };
    const version = await get(guarded, '/version', auth);
    assert.equal(version.status, 200);
    assert.equal(version.body.gitVersion, 'v1.32.3');
    const groups = await get(server, '/apis');
    assert.deepEqual(
      groups.body.groups.map((g: KubeObject) => g.name),
      ['apps', 'batch', 'coordination.k8s.io'],
    );
    assert.equal(
      (await get(server, '/apis/apps/v1')).body.resources.some((r: KubeObject) => r.name === 'deployments'),
      true,
    );
    const unauthorized = await get(guarded, '/version');
    assert.deepEqual([unauthorized.status, unauthorized.body.reason], [401, 'Unauthorized']);
    const missing = await get(server, '/apis/nothing/v1');
    assert.deepEqual([missing.status, missing.body.reason], [404, 'NotFound']);

    // kubectl discovers the resources from the built-in documents alone
    const kubeconfig = path.join(dir, 'kubeconfig');
    const kubectl = (...args: string[]) =>
      new Promise<KubectlResult>((resolve) => {
        execFile(
          KUBECTL,
          [`--cache-dir=${path.join(dir, 'cache')}`, '--request-timeout=10s', ...args],
          {
            env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, KUBECONFIG: kubeconfig },
            timeout: 30_000,
          },
          (error, stdout, stderr) => {
            resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
          },
        );
      });
    const list = await kubectl('get', 'deployments', '-n', 'shop', '-o', 'name');
    assert.deepEqual(list, { code: 0, stdout: 'deployment.apps/web\n', stderr: '' });
    const canI = await kubectl('auth', 'can-i', 'list', 'cronjobs', '-n', 'shop');
    assert.deepEqual(canI, { code: 0, stdout: 'yes\n', stderr: '' });
  },
);

// ---------------------------------------------------------------- bulk mode (the benchmark's clusters)

test(
  'bulk mode answers byte for byte as the default mode: pages, continue tokens, cluster-wide, metadata-only, selectors, GET; writes still show',
  TIMEOUT,
  async (t) => {
    const build = () => {
      const objects: KubeObject[] = [];
      for (const namespace of ['team-b', 'team-a']) {
        for (const name of ['web', 'api', 'db']) {
          const owner = deployment({
            namespace,
            name,
            labels: { tier: name },
            containers: [{ name: 'app', image: `registry.local/${name}:1` }],
          });
          const rs = replicaSet({ namespace, owner });
          objects.push(
            owner,
            rs,
            pod({ namespace, owner: rs, imageIDs: { app: `docker.io/library/${name}@sha256:${'e'.repeat(64)}` } }),
          );
        }
      }
      return objects;
    };
    const plain = await startServer(t, { objects: build() });
    const bulkObjects = build();
    const bulk = await startServer(t, { objects: bulkObjects, bulk: true });
    assert.equal(
      bulkObjects[0]!.metadata.resourceVersion,
      '1002',
      'bulk mode takes the objects over (team-b was created first)',
    );

    const metadataOnly = {
      Accept: 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json',
    };
    const text = async (server: KubeServer, pathAndQuery: string, headers: Record<string, string> = {}) => {
      const response = await fetch(`${server.url}${pathAndQuery}`, { headers, signal: AbortSignal.timeout(10_000) });
      return `${response.status} ${response.headers.get('content-type')} ${await response.text()}`;
    };
    const paths: Array<[string, Record<string, string>?]> = [
      ['/apis/apps/v1/namespaces/team-a/deployments'],
      ['/apis/apps/v1/namespaces/team-a/deployments?limit=2'],
      ['/apis/apps/v1/deployments?limit=4'],
      ['/api/v1/pods'],
      ['/api/v1/namespaces/team-b/pods?labelSelector=app%3Dweb'],
      ['/apis/apps/v1/namespaces/team-a/replicasets?limit=2', metadataOnly],
      ['/apis/batch/v1/namespaces/team-a/jobs', metadataOnly],
      ['/api/v1/namespaces/team-a/pods?limit=500', metadataOnly],
      ['/apis/apps/v1/namespaces/team-a/deployments/api'],
      ['/api/v1/namespaces'],
    ];
    for (const [pathAndQuery, headers] of paths) {
      const expected = await text(plain, pathAndQuery, headers);
      assert.equal(await text(bulk, pathAndQuery, headers), expected, pathAndQuery);
      const token = /"continue":"([^"]+)"/.exec(expected)?.[1];
      if (token) {
        const next = `${pathAndQuery}&continue=${token}`;
        assert.equal(await text(bulk, next, headers), await text(plain, next, headers), next);
      }
    }

    // a write after a list: the next list shows it, and a page of the earlier snapshot does not
    const first = await get(bulk, '/apis/apps/v1/namespaces/team-a/deployments?limit=1');
    bulk.addObjects(web('team-a', 'cache', 'redis:7'));
    const after = await get(bulk, '/apis/apps/v1/namespaces/team-a/deployments');
    assert.deepEqual(
      after.body.items.map((i: KubeObject) => i.metadata.name),
      ['api', 'cache', 'db', 'web'],
    );
    const rest = await get(
      bulk,
      `/apis/apps/v1/namespaces/team-a/deployments?limit=10&continue=${first.body.metadata.continue}`,
    );
    assert.deepEqual(
      rest.body.items.map((i: KubeObject) => i.metadata.name),
      ['db', 'web'],
    );
  },
);

// ---------------------------------------------------------------- Leases (coordination.k8s.io/v1, k8s-leases.ts)

const LEASES = '/apis/coordination.k8s.io/v1/namespaces/ephor/leases';
const LEASE = `${LEASES}/ephor-scanner`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const RFC3339_SECONDS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const OPTIMISTIC_LOCK = 'the object has been modified; please apply your changes to the latest version and try again';

async function send(server: KubeServer, method: 'POST' | 'PUT', apiPath: string, body: unknown) {
  const response = await fetch(`${server.url}${apiPath}`, {
    method,
    headers: { 'Content-Type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, headers: response.headers, body: JSON.parse(await response.text()) };
}

function leaseBody(spec: KubeObject = {}, metadata: KubeObject = {}): KubeObject {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: 'ephor-scanner', namespace: 'ephor', ...metadata },
    spec: {
      holderIdentity: 'run-a_1',
      leaseDurationSeconds: 450,
      acquireTime: '2026-12-02T14:39:06.123456Z',
      renewTime: '2026-12-02T14:39:06.123456Z',
      leaseTransitions: 0,
      ...spec,
    },
  };
}

test(
  'kubectl create -f lease.yaml, get lease -o json, create again (AlreadyExists), replace with a stale resourceVersion (Conflict) and with the current one',
  TIMEOUT,
  async (t) => {
    const server = await startServer(t, { namespaces: { ephor: {} } });
    const kubectl = await kubectlFor(t, server);
    const file = path.join(kubectl.home, 'lease.yaml');
    await writeFile(
      file,
      [
        'apiVersion: coordination.k8s.io/v1',
        'kind: Lease',
        'metadata:',
        '  name: ephor-scanner',
        '  namespace: ephor',
        'spec:',
        '  holderIdentity: scheduled-run_1111',
        '  leaseDurationSeconds: 450',
        '  acquireTime: "2026-12-02T14:39:06.123456Z"',
        '  renewTime: "2026-12-02T15:39:07.000001+01:00"',
        '  leaseTransitions: 2',
        '',
      ].join('\n'),
    );

    assert.deepEqual(await kubectl('create', '-f', file), {
      code: 0,
      stdout: 'lease.coordination.k8s.io/ephor-scanner created\n',
      stderr: '',
    });
    const created = server.requests.find((r) => r.method === 'POST' && r.path === LEASES);
    assert.deepEqual(
      [created?.status, created?.query.fieldManager, created?.query.fieldValidation],
      [201, 'kubectl-create', 'Strict'],
      'kubectl found fieldValidation support in /openapi/v3 and let the server validate',
    );

    const got = await kubectl('get', 'lease', 'ephor-scanner', '-n', 'ephor', '-o', 'json');
    assert.equal(got.code, 0, got.stderr);
    assert.equal(got.stderr, '');
    const lease = JSON.parse(got.stdout);
    assert.match(lease.metadata.uid, UUID);
    assert.match(lease.metadata.creationTimestamp, RFC3339_SECONDS);
    assert.equal(lease.metadata.generation, undefined, 'the Lease strategy sets no generation');
    assert.deepEqual(lease, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        creationTimestamp: lease.metadata.creationTimestamp,
        name: 'ephor-scanner',
        namespace: 'ephor',
        resourceVersion: lease.metadata.resourceVersion,
        uid: lease.metadata.uid,
      },
      spec: {
        acquireTime: '2026-12-02T14:39:06.123456Z',
        holderIdentity: 'scheduled-run_1111',
        leaseDurationSeconds: 450,
        leaseTransitions: 2,
        renewTime: '2026-12-02T14:39:07.000001Z',
      },
    });

    const again = await kubectl('create', '-f', file);
    assert.deepEqual(again, {
      code: 1,
      stdout: '',
      stderr: `Error from server (AlreadyExists): error when creating "${file}": leases.coordination.k8s.io "ephor-scanner" already exists\n`,
    });

    const stale = path.join(kubectl.home, 'stale.json');
    await writeFile(
      stale,
      JSON.stringify({
        ...lease,
        metadata: { ...lease.metadata, resourceVersion: String(Number(lease.metadata.resourceVersion) - 1) },
        spec: { ...lease.spec, holderIdentity: 'manual-run_2222' },
      }),
    );
    assert.deepEqual(await kubectl('replace', '-f', stale), {
      code: 1,
      stdout: '',
      stderr: `Error from server (Conflict): error when replacing "${stale}": Operation cannot be fulfilled on leases.coordination.k8s.io "ephor-scanner": ${OPTIMISTIC_LOCK}\n`,
    });

    const current = path.join(kubectl.home, 'current.json');
    await writeFile(current, JSON.stringify({ ...lease, spec: { ...lease.spec, holderIdentity: 'manual-run_2222' } }));
    assert.deepEqual(await kubectl('replace', '-f', current), {
      code: 0,
      stdout: 'lease.coordination.k8s.io/ephor-scanner replaced\n',
      stderr: '',
    });
    const replaced = server.leases.get('ephor', 'ephor-scanner');
    assert.equal(replaced?.spec.holderIdentity, 'manual-run_2222');
    assert.deepEqual(
      [replaced?.metadata.uid, replaced?.metadata.creationTimestamp],
      [lease.metadata.uid, lease.metadata.creationTimestamp],
    );
    assert.ok(Number(replaced?.metadata.resourceVersion) > Number(lease.metadata.resourceVersion));
  },
);

test(
  'kubectl and Leases: NotFound, Forbidden, a missing namespace, a bad MicroTime, unknown fields, can-i',
  TIMEOUT,
  async (t) => {
    const server = await startServer(t, { namespaces: { ephor: {} } });
    const kubectl = await kubectlFor(t, server);
    const write = async (name: string, lines: string[]) => {
      const file = path.join(kubectl.home, name);
      await writeFile(file, lines.join('\n'));
      return file;
    };
    const yaml = (overrides: { name?: string; namespace?: string; acquireTime?: string; extra?: string } = {}) => [
      'apiVersion: coordination.k8s.io/v1',
      'kind: Lease',
      'metadata:',
      `  name: ${overrides.name ?? 'ephor-scanner'}`,
      `  namespace: ${overrides.namespace ?? 'ephor'}`,
      'spec:',
      '  holderIdentity: a',
      `  acquireTime: "${overrides.acquireTime ?? '2026-12-02T14:39:06.123456Z'}"`,
      ...(overrides.extra ? [`  ${overrides.extra}`] : []),
      '',
    ];

    assert.deepEqual(await kubectl('get', 'lease', 'ephor-scanner', '-n', 'ephor', '-o', 'json'), {
      code: 1,
      stdout: '',
      stderr: 'Error from server (NotFound): leases.coordination.k8s.io "ephor-scanner" not found\n',
    });
    const threeDigits = await write('ms.yaml', yaml({ acquireTime: '2026-12-02T14:39:06.123Z' }));
    assert.deepEqual(await kubectl('create', '-f', threeDigits), {
      code: 1,
      stdout: '',
      stderr: `Error from server (BadRequest): error when creating "${threeDigits}": Lease in version "v1" cannot be handled as a Lease: parsing time "2026-12-02T14:39:06.123Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse ".123Z" as ".000000"\n`,
    });
    const unknown = await write('unknown.yaml', yaml({ extra: 'bogus: 1' }));
    assert.deepEqual(await kubectl('create', '-f', unknown), {
      code: 1,
      stdout: '',
      stderr: `Error from server (BadRequest): error when creating "${unknown}": Lease in version "v1" cannot be handled as a Lease: strict decoding error: unknown field "spec.bogus"\n`,
    });
    assert.deepEqual(await kubectl('create', '-f', unknown, '--validate=warn'), {
      code: 0,
      stdout: 'lease.coordination.k8s.io/ephor-scanner created\n',
      stderr: 'Warning: unknown field "spec.bogus"\n',
    });
    const elsewhere = await write('elsewhere.yaml', yaml({ namespace: 'nope' }));
    assert.deepEqual(await kubectl('create', '-f', elsewhere), {
      code: 1,
      stdout: '',
      stderr: `Error from server (NotFound): error when creating "${elsewhere}": namespaces "nope" not found\n`,
    });

    assert.deepEqual(await kubectl('auth', 'can-i', 'update', 'leases', '-n', 'ephor'), {
      code: 0,
      stdout: 'yes\n',
      stderr: '',
    });
    server.leases.setFaults([{ status: 403, verbs: ['get', 'update'] }]);
    assert.deepEqual(await kubectl('get', 'lease', 'ephor-scanner', '-n', 'ephor', '-o', 'json'), {
      code: 1,
      stdout: '',
      stderr: `Error from server (Forbidden): leases.coordination.k8s.io "ephor-scanner" is forbidden: User "${SCANNER_USER}" cannot get resource "leases" in API group "coordination.k8s.io" in the namespace "ephor"\n`,
    });
    assert.deepEqual(await kubectl('auth', 'can-i', 'update', 'leases', '-n', 'ephor'), {
      code: 1,
      stdout: 'no\n',
      stderr: '',
    });
    assert.equal((await kubectl('auth', 'can-i', 'create', 'leases', '-n', 'ephor')).stdout, 'yes\n');
  },
);

test(
  'Lease Status bodies: Conflict, AlreadyExists, NotFound, Forbidden, Invalid and the missing API, as apimachinery words them',
  TIMEOUT,
  async (t) => {
    const server = await startServer(t, { namespaces: { ephor: {} } });
    const created = await send(server, 'POST', LEASES, leaseBody());
    assert.equal(created.status, 201);
    assert.match(created.body.metadata.uid, UUID);
    assert.deepEqual(Object.keys(created.body), ['kind', 'apiVersion', 'metadata', 'spec']);
    assert.deepEqual(Object.keys(created.body.metadata), [
      'name',
      'namespace',
      'uid',
      'resourceVersion',
      'creationTimestamp',
    ]);

    const exists = await send(server, 'POST', LEASES, leaseBody());
    assert.equal(exists.status, 409);
    assert.equal(
      JSON.stringify(exists.body),
      JSON.stringify({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'leases.coordination.k8s.io "ephor-scanner" already exists',
        reason: 'AlreadyExists',
        details: { name: 'ephor-scanner', group: 'coordination.k8s.io', kind: 'leases' },
        code: 409,
      }),
    );

    const stale = await send(server, 'PUT', LEASE, {
      ...created.body,
      metadata: { ...created.body.metadata, resourceVersion: '1' },
    });
    assert.equal(stale.status, 409);
    assert.equal(
      JSON.stringify(stale.body),
      JSON.stringify({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `Operation cannot be fulfilled on leases.coordination.k8s.io "ephor-scanner": ${OPTIMISTIC_LOCK}`,
        reason: 'Conflict',
        details: { name: 'ephor-scanner', group: 'coordination.k8s.io', kind: 'leases' },
        code: 409,
      }),
    );

    const missing = await get(server, `${LEASES}/other`);
    assert.deepEqual(missing.body, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'leases.coordination.k8s.io "other" not found',
      reason: 'NotFound',
      details: { name: 'other', group: 'coordination.k8s.io', kind: 'leases' },
      code: 404,
    });

    const { resourceVersion: _rv, ...withoutVersion } = created.body.metadata;
    const noVersion = await send(server, 'PUT', LEASE, { ...created.body, metadata: withoutVersion });
    assert.equal(noVersion.status, 422);
    assert.deepEqual(noVersion.body, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message:
        'leases.coordination.k8s.io "ephor-scanner" is invalid: metadata.resourceVersion: Invalid value: 0: must be specified for an update',
      reason: 'Invalid',
      details: {
        name: 'ephor-scanner',
        group: 'coordination.k8s.io',
        kind: 'leases',
        causes: [
          {
            reason: 'FieldValueInvalid',
            message: 'Invalid value: 0: must be specified for an update',
            field: 'metadata.resourceVersion',
          },
        ],
      },
      code: 422,
    });
    const zero = await send(server, 'PUT', LEASE, {
      ...created.body,
      spec: { ...created.body.spec, leaseDurationSeconds: 0 },
    });
    assert.equal(zero.status, 422);
    assert.equal(
      zero.body.message,
      'Lease.coordination.k8s.io "ephor-scanner" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0',
    );
    const renamed = await send(server, 'PUT', LEASE, {
      ...created.body,
      metadata: { ...created.body.metadata, name: 'x' },
    });
    assert.deepEqual(
      [renamed.status, renamed.body.message],
      [400, 'the name of the object (x) does not match the name on the URL (ephor-scanner)'],
    );
    const withVersion = await send(server, 'POST', LEASES, leaseBody({}, { name: 'second', resourceVersion: '5' }));
    assert.deepEqual(withVersion.body, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'resourceVersion should not be set on objects to be created',
      code: 500,
    });
    const float = await send(server, 'POST', LEASES, leaseBody({ leaseDurationSeconds: 1.5 }, { name: 'third' }));
    assert.deepEqual(
      [float.status, float.body.message],
      [
        400,
        'Lease in version "v1" cannot be handled as a Lease: json: cannot unmarshal number 1.5 into Go struct field LeaseSpec.spec.leaseDurationSeconds of type int32',
      ],
    );

    server.leases.setFaults([
      { status: 403, verbs: ['create'], times: 1 },
      { status: 403, verbs: ['update'], times: 1 },
      { status: 404, times: 1 },
      { status: 500, times: 1 },
      { status: 503, times: 1 },
    ]);
    const noCreate = await send(server, 'POST', LEASES, leaseBody({}, { name: 'fourth' }));
    assert.deepEqual(noCreate.body, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: `leases.coordination.k8s.io is forbidden: User "${SCANNER_USER}" cannot create resource "leases" in API group "coordination.k8s.io" in the namespace "ephor"`,
      reason: 'Forbidden',
      details: { group: 'coordination.k8s.io', kind: 'leases' },
      code: 403,
    });
    const noUpdate = await send(server, 'PUT', LEASE, created.body);
    assert.equal(
      noUpdate.body.message,
      `leases.coordination.k8s.io "ephor-scanner" is forbidden: User "${SCANNER_USER}" cannot update resource "leases" in API group "coordination.k8s.io" in the namespace "ephor"`,
    );
    assert.deepEqual(noUpdate.body.details, { name: 'ephor-scanner', group: 'coordination.k8s.io', kind: 'leases' });
    const noApi = await get(server, LEASE);
    assert.deepEqual([noApi.status, noApi.body], [404, realStatus('404_notfound_resource.json')]);
    assert.deepEqual(
      [(await get(server, LEASE)).body.reason, (await get(server, LEASE)).body.reason],
      ['InternalError', 'ServiceUnavailable'],
    );
    assert.equal((await get(server, LEASE)).status, 200, 'faults used up');
  },
);

test(
  'Lease writes: MicroTimes to UTC microseconds, PUT creates a missing Lease, the uid is a precondition, a no-op keeps its resourceVersion, generation stays',
  TIMEOUT,
  async (t) => {
    const server = await startServer(t, { namespaces: { ephor: {} } });
    const created = await send(
      server,
      'PUT',
      LEASE,
      leaseBody({ renewTime: '2026-12-02T16:39:06.000042+02:00' }, { generation: 3, resourceVersion: '12345' }),
    );
    assert.equal(created.status, 201, 'AllowCreateOnUpdate: a PUT to a missing Lease creates it');
    assert.equal(created.body.spec.renewTime, '2026-12-02T14:39:06.000042Z');
    assert.equal(created.body.metadata.generation, 3, 'kept as sent: the Lease strategy sets none');

    const same = await send(server, 'PUT', LEASE, created.body);
    assert.equal(same.status, 200);
    assert.equal(
      same.body.metadata.resourceVersion,
      created.body.metadata.resourceVersion,
      'nothing changed: not written',
    );

    const renewed = await send(server, 'PUT', LEASE, {
      ...created.body,
      metadata: { ...created.body.metadata, generation: 9, uid: undefined, creationTimestamp: '2000-01-01T00:00:00Z' },
      spec: { ...created.body.spec, renewTime: '2026-12-02T14:40:00.000000Z' },
    });
    assert.equal(renewed.status, 200);
    assert.deepEqual(
      [renewed.body.metadata.generation, renewed.body.metadata.uid, renewed.body.metadata.creationTimestamp],
      [3, created.body.metadata.uid, created.body.metadata.creationTimestamp],
      'generation, uid and creationTimestamp cannot be changed by an update',
    );
    assert.ok(Number(renewed.body.metadata.resourceVersion) > Number(created.body.metadata.resourceVersion));

    // deleted and created again by someone else: a write carrying the old uid is refused, whatever its resourceVersion
    server.leases.delete('ephor', 'ephor-scanner');
    const recreated = server.leases.put(leaseBody({ holderIdentity: 'other_2' }));
    const oldUid = await send(server, 'PUT', LEASE, {
      ...renewed.body,
      metadata: { ...renewed.body.metadata, resourceVersion: recreated.metadata.resourceVersion },
    });
    assert.equal(oldUid.status, 409);
    assert.equal(
      oldUid.body.message,
      `Operation cannot be fulfilled on leases.coordination.k8s.io "ephor-scanner": StorageError: invalid object, Code: 4, Key: /registry/leases/ephor/ephor-scanner, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: ${created.body.metadata.uid}, UID in object meta: ${recreated.metadata.uid}`,
    );
    assert.equal(server.leases.get('ephor', 'ephor-scanner')?.spec.holderIdentity, 'other_2');

    assert.deepEqual(
      server.leases.requests.map((r) => [r.verb, r.status, r.body?.spec?.renewTime]),
      [
        ['update', 201, '2026-12-02T16:39:06.000042+02:00'],
        ['update', 200, '2026-12-02T14:39:06.000042Z'],
        ['update', 200, '2026-12-02T14:40:00.000000Z'],
        ['update', 409, '2026-12-02T14:40:00.000000Z'],
      ],
      'every Lease request is recorded with the body as sent',
    );
  },
);

test(
  'Lease faults: a hang until close, a finite stall, limited by verb, name and times; control reads and overwrites directly',
  TIMEOUT,
  async (t) => {
    const server = await startServer(t, { namespaces: { ephor: {} } });
    const seeded = server.leases.put(leaseBody({ holderIdentity: 'other_2' }));
    assert.match(seeded.metadata.uid, UUID);
    const overwritten = server.leases.put(leaseBody({ holderIdentity: 'other_3' }));
    assert.equal(overwritten.metadata.uid, seeded.metadata.uid, 'an overwrite keeps the uid');
    assert.ok(Number(overwritten.metadata.resourceVersion) > Number(seeded.metadata.resourceVersion));
    assert.equal((await get(server, LEASE)).body.spec.holderIdentity, 'other_3');

    server.leases.setFaults([
      { stallMs: 200, verbs: ['get'], times: 1 },
      { stallMs: Number.POSITIVE_INFINITY, verbs: ['update'], name: 'ephor-scanner' },
    ]);
    const started = Date.now();
    assert.equal((await get(server, LEASE)).status, 200);
    assert.ok(Date.now() - started >= 190);
    const hung = send(server, 'PUT', LEASE, overwritten).then(
      () => 'answered',
      () => 'connection closed',
    );
    await waitFor(() => server.leases.requests.some((r) => r.verb === 'update'));
    assert.equal(await Promise.race([hung, delay(300, 'still waiting')]), 'still waiting');
    assert.equal(server.leases.requests.at(-1)?.status, 0);
    await server.close();
    assert.equal(await hung, 'connection closed');
  },
);

test(
  'discovery serves coordination.k8s.io/v1 (the real APIResourceList) and /openapi/v3 for kubectl',
  TIMEOUT,
  async (t) => {
    const server = await startServer(t, {});
    const groups = (await get(server, '/apis')).body.groups.map((g: KubeObject) => g.name);
    assert.deepEqual(groups, ['apps', 'batch', 'coordination.k8s.io']);
    const resources = (await get(server, '/apis/coordination.k8s.io/v1')).body;
    assert.deepEqual(resources.resources[0], {
      kind: 'Lease',
      name: 'leases',
      namespaced: true,
      singularName: 'lease',
      storageVersionHash: 'gqkMMb/YqFM=',
      verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
    });
    assert.equal(
      (await get(server, '/apis/coordination.k8s.io')).body.preferredVersion.groupVersion,
      'coordination.k8s.io/v1',
    );
    assert.equal((await get(server, '/openapi/v3')).status, 200);
  },
);
