// The metrics stage's pure parts: the settings' parsers, the grouping path, the summary adapter and the exposition.
// What the real Pushgateway and promtool make of it is in test/metrics/.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { register as globalRegistry } from 'prom-client';
import { ValueError } from '../../src/config/parse.js';
import {
  FAILURE_REASONS,
  METRICS,
  buildExposition,
  groupUrl,
  metricsInputFromSummary,
  parseGroupingLabels,
  parseJobName,
  parsePushgatewayUrl,
  type RunMetricsInput,
} from '../../src/metrics/index.js';
import type { NamespaceOutcome, RunSummary } from '../../src/run/summary.js';
import { REPO_ROOT } from '../support/paths.js';

function rejects(parse: () => unknown, message: RegExp): void {
  assert.throws(parse, (error: unknown) => error instanceof ValueError && message.test(error.message));
}

describe('METRICS_PUSHGATEWAY_URL', () => {
  test('an http(s) base URL, without a trailing slash, a path prefix kept', () => {
    assert.equal(parsePushgatewayUrl('http://pushgateway.monitoring:9091/'), 'http://pushgateway.monitoring:9091');
    assert.equal(parsePushgatewayUrl(' https://gw.example/prefix/ '), 'https://gw.example/prefix');
  });
  test('anything else is refused, saying what is allowed', () => {
    rejects(() => parsePushgatewayUrl('pushgateway:9091'), /must use http:\/\/ or https:\/\//);
    rejects(() => parsePushgatewayUrl('not a url'), /absolute http:\/\/ or https:\/\/ URL, e\.g\./);
    rejects(() => parsePushgatewayUrl('ftp://gw'), /must use http:\/\/ or https:\/\//);
    rejects(() => parsePushgatewayUrl('http://user:pw@gw:9091'), /must not contain credentials/);
    rejects(() => parsePushgatewayUrl('http://gw:9091/?x=1'), /query string or fragment/);
  });
});

describe('METRICS_PUSHGATEWAY_JOB', () => {
  test('any non-empty text', () => {
    assert.equal(parseJobName(' ephor-scanner '), 'ephor-scanner');
    assert.equal(parseJobName('scanners/prod'), 'scanners/prod');
    rejects(() => parseJobName('  '), /must not be empty/);
    rejects(() => parseJobName('a\nb'), /control characters/);
  });
});

describe('METRICS_PUSHGATEWAY_GROUPING', () => {
  test('k=v,k=v in order; empty means none', () => {
    assert.deepEqual(Object.entries(parseGroupingLabels('cluster=prod-eu, region = eu-west-1,path=a=b')), [
      ['cluster', 'prod-eu'],
      ['region', 'eu-west-1'],
      ['path', 'a=b'],
    ]);
    assert.deepEqual(parseGroupingLabels(''), {});
  });
  test('each mistake named', () => {
    rejects(() => parseGroupingLabels('cluster'), /item 1 \("cluster"\) is not name=value; write k=v,k=v/);
    rejects(() => parseGroupingLabels('cluster=a,'), /empty item at position 2/);
    rejects(() => parseGroupingLabels('1cluster=a'), /label name "1cluster": a label name is letters, digits and _/);
    rejects(() => parseGroupingLabels('__name__=a'), /label name "__name__"/);
    rejects(() => parseGroupingLabels('my-label=a'), /label name "my-label"/);
    rejects(() => parseGroupingLabels('cluster=a,cluster=b'), /names the label "cluster" twice/);
    rejects(() => parseGroupingLabels('cluster='), /gives the label "cluster" an empty value/);
    rejects(() => parseGroupingLabels('job=x'), /must not set "job": the job name has its own setting/);
    for (const name of ['namespace', 'severity', 'result', 'reason', 'version', 'trivy_version']) {
      rejects(() => parseGroupingLabels(`${name}=x`), new RegExp(`must not use "${name}": the scanner's metrics use`));
    }
  });
});

describe('groupUrl', () => {
  test('<url>/metrics/job/<job>/<name>/<value>..., URI-encoded', () => {
    assert.equal(
      groupUrl('http://gw:9091/', 'ephor-scanner', { cluster: 'prod eu', team: 'a&b' }),
      'http://gw:9091/metrics/job/ephor-scanner/cluster/prod%20eu/team/a%26b',
    );
    assert.equal(groupUrl('http://gw/prefix', 'j', {}), 'http://gw/prefix/metrics/job/j');
  });
  test('a "/" in the job or a value, or an empty value, goes base64url-encoded with @base64', () => {
    assert.equal(
      groupUrl('http://gw', 'a/b', { path: '/var/tmp', empty: '' }),
      'http://gw/metrics/job@base64/YS9i/path@base64/L3Zhci90bXA/empty@base64/=',
    );
  });
});

function namespace(name: string, delivered: boolean, findings: number, bytes: number): NamespaceOutcome {
  return {
    namespace: name,
    delivered,
    bytes,
    stats: {
      workloads: 2,
      containersDelivered: 3,
      containersNotDelivered: 1,
      findings: { CRITICAL: findings, HIGH: 2 * findings, MEDIUM: 0, LOW: 0, UNKNOWN: 1 },
    },
  };
}

describe('metricsInputFromSummary', () => {
  const summary: RunSummary = {
    exitCode: 1,
    durationMs: 83_500,
    interrupted: false,
    discoveryErrors: 0,
    namespaces: [namespace('shop', true, 5, 1000), namespace('payments', false, 7, 500)],
    images: { total: 5, scanned: 3, failed: 2, failedByReason: { not_found: 1, invalid_reference: 1 } },
    trivy: { version: '0.69.3', dbUpdatedAt: '2026-11-27T00:12:34.123456789Z' },
    layerCache: { bytesBefore: 1024, bytesAfter: 4096 },
  };
  const startedAt = new Date('2026-11-27T06:00:00.000Z');

  test('maps the summary: containers, findings and bytes of delivered namespaces (the TOTAL row), images not scanned of all, Trivy from the summary, end = start + duration', () => {
    const input = metricsInputFromSummary(summary, { startedAt, scannerVersion: '0.1.0' });
    assert.deepEqual(input, {
      exitCode: 1,
      startedAt,
      finishedAt: new Date('2026-11-27T06:01:23.500Z'),
      images: { scanned: 3, failedByReason: { not_found: 1, invalid_reference: 1 } },
      containers: { delivered: 3, notDelivered: 2 },
      namespaces: { delivered: 1, failed: 1 },
      findings: [{ namespace: 'shop', bySeverity: { CRITICAL: 5, HIGH: 10, MEDIUM: 0, LOW: 0, UNKNOWN: 1 } }],
      postedBytes: 1000,
      vulnerabilityDbUpdatedAt: new Date('2026-11-27T00:12:34.123Z'),
      incrementalCache: { bytes: 4096 },
      scannerVersion: '0.1.0',
      trivyVersion: '0.69.3',
    });
  });

  test('a DB time that is missing or not a time is left out, not made up', () => {
    for (const value of [undefined, '', 'yesterday']) {
      const input = metricsInputFromSummary(
        { ...summary, trivy: { version: '0.69.3', dbUpdatedAt: value } },
        { startedAt, scannerVersion: '0.1.0' },
      );
      assert.equal(input.vulnerabilityDbUpdatedAt, undefined, String(value));
    }
    const noTrivy = metricsInputFromSummary({ ...summary, trivy: undefined }, { startedAt, scannerVersion: '0.1.0' });
    assert.equal(noTrivy.trivyVersion, undefined);
    assert.equal(noTrivy.vulnerabilityDbUpdatedAt, undefined);
    const noCache = metricsInputFromSummary(
      { ...summary, layerCache: undefined },
      { startedAt, scannerVersion: '0.1.0' },
    );
    assert.equal(noCache.incrementalCache, undefined, 'a run without a layer cache has no cache metric');
  });
});

function input(overrides: Partial<RunMetricsInput> = {}): RunMetricsInput {
  return {
    exitCode: 0,
    startedAt: new Date(1_000_000),
    finishedAt: new Date(1_090_000),
    images: { scanned: 1, failedByReason: {} },
    containers: { delivered: 1, notDelivered: 0 },
    namespaces: { delivered: 1, failed: 0 },
    findings: [{ namespace: 'shop', bySeverity: { CRITICAL: 1, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 } }],
    postedBytes: 10,
    scannerVersion: '0.1.0',
    ...overrides,
  };
}

/** Metric names with at least one sample in an exposition. */
function sampled(text: string): Set<string> {
  return new Set(
    text
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((line) => /^[a-z_]+/.exec(line)![0]),
  );
}

describe('buildExposition', () => {
  test('a successful run names every metric it has a value for, each a gauge with its help', async () => {
    const { text, contentType } = await buildExposition(
      input({ incrementalCache: { bytes: 2 }, vulnerabilityDbUpdatedAt: new Date(0) }),
    );
    assert.equal(contentType, 'text/plain; version=0.0.4; charset=utf-8');
    const names = Object.values(METRICS).map((m) => m.name);
    assert.deepEqual([...sampled(text)].sort(), [...names].sort());
    for (const spec of Object.values(METRICS)) {
      assert.ok(text.includes(`# TYPE ${spec.name} gauge\n`), spec.name);
      assert.ok(text.includes(`# HELP ${spec.name} ${spec.help}\n`), spec.name);
    }
    assert.ok(text.includes('ephor_scanner_last_success_timestamp_seconds 1090\n'));
    assert.ok(text.includes('ephor_scanner_run_duration_seconds 90\n'));
    assert.ok(text.includes('ephor_scanner_info{version="0.1.0",trivy_version="unknown"} 1\n'));
  });

  test('a failed run leaves out the last success; nothing delivered leaves out findings; no empty family', async () => {
    const { text } = await buildExposition(
      input({ exitCode: 1, findings: [], namespaces: { delivered: 0, failed: 1 } }),
    );
    assert.ok(text.includes('ephor_scanner_last_run_exit_code 1\n'));
    assert.ok(!text.includes('ephor_scanner_last_success_timestamp_seconds'));
    assert.ok(!text.includes('ephor_scanner_findings'));
    assert.ok(!text.includes('ephor_scanner_vulnerability_db_updated_timestamp_seconds'));
    assert.ok(!text.includes('ephor_scanner_incremental_cache'));
    const typed = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]);
    assert.deepEqual(typed.sort(), [...sampled(text)].sort(), 'every family has samples');
  });

  test('every failure reason is pushed, 0 included; images failed is their sum', async () => {
    const { text } = await buildExposition(
      input({ images: { scanned: 4, failedByReason: { timeout: 2, cancelled: 1 } } }),
    );
    for (const reason of FAILURE_REASONS) {
      const count = reason === 'timeout' ? 2 : reason === 'cancelled' ? 1 : 0;
      assert.ok(text.includes(`ephor_scanner_images_failed{reason="${reason}"} ${count}\n`), reason);
    }
    assert.equal(FAILURE_REASONS.length, 14);
    assert.ok(text.includes('ephor_scanner_images{result="scanned"} 4\n'));
    assert.ok(text.includes('ephor_scanner_images{result="failed"} 3\n'));
  });

  test('label values are escaped; nothing is left in a global registry between calls', async () => {
    const first = await buildExposition(
      input({
        findings: [{ namespace: 'a"b\\c', bySeverity: { CRITICAL: 1, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 } }],
      }),
    );
    assert.ok(first.text.includes('ephor_scanner_findings{namespace="a\\"b\\\\c",severity="CRITICAL"} 1\n'));
    const second = await buildExposition(input({ findings: [] }));
    assert.ok(!second.text.includes('a\\"b'));
    assert.equal((await globalRegistry.metrics()).trim(), '', "prom-client's global registry stays empty");
  });
});

