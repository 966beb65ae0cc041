import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { bodyText, splitBody } from '../../src/ephor/body.js';
import { MAX_LEDGER_ENTRIES, buildNamespaceBody, type NamespaceInput, type RunFacts } from '../../src/ephor/payload.js';
import { planScans } from '../../src/images/plan.js';
import { writeImageFindings } from '../../src/report/findings.js';
import { SEVERITIES, type ScanIngestRequest } from '../../src/ephor/contract.js';
import type { ScanResult, Workload } from '../../src/types.js';
import { validate } from '../support/contract.js';
import { TRIVY_REPORTS_DIR } from '../support/paths.js';

const WORK = mkdtempSync(path.join(os.tmpdir(), 'payload-test-'));
process.on('exit', () => {
  rmSync(WORK, { recursive: true, force: true });
});
const findingsOf = (name: string, as: string) =>
  writeImageFindings(path.join(TRIVY_REPORTS_DIR, name), SEVERITIES, path.join(WORK, `${as}.json`));
const juice = await findingsOf('real_juice-shop-v10.2.0_alpine_node-pkg_236-vulns.json', 'juice');
const alpine = await findingsOf('trivy-v0.69.3_alpine-3.10_os-pkgs.json', 'alpine');

const GROUP = '0b0d7c1e-8f6a-4c8e-9d3f-2a1b3c4d5e6f';
const run: RunFacts = {
  scanGroupId: GROUP,
  scanLabel: 'ephor-scanner/0.1.0',
  startedAt: '2026-11-27T06:00:00.000Z',
  trivyVersion: '0.69.3',
  scanConfig: {
    scanner: 'ephor-scanner',
    scanner_version: '0.1.0',
    trivy_version: '0.69.3',
    vulnerability_db: { updated_at: '2026-11-27T00:12:00Z', downloaded_at: '2026-11-27T05:59:00Z' },
    java_db: { ready: true, updated_at: '2026-11-26T01:05:00Z' },
    severities: SEVERITIES,
    workload_types: ['Deployment', 'StatefulSet', 'DaemonSet', 'CronJob'],
    cache_mode: 'ephemeral',
  },
};

function workload(name: string, containers: Array<[string, string]>, extra: Partial<Workload> = {}): Workload {
  return {
    namespace: 'shop',
    kind: 'Deployment',
    name,
    labels: {},
    containers: containers.map(([n, specImage]) => ({
      name: n,
      role: 'app',
      specImage,
      running: [],
      tagReason: 'no_running_pod',
    })),
    pullSecrets: { namespace: 'shop', secretNames: [], serviceAccount: 'default' },
    ...extra,
  };
}

/** The namespace body in one part, parsed back, and validated against the contract schema. */
async function build(workloads: Workload[], results: Record<string, ScanResult>, extra: Partial<NamespaceInput> = {}) {
  const plan = planScans(['shop'], workloads);
  const built = await buildNamespaceBody({
    namespace: 'shop',
    workloads,
    plan,
    resultOf: (key) => results[key],
    discoveryErrors: [],
    discoveredNothing: false,
    run,
    completedAt: '2026-11-27T06:05:00.000Z',
    unionDir: WORK,
    ...extra,
  });
  const [part, ...more] = splitBody(built.workloads, built.envelope, 1024 ** 3);
  assert.equal(more.length, 0);
  const payload = JSON.parse(await bodyText(part!)) as ScanIngestRequest;
  assert.deepEqual(validate('ingest-request', payload), [], 'the payload validates against the contract schema');
  return { ...built, payload };
}

const ok = (ref: string, image = juice): ScanResult => ({ ok: true, ref, image, durationMs: 1 });
const failed = (ref: string, reason: 'not_found' | 'timeout' = 'not_found'): ScanResult => ({
  ok: false,
  ref,
  reason,
  detail: `remote error: ${ref} MANIFEST_UNKNOWN`,
  durationMs: 1,
});

