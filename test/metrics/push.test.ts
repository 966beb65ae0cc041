// The metrics stage against the real Prometheus Pushgateway (Debian's prometheus-pushgateway 1.5): what it serves
// after a push (names, types, values, grouping labels), the last success kept through a failed run, and a gateway
// that is down, hangs or refuses the push. promtool lints the exposition itself.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { SecretRegistry, createLogger } from '../../src/log.js';
import { METRICS, buildExposition, pushRunMetrics, type RunMetricsInput } from '../../src/metrics/index.js';
import {
  freePort,
  promtool,
  requirePrometheusTools,
  startPushgateway,
  type RunningPushgateway,
} from './prometheus-tools.js';

const tools = requirePrometheusTools();
let gateway: RunningPushgateway;
before(async () => {
  gateway = await startPushgateway(tools.pushgateway);
});
after(async () => {
  await gateway.stop();
});

const T0 = Date.parse('2026-11-27T06:00:00.000Z');

function runInput(overrides: Partial<RunMetricsInput> = {}): RunMetricsInput {
  return {
    exitCode: 0,
    startedAt: new Date(T0),
    finishedAt: new Date(T0 + 83_500),
    images: { scanned: 7, failedByReason: { not_found: 2, unauthorized: 1 } },
    containers: { delivered: 11, notDelivered: 3 },
    namespaces: { delivered: 2, failed: 0 },
    findings: [
      { namespace: 'shop', bySeverity: { CRITICAL: 23, HIGH: 100, MEDIUM: 68, LOW: 12, UNKNOWN: 0 } },
      { namespace: 'payments', bySeverity: { CRITICAL: 0, HIGH: 0, MEDIUM: 4, LOW: 0, UNKNOWN: 1 } },
    ],
    postedBytes: 123_456,
    vulnerabilityDbUpdatedAt: new Date('2026-11-27T00:12:34.000Z'),
    scannerVersion: '0.1.0',
    trivyVersion: '0.69.3',
    ...overrides,
  };
}

function capture() {
  const lines: string[] = [];
  const log = createLogger({
    level: 'debug',
    format: 'json',
    secrets: new SecretRegistry(),
    write: (l) => lines.push(l),
  });
  const records = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { log, records };
}

interface Family {
  type: string;
  help: string;
  metrics: Array<{ labels: Record<string, string>; value: string }>;
}

/** The group with exactly these grouping labels, as the Pushgateway's query API serves it. */
async function group(labels: Record<string, string>): Promise<Record<string, Family>> {
  const r = await fetch(`${gateway.url}/api/v1/metrics`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(r.status, 200);
  const body = (await r.json()) as { data: Array<{ labels: Record<string, string> } & Record<string, unknown>> };
  const found = body.data.find((g) => JSON.stringify(sorted(g.labels)) === JSON.stringify(sorted(labels)));
  assert.ok(found, `no group ${JSON.stringify(labels)} in ${JSON.stringify(body.data.map((g) => g.labels))}`);
  return found as unknown as Record<string, Family>;
}

function sorted(labels: Record<string, string>): Array<[string, string]> {
  return Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
}

function value(families: Record<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const family = families[name];
  assert.ok(family, `${name} is not served`);
  const sample = family.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels[k] === v));
  assert.ok(sample, `${name}${JSON.stringify(labels)} is not served`);
  return Number(sample.value);
}

async function push(input: RunMetricsInput, job: string, groupingLabels: Record<string, string> = {}) {
  const { log, records } = capture();
  const outcome = await pushRunMetrics(input, { url: gateway.url, job, groupingLabels, log });
  return { outcome, records: records() };
}

