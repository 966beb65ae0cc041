// The Kubernetes client's connections: one keep-alive agent for the whole run, over plain HTTP and over TLS with the
// kubeconfig's CA, so that a discovery of hundreds of list pages does not open a TCP connection (and TLS session)
// per page; and TLS is still verified.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import YAML from 'yaml';
import { KubeApiError, createKubeClient, loadKubeConfig } from '../../src/kube/client.js';
import { deployment } from '../support/k8s-objects.js';
import { makeSelfSignedCertificate, startKubeServer, type KubeServer } from '../support/k8s-server.js';

const TIMEOUT = { timeout: 30_000 };
const CALLS = 24;

async function serverAndKubeconfig(t: TestContext, tls: boolean): Promise<{ server: KubeServer; kubeconfig: string }> {
  const server = await startKubeServer({
    tls,
    token: 'tok-abc',
    objects: [deployment({ namespace: 'team-a', name: 'web', containers: [{ name: 'app', image: 'nginx:1' }] })],
  });
  const dir = await mkdtemp(path.join(tmpdir(), 'ephor-kube-client-'));
  t.after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { server, kubeconfig: await server.writeKubeconfig(dir) };
}

for (const tls of [false, true]) {
  test(`list calls reuse their connections (keep-alive) over ${tls ? 'TLS' : 'plain HTTP'}`, TIMEOUT, async (t) => {
    const { server, kubeconfig } = await serverAndKubeconfig(t, tls);
    const client = createKubeClient(loadKubeConfig({ KUBECONFIG: kubeconfig }).kubeConfig, 5_000);

    for (let i = 0; i < CALLS / 2; i++) await client.getJson('/apis/apps/v1/namespaces/team-a/deployments');
    assert.equal(server.connections, 1, `${CALLS / 2} calls one after the other share one connection`);
    await Promise.all(
      Array.from({ length: CALLS / 2 }, () => client.getJson('/apis/apps/v1/namespaces/team-a/deployments')),
    );
    assert.ok(
      server.connections <= CALLS / 2,
      `${CALLS / 2} calls at once: at most one connection each, the idle one reused (${server.connections})`,
    );

    assert.equal(server.requests.length, CALLS);
    assert.ok(
      server.requests.every((r) => r.status === 200),
      'every call answered 200',
    );
    if (tls)
      assert.ok(
        server.requests.every((r) => r.headers.authorization === 'Bearer tok-abc'),
        'the token is sent over TLS',
      );
  });
}

test('over TLS the server certificate is still verified against the kubeconfig CA', TIMEOUT, async (t) => {
  const { server, kubeconfig } = await serverAndKubeconfig(t, true);
  // another self-signed certificate for the same address: it did not sign this server's certificate
  const other = await makeSelfSignedCertificate();
  const config = YAML.parse(await readFile(kubeconfig, 'utf8')) as {
    clusters: Array<{ cluster: Record<string, unknown> }>;
  };
  config.clusters[0]!.cluster['certificate-authority-data'] = Buffer.from(other.cert).toString('base64');
  const wrongCa = path.join(path.dirname(kubeconfig), 'wrong-ca');
  await writeFile(wrongCa, YAML.stringify(config), { mode: 0o600 });
  const client = createKubeClient(loadKubeConfig({ KUBECONFIG: wrongCa }).kubeConfig, 5_000);

  await assert.rejects(client.getJson('/api/v1/namespaces'), (error: unknown) => {
    assert.ok(error instanceof KubeApiError);
    assert.equal(error.kind, 'network');
    assert.match(error.message, /self[- ]signed certificate/i);
    return true;
  });
  assert.equal(server.requests.length, 0, 'no request got through');
});