describe('README Metrics section', () => {
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Metrics\n');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));

  test('its table lists every metric, as a gauge with its labels, and nothing else', () => {
    assert.ok(start >= 0, 'README.md has a "## Metrics" section');
    const rows = [...section.matchAll(/^\| `(ephor_scanner_[a-z_]+)` \| (\w+) \|([^|]*)\|/gm)].map((m) => ({
      name: m[1],
      type: m[2],
      labels: [...(m[3] ?? '').matchAll(/`([a-z_]+)`/g)].map((l) => l[1]),
    }));
    const expected = Object.values(METRICS).map((m) => ({ name: m.name, type: 'gauge', labels: [...m.labelNames] }));
    assert.deepEqual(rows, expected);
  });
});

test('.ci/run installs the Pushgateway and promtool (Debian packages) before npm test, once', () => {
  const ci = readFileSync(path.join(REPO_ROOT, '.ci', 'run'), 'utf8');
  const install = ci.indexOf('apt-get install -y -qq --no-install-recommends prometheus-pushgateway prometheus');
  assert.ok(install > 0);
  assert.ok(install < ci.indexOf('\nnpm test'));
  assert.match(ci, /if ! command -v prometheus-pushgateway >\/dev\/null \|\| ! command -v promtool >\/dev\/null; then/);
});
