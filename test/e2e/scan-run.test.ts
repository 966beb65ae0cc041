// The acceptance scenario: three namespaces, images shared across all four kinds, one forbidden list and
// one missing image. Runs the built CLI against the three stand-ins and checks what a user would check.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ScanIngestRequest } from '../../src/types.js';
import { cronJob, daemonSet, deployment, statefulSet } from '../support/k8s-objects.js';
import { logsWith, runScanner, scannedRef, startStandIns, type ScannerRun, type StandIns } from '../support/harness.js';

const SECRET = 'e2e-S3cr3t-auth-value-7d1f';
const JUICE = 'docker.io/bkimminich/juice-shop:v10.2.0';
const ALPINE = 'docker.io/library/alpine:3.10';
const NGINX = 'docker.io/library/nginx:1.25';
const DEBIAN = 'docker.io/library/debian:buster';
const FLUENTD = 'gcr.io/acme/fluentd:v1';
const PAYMENTS = 'ghcr.io/acme/payments:2.1';
const EXPORTER = 'quay.io/prometheus/node-exporter:v1.8.1';
const SPRING = 'ghcr.io/acme/spring-app@sha256:' + 'c'.repeat(64);
const MISSING = 'registry.local:5000/acme/cleanup:1.0';

const objects = [
  // shop
  deployment({
    namespace: 'shop',
    name: 'web',
    labels: { 'ephor.dev/exposure': 'public', 'ephor.dev/team': 'web', app: 'web' },
    initContainers: [{ name: 'migrate', image: 'alpine:3.10' }],
    containers: [
      { name: 'app', image: 'bkimminich/juice-shop:v10.2.0' },
      { name: 'proxy', image: 'nginx:1.25' },
    ],
  }),
  statefulSet({ namespace: 'shop', name: 'db', containers: [{ name: 'postgres', image: 'debian:buster' }] }),
  daemonSet({ namespace: 'shop', name: 'log-agent', containers: [{ name: 'fluentd', image: FLUENTD }] }),
  cronJob({
    namespace: 'shop',
    name: 'report',
    containers: [{ name: 'report', image: 'docker.io/library/alpine:3.10' }],
  }),
  // payments (its StatefulSet list is forbidden)
  deployment({
    namespace: 'payments',
    name: 'api',
    containers: [
      { name: 'api', image: PAYMENTS },
      { name: 'proxy', image: 'docker.io/nginx:1.25' },
    ],
  }),
  statefulSet({ namespace: 'payments', name: 'ledger', containers: [{ name: 'ledger', image: 'debian:buster' }] }),
  daemonSet({ namespace: 'payments', name: 'node-exporter', containers: [{ name: 'exporter', image: EXPORTER }] }),
  cronJob({ namespace: 'payments', name: 'cleanup', containers: [{ name: 'cleanup', image: MISSING }] }),
  // tools
  deployment({
    namespace: 'tools',
    name: 'jdk-app',
    containers: [{ name: 'app', image: `ghcr.io/acme/spring-app:3.2@${SPRING.split('@')[1]}` }],
  }),
  statefulSet({
    namespace: 'tools',
    name: 'shop-mirror',
    containers: [{ name: 'app', image: 'index.docker.io/bkimminich/juice-shop:v10.2.0' }],
  }),
  daemonSet({ namespace: 'tools', name: 'agent', containers: [{ name: 'agent', image: FLUENTD }] }),
  cronJob({
    namespace: 'tools',
    name: 'backup',
    containers: [
      { name: 'backup', image: 'debian:buster' },
      { name: 'notify', image: 'nginx:1.25' },
    ],
  }),
];

const REPORTS: Record<string, string> = {
  [JUICE]: 'real_juice-shop-v10.2.0_alpine_node-pkg_236-vulns.json',
  [ALPINE]: 'trivy-v0.69.3_alpine-3.10_os-pkgs.json',
  [NGINX]: 'trivy-v0.69.3_distroless-base_debian.json',
  [DEBIAN]: 'trivy-v0.69.3_debian-buster_os-pkgs.json',
  [FLUENTD]: 'trivy-v0.69.3_sle-micro-5.4_zero-vulns.json',
  [PAYMENTS]: 'trivy-v0.69.3_ubi-7_redhat_python-pkg.json',
  [EXPORTER]: 'trivy-v0.69.3_busybox_no-os_cargo-lang-pkgs.json',
  [SPRING]: 'trivy-v0.69.3_spring4shell-jre11_jar_cvss-ghsa-nvd-redhat.json',
};

