// Scanning what actually runs: the digests in the Pods' status (not the tag in the spec), every container
// (injected sidecars, ephemeral containers), private registries through the workloads' pull secrets, SBOMs.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ContainerPayload, ScanIngestRequest, SbomIngestRequest } from '../../src/types.js';
import { validate } from '../support/contract.js';
import {
  cronJob,
  deployment,
  imagePullSecret,
  pod,
  replicaSet,
  serviceAccount,
  statefulSet,
} from '../support/k8s-objects.js';
import { logsWith, runScanner, scannedRef, startStandIns, type ScannerRun, type StandIns } from '../support/harness.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const API_TAG = 'ghcr.io/acme/api:1.4';
const API_D1 = `ghcr.io/acme/api@${D('1')}`;
const API_D2 = `ghcr.io/acme/api@${D('2')}`;
const ISTIO = `docker.io/istio/proxyv2@${D('9')}`;
const BUSYBOX = `docker.io/library/busybox@${D('b')}`;
const POSTGRES = `docker.io/library/postgres@${D('3')}`;
const NGINX = `docker.io/library/nginx@${D('4')}`;
const PRIVATE = `registry.private:5000/team/app@${D('5')}`;
const BUILDER = `registry.private:5000/team/builder@${D('6')}`;
const PASSWORD = 'pull-S3cret-9f2c';
const SA_PASSWORD = 'sa-pull-S3cret-77aa';

function cluster() {
  const api = deployment({ namespace: 'shop', name: 'api', containers: [{ name: 'app', image: API_TAG }] });
  const apiRs = replicaSet({ namespace: 'shop', owner: api });
  const db = statefulSet({ namespace: 'shop', name: 'db', containers: [{ name: 'pg', image: 'postgres:16' }] });
  const web = deployment({ namespace: 'shop', name: 'web', containers: [{ name: 'nginx', image: 'nginx:1.25' }] });
  const web2 = deployment({
    namespace: 'shop',
    name: 'web-canary',
    containers: [{ name: 'nginx', image: 'nginx:latest' }],
  });
  const nightly = cronJob({ namespace: 'shop', name: 'nightly', containers: [{ name: 'run', image: 'alpine:3.10' }] });
  const priv = deployment({
    namespace: 'shop',
    name: 'private',
    imagePullSecrets: ['regcred'],
    containers: [{ name: 'app', image: 'registry.private:5000/team/app:2.0' }],
  });
  const builder = deployment({
    namespace: 'shop',
    name: 'builder',
    serviceAccountName: 'builder',
    containers: [{ name: 'b', image: 'registry.private:5000/team/builder:1' }],
  });
  const owned = (owner: ReturnType<typeof deployment>) => replicaSet({ namespace: 'shop', owner });
  const [webRs, web2Rs, privRs, builderRs] = [owned(web), owned(web2), owned(priv), owned(builder)];
  return [
    api,
    apiRs,
    db,
    web,
    web2,
    nightly,
    priv,
    builder,
    webRs,
    web2Rs,
    privRs,
    builderRs,
    // A tag that moved during a rollout: two replicas run two digests. One Pod got an injected istio sidecar,
    // the other an ephemeral debug container.
    pod({
      namespace: 'shop',
      name: 'api-a',
      owner: apiRs,
      containers: [
        { name: 'app', image: API_TAG },
        { name: 'istio-proxy', image: 'docker.io/istio/proxyv2:1.22' },
      ],
      imageIDs: { app: API_D1, 'istio-proxy': ISTIO },
    }),
    pod({
      namespace: 'shop',
      name: 'api-b',
      owner: apiRs,
      containers: [{ name: 'app', image: API_TAG }],
      ephemeralContainers: [{ name: 'debugger', image: 'busybox:1.36' }],
      imageIDs: { app: API_D2, debugger: BUSYBOX },
    }),
    pod({ namespace: 'shop', owner: db, imageIDs: { pg: `docker-pullable://postgres@${D('3')}` } }),
    pod({ namespace: 'shop', name: 'web-1', owner: webRs, imageIDs: { nginx: NGINX } }),
    pod({ namespace: 'shop', name: 'web-canary-1', owner: web2Rs, imageIDs: { nginx: NGINX } }),
    pod({
      namespace: 'shop',
      name: 'private-1',
      owner: privRs,
      imagePullSecrets: ['regcred'],
      imageIDs: { app: PRIVATE },
    }),
    pod({
      namespace: 'shop',
      name: 'builder-1',
      owner: builderRs,
      serviceAccountName: 'builder',
      imageIDs: { b: BUILDER },
    }),
    pod({
      namespace: 'shop',
      name: 'debug-shell',
      containers: [{ name: 'shell', image: 'alpine:3.10' }],
      imageIDs: { shell: `docker.io/library/alpine@${D('7')}` },
    }),
    imagePullSecret({
      namespace: 'shop',
      name: 'regcred',
      auths: { 'registry.private:5000': { username: 'robot', password: PASSWORD } },
    }),
    imagePullSecret({
      namespace: 'shop',
      name: 'other-registry',
      auths: { 'ghcr.io': { username: 'x', password: 'unrelated-pw' } },
    }),
    imagePullSecret({
      namespace: 'shop',
      name: 'builder-cred',
      auths: { 'registry.private:5000': { username: 'builder', password: SA_PASSWORD } },
    }),
    serviceAccount({ namespace: 'shop', name: 'builder', imagePullSecrets: ['builder-cred'] }),
  ];
}