describe('pushRunMetrics against the real Pushgateway', () => {
  test('serves every metric with its type, the grouping labels and the values of the run', async () => {
    const { outcome, records } = await push(runInput(), 'values', { cluster: 'prod-eu' });
    assert.equal(outcome.pushed, true, JSON.stringify(outcome));
    assert.equal(outcome.url, `${gateway.url}/metrics/job/values/cluster/prod-eu`);
    assert.deepEqual(
      records.map((r) => [r.level, r.msg]),
      [['info', 'metrics pushed to the Pushgateway']],
    );

    const g = await group({ job: 'values', cluster: 'prod-eu' });
    for (const spec of Object.values(METRICS)) {
      if (spec.name.startsWith('ephor_scanner_incremental_cache')) continue; // not in this run
      assert.equal(g[spec.name]?.type, 'GAUGE', spec.name);
      assert.equal(g[spec.name]?.help, spec.help, spec.name);
      for (const sample of g[spec.name]?.metrics ?? []) {
        assert.equal(sample.labels.job, 'values');
        assert.equal(sample.labels.cluster, 'prod-eu');
      }
    }
    assert.equal(value(g, 'ephor_scanner_last_run_timestamp_seconds'), (T0 + 83_500) / 1000);
    assert.equal(value(g, 'ephor_scanner_last_success_timestamp_seconds'), (T0 + 83_500) / 1000);
    assert.equal(value(g, 'ephor_scanner_last_run_exit_code'), 0);
    assert.equal(value(g, 'ephor_scanner_run_duration_seconds'), 83.5);
    assert.equal(value(g, 'ephor_scanner_images', { result: 'scanned' }), 7);
    assert.equal(value(g, 'ephor_scanner_images', { result: 'failed' }), 3);
    assert.equal(value(g, 'ephor_scanner_images_failed', { reason: 'not_found' }), 2);
    assert.equal(value(g, 'ephor_scanner_images_failed', { reason: 'unauthorized' }), 1);
    assert.equal(value(g, 'ephor_scanner_images_failed', { reason: 'deadline' }), 0);
    assert.equal(g.ephor_scanner_images_failed?.metrics.length, 14, 'every reason, zeros included');
    assert.equal(value(g, 'ephor_scanner_containers', { result: 'delivered' }), 11);
    assert.equal(value(g, 'ephor_scanner_containers', { result: 'not_delivered' }), 3);
    assert.equal(value(g, 'ephor_scanner_namespaces', { result: 'delivered' }), 2);
    assert.equal(value(g, 'ephor_scanner_namespaces', { result: 'failed' }), 0);
    assert.equal(value(g, 'ephor_scanner_findings', { namespace: 'shop', severity: 'CRITICAL' }), 23);
    assert.equal(value(g, 'ephor_scanner_findings', { namespace: 'shop', severity: 'HIGH' }), 100);
    assert.equal(value(g, 'ephor_scanner_findings', { namespace: 'payments', severity: 'UNKNOWN' }), 1);
    assert.equal(g.ephor_scanner_findings?.metrics.length, 10, 'two namespaces × five severities');
    assert.equal(value(g, 'ephor_scanner_posted_bytes'), 123_456);
    assert.equal(
      value(g, 'ephor_scanner_vulnerability_db_updated_timestamp_seconds'),
      Date.parse('2026-11-27T00:12:34Z') / 1000,
    );
    assert.equal(value(g, 'ephor_scanner_info', { version: '0.1.0', trivy_version: '0.69.3' }), 1);
    assert.equal(g.ephor_scanner_incremental_cache_bytes, undefined, 'no cache, no metric');
  });

  test('GET /metrics exposes the pushed series with the job and grouping labels', async () => {
    await push(runInput({ incrementalCache: { bytes: 1_048_576 } }), 'scrape', { cluster: 'c1' });
    const text = await (await fetch(`${gateway.url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    const lines = text.split('\n');
    for (const expected of [
      '# TYPE ephor_scanner_findings gauge',
      'ephor_scanner_findings{cluster="c1",instance="",job="scrape",namespace="shop",severity="CRITICAL"} 23',
      'ephor_scanner_last_run_exit_code{cluster="c1",instance="",job="scrape"} 0',
      'ephor_scanner_incremental_cache_bytes{cluster="c1",instance="",job="scrape"} 1.048576e+06',
    ]) {
      assert.ok(lines.includes(expected), `missing line: ${expected}`);
    }
  });

  test('a failed run keeps the last success, and replaces everything else', async () => {
    const success = T0 + 60_000;
    await push(runInput({ finishedAt: new Date(success) }), 'failing');
    const failedAt = T0 + 6 * 3_600_000;
    const failedRun = runInput({
      exitCode: 1,
      startedAt: new Date(failedAt - 30_000),
      finishedAt: new Date(failedAt),
      namespaces: { delivered: 1, failed: 1 },
      findings: [{ namespace: 'shop', bySeverity: { CRITICAL: 1, HIGH: 2, MEDIUM: 3, LOW: 4, UNKNOWN: 5 } }],
    });
    const { outcome } = await push(failedRun, 'failing');
    assert.equal(outcome.pushed, true);

    const g = await group({ job: 'failing' });
    assert.equal(value(g, 'ephor_scanner_last_success_timestamp_seconds'), success / 1000, 'the success survives');
    assert.equal(value(g, 'ephor_scanner_last_run_timestamp_seconds'), failedAt / 1000);
    assert.equal(value(g, 'ephor_scanner_last_run_exit_code'), 1);
    assert.equal(value(g, 'ephor_scanner_run_duration_seconds'), 30);
    assert.equal(value(g, 'ephor_scanner_namespaces', { result: 'failed' }), 1);
    assert.equal(value(g, 'ephor_scanner_findings', { namespace: 'shop', severity: 'UNKNOWN' }), 5);
    assert.deepEqual(
      g.ephor_scanner_findings?.metrics.map((m) => m.labels.namespace),
      ['shop', 'shop', 'shop', 'shop', 'shop'],
      "the namespace this run did not deliver has no findings series (not the previous run's)",
    );

    // The next successful run moves it on.
    const next = failedAt + 6 * 3_600_000;
    await push(runInput({ finishedAt: new Date(next) }), 'failing');
    assert.equal(value(await group({ job: 'failing' }), 'ephor_scanner_last_success_timestamp_seconds'), next / 1000);
  });

  test('a job name and label values with "/" or non-ASCII characters reach the Pushgateway intact', async () => {
    const labels = { cluster: 'eu/west/1', team: 'Προμηθεύς', env: 'a b&c' };
    const { outcome } = await push(runInput(), 'scanners/prod', labels);
    assert.equal(outcome.pushed, true, JSON.stringify(outcome));
    const g = await group({ job: 'scanners/prod', ...labels });
    assert.equal(value(g, 'ephor_scanner_last_run_exit_code'), 0);
  });

  test('a push the Pushgateway refuses (400): one warning with its reason, no throw', async () => {
    // The Pushgateway requires one type per metric name across all groups: an untyped metric of the same name pushed
    // first (to a fresh Pushgateway, where no gauge of that name exists yet) makes it refuse the scanner's gauge. Its
    // message names one of the two types, whichever it happens to check first.
    const fresh = await startPushgateway(tools.pushgateway);
    try {
      const conflict = await fetch(`${fresh.url}/metrics/job/someone-else`, {
        method: 'POST',
        body: 'ephor_scanner_posted_bytes 1\n',
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(conflict.status, 200);
      const { log, records } = capture();
      const outcome = await pushRunMetrics(runInput(), { url: fresh.url, job: 'refused', groupingLabels: {}, log });
      assert.equal(outcome.pushed, false);
      assert.match(
        !outcome.pushed ? outcome.error : '',
        /^HTTP 400: .*ephor_scanner_posted_bytes.* is not a (GAUGE|UNTYPED)/s,
      );
      const warnings = records();
      assert.equal(warnings.length, 1);
      assert.equal(warnings[0]?.level, 'warn');
      assert.equal(warnings[0]?.pushgateway, `${fresh.url}/metrics/job/refused`);
      assert.match(String(warnings[0]?.msg), /metrics not pushed to the Pushgateway/);
    } finally {
      await fresh.stop();
    }
  });
});

describe('pushRunMetrics when the Pushgateway is not there', () => {
  test('connection refused: resolves with one warning, never throws', async () => {
    const { log, records } = capture();
    const url = `http://127.0.0.1:${await freePort()}`;
    const outcome = await pushRunMetrics(runInput(), { url, job: 'down', groupingLabels: {}, log });
    assert.equal(outcome.pushed, false);
    assert.match(!outcome.pushed ? outcome.error : '', /ECONNREFUSED/);
    assert.deepEqual(
      records().map((r) => r.level),
      ['warn'],
    );
  });

  test('a Pushgateway that accepts the connection and never answers: given up after the timeout', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    const port = address && typeof address === 'object' ? address.port : 0;
    try {
      const { log, records } = capture();
      const outcome = await pushRunMetrics(runInput(), {
        url: `http://127.0.0.1:${port}`,
        job: 'silent',
        groupingLabels: {},
        log,
        timeoutMs: 300,
      });
      assert.equal(outcome.pushed, false);
      assert.match(!outcome.pushed ? outcome.error : '', /no answer within 0\.3 s/);
      assert.equal(records().length, 1);
      assert.equal(sockets.size, 1, 'it did connect: the timeout covers the whole exchange, not only connecting');
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  test('an aborted signal (shutdown) ends the push at once', async () => {
    const { log, records } = capture();
    const outcome = await pushRunMetrics(runInput(), {
      url: gateway.url,
      job: 'aborted',
      groupingLabels: {},
      log,
      signal: AbortSignal.abort(),
    });
    assert.equal(outcome.pushed, false);
    assert.equal(records()[0]?.level, 'warn');
  });

  test('a URL that is not one: a warning, no throw', async () => {
    const { log, records } = capture();
    const outcome = await pushRunMetrics(runInput(), { url: 'not a url', job: 'x', groupingLabels: {}, log });
    assert.deepEqual(outcome.pushed, false);
    assert.equal(records()[0]?.pushgateway, '(not a valid URL)');
  });
});

describe('the exposition', () => {
  test('passes promtool check metrics (successful and failed runs, cache included)', async () => {
    const inputs = [
      runInput({ incrementalCache: { bytes: 4096 } }),
      runInput({
        exitCode: 1,
        findings: [],
        namespaces: { delivered: 0, failed: 2 },
        vulnerabilityDbUpdatedAt: undefined,
      }),
    ];
    for (const input of inputs) {
      const { text } = await buildExposition(input);
      const r = promtool(tools.promtool, ['check', 'metrics'], { input: text });
      assert.equal(r.status, 0, `promtool check metrics:\n${r.output}\n${text}`);
      assert.equal(r.output.trim(), '', `promtool has remarks:\n${r.output}`);
    }
  });
});
