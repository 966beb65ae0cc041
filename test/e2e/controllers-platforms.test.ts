// Every Pod that runs, on the platform it runs (issue 14), end to end against the stand-ins: Pods of other
// controllers (an Argo Rollout, a CloudNativePG Cluster, a bare Job, a bare ReplicaSet) reported as kind Pod under
// their owner's stable name, a Workflow left out, and each running digest scanned for the platform of its nodes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ContainerPayload, SbomIngestRequest, ScanIngestRequest, WorkloadPayload } from '../../src/types.js';
import {
  customResource,
  daemonSet,
  deployment,
  job,
  node,
  pod,
  replicaSet,
  rollout,
  rolloutReplicaSet,
  type KubeObject,
} from '../support/k8s-objects.js';
import type { KubeFault } from '../support/k8s-server.js';
import { logsWith, runScanner, scannedRef, startStandIns } from '../support/harness.js';
import type { FakeTrivyInvocation, FakeTrivyScenario } from '../support/fake-trivy.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const CHECKOUT_V1 = `ghcr.io/acme/checkout@${D('1')}`;
const CHECKOUT_V2 = `ghcr.io/acme/checkout@${D('7')}`;
const AGENT = `docker.io/acme/agent@${D('2')}`;
const POSTGRES = `ghcr.io/cloudnative-pg/postgresql@${D('3')}`;
const MIGRATE = `ghcr.io/acme/migrate@${D('4')}`;
const LEGACY = `ghcr.io/acme/legacy@${D('5')}`;
const WORKFLOW_STEP = `docker.io/argoproj/argosay@${D('6')}`;
const WINDOWS_APP = `mcr.microsoft.com/dotnet/framework/aspnet@${D('8')}`;

const ALPINE = 'trivy-v0.69.3_alpine-3.10_os-pkgs.json'; // 4 findings
const DEBIAN = 'trivy-v0.69.3_debian-buster_os-pkgs.json'; // 2 findings
const UBI = 'trivy-v0.69.3_ubi-7_redhat_python-pkg.json'; // 2 findings
const SLE = 'trivy-v0.69.3_sle-micro-5.4_zero-vulns.json';

const NS = 'shop';
const WORKFLOW = customResource({
  apiVersion: 'argoproj.io/v1alpha1',
  kind: 'Workflow',
  namespace: NS,
  name: 'nightly-x7k2p',
});
const CLUSTER = customResource({ apiVersion: 'postgresql.cnpg.io/v1', kind: 'Cluster', namespace: NS, name: 'main' });

/** The cluster with the checkout Rollout at `revision` (its ReplicaSet, hence its Pods' names, change with it). */
function cluster(revision: 1 | 2): KubeObject[] {
  const checkout = rollout({
    namespace: NS,
    name: 'checkout',
    labels: { 'ephor.dev/team': 'payments' },
    containers: [{ name: 'app', image: `ghcr.io/acme/checkout:${revision}` }],
  });
  const checkoutRs = rolloutReplicaSet(checkout, revision);
  const agent = daemonSet({
    namespace: NS,
    name: 'agent',
    containers: [{ name: 'agent', image: 'docker.io/acme/agent:5' }],
  });
  const migrate = job({ namespace: NS, name: 'migrate', containers: [{ name: 'm', image: 'ghcr.io/acme/migrate:1' }] });
  const legacy = replicaSet({
    namespace: NS,
    name: 'legacy',
    containers: [{ name: 'l', image: 'ghcr.io/acme/legacy:1' }],
  });
  const win = deployment({
    namespace: NS,
    name: 'win-app',
    containers: [{ name: 'web', image: 'mcr.microsoft.com/dotnet/framework/aspnet:4.8' }],
  });
  const winRs = replicaSet({ namespace: NS, owner: win });
  return [
    node({ name: 'amd-1' }),
    node({ name: 'arm-1', arch: 'arm64' }),
    node({ name: 'win-1', os: 'windows' }),
    checkoutRs,
    agent,
    migrate,
    legacy,
    win,
    winRs,
    ...[1, 2].map((i) =>
      pod({
        namespace: NS,
        name: `${checkoutRs.metadata.name}-pod${i}`,
        owner: checkoutRs,
        nodeName: 'amd-1',
        labels: { 'ephor.dev/team': 'payments' },
        imageIDs: { app: revision === 1 ? CHECKOUT_V1 : CHECKOUT_V2 },
      }),
    ),
    pod({ namespace: NS, name: 'agent-amd', owner: agent, nodeName: 'amd-1', imageIDs: { agent: AGENT } }),
    pod({ namespace: NS, name: 'agent-arm', owner: agent, nodeName: 'arm-1', imageIDs: { agent: AGENT } }),
    pod({
      namespace: NS,
      name: 'main-1',
      owner: CLUSTER,
      nodeName: 'arm-1',
      containers: [{ name: 'postgres', image: 'ghcr.io/cloudnative-pg/postgresql:16.4' }],
      imageIDs: { postgres: POSTGRES },
    }),
    pod({ namespace: NS, owner: migrate, nodeName: 'amd-1', imageIDs: { m: MIGRATE } }),
    pod({ namespace: NS, owner: legacy, nodeName: 'amd-1', imageIDs: { l: LEGACY } }),
    pod({
      namespace: NS,
      name: 'nightly-x7k2p-main-3811029',
      owner: WORKFLOW,
      nodeName: 'amd-1',
      containers: [{ name: 'main', image: 'argoproj/argosay:v2' }],
      imageIDs: { main: WORKFLOW_STEP },
    }),
    pod({ namespace: NS, name: 'win-app-1', owner: winRs, nodeName: 'win-1', imageIDs: { web: WINDOWS_APP } }),
  ];
}

