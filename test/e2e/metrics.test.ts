// The metrics push of the built CLI against the real Prometheus Pushgateway (Debian's prometheus-pushgateway):
// a delivered run's metrics read back and matched with its summary line, a failed run keeping the last success,
// a Pushgateway that is down (one warning, exit code unchanged), and a dry run that pushes nothing.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SEVERITIES } from '../../src/types.js';
import { deployment } from '../support/k8s-objects.js';
import {
  logsWith,
  runScanner,
  startStandIns,
  type LogLine,
  type ScannerRun,
  type StandIns,
} from '../support/harness.js';
import {
  freePort,
  readGroup,
  requirePrometheusTools,
  sampleValue,
  startPushgateway,
  type RunningPushgateway,
} from '../metrics/prometheus-tools.js';

const tools = requirePrometheusTools();
const JOB = 'ephor-scanner-e2e';
const GROUP = { job: JOB, cluster: 'e2e' };
const NOT_PUSHED = "metrics not pushed to the Pushgateway (the run's result and exit code are unaffected)";

const objects = [
  deployment({
    namespace: 'shop',
    name: 'web',
    containers: [
      { name: 'app', image: 'alpine:3.10' },
      { name: 'broken', image: 'registry.local:5000/acme/missing:1.0' },
    ],
  }),
  deployment({ namespace: 'blog', name: 'web', containers: [{ name: 'app', image: 'debian:buster' }] }),
];
const images = {
  'docker.io/library/alpine:3.10': { report: 'trivy-v0.69.3_alpine-3.10_os-pkgs.json' },
  'docker.io/library/debian:buster': { report: 'trivy-v0.69.3_debian-buster_os-pkgs.json' },
};

interface Summary extends LogLine {
  exit_code: number;
  duration_s: number;
  namespaces: { total: number; delivered: number; failed: number };
  images: { scanned: number; failed: number; failed_by_reason: Record<string, number> };
  containers: { delivered: number; not_delivered: number };
  findings: Record<string, number>;
  trivy?: { version?: string; db_updated_at?: string };
  per_namespace: Array<{ namespace: string; delivered: boolean; bytes?: number; findings: Record<string, number> }>;
}

function summaryOf(run: ScannerRun): Summary {
  const [line] = logsWith(run, 'ephor-scanner completed');
  assert.ok(line, `no summary line:\n${run.stdout}\n${run.stderr}`);
  return line as Summary;
}

async function group(gateway: RunningPushgateway) {
  const found = await readGroup(gateway.url, GROUP);
  assert.ok(found, `no group ${JSON.stringify(GROUP)} on the Pushgateway`);
  return found;
}

