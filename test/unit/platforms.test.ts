// Platform-correct scans (issue 14), the pure parts: the unit of scanning is (digest, platform), with a string key
// the run's maps use; a container gets the union over its platforms, or nothing when one of them failed; the ledger
// and the summary count containers by platform; Windows-only containers are left out with a reason.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { bodyText, splitBody } from '../../src/ephor/body.js';
import { SEVERITIES, type ScanIngestRequest } from '../../src/ephor/contract.js';
import { buildNamespaceBody, type NamespaceInput, type RunFacts } from '../../src/ephor/payload.js';
import { planScans, scanKeyOf } from '../../src/images/plan.js';
import { writeImageFindings } from '../../src/report/findings.js';
import { summaryRecord, summaryTable, type RunSummary } from '../../src/run/summary.js';
import { scanArgs } from '../../src/trivy/scan.js';
import type { ContainerRef, PlatformFacts, ScanResult, Workload } from '../../src/types.js';
import { validate } from '../support/contract.js';
import { TRIVY_REPORTS_DIR } from '../support/paths.js';

const WORK = mkdtempSync(path.join(os.tmpdir(), 'platforms-test-'));
process.on('exit', () => {
  rmSync(WORK, { recursive: true, force: true });
});
const findingsOf = (name: string, as: string) =>
  writeImageFindings(path.join(TRIVY_REPORTS_DIR, name), SEVERITIES, path.join(WORK, `${as}.json`));
const alpine = await findingsOf('trivy-v0.69.3_alpine-3.10_os-pkgs.json', 'alpine');
const debian = await findingsOf('trivy-v0.69.3_debian-buster_os-pkgs.json', 'debian');

const D = (c: string) => `sha256:${c.repeat(64)}`;
const API = `ghcr.io/acme/api@${D('1')}`;
const EDGE = `ghcr.io/acme/edge@${D('2')}`;
const LISTED: PlatformFacts = { listed: true, linuxPlatforms: ['linux/amd64', 'linux/arm64'] };

const run: RunFacts = {
  scanGroupId: '0b0d7c1e-8f6a-4c8e-9d3f-2a1b3c4d5e6f',
  scanLabel: 'ephor-scanner/0.1.0',
  startedAt: '2026-11-27T06:00:00.000Z',
  scanConfig: {
    scanner: 'ephor-scanner',
    scanner_version: '0.1.0',
    trivy_version: '0.69.3',
    vulnerability_db: { updated_at: null, downloaded_at: null },
    java_db: { ready: true, updated_at: null },
    severities: SEVERITIES,
    workload_types: ['Deployment'],
    other_controllers: { enabled: true, exclude: ['Workflow.argoproj.io'] },
    cache_mode: 'ephemeral',
  },
};

function workload(name: string, containers: ContainerRef[]): Workload {
  return {
    namespace: 'shop',
    kind: 'Deployment',
    name,
    labels: {},
    containers,
    pullSecrets: { namespace: 'shop', secretNames: [], serviceAccount: 'default' },
  };
}

const container = (name: string, extra: Partial<ContainerRef>): ContainerRef => ({
  name,
  role: 'app',
  specImage: 'ghcr.io/acme/api:1.4',
  running: [],
  ...extra,
});

const ok = (ref: string, image = alpine): ScanResult => ({ ok: true, ref, image, durationMs: 1 });

async function build(
  workloads: Workload[],
  results: Record<string, ScanResult>,
  extra: Partial<NamespaceInput> = {},
  tagPlatform?: string,
) {
  const plan = planScans(['shop'], workloads, { tagPlatform });
  const built = await buildNamespaceBody({
    namespace: 'shop',
    workloads,
    plan,
    resultOf: (key) => results[key],
    discoveryErrors: [],
    discoveredNothing: false,
    platforms: LISTED,
    run,
    completedAt: '2026-11-27T06:05:00.000Z',
    unionDir: WORK,
    ...extra,
  });
  const [part] = splitBody(built.workloads, built.envelope, 1024 ** 3);
  const payload = JSON.parse(await bodyText(part!)) as ScanIngestRequest;
  assert.deepEqual(validate('ingest-request', payload), [], 'the payload validates against the contract schema');
  return { plan, built, payload };
}

