// The shard tokens are generated once and kept: against a live cluster (the Kubernetes stand-in, reached by the real
// Helm through `helm template --dry-run=server`, the render `helm install` and `helm upgrade` do, lookups included)
// the chart reuses the Secret's values; only where the Secret does not exist yet does it generate new ones.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { startKubeServer } from '../support/k8s-server.js';
import { secret } from '../support/k8s-objects.js';
import { CHART, HELM, helmWorkspace, requireHelm } from '../support/helm.js';

type Obj = Record<string, any>;

const TIMEOUT = { timeout: 120_000 };
const SHARDED = [
  '--set',
  'ephor.apiUrl=http://ephor-api:8080',
  '--set',
  'scan.namespaces={default,production}',
  '--set',
  'scan.shards=4',
];
const SECRET_PATH = '/api/v1/namespaces/ephor/secrets/ephor-scanner-shards';

/** Renders against a stand-in cluster holding `objects`; returns the shard Secret's tokens and the paths Helm read. */
async function renderOnline(
  t: TestContext,
  objects: Obj[],
): Promise<{ tokens: Record<string, string>; paths: string[] }> {
  requireHelm();
  const server = await startKubeServer({ namespaces: { ephor: {}, default: {}, production: {} }, objects });
  t.after(() => server.close());
  const { work, env } = helmWorkspace('ephor-chart-shard-lookup-');
  const kubeconfig = await server.writeKubeconfig(work);
  const { stdout } = await promisify(execFile)(
    HELM,
    ['template', 'ephor-scanner', CHART, '--namespace', 'ephor', '--skip-tests', '--dry-run=server', ...SHARDED],
    { env: { ...env, KUBECONFIG: kubeconfig }, timeout: 60_000 },
  );
  const docs = parseAllDocuments(stdout).map((d) => d.toJS() as Obj | null);
  const shardSecret = docs.find((d) => d?.kind === 'Secret' && d.metadata.name === 'ephor-scanner-shards');
  assert.ok(shardSecret, 'the shard Secret is rendered');
  const tokens = Object.fromEntries(
    Object.entries(shardSecret.data as Record<string, string>).map(([k, v]) => [
      k,
      Buffer.from(v, 'base64').toString(),
    ]),
  );
  return { tokens, paths: server.requests.map((r) => r.path) };
}

describe('scan.shards: the tokens survive upgrades', () => {
  test('an existing Secret: its tokens are rendered again, unchanged', TIMEOUT, async (t) => {
    const existing = { 'shard-token': 'kept-shard-token-0123456789', 'trivy-server-token': 'kept-server-token-0123' };
    const { tokens, paths } = await renderOnline(t, [
      secret({ namespace: 'ephor', name: 'ephor-scanner-shards', data: existing }),
    ]);
    assert.ok(paths.includes(SECRET_PATH), 'Helm looked the Secret up');
    assert.deepEqual(tokens, existing);
  });

  test('a first install: new tokens, generated because the lookup found nothing', TIMEOUT, async (t) => {
    const { tokens, paths } = await renderOnline(t, [
      secret({ namespace: 'other', name: 'ephor-scanner-shards', data: { 'shard-token': 'elsewhere' } }),
    ]);
    assert.ok(paths.includes(SECRET_PATH));
    assert.match(tokens['shard-token']!, /^[A-Za-z0-9]{48}$/);
    assert.match(tokens['trivy-server-token']!, /^[A-Za-z0-9]{48}$/);
  });

  test('a Secret missing one key (made by hand): the key it has is kept, the other generated', TIMEOUT, async (t) => {
    const { tokens } = await renderOnline(t, [
      secret({ namespace: 'ephor', name: 'ephor-scanner-shards', data: { 'shard-token': 'hand-made-token' } }),
    ]);
    assert.equal(tokens['shard-token'], 'hand-made-token');
    assert.match(tokens['trivy-server-token']!, /^[A-Za-z0-9]{48}$/);
  });
});