describe('a complete scan run against the stand-ins', { timeout: 120_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  let payloads: Map<string, ScanIngestRequest>;

  before(async () => {
    standIns = await startStandIns({
      cluster: { objects, faults: [{ resource: 'statefulsets', namespace: 'payments', status: 403 }] },
      trivy: { images: Object.fromEntries(Object.entries(REPORTS).map(([ref, report]) => [ref, { report }])) },
    });
    // Findings Ephor already has: one that the new scan no longer reports (must be resolved), and ones in
    // containers this run cannot see (missing image, forbidden list): those must stay open.
    standIns.ephor.seedFinding({
      namespace: 'shop',
      workload: 'web',
      kind: 'Deployment',
      container: 'app',
      cveId: 'CVE-2000-0001',
      packageName: 'gone',
      packageVersion: '1.0',
      scannerType: 'node-pkg',
    });
    standIns.ephor.seedFinding({
      namespace: 'payments',
      workload: 'cleanup',
      kind: 'CronJob',
      container: 'cleanup',
      cveId: 'CVE-2024-1111',
      packageName: 'openssl',
      packageVersion: '3.0.1',
      scannerType: 'debian',
    });
    standIns.ephor.seedFinding({
      namespace: 'payments',
      workload: 'ledger',
      kind: 'StatefulSet',
      container: 'ledger',
      cveId: 'CVE-2024-2222',
      packageName: 'zlib',
      packageVersion: '1.2',
      scannerType: 'debian',
    });
    run = await runScanner({
      ...standIns.env,
      SCAN_NAMESPACES: 'shop, payments,tools',
      SCAN_CONCURRENCY: '4',
      EPHOR_AUTH_HEADER: 'X-API-Key',
      EPHOR_AUTH_VALUE: SECRET,
    });
    payloads = new Map(
      standIns.ephor.scanIngests().map((r) => [(r.body as ScanIngestRequest).namespace, r.body as ScanIngestRequest]),
    );
  });
  after(() => standIns?.close());

  test('exit code 0: every namespace delivered although one image and one list failed', () => {
    assert.equal(run.exitCode, 0, run.stdout + run.stderr);
  });

  test('one POST per namespace, one at a time, all valid against the contract, sharing one scan_group_id', () => {
    const ingests = standIns.ephor.requests.filter((r) => r.path === '/api/v1/scans/ingest');
    assert.equal(ingests.length, 3);
    assert.deepEqual([...payloads.keys()].sort(), ['payments', 'shop', 'tools']);
    for (const request of ingests) {
      assert.equal(request.response.status, 201);
      assert.deepEqual(request.contractErrors, []);
    }
    assert.equal(standIns.ephor.maxConcurrentIngests, 1);
    const groups = new Set([...payloads.values()].map((p) => p.scan_group_id));
    assert.equal(groups.size, 1);
    const [group] = groups;
    assert.match(group!, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.ok(
      run.logs.every((line) => line.scan_group_id === group),
      'scan_group_id is on every log line',
    );
  });

  test('each unique image is scanned exactly once, with the flags the contract and the DB step need', async () => {
    const scans = await standIns.scans();
    const refs = scans.map(scannedRef).sort();
    assert.deepEqual(refs, [...Object.keys(REPORTS), MISSING].sort());
    for (const scan of scans) {
      const argv = scan.argv.join(' ');
      assert.match(argv, /--format json/);
      assert.match(argv, /--scanners vuln/);
      assert.match(argv, /--list-all-pkgs=false/);
      assert.match(argv, /--severity CRITICAL,HIGH,MEDIUM,LOW/);
      assert.match(argv, /--skip-db-update/);
      assert.match(argv, /--skip-java-db-update/);
      assert.match(argv, /--output \S+report\.json/);
    }
    const all = await standIns.invocations();
    assert.equal(all.filter((i) => i.argv.includes('--download-db-only')).length, 1);
    assert.equal(all.filter((i) => i.argv.includes('--download-java-db-only')).length, 1);
  });

  test('exact findings per container; the workload labels are the ephor.dev/ ones without prefix', () => {
    const shop = payloads.get('shop')!;
    assert.equal(shop.status, 'completed');
    const web = shop.workloads.find((w) => w.name === 'web')!;
    assert.deepEqual(web.labels, { exposure: 'public', team: 'web' });
    assert.deepEqual(
      web.containers.map((c) => [c.name, c.image_name, c.image_tag, c.vulnerabilities.length]),
      [
        ['migrate', 'docker.io/library/alpine', '3.10', 4],
        ['app', 'docker.io/bkimminich/juice-shop', 'v10.2.0', 197],
        ['proxy', 'docker.io/library/nginx', '1.25', 4],
      ],
    );
    const kinds = shop.workloads.map((w) => `${w.kind}/${w.name}`).sort();
    assert.deepEqual(kinds, ['CronJob/report', 'DaemonSet/log-agent', 'Deployment/web', 'StatefulSet/db']);
    const logAgent = shop.workloads.find((w) => w.name === 'log-agent')!;
    assert.deepEqual(
      logAgent.containers[0]!.vulnerabilities,
      [],
      'a clean image is sent with an empty list (it resolves fixed findings)',
    );
    const tools = payloads.get('tools')!;
    const jdk = tools.workloads.find((w) => w.name === 'jdk-app')!.containers[0]!;
    assert.deepEqual(
      [jdk.image_name, jdk.image_tag, jdk.vulnerabilities.length],
      ['ghcr.io/acme/spring-app', '3.2', 1],
    );
    assert.equal(tools.workloads.find((w) => w.name === 'shop-mirror')!.containers[0]!.vulnerabilities.length, 197);
  });

  test('the missing image: its container is not sent, it is in the ledger, and its open findings stay open', () => {
    const payments = payloads.get('payments')!;
    assert.equal(payments.status, 'completed');
    assert.equal(
      payments.workloads.find((w) => w.name === 'cleanup'),
      undefined,
    );
    const ledger = payments.scan_config.not_delivered;
    assert.equal(ledger.length, 1);
    assert.deepEqual(
      { ...ledger[0], detail: undefined },
      {
        workload: 'cleanup',
        kind: 'CronJob',
        container: 'cleanup',
        image: MISSING,
        reason: 'not_found',
        detail: undefined,
      },
    );
    assert.match(ledger[0]!.detail, /MANIFEST_UNKNOWN/);
    assert.equal(
      standIns.ephor.instance({
        namespace: 'payments',
        workload: 'cleanup',
        kind: 'CronJob',
        container: 'cleanup',
        cveId: 'CVE-2024-1111',
        packageName: 'openssl',
        packageVersion: '3.0.1',
        scannerType: 'debian',
      })?.status,
      'open',
    );
  });

  test('the forbidden list: logged with the missing RBAC rule, recorded, and nothing of it resolved', () => {
    const forbidden = logsWith(run, 'discovery forbidden by RBAC');
    assert.equal(forbidden.length, 1);
    assert.equal(forbidden[0]!.namespace, 'payments');
    assert.equal(forbidden[0]!.kind, 'StatefulSet');
    assert.equal(forbidden[0]!.status, 403);
    assert.match(
      String(forbidden[0]!.missing_rbac),
      /allow verb "list" on resource "statefulsets" \(apiGroup "apps"\) in namespace "payments" for system:serviceaccount:ephor:ephor-scanner/,
    );
    const payments = payloads.get('payments')!;
    assert.deepEqual(
      (payments.scan_config.discovery_errors as Array<{ kind: string; status: number }>).map((e) => [e.kind, e.status]),
      [['StatefulSet', 403]],
    );
    assert.equal(
      standIns.ephor.instance({
        namespace: 'payments',
        workload: 'ledger',
        kind: 'StatefulSet',
        container: 'ledger',
        cveId: 'CVE-2024-2222',
        packageName: 'zlib',
        packageVersion: '1.2',
        scannerType: 'debian',
      })?.status,
      'open',
    );
  });

  test('nothing is resolved wrongly; what the new scan no longer reports is resolved', () => {
    const gone = standIns.ephor.instance({
      namespace: 'shop',
      workload: 'web',
      kind: 'Deployment',
      container: 'app',
      cveId: 'CVE-2000-0001',
      packageName: 'gone',
      packageVersion: '1.0',
      scannerType: 'node-pkg',
    });
    assert.deepEqual(gone, { status: 'resolved', resolutionType: 'auto' });
    const autoResolved = Object.fromEntries(standIns.ephor.scans().map((scan) => [scan.namespace, scan.autoResolved]));
    assert.deepEqual(autoResolved, { shop: 1, payments: 0, tools: 0 });
  });

  test("the auth header is sent on every POST and never appears in logs, stderr or Trivy's argv and environment", async () => {
    for (const request of standIns.ephor.requests) assert.equal(request.headers['x-api-key'], SECRET);
    assert.ok(!run.stdout.includes(SECRET));
    assert.ok(!run.stderr.includes(SECRET));
    for (const invocation of await standIns.invocations()) {
      assert.ok(!invocation.argv.join(' ').includes(SECRET));
      assert.ok(!Object.values(invocation.env).some((v) => v.includes(SECRET)));
      for (const owned of [
        'EPHOR_AUTH_VALUE',
        'EPHOR_API_URL',
        'TRIVY_TIMEOUT',
        'TRIVY_CACHE_DIR',
        'TRIVY_SKIP_DB_UPDATE',
        'SCAN_NAMESPACES',
      ]) {
        assert.ok(!(owned in invocation.env), `${owned} is not passed to trivy`);
      }
    }
  });

  test('headers: JSON content type, user agent with version, a request id per attempt', () => {
    const request = standIns.ephor.scanIngests()[0]!;
    assert.match(String(request.headers['content-type']), /^application\/json/);
    assert.match(String(request.headers['user-agent']), /^ephor-scanner\/\d+\.\d+\.\d+/);
    assert.match(String(request.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  });

  test('the final summary counts what happened', () => {
    const [summary] = logsWith(run, 'ephor-scanner completed');
    assert.ok(summary);
    assert.equal(summary.exit_code, 0);
    assert.deepEqual(summary.namespaces, { total: 3, delivered: 3, failed: 0 });
    assert.deepEqual(summary.images, { total: 9, scanned: 8, failed: 1, failed_by_reason: { not_found: 1 } });
    assert.equal(summary.discovery_errors, 1);
    assert.deepEqual(
      (summary.top_failures as Array<{ reason: string }>).map((f) => f.reason),
      ['not_found'],
    );
  });
});