const index = (amd64: string, arm64: string) => ({
  platforms: { 'linux/amd64': { report: amd64 }, 'linux/arm64': { report: arm64 } },
});
const trivy: FakeTrivyScenario = {
  images: {
    [CHECKOUT_V1]: index(ALPINE, DEBIAN),
    [CHECKOUT_V2]: index(DEBIAN, ALPINE),
    [AGENT]: index(ALPINE, DEBIAN),
    [POSTGRES]: { platforms: { 'linux/arm64': { report: UBI } } }, // an arm64-only image
    [MIGRATE]: { report: SLE },
    [LEGACY]: { report: SLE },
    [WORKFLOW_STEP]: { report: ALPINE },
    [WINDOWS_APP]: { report: ALPINE },
  },
};

function workload(payload: ScanIngestRequest, name: string): WorkloadPayload | undefined {
  return payload.workloads.find((w) => w.name === name);
}
function container(payload: ScanIngestRequest, name: string): ContainerPayload {
  const found = workload(payload, name)?.containers[0];
  assert.ok(found, `${name} is in the payload`);
  return found;
}
const platformOf = (scan: FakeTrivyInvocation) => {
  const at = scan.argv.indexOf('--platform');
  return at < 0 ? undefined : scan.argv[at + 1];
};
const scanList = (scans: FakeTrivyInvocation[]) => scans.map((s) => `${scannedRef(s)} ${platformOf(s) ?? '-'}`).sort();

async function scanOnce(objects: KubeObject[], env: Record<string, string> = {}, faults: KubeFault[] = []) {
  const standIns = await startStandIns({ cluster: { objects, faults }, trivy });
  const run = await runScanner({ ...standIns.env, SCAN_NAMESPACES: NS, ...env });
  const ingest = standIns.ephor.scanIngests()[0];
  return { standIns, run, ingest, payload: ingest?.body as ScanIngestRequest, scans: await standIns.scans() };
}

