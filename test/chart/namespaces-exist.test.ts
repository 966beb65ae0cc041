// The chart makes Roles in the scanned namespaces and in the run lock's namespace; Helm cannot create them in a
// namespace that does not exist. Against a live cluster (here the Kubernetes stand-in, reached by the real Helm through
// `helm template --dry-run=server`, the render that `helm install` does, lookups included) the chart stops first with
// a sentence naming the namespaces and the fix. Offline renders (`helm template`, `helm lint`, Argo CD) cannot look
// anything up and render as before.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startKubeServer, type KubeServer, type KubeServerOptions } from '../support/k8s-server.js';
import { CHART, HELM, helmWorkspace, requireHelm } from '../support/helm.js';

const TIMEOUT = { timeout: 120_000 };
const INSTALL = ['--set', 'ephor.apiUrl=http://ephor-api:8080', '--set', 'scan.namespaces={default,production}'];

interface Rendered {
  status: number;
  stdout: string;
  stderr: string;
  /** The namespaces Helm looked up, in order. */
  lookups: string[];
}

/** The stand-in with these namespaces; the kubeconfig Helm uses points at it. */
async function cluster(t: TestContext, namespaces: string[], opts: KubeServerOptions = {}) {
  requireHelm();
  const server: KubeServer = await startKubeServer({
    namespaces: Object.fromEntries(namespaces.map((ns) => [ns, {}])),
    ...opts,
  });
  t.after(() => server.close());
  const { work, env } = helmWorkspace('ephor-chart-lookup-');
  const kubeconfig = await server.writeKubeconfig(work);
  /** Helm runs asynchronously: the stand-in answers from this process. */
  const helm = async (args: string[], online = true): Promise<Rendered> => {
    const before = server.requests.length;
    const mode = online ? ['--dry-run=server'] : [];
    const result = await promisify(execFile)(
      HELM,
      ['template', 'ephor-scanner', CHART, '--namespace', 'ephor', '--skip-tests', ...mode, ...args],
      { env: { ...env, KUBECONFIG: kubeconfig }, timeout: 60_000 },
    ).then(
      ({ stdout, stderr }) => ({ status: 0, stdout, stderr }),
      (error: unknown) => {
        const failed = error as { code?: number; stdout?: string; stderr?: string };
        return { status: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
      },
    );
    const lookups = server.requests
      .slice(before)
      .map((r) => /^\/api\/v1\/namespaces\/([^/]+)$/.exec(r.path)?.[1])
      .filter((ns): ns is string => ns !== undefined);
    return { ...result, lookups };
  };
  return { server, helm };
}

/** The sentence of a failed render, without Helm's "Error: execution error at (file:line:col): " prefix. */
function sentence(r: Rendered): string {
  assert.notEqual(r.status, 0, `expected the render to fail, it rendered:\n${r.stdout.slice(0, 300)}`);
  return (r.stderr.trim().split('\n')[0] ?? '').replace(/^Error: execution error at \([^)]*\): /, '');
}

function rendered(r: Rendered): void {
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /kind: CronJob/);
}

describe('every namespace that gets a Role must exist (checked against a live cluster)', () => {
  test('a scanned namespace that does not exist: one sentence, before anything is created', TIMEOUT, async (t) => {
    const { helm } = await cluster(t, ['ephor', 'default']);
    const r = await helm(INSTALL);
    assert.equal(
      sentence(r),
      'scan.namespaces: namespace production does not exist, and the chart makes a Role in each scanned namespace (to read its workloads and pull secrets there and nowhere else): create it first (kubectl create namespace production) and install again, or leave it out of scan.namespaces for now',
    );
    assert.deepEqual(r.lookups, ['default', 'production', 'ephor']);
  });

  test('several missing, without registry auth: all named at once', TIMEOUT, async (t) => {
    const { helm } = await cluster(t, ['ephor']);
    const r = await helm([
      '--set',
      'ephor.apiUrl=http://ephor-api:8080',
      '--set',
      'scan.namespaces={shop,payments,ephor}',
      '--set',
      'registryAuth.enabled=false',
    ]);
    assert.equal(
      sentence(r),
      'scan.namespaces: namespaces shop, payments do not exist, and the chart makes a Role in each scanned namespace (to read its workloads there and nowhere else): create them first (kubectl create namespace NAME, for each) and install again, or leave them out of scan.namespaces for now',
    );
  });

  test('the lock in a namespace that does not exist', TIMEOUT, async (t) => {
    const { helm } = await cluster(t, ['ephor', 'default', 'production']);
    const r = await helm([...INSTALL, '--set', 'runLock.namespace=locks']);
    assert.equal(
      sentence(r),
      'runLock.namespace: namespace "locks" does not exist, and the chart makes the run lock\'s Role there: create it first (kubectl create namespace locks), or leave runLock.namespace empty to keep the lock in the release namespace',
    );
    assert.deepEqual(r.lookups, ['default', 'production', 'locks', 'ephor']);
    rendered(await helm([...INSTALL, '--set', 'runLock.namespace=production']));
  });

  test('all there: rendered, each namespace looked up once', TIMEOUT, async (t) => {
    const { helm } = await cluster(t, ['ephor', 'default', 'production']);
    const r = await helm(INSTALL);
    rendered(r);
    assert.deepEqual(r.lookups, ['default', 'production', 'ephor']);
  });

  test(
    'the release namespace may be missing: helm install --create-namespace makes it after rendering',
    TIMEOUT,
    async (t) => {
      const { helm } = await cluster(t, ['default', 'production']);
      rendered(await helm(INSTALL));
    },
  );

  test('nothing to look up: "*", Roles only in the release namespace, rbac.create=false', TIMEOUT, async (t) => {
    const { helm } = await cluster(t, ['ephor']);
    for (const args of [
      ['--set', 'ephor.apiUrl=http://ephor-api:8080', '--set', 'scan.namespaces=*'],
      ['--set', 'ephor.apiUrl=http://ephor-api:8080', '--set', 'scan.namespaces=ephor'],
      [...INSTALL, '--set', 'rbac.create=false'],
    ]) {
      const r = await helm(args);
      rendered(r);
      assert.deepEqual(r.lookups, [], args.join(' '));
    }
  });

  test('offline renders cannot look up and render as before', TIMEOUT, async (t) => {
    const { helm } = await cluster(t, ['ephor']);
    const r = await helm(INSTALL, false);
    rendered(r);
    assert.deepEqual(r.lookups, []);
  });

  test('when no looked-up namespace exists, nothing proves a cluster answered: left to Helm', TIMEOUT, async (t) => {
    // Lookups return the same empty answer offline and for a missing namespace; with the release namespace and every
    // scanned one missing the chart cannot tell the two apart, and Helm reports the missing namespace itself.
    const { helm } = await cluster(t, []);
    const r = await helm(INSTALL);
    rendered(r);
    assert.deepEqual(r.lookups, ['default', 'production', 'ephor']);
  });

  test(
    "an installing user who may not read namespaces gets Helm's own error naming the permission",
    TIMEOUT,
    async (t) => {
      const { helm } = await cluster(t, ['ephor', 'default', 'production'], {
        faults: [{ resource: 'namespaces', status: 403 }],
      });
      const r = await helm(INSTALL);
      assert.notEqual(r.status, 0);
      assert.match(
        r.stderr,
        /error calling lookup: namespaces "default" is forbidden: User ".*" cannot get resource "namespaces"/,
      );
    },
  );
});