const trivy = {
  images: {
    [API_TAG]: { report: 'real_juice-shop-v10.2.0_alpine_node-pkg_236-vulns.json' }, // what the tag points at today: must NOT be reported
    [API_D1]: { report: 'trivy-v0.69.3_alpine-3.10_os-pkgs.json' },
    [API_D2]: { report: 'trivy-v0.69.3_debian-buster_os-pkgs.json' },
    [ISTIO]: { report: 'trivy-v0.69.3_distroless-base_debian.json' },
    [BUSYBOX]: { report: 'trivy-v0.69.3_busybox_no-os_cargo-lang-pkgs.json' },
    [POSTGRES]: { report: 'trivy-v0.69.3_ubi-7_redhat_python-pkg.json' },
    [NGINX]: { report: 'trivy-v0.69.3_distroless-base_debian.json' },
    'docker.io/library/alpine:3.10': { report: 'trivy-v0.69.3_alpine-3.10_os-pkgs.json' },
    [`docker.io/library/alpine@${D('7')}`]: { report: 'trivy-v0.69.3_alpine-3.10_os-pkgs.json' },
    [PRIVATE]: { report: 'trivy-v0.69.3_sle-micro-5.4_zero-vulns.json' },
    [BUILDER]: { report: 'trivy-v0.69.3_spring4shell-jre11_jar_cvss-ghsa-nvd-redhat.json' },
  },
  requireDockerConfigFor: {
    [PRIVATE]: { registry: 'registry.private:5000', username: 'robot', password: PASSWORD },
    [BUILDER]: { registry: 'registry.private:5000', username: 'builder', password: SA_PASSWORD },
  },
};

function container(payload: ScanIngestRequest, workload: string, name: string): ContainerPayload {
  const found = payload.workloads.find((w) => w.name === workload)?.containers.find((c) => c.name === name);
  assert.ok(found, `container ${workload}/${name} is in the payload`);
  return found;
}