describe('the plan: one scan per digest and platform', () => {
  test('a digest on two platforms is two targets with keys that name the platform; without one the key is the ref', () => {
    const multi = container('app', { running: [API], platforms: { [API]: ['linux/amd64', 'linux/arm64'] } });
    const unknown = container('side', { specImage: 'ghcr.io/acme/edge:2', running: [EDGE] });
    const plan = planScans(['shop'], [workload('api', [multi, unknown])]);
    assert.deepEqual(
      plan.targets.map((t) => [t.key, t.ref, t.platform]),
      [
        [`${API} (linux/amd64)`, API, 'linux/amd64'],
        [`${API} (linux/arm64)`, API, 'linux/arm64'],
        [EDGE, EDGE, undefined],
      ],
    );
    assert.equal(scanKeyOf(API), API);
    const planned = plan.containers.get(multi)!;
    assert.ok('scanKeys' in planned);
    assert.deepEqual(planned.digests, [API]);
    assert.deepEqual(planned.platforms, ['linux/amd64', 'linux/arm64']);
  });

  test('a spec tag gets the platform all Linux nodes share; a Windows-only container is planned as unscannable', () => {
    const tag = container('app', { tagReason: 'no_running_pod' });
    const windows = container('win', {
      specImage: 'mcr.microsoft.com/windows/servercore:ltsc2022',
      unscannablePlatforms: ['windows/amd64'],
    });
    const plan = planScans(['shop'], [workload('api', [tag, windows])], { tagPlatform: 'linux/arm64' });
    assert.deepEqual(
      plan.targets.map((t) => [t.key, t.platform]),
      [['ghcr.io/acme/api:1.4 (linux/arm64)', 'linux/arm64']],
    );
    assert.deepEqual(plan.containers.get(windows), { unscannable: ['windows/amd64'] });
  });
});

describe('payloads over platforms', () => {
  test('two platforms: the union of both reports, the digest once in repo_digests, counted for each platform', async () => {
    const app = container('app', { running: [API], platforms: { [API]: ['linux/amd64', 'linux/arm64'] } });
    const { payload, built } = await build([workload('api', [app])], {
      [`${API} (linux/amd64)`]: ok(API, alpine),
      [`${API} (linux/arm64)`]: ok(API, debian),
    });
    const [sent] = payload.workloads[0]!.containers;
    assert.equal(sent!.vulnerabilities.length, alpine.count + debian.count);
    assert.deepEqual(sent!.repo_digests, [API]);
    assert.deepEqual(payload.scan_config.platforms, {
      nodes_listed: true,
      containers_by_platform: { 'linux/amd64': 1, 'linux/arm64': 1 },
      multi_platform: [
        { workload: 'api', kind: 'Deployment', container: 'app', platforms: ['linux/amd64', 'linux/arm64'] },
      ],
    });
    assert.deepEqual(built.stats.byPlatform, { 'linux/amd64': 1, 'linux/arm64': 1 });
    assert.deepEqual(built.scanKeys.sort(), [`${API} (linux/amd64)`, `${API} (linux/arm64)`]);
  });

  test("one platform's scan failed: the container is not sent, the ledger names the failing key and the platforms", async () => {
    const app = container('app', { running: [API], platforms: { [API]: ['linux/amd64', 'linux/arm64'] } });
    const { payload, built } = await build([workload('api', [app])], {
      [`${API} (linux/amd64)`]: ok(API),
      [`${API} (linux/arm64)`]: {
        ok: false,
        ref: API,
        reason: 'other',
        detail: `remote error: no child with platform linux/arm64 in index ${API}`,
        durationMs: 1,
      },
    });
    assert.deepEqual(payload.workloads, []);
    assert.equal(payload.status, 'failed');
    assert.deepEqual(built.ledger, [
      {
        workload: 'api',
        kind: 'Deployment',
        container: 'app',
        image: 'ghcr.io/acme/api:1.4',
        reason: 'other',
        detail: `${API} (linux/arm64): remote error: no child with platform linux/arm64 in index ${API}`,
        platforms: ['linux/amd64', 'linux/arm64'],
      },
    ]);
  });

  test('Windows: a Windows-only container is left out as unsupported_platform; one also on Linux is sent and noted', async () => {
    const windowsOnly = container('win', {
      specImage: 'mcr.microsoft.com/windows/servercore:ltsc2022',
      unscannablePlatforms: ['windows/amd64'],
    });
    const both = container('agent', {
      running: [API],
      platforms: { [API]: ['linux/amd64'] },
      unscannablePlatforms: ['windows/amd64'],
    });
    const { payload, built } = await build([workload('api', [windowsOnly, both])], {
      [`${API} (linux/amd64)`]: ok(API),
    });
    assert.deepEqual(
      payload.workloads[0]!.containers.map((c) => c.name),
      ['agent'],
    );
    assert.deepEqual(built.ledger, [
      {
        workload: 'api',
        kind: 'Deployment',
        container: 'win',
        image: 'mcr.microsoft.com/windows/servercore:ltsc2022',
        reason: 'unsupported_platform',
        detail: 'runs only on windows/amd64 nodes: Trivy cannot scan Windows images',
        platforms: ['windows/amd64'],
      },
    ]);
    assert.deepEqual(payload.scan_config.platforms!.multi_platform, [
      {
        workload: 'api',
        kind: 'Deployment',
        container: 'agent',
        platforms: ['linux/amd64'],
        not_scanned: ['windows/amd64'],
      },
    ]);
  });

  test('spec tags: the shared platform in scanned_by_tag; Linux nodes of several platforms: none, and a note', async () => {
    const tag = container('app', { tagReason: 'no_running_pod' });
    const shared = await build(
      [workload('api', [tag])],
      { 'ghcr.io/acme/api:1.4 (linux/arm64)': ok('ghcr.io/acme/api:1.4') },
      { platforms: { listed: true, linuxPlatforms: ['linux/arm64'], clusterPlatform: 'linux/arm64' } },
      'linux/arm64',
    );
    assert.equal(shared.payload.scan_config.scanned_by_tag[0]!.platform, 'linux/arm64');
    assert.equal(shared.payload.scan_config.platforms!.note, undefined);
    const mixed = await build([workload('api', [tag])], { 'ghcr.io/acme/api:1.4': ok('ghcr.io/acme/api:1.4') });
    assert.equal(mixed.payload.scan_config.scanned_by_tag[0]!.platform, undefined);
    assert.deepEqual(mixed.payload.scan_config.platforms!.containers_by_platform, { unknown: 1 });
    assert.equal(
      mixed.payload.scan_config.platforms!.note,
      "the Linux nodes run several platforms (linux/amd64, linux/arm64): the containers in scanned_by_tag were scanned without --platform (Trivy's default, linux/amd64 for a multi-platform image)",
    );
  });

  test('nodes not listed: a note with the status and the missing rule; without platform facts nothing is recorded', async () => {
    const app = container('app', { running: [API] });
    const forbidden = await build(
      [workload('api', [app])],
      { [API]: ok(API) },
      {
        platforms: {
          listed: false,
          linuxPlatforms: [],
          error: {
            status: 403,
            message: 'nodes is forbidden: User "u" cannot list resource "nodes" in API group "" at the cluster scope',
            missingRule: 'allow verb "list" on resource "nodes" (apiGroup "") cluster-wide for u',
          },
        },
      },
    );
    const ledger = forbidden.payload.scan_config.platforms!;
    assert.equal(ledger.nodes_listed, false);
    assert.match(ledger.note!, /^nodes could not be listed \(HTTP 403\): every image was scanned without --platform/);
    assert.equal(ledger.missing_rbac, 'allow verb "list" on resource "nodes" (apiGroup "") cluster-wide for u');
    assert.deepEqual(ledger.containers_by_platform, { unknown: 1 });
    const none = await build([workload('api', [app])], { [API]: ok(API) }, { platforms: undefined });
    assert.equal('platforms' in none.payload.scan_config, false);
  });
});