describe('namespace payload', () => {
  test('every container scanned: completed, findings per container, Go-compatible image fields', async () => {
    const { payload, stats, ledger } = await build(
      [
        workload(
          'web',
          [
            ['app', 'bkimminich/juice-shop:v10.2.0'],
            ['proxy', 'alpine:3.10'],
          ],
          { labels: { exposure: 'public' } },
        ),
      ],
      { 'docker.io/bkimminich/juice-shop:v10.2.0': ok('x'), 'docker.io/library/alpine:3.10': ok('y', alpine) },
    );
    assert.equal(payload.status, 'completed');
    assert.equal(payload.scan_group_id, GROUP);
    assert.equal(payload.scan_label, 'ephor-scanner/0.1.0');
    assert.equal(payload.trivy_version, '0.69.3');
    assert.deepEqual(ledger, []);
    const [web] = payload.workloads;
    assert.deepEqual(web!.labels, { exposure: 'public' });
    assert.deepEqual(
      web!.containers.map((c) => [c.name, c.image_name, c.image_tag, c.vulnerabilities.length]),
      [
        ['app', 'docker.io/bkimminich/juice-shop', 'v10.2.0', 197],
        ['proxy', 'docker.io/library/alpine', '3.10', 4],
      ],
    );
    assert.equal(stats.findings.CRITICAL, 22);
    assert.equal(stats.containersDelivered, 2);
  });

  test('a failed image: its container is not sent (it would auto-resolve its findings) and is in the ledger', async () => {
    const { payload, ledger, stats } = await build(
      [
        workload('web', [
          ['app', 'bkimminich/juice-shop:v10.2.0'],
          ['sidecar', 'nginx:no-such-tag'],
        ]),
        workload('worker', [['w', 'nginx:no-such-tag']]),
      ],
      {
        'docker.io/bkimminich/juice-shop:v10.2.0': ok('x'),
        'docker.io/library/nginx:no-such-tag': failed('docker.io/library/nginx:no-such-tag'),
      },
    );
    assert.equal(payload.status, 'completed');
    assert.deepEqual(
      payload.workloads.map((w) => [w.name, w.containers.map((c) => c.name)]),
      [['web', ['app']]],
      'a workload left without containers is dropped',
    );
    assert.deepEqual(
      ledger.map((e) => [e.workload, e.container, e.reason, e.image]),
      [
        ['web', 'sidecar', 'not_found', 'nginx:no-such-tag'],
        ['worker', 'w', 'not_found', 'nginx:no-such-tag'],
      ],
    );
    assert.deepEqual((payload.scan_config.not_delivered as unknown[]).length, 2);
    assert.deepEqual(payload.scan_config.coverage, {
      workloads_discovered: 2,
      workloads_delivered: 1,
      containers_discovered: 3,
      containers_delivered: 1,
      containers_not_delivered: 2,
      containers_by_running_digest: 0,
      containers_by_spec_tag: 1,
      discovery_complete: true,
    });
    assert.equal(stats.containersNotDelivered, 2);
  });

  test('nothing could be scanned: status failed (Ephor then resolves nothing), no workloads', async () => {
    const { payload } = await build([workload('web', [['app', 'nginx:no-such-tag']])], {
      'docker.io/library/nginx:no-such-tag': failed('n', 'timeout'),
    });
    assert.equal(payload.status, 'failed');
    assert.deepEqual(payload.workloads, []);
  });

  test('a namespace without workloads is still reported, as completed and empty', async () => {
    const { payload } = await build([], {});
    assert.equal(payload.status, 'completed');
    assert.deepEqual(payload.workloads, []);
  });

  test('a namespace whose every list call failed is reported as failed, with the discovery errors', async () => {
    const { payload } = await build(
      [],
      {},
      {
        discoveredNothing: true,
        discoveryErrors: [
          {
            namespace: 'shop',
            kind: 'Deployment',
            status: 403,
            reason: 'Forbidden',
            message: 'deployments.apps is forbidden',
            missingRule: 'allow verb "list" on resource "deployments"',
          },
        ],
      },
    );
    assert.equal(payload.status, 'failed');
    assert.deepEqual(payload.scan_config.discovery_errors, [
      {
        kind: 'Deployment',
        status: 403,
        reason: 'Forbidden',
        message: 'deployments.apps is forbidden',
        missing_rbac: 'allow verb "list" on resource "deployments"',
      },
    ]);
  });

  test('an invalid reference and an unscanned (cancelled) image are ledger entries', async () => {
    const { ledger } = await build(
      [
        workload('web', [
          ['a', 'Bad:Ref'],
          ['b', 'nginx:1.25'],
        ]),
      ],
      {},
    );
    assert.deepEqual(
      ledger.map((e) => [e.container, e.reason]),
      [
        ['a', 'invalid_reference'],
        ['b', 'cancelled'],
      ],
    );
  });

  test('repeated workloads and container names are sent once (a repeat would auto-resolve the first)', async () => {
    const w = workload('web', [
      ['app', 'alpine:3.10'],
      ['app', 'bkimminich/juice-shop:v10.2.0'],
    ]);
    const { payload } = await build([w, { ...w }], {
      'docker.io/library/alpine:3.10': ok('a', alpine),
      'docker.io/bkimminich/juice-shop:v10.2.0': ok('j'),
    });
    assert.equal(payload.workloads.length, 1);
    assert.deepEqual(
      payload.workloads[0]!.containers.map((c) => [c.name, c.image_name]),
      [['app', 'docker.io/library/alpine']],
    );
  });

  test('labels: keys over 100 characters are dropped and listed, values cut to 255', async () => {
    const longKey = `team.example.com/${'k'.repeat(100)}`;
    const { payload } = await build(
      [workload('web', [['app', 'alpine:3.10']], { labels: { [longKey]: 'x', tier: 'v'.repeat(300) } })],
      { 'docker.io/library/alpine:3.10': ok('a', alpine) },
    );
    assert.deepEqual(Object.keys(payload.workloads[0]!.labels), ['tier']);
    assert.equal(payload.workloads[0]!.labels.tier!.length, 255);
    assert.deepEqual(payload.scan_config.labels_dropped, [longKey]);
  });

  test('the ledger is bounded', async () => {
    const many = Array.from({ length: MAX_LEDGER_ENTRIES + 50 }, (_, i) =>
      workload(`w${i}`, [['c', `registry.local/img${i}:1`]]),
    );
    const { payload, ledger } = await build(many, {});
    assert.equal(ledger.length, MAX_LEDGER_ENTRIES + 50);
    assert.equal((payload.scan_config.not_delivered as unknown[]).length, MAX_LEDGER_ENTRIES);
    assert.equal(payload.scan_config.not_delivered_omitted, 50);
  });

  test('running digests: the container gets the union of their findings, every digest in repo_digests', async () => {
    const d1 = `ghcr.io/acme/api@sha256:${'1'.repeat(64)}`;
    const d2 = `ghcr.io/acme/api@sha256:${'2'.repeat(64)}`;
    const w = workload('api', [['app', 'ghcr.io/acme/api:1.4']]);
    w.containers[0] = { ...w.containers[0]!, running: [d1, d2], tagReason: undefined };
    const { payload, byTag, imageReferences } = await build([w], { [d1]: ok(d1, alpine), [d2]: ok(d2, juice) });
    const [container] = payload.workloads[0]!.containers;
    assert.deepEqual(
      [container!.image_name, container!.image_tag],
      ['ghcr.io/acme/api', '1.4'],
      "image name and tag stay the spec's",
    );
    assert.deepEqual(container!.repo_digests, [d1, d2]);
    assert.equal(container!.vulnerabilities.length, 4 + 197);
    assert.deepEqual(byTag, []);
    assert.deepEqual([...imageReferences.get(d1)!], ['ghcr.io/acme/api:1.4']);
  });

  test('one of two running digests failed: the container is not sent (a partial union would resolve findings)', async () => {
    const d1 = `ghcr.io/acme/api@sha256:${'1'.repeat(64)}`;
    const d2 = `ghcr.io/acme/api@sha256:${'2'.repeat(64)}`;
    const w = workload('api', [['app', 'ghcr.io/acme/api:1.4']]);
    w.containers[0] = { ...w.containers[0]!, running: [d1, d2], tagReason: undefined };
    const { payload, ledger } = await build([w], { [d1]: ok(d1, alpine), [d2]: failed(d2) });
    assert.deepEqual(payload.workloads, []);
    assert.equal(ledger[0]!.reason, 'not_found');
    assert.match(ledger[0]!.detail, new RegExp(`^${d2.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
  });

  test('one running digest failed and another was never scanned: the failure is the reason recorded', async () => {
    const d1 = `ghcr.io/acme/api@sha256:${'1'.repeat(64)}`;
    const d2 = `ghcr.io/acme/api@sha256:${'2'.repeat(64)}`;
    const w = workload('api', [['app', 'ghcr.io/acme/api:1.4']]);
    w.containers[0] = { ...w.containers[0]!, running: [d1, d2], tagReason: undefined };
    const { payload, ledger, scanKeys } = await build([w], { [d2]: failed(d2, 'timeout') });
    assert.deepEqual(payload.workloads, []);
    assert.deepEqual(
      ledger.map((e) => [e.reason, e.detail.startsWith(`${d2}: `)]),
      [['timeout', true]],
    );
    assert.deepEqual(scanKeys, [d1, d2], 'the scans it waited for are released with the body');
  });

  test('one of two running digests never scanned: the container is left out as cancelled', async () => {
    const d1 = `ghcr.io/acme/api@sha256:${'1'.repeat(64)}`;
    const d2 = `ghcr.io/acme/api@sha256:${'2'.repeat(64)}`;
    const w = workload('api', [['app', 'ghcr.io/acme/api:1.4']]);
    w.containers[0] = { ...w.containers[0]!, running: [d1, d2], tagReason: undefined };
    const { payload, ledger, stats } = await build([w], { [d1]: ok(d1, alpine) });
    assert.deepEqual(payload.workloads, []);
    assert.deepEqual(
      ledger.map((e) => e.reason),
      ['cancelled'],
    );
    assert.equal(stats.containersNotDelivered, 1);
    assert.equal(payload.status, 'failed', 'nothing in the namespace could be sent');
  });

  test('a container scanned by its spec tag is listed in scanned_by_tag with the reason', async () => {
    const { payload, byTag } = await build([workload('web', [['app', 'alpine:3.10']])], {
      'docker.io/library/alpine:3.10': ok('a', alpine),
    });
    assert.deepEqual(byTag, [
      { workload: 'web', kind: 'Deployment', container: 'app', image: 'alpine:3.10', reason: 'no_running_pod' },
    ]);
    assert.deepEqual(payload.scan_config.scanned_by_tag, byTag);
  });

  test("scan_config: the run's facts, then the namespace's ledger; Pods not attributed only when there are some", async () => {
    const workloads = [workload('web', [['app', 'alpine:3.10']])];
    const results = { 'docker.io/library/alpine:3.10': ok('a', alpine) };
    const { payload } = await build(workloads, results, { notAttributed: { ReplicaSet: 2, Rollout: 1 } });
    assert.deepEqual(Object.keys(payload.scan_config), [
      ...Object.keys(run.scanConfig),
      'coverage',
      'not_delivered',
      'scanned_by_tag',
      'pods_not_attributed',
    ]);
    assert.equal(payload.scan_config.scanner_version, '0.1.0');
    assert.deepEqual(payload.scan_config.pods_not_attributed, { ReplicaSet: 2, Rollout: 1 });
    assert.deepEqual(payload.scan_config.coverage, {
      workloads_discovered: 1,
      workloads_delivered: 1,
      containers_discovered: 1,
      containers_delivered: 1,
      containers_not_delivered: 0,
      containers_by_running_digest: 0,
      containers_by_spec_tag: 1,
      discovery_complete: true,
    });
    const none = await build(workloads, results, { notAttributed: {} });
    assert.equal('pods_not_attributed' in none.payload.scan_config, false);
  });

  test('dates are ISO-8601 with Z; trivy_version omitted when unknown', async () => {
    const { payload } = await build([], {}, { run: { ...run, trivyVersion: undefined } });
    assert.match(payload.started_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(!('trivy_version' in payload));
  });
});