describe('scanning what actually runs', { timeout: 120_000 }, () => {
  let standIns: StandIns;
  let run: ScannerRun;
  let payload: ScanIngestRequest;

  before(async () => {
    standIns = await startStandIns({ cluster: { objects: cluster() }, trivy });
    run = await runScanner({ ...standIns.env, SCAN_NAMESPACES: 'shop', SBOM_ENABLED: 'true' });
    payload = standIns.ephor.scanIngests()[0]!.body as ScanIngestRequest;
  });
  after(() => standIns?.close());

  test('delivered, valid against the contract', () => {
    assert.equal(run.exitCode, 0, run.stdout);
    assert.deepEqual(standIns.ephor.scanIngests()[0]!.contractErrors, []);
  });

  test('the running digests are scanned, each once; the moved tag itself is not', async () => {
    const refs = (await standIns.scans()).map(scannedRef).sort();
    assert.deepEqual(
      refs,
      [API_D1, API_D2, ISTIO, BUSYBOX, POSTGRES, NGINX, 'docker.io/library/alpine:3.10', PRIVATE, BUILDER].sort(),
    );
  });

  test("a container whose replicas run two digests gets both digests' findings, and keeps its spec name and tag", () => {
    const app = container(payload, 'api', 'app');
    assert.deepEqual([app.image_name, app.image_tag], ['ghcr.io/acme/api', '1.4']);
    assert.deepEqual(app.repo_digests, [API_D1, API_D2]);
    assert.equal(app.vulnerabilities.length, 4 + 2, 'alpine (4) + debian (2), not the juice-shop findings of the tag');
  });

  test('an injected sidecar and an ephemeral container appear under their workload', () => {
    const api = payload.workloads.find((w) => w.name === 'api')!;
    assert.deepEqual(
      api.containers.map((c) => c.name),
      ['app', 'istio-proxy', 'debugger'],
    );
    assert.deepEqual(container(payload, 'api', 'istio-proxy').repo_digests, [ISTIO]);
    assert.equal(container(payload, 'api', 'debugger').vulnerabilities.length, 2);
  });

  test('two tags of one digest are one scan; a dockershim image ID is normalised', () => {
    assert.equal(
      container(payload, 'web', 'nginx').vulnerabilities.length,
      container(payload, 'web-canary', 'nginx').vulnerabilities.length,
    );
    assert.deepEqual(container(payload, 'web-canary', 'nginx').image_tag, 'latest');
    assert.deepEqual(container(payload, 'db', 'pg').repo_digests, [POSTGRES]);
  });

  test('no running Pod: the spec tag is scanned and the ledger says so', () => {
    const ledger = payload.scan_config.scanned_by_tag;
    assert.deepEqual(ledger, [
      { workload: 'nightly', kind: 'CronJob', container: 'run', image: 'alpine:3.10', reason: 'no_running_pod' },
    ]);
    assert.equal(payload.scan_config.coverage.containers_by_spec_tag, 1);
  });

  test('a standalone Pod is not reported unless Pod is among the workload types', () => {
    assert.equal(
      payload.workloads.find((w) => w.name === 'debug-shell'),
      undefined,
    );
  });

  test('private registries: the pull secret of the Pod, or of its ServiceAccount, reaches Trivy for that registry only', async () => {
    assert.equal(container(payload, 'private', 'app').vulnerabilities.length, 0);
    assert.equal(container(payload, 'builder', 'b').vulnerabilities.length, 1);
    const scans = await standIns.scans();
    for (const scan of scans) {
      const ref = scannedRef(scan);
      if (ref === PRIVATE || ref === BUILDER) assert.ok(scan.env.DOCKER_CONFIG, `${ref} gets a DOCKER_CONFIG`);
      else assert.equal(scan.env.DOCKER_CONFIG, undefined, `${ref} gets no credentials`);
      assert.ok(!scan.argv.join(' ').includes(PASSWORD) && !scan.argv.join(' ').includes(SA_PASSWORD));
      assert.equal(scan.env.TRIVY_USERNAME, undefined);
      assert.equal(scan.env.TRIVY_PASSWORD, undefined);
    }
  });

  test('the pull secrets appear in no log line, payload or SBOM', () => {
    const everything = [run.stdout, run.stderr, ...standIns.ephor.requests.map((r) => JSON.stringify(r.body))].join(
      '\n',
    );
    for (const secret of [PASSWORD, SA_PASSWORD, Buffer.from(`robot:${PASSWORD}`).toString('base64')])
      assert.ok(!everything.includes(secret));
  });

  test('SBOMs: one per scanned digest and image reference, linked to the containers, valid against the contract', () => {
    const sbomPosts = standIns.ephor.requests.filter((r) => r.path === '/api/v1/sbom/ingest');
    assert.ok(sbomPosts.length > 0);
    const references = new Set(
      payload.workloads.flatMap((w) => w.containers.map((c) => `${c.image_name}:${c.image_tag}`)),
    );
    for (const post of sbomPosts) {
      assert.equal(post.headers['content-encoding'], 'gzip');
      const body = post.body as SbomIngestRequest;
      assert.deepEqual(validate('sbom-request', body), []);
      assert.ok([201, 200].includes(post.response.status), post.response.body);
      assert.equal(body.format, 'cyclonedx');
      assert.ok(references.has(body.image_reference), `${body.image_reference} links to a container`);
      // A tag scan knows its digest only if Trivy reported one (these fixtures do not).
      if (body.image_reference !== 'docker.io/library/alpine:3.10')
        assert.match(body.image_digest ?? '', /^sha256:[0-9a-f]{64}$/);
      assert.equal(body.scan_group_id, payload.scan_group_id);
    }
    const apiSboms = sbomPosts
      .map((p) => p.body as SbomIngestRequest)
      .filter((b) => b.image_reference === 'ghcr.io/acme/api:1.4');
    assert.deepEqual(apiSboms.map((b) => b.image_digest).sort(), [D('1'), D('2')]);
    assert.equal(standIns.ephor.maxConcurrentPosts, 1, 'SBOMs are posted one at a time, never beside a scan');
    const [summary] = logsWith(run, 'ephor-scanner completed');
    assert.deepEqual(summary!.sboms, { delivered: sbomPosts.length, failed: 0, skipped: 0 });
  });
});