test('the summary counts containers by platform (record and table)', () => {
  const stats = (byPlatform: Record<string, number>) => ({
    workloads: 1,
    containersDelivered: 2,
    containersNotDelivered: 0,
    findings: { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 },
    byPlatform,
  });
  const summary: RunSummary = {
    exitCode: 0,
    durationMs: 1000,
    interrupted: false,
    discoveryErrors: 0,
    images: { total: 3, scanned: 3, failed: 0, failedByReason: {} },
    namespaces: [
      { namespace: 'a', delivered: true, status: 'completed', stats: stats({ 'linux/arm64': 1, 'linux/amd64': 1 }) },
      { namespace: 'b', delivered: true, status: 'completed', stats: stats({ 'linux/amd64': 2 }) },
    ],
  };
  const record = summaryRecord(summary) as { containers: { by_platform?: Record<string, number> } };
  assert.deepEqual(record.containers.by_platform, { 'linux/amd64': 3, 'linux/arm64': 1 });
  assert.match(summaryTable(summary), /^Containers by platform: linux\/amd64 3, linux\/arm64 1$/m);
});

test('Trivy gets --platform os/arch before the image, only when the target has one', () => {
  const config = loadConfig(
    { EPHOR_API_URL: 'http://ephor-api:8080', SCAN_NAMESPACES: 'shop' },
    { resolveExecutable: () => '/usr/local/bin/trivy' },
  );
  const setup = {
    db: { ready: true },
    javaDb: { ready: true },
    supportsVersionCheckFlags: true,
    supportsRepositoryList: true,
  } as Parameters<typeof scanArgs>[0]['setup'];
  const base = { ref: API, outputFile: '/tmp/r.json', cacheDir: '/tmp/c', config, setup };
  const withPlatform = scanArgs({ ...base, platform: 'linux/arm64' });
  assert.deepEqual(withPlatform.slice(-3), ['--platform', 'linux/arm64', API]);
  assert.ok(!scanArgs(base).includes('--platform'));
});