describe('metrics pushed by the CLI to the real Pushgateway', { timeout: 240_000 }, () => {
  let gateway: RunningPushgateway;
  let standIns: StandIns;
  let env: Record<string, string>;
  let firstSuccess: number;

  before(async () => {
    gateway = await startPushgateway(tools.pushgateway);
    standIns = await startStandIns({ cluster: { objects }, trivy: { images } });
    env = {
      ...standIns.env,
      SCAN_NAMESPACES: 'shop,blog',
      METRICS_PUSHGATEWAY_URL: gateway.url,
      METRICS_PUSHGATEWAY_JOB: JOB,
      METRICS_PUSHGATEWAY_GROUPING: 'cluster=e2e',
    };
  });
  after(async () => {
    await standIns.close();
    await gateway.stop();
  });

  test("a delivered run's metrics are served as its summary line says", async () => {
    const before = Date.now() / 1000;
    const run = await runScanner(env);
    const after = Date.now() / 1000;
    assert.equal(run.exitCode, 0, run.stdout);
    const summary = summaryOf(run);
    assert.equal(logsWith(run, 'metrics pushed to the Pushgateway').length, 1);
    const g = await group(gateway);

    const lastRun = sampleValue(g, 'ephor_scanner_last_run_timestamp_seconds');
    assert.ok(lastRun >= before && lastRun <= after, `${lastRun} within the run`);
    assert.equal(sampleValue(g, 'ephor_scanner_last_success_timestamp_seconds'), lastRun);
    firstSuccess = lastRun;
    assert.equal(sampleValue(g, 'ephor_scanner_last_run_exit_code'), summary.exit_code);
    assert.ok(Math.abs(sampleValue(g, 'ephor_scanner_run_duration_seconds') - summary.duration_s) <= 0.05);
    assert.equal(sampleValue(g, 'ephor_scanner_namespaces', { result: 'delivered' }), summary.namespaces.delivered);
    assert.equal(sampleValue(g, 'ephor_scanner_namespaces', { result: 'failed' }), summary.namespaces.failed);
    assert.equal(sampleValue(g, 'ephor_scanner_images', { result: 'scanned' }), summary.images.scanned);
    assert.equal(sampleValue(g, 'ephor_scanner_images', { result: 'failed' }), summary.images.failed);
    assert.deepEqual(summary.images.failed_by_reason, { not_found: 1 });
    assert.equal(sampleValue(g, 'ephor_scanner_images_failed', { reason: 'not_found' }), 1);
    assert.equal(sampleValue(g, 'ephor_scanner_containers', { result: 'delivered' }), summary.containers.delivered);
    assert.equal(
      sampleValue(g, 'ephor_scanner_containers', { result: 'not_delivered' }),
      summary.containers.not_delivered,
    );
    for (const ns of summary.per_namespace) {
      for (const severity of SEVERITIES) {
        const served = sampleValue(g, 'ephor_scanner_findings', { namespace: ns.namespace, severity });
        assert.equal(served, ns.findings[severity], `${ns.namespace} ${severity}`);
      }
    }
    for (const severity of SEVERITIES) {
      const servedTotal = g
        .ephor_scanner_findings!.metrics.filter((m) => m.labels.severity === severity)
        .reduce((total, m) => total + Number(m.value), 0);
      assert.equal(servedTotal, summary.findings[severity], `the TOTAL of ${severity}`);
    }
    const bytes = summary.per_namespace.reduce((total, ns) => total + (ns.bytes ?? 0), 0);
    assert.ok(bytes > 0);
    assert.equal(sampleValue(g, 'ephor_scanner_posted_bytes'), bytes);
    assert.ok(summary.trivy?.version && summary.trivy.db_updated_at, JSON.stringify(summary.trivy));
    assert.equal(
      sampleValue(g, 'ephor_scanner_vulnerability_db_updated_timestamp_seconds'),
      Date.parse(summary.trivy.db_updated_at) / 1000,
    );
    const [starting] = logsWith(run, 'ephor-scanner starting');
    assert.equal(
      sampleValue(g, 'ephor_scanner_info', {
        version: starting!.version as string,
        trivy_version: summary.trivy.version,
      }),
      1,
    );
  });

  test('a failed run (exit 1) keeps the last success of the earlier run', async () => {
    assert.ok(firstSuccess, 'the delivered run came first');
    standIns.ephor.pushScript({ status: 500 }); // the first namespace's POST fails (never retried)
    const run = await runScanner(env);
    assert.equal(run.exitCode, 1, run.stdout);
    const summary = summaryOf(run);
    assert.equal(summary.namespaces.failed, 1);
    const g = await group(gateway);
    assert.equal(sampleValue(g, 'ephor_scanner_last_success_timestamp_seconds'), firstSuccess);
    assert.ok(sampleValue(g, 'ephor_scanner_last_run_timestamp_seconds') > firstSuccess);
    assert.equal(sampleValue(g, 'ephor_scanner_last_run_exit_code'), 1);
    assert.equal(sampleValue(g, 'ephor_scanner_namespaces', { result: 'failed' }), 1);
    const delivered = summary.per_namespace.filter((ns) => ns.delivered).map((ns) => ns.namespace);
    assert.deepEqual(
      [...new Set(g.ephor_scanner_findings!.metrics.map((m) => m.labels.namespace))],
      delivered,
      'findings of the delivered namespace only',
    );
  });

  test('a dry run pushes nothing', async () => {
    const pushedBefore = sampleValue(await group(gateway), 'push_time_seconds');
    const run = await runScanner({
      ...env,
      EPHOR_DRY_RUN: 'true',
      EPHOR_OUTPUT_DIR: path.join(standIns.dir, 'dry-run-out'),
    });
    assert.equal(run.exitCode, 0, run.stdout);
    assert.equal(logsWith(run, 'dry run: metrics not pushed to the Pushgateway').length, 1);
    assert.equal(logsWith(run, 'metrics pushed to the Pushgateway').length, 0);
    assert.equal(sampleValue(await group(gateway), 'push_time_seconds'), pushedBefore, 'the group was not pushed to');
  });

  test('a Pushgateway that is down: one warning, the exit code unchanged', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const run = await runScanner({ ...env, METRICS_PUSHGATEWAY_URL: closed });
    assert.equal(run.exitCode, 0, run.stdout);
    assert.equal(summaryOf(run).exit_code, 0);
    const warnings = run.logs.filter((l) => l.level === 'warn');
    assert.deepEqual(
      warnings.map((l) => l.msg),
      [NOT_PUSHED],
      'one warning, and no other',
    );
    assert.equal(warnings[0]!.pushgateway, `${closed}/metrics/job/${JOB}/cluster/e2e`);
  });
});