describe('standalone Pods and forbidden secrets', { timeout: 120_000 }, () => {
  test('Pod among the workload types reports standalone Pods; forbidden secrets degrade to anonymous pulls with one warning', async () => {
    const standIns = await startStandIns({
      cluster: {
        objects: cluster(),
        faults: [
          { resource: 'secrets', status: 403 },
          { resource: 'serviceaccounts', status: 403 },
        ],
      },
      trivy,
    });
    try {
      const run = await runScanner({
        ...standIns.env,
        SCAN_NAMESPACES: 'shop',
        SCAN_WORKLOAD_TYPES: 'Deployment,StatefulSet,CronJob,Pod',
      });
      assert.equal(run.exitCode, 0, run.stdout);
      const payload = standIns.ephor.scanIngests()[0]!.body as ScanIngestRequest;
      const shell = payload.workloads.find((w) => w.name === 'debug-shell');
      assert.equal(shell?.kind, 'Pod');
      assert.deepEqual(
        shell.containers.map((c) => [c.name, c.repo_digests]),
        [['shell', [`docker.io/library/alpine@${D('7')}`]]],
      );
      const warnings = logsWith(
        run,
        'registry credentials cannot be read: images of this namespace are pulled anonymously (enable registryAuth in the chart)',
      );
      assert.equal(warnings.length, 1, 'one warning per namespace');
      assert.match(String(warnings[0]!.missing_rbac), /allow verb "get" on resources "secrets" and "serviceaccounts"/);
      const ledger = payload.scan_config.not_delivered;
      const privateEntry = ledger.find((e) => e.workload === 'private')!;
      assert.equal(privateEntry.reason, 'unauthorized');
      assert.match(
        privateEntry.detail ?? '',
        /^registry registry\.private:5000 refused the pull \(pull secrets tried: shop\/regcred\)/,
      );
    } finally {
      await standIns.close();
    }
  });
});