describe('Pods of other controllers, and the platforms images run on', { timeout: 180_000 }, () => {
  let first: Awaited<ReturnType<typeof scanOnce>>;
  let second: Awaited<ReturnType<typeof scanOnce>>;

  before(async () => {
    first = await scanOnce(cluster(1));
    // The second run also delivers SBOMs: one per platform an image was scanned for.
    second = await scanOnce(cluster(2), { SBOM_ENABLED: 'true' });
  });
  after(async () => {
    await first?.standIns.close();
    await second?.standIns.close();
  });

  test('delivered, exit 0, bodies valid against the contract', () => {
    for (const { run, ingest } of [first, second]) {
      assert.equal(run.exitCode, 0, run.stdout);
      assert.deepEqual(ingest!.contractErrors, []);
    }
  });

  test('a Rollout, a custom resource, a bare Job and a bare ReplicaSet: kind Pod, named after the owner', () => {
    assert.deepEqual(
      first.payload.workloads.map((w) => [w.kind, w.name]),
      [
        ['DaemonSet', 'agent'],
        ['Pod', 'Cluster.postgresql.cnpg.io/main'],
        ['Pod', 'Job.batch/migrate'],
        ['Pod', 'ReplicaSet.apps/legacy'],
        ['Pod', 'Rollout.argoproj.io/checkout'],
      ],
    );
    assert.deepEqual(workload(first.payload, 'Rollout.argoproj.io/checkout')!.labels, {
      team: 'payments',
      'owner-kind': 'Rollout',
      'owner-api-group': 'argoproj.io',
      'owner-name': 'checkout',
    });
    assert.equal(workload(first.payload, 'Cluster.postgresql.cnpg.io/main')!.labels['owner-kind'], 'Cluster');
    assert.equal(workload(first.payload, 'Job.batch/migrate')!.labels['owner-api-group'], 'batch');
  });

  test('a new revision (new ReplicaSet hash, new Pod names) is the same workload, with what it runs now', () => {
    const [rs1, rs2] = [cluster(1), cluster(2)].map((objects) => objects.find((o) => o.kind === 'ReplicaSet')!);
    assert.notEqual(rs1!.metadata.name, rs2!.metadata.name);
    const names = (payload: ScanIngestRequest) => payload.workloads.filter((w) => w.kind === 'Pod').map((w) => w.name);
    assert.deepEqual(names(second.payload), names(first.payload));
    const [v1, v2] = [
      container(first.payload, 'Rollout.argoproj.io/checkout'),
      container(second.payload, 'Rollout.argoproj.io/checkout'),
    ];
    assert.deepEqual([v1.name, v1.image_tag, v1.repo_digests], ['app', '1', [CHECKOUT_V1]]);
    assert.deepEqual([v2.name, v2.image_tag, v2.repo_digests], ['app', '2', [CHECKOUT_V2]]);
    assert.equal(v1.os_family, 'alpine', 'the amd64 child of the index, where its Pods run');
    assert.equal(v2.os_family, 'debian');
  });

  test('each digest scanned for the platforms of its nodes; the Workflow and the Windows image never scanned', () => {
    assert.deepEqual(
      scanList(first.scans),
      [
        `${AGENT} linux/amd64`,
        `${AGENT} linux/arm64`,
        `${CHECKOUT_V1} linux/amd64`,
        `${POSTGRES} linux/arm64`,
        `${LEGACY} linux/amd64`,
        `${MIGRATE} linux/amd64`,
      ].sort(),
    );
  });

  test('an arm64-only image is scanned with --platform linux/arm64 and reported with its findings', () => {
    const postgres = container(first.payload, 'Cluster.postgresql.cnpg.io/main');
    assert.equal(postgres.os_family, 'redhat');
    assert.equal(postgres.vulnerabilities.length, 2);
    assert.deepEqual(postgres.repo_digests, [POSTGRES]);
  });

  test('a digest on amd64 and arm64 nodes: scanned twice, the container gets the union, the ledger both platforms', () => {
    const agent = container(first.payload, 'agent');
    assert.equal(agent.vulnerabilities.length, 4 + 2, 'alpine (amd64) and debian (arm64)');
    assert.deepEqual(agent.repo_digests, [AGENT]);
    assert.deepEqual(first.payload.scan_config.platforms, {
      nodes_listed: true,
      containers_by_platform: { 'linux/amd64': 4, 'linux/arm64': 2 },
      multi_platform: [
        { workload: 'agent', kind: 'DaemonSet', container: 'agent', platforms: ['linux/amd64', 'linux/arm64'] },
      ],
    });
    const [summary] = logsWith(first.run, 'ephor-scanner completed');
    assert.deepEqual((summary!.containers as { by_platform: unknown }).by_platform, {
      'linux/amd64': 4,
      'linux/arm64': 2,
    });
  });

  test("a digest on two platforms has two SBOMs under the container's image reference and the same digest", () => {
    const sboms = second.standIns.ephor.requests
      .filter((r) => r.path === '/api/v1/sbom/ingest')
      .map((r) => r.body as SbomIngestRequest)
      .filter((b) => b.image_reference === 'docker.io/acme/agent:5');
    assert.equal(sboms.length, 2);
    assert.deepEqual(
      sboms.map((b) => b.image_digest),
      [D('2'), D('2')],
    );
    const osOf = (b: SbomIngestRequest) => {
      const components = (b.sbom as { components: Array<{ type: string; name: string }> }).components;
      return components.find((c) => c.type === 'operating-system')?.name;
    };
    assert.deepEqual(sboms.map(osOf).sort(), ['alpine', 'debian'], 'the amd64 child and the arm64 child');
    assert.equal(second.standIns.ephor.maxConcurrentPosts, 1);
  });

  test('the Workflow is left out and counted; the Windows Pod is in the ledger with its reason', () => {
    const ledger = first.payload.scan_config;
    assert.deepEqual(ledger.pods_excluded, { 'Workflow.argoproj.io': 1 });
    assert.equal(ledger.pods_not_attributed, undefined, 'every other Pod was attributed');
    assert.equal(workload(first.payload, 'win-app'), undefined, 'a workload left without a container is dropped');
    assert.deepEqual(ledger.not_delivered, [
      {
        workload: 'win-app',
        kind: 'Deployment',
        container: 'web',
        image: 'mcr.microsoft.com/dotnet/framework/aspnet:4.8',
        reason: 'unsupported_platform',
        detail: 'runs only on windows/amd64 nodes: Trivy cannot scan Windows images',
        platforms: ['windows/amd64'],
      },
    ]);
    assert.deepEqual(ledger.other_controllers?.exclude.slice(0, 2), [
      'Workflow.argoproj.io',
      'AnalysisRun.argoproj.io',
    ]);
  });
});

