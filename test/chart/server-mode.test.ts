// The chart's server mode, rendered by the real Helm: the default install runs `server` mode with the layer cache
// bounded by half of cache.size (TRIVY_SCAN_CACHE_MAX_SIZE, in bytes, only where the layer cache is on the volume),
// an external server's URL goes to the ConfigMap and its token to the Secret, and a token without a URL is refused.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseAllDocuments, stringify } from 'yaml';
import { loadConfig } from '../../src/config/index.js';
import { CHART, helmWorkspace, runHelm } from '../support/helm.js';

type Obj = Record<string, any>;
const { work: WORK, env: HELM_ENV } = helmWorkspace('ephor-chart-server-');
const REQUIRED = { ephor: { apiUrl: 'http://ephor-api:8080' }, scan: { namespaces: 'default' } };

function render(values: Obj): { status: number; stderr: string; docs: Obj[] } {
  const file = path.join(WORK, `values-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, stringify({ ...REQUIRED, ...values }));
  const r = runHelm(['template', 'ephor-scanner', CHART, '-n', 'ephor', '--skip-tests', '-f', file], HELM_ENV);
  const docs =
    r.status === 0
      ? parseAllDocuments(r.stdout)
          .map((d) => d.toJS() as Obj | null)
          .filter((d): d is Obj => d !== null)
      : [];
  return { status: r.status ?? 1, stderr: r.stderr, docs };
}

const configMap = (docs: Obj[]) => docs.find((d) => d.kind === 'ConfigMap')!.data as Record<string, string>;
const secret = (docs: Obj[]) => docs.find((d) => d.kind === 'Secret')?.stringData as Record<string, string> | undefined;

describe('chart: server mode', () => {
  test('a default install: server mode, the layer cache bounded by half of the 5Gi volume; the scanner accepts it', () => {
    const { docs } = render({});
    const data = configMap(docs);
    assert.equal(data.TRIVY_CACHE_MODE, 'server');
    assert.equal(data.TRIVY_SCAN_CACHE_MAX_SIZE, String((5 * 1024 ** 3) / 2));
    assert.equal(data.TRIVY_SERVER_URL, undefined);
    const config = loadConfig(data, { resolveExecutable: (name) => name, stdoutIsTerminal: false });
    assert.equal(config.trivy.scanCacheMaxBytes, (5 * 1024 ** 3) / 2);
    assert.deepEqual(config.warnings, [], 'nothing the chart sets is unused');
  });

  test('the bound follows cache.size in any unit; a size the chart cannot read is refused at install', () => {
    const bound = (size: string) => configMap(render({ cache: { size } }).docs).TRIVY_SCAN_CACHE_MAX_SIZE;
    assert.equal(bound('10Gi'), String(5 * 1024 ** 3));
    assert.equal(bound('2048Mi'), String(1024 ** 3));
    assert.equal(bound('1Ti'), String(1024 ** 4 / 2));
    assert.equal(bound('4G'), String(2 * 1000 ** 3));
    const bad = render({ cache: { size: '5GB' } });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /cache\.size|5GB/);
  });

  test('modes that keep no layer cache on the volume get no bound (the scanner would warn that it is unused)', () => {
    for (const trivy of [
      { cacheMode: 'ephemeral' },
      { cacheMode: 'redis', cacheBackend: 'redis://redis:6379' },
      { serverUrl: 'http://trivy-server.trivy:4954' },
    ]) {
      const data = configMap(render({ trivy }).docs);
      assert.equal(data.TRIVY_SCAN_CACHE_MAX_SIZE, undefined, JSON.stringify(trivy));
      const config = loadConfig(
        { ...data, ...secret(render({ trivy }).docs) },
        { resolveExecutable: (name) => name, stdoutIsTerminal: false },
      );
      assert.deepEqual(config.warnings, [], JSON.stringify(trivy));
    }
    assert.ok(configMap(render({ trivy: { cacheMode: 'shared' } }).docs).TRIVY_SCAN_CACHE_MAX_SIZE);
  });

  test('an external server: the URL and header in the ConfigMap, the token in the Secret only', () => {
    const { docs } = render({
      trivy: { serverUrl: 'https://trivy.example:4954', serverToken: 'chart-token-1f', serverTokenHeader: 'X-Token' },
    });
    const data = configMap(docs);
    assert.equal(data.TRIVY_SERVER_URL, 'https://trivy.example:4954');
    assert.equal(data.TRIVY_SERVER_TOKEN_HEADER, 'X-Token');
    assert.ok(!JSON.stringify(data).includes('chart-token-1f'));
    assert.equal(secret(docs)?.TRIVY_SERVER_TOKEN, 'chart-token-1f');
  });

  test('a token without a server URL, or a URL with credentials, is refused at install with the value to fix', () => {
    const lonely = render({ trivy: { serverToken: 'x' } });
    assert.notEqual(lonely.status, 0);
    assert.match(lonely.stderr, /trivy\.serverToken is set but trivy\.serverUrl is empty/);
    const credentials = render({ trivy: { serverUrl: 'http://user:pw@trivy:4954' } });
    assert.notEqual(credentials.status, 0);
    assert.match(credentials.stderr, /trivy\.serverUrl/);
    assert.notEqual(render({ trivy: { cacheMode: 'operator' } }).status, 0);
  });
});