describe('switched off, and nodes forbidden', { timeout: 180_000 }, () => {
  test('SCAN_OTHER_CONTROLLERS=false: none of them is reported; their Pods are counted as before', async () => {
    const { standIns, run, payload, ingest } = await scanOnce(cluster(1), { SCAN_OTHER_CONTROLLERS: 'false' });
    try {
      assert.equal(run.exitCode, 0, run.stdout);
      assert.deepEqual(ingest!.contractErrors, []);
      assert.deepEqual(
        payload.workloads.map((w) => [w.kind, w.name]),
        [['DaemonSet', 'agent']],
      );
      assert.deepEqual(payload.scan_config.pods_not_attributed, {
        Rollout: 2,
        Cluster: 1,
        Job: 1,
        ReplicaSet: 1,
        Workflow: 1,
      });
      assert.equal(payload.scan_config.pods_excluded, undefined);
      assert.deepEqual(payload.scan_config.other_controllers, {
        enabled: false,
        exclude: payload.scan_config.other_controllers!.exclude,
      });
    } finally {
      await standIns.close();
    }
  });

  test("nodes forbidden: no --platform at all (today's behaviour), one warning, exit 0, and a ledger note", async () => {
    const { standIns, run, payload, scans } = await scanOnce(cluster(1), {}, [{ resource: 'nodes', status: 403 }]);
    try {
      assert.equal(run.exitCode, 0, run.stdout);
      assert.deepEqual(
        scans.filter((s) => platformOf(s) !== undefined),
        [],
      );
      const warnings = run.logs.filter((l) => l.level === 'warn' && /^nodes not listed/.test(l.msg));
      assert.equal(warnings.length, 1);
      assert.equal(
        warnings[0]!.missing_rbac,
        'allow verb "list" on resource "nodes" (apiGroup "") cluster-wide for system:serviceaccount:ephor:ephor-scanner',
      );
      const ledger = payload.scan_config.platforms!;
      assert.equal(ledger.nodes_listed, false);
      assert.match(ledger.note!, /^nodes could not be listed \(HTTP 403\): every image was scanned without --platform/);
      assert.equal(ledger.missing_rbac, warnings[0]!.missing_rbac);
      // What that costs: the arm64-only image fails as Trivy's default linux/amd64, so its container is not sent.
      const postgres = payload.scan_config.not_delivered.find((e) => e.container === 'postgres');
      assert.equal(postgres?.reason, 'platform_not_found');
      assert.equal(postgres?.detail, `remote error: no child with platform linux/amd64 in index ${POSTGRES}`);
      assert.equal(container(payload, 'agent').vulnerabilities.length, 4, 'only the amd64 child, as before');
    } finally {
      await standIns.close();
    }
  });
});
