// Sharded runs (scan.shards, README "Sharding"), rendered by the real Helm: scan.shards 1 is exactly the unsharded
// chart; N > 1 makes the CronJob's Job an Indexed Job with the headless Service, the token Secret, the shared Trivy
// server, the optional NetworkPolicy and, by the cluster's version, the per-index Job fields; names that would give a
// shard Pod an invalid hostname are refused with a sentence.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { CHART, helmWorkspace, runHelm } from '../support/helm.js';
import { chartRenderer, one, validateAll, type Obj } from './chart-render.js';

const { render, renderWithHooks, renderError, valuesFile } = chartRenderer('ephor-chart-shards-');
const { env: HELM_ENV } = helmWorkspace('ephor-chart-shards-raw-');

const INSTALL = ['--set', 'ephor.apiUrl=http://ephor-api:8080', '--set', 'scan.namespaces={default,production}'];
const SHARDED = [...INSTALL, '--set', 'scan.shards=4'];
const K8S_133 = ['--kube-version', '1.33.0'];

/** The raw `helm template` output, to compare renders byte for byte. */
function templateText(args: string[]): string {
  const r = runHelm(['template', 'ephor-scanner', CHART, '--namespace', 'ephor', '--skip-tests', ...args], HELM_ENV);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

const names = (docs: Obj[]): string[] => docs.map((d) => `${d.kind}/${d.metadata.name}`).sort();
const jobSpec = (docs: Obj[]): Obj => one(docs, 'CronJob').spec.jobTemplate.spec;
const podSpec = (docs: Obj[]): Obj => jobSpec(docs).template.spec;
const scanner = (docs: Obj[]): Obj => podSpec(docs).containers[0];
const envOf = (container: Obj, name: string): Obj | undefined => (container.env as Obj[]).find((e) => e.name === name);

/** The kubelet's $(VAR) expansion of a container variable from the variables declared before it. */
function expand(container: Obj, name: string, given: Record<string, string>): string {
  const env = container.env as Obj[];
  const at = env.findIndex((e) => e.name === name);
  assert.ok(at >= 0, `${name} is not set`);
  const earlier = new Set(env.slice(0, at).map((e) => e.name as string));
  return (env[at]!.value as string).replace(/\$\((\w+)\)/g, (whole, ref: string) => {
    assert.ok(earlier.has(ref), `${name} refers to $(${ref}), which is not declared before it (no expansion then)`);
    return given[ref] ?? whole;
  });
}

describe('scan.shards 1: the chart renders exactly what it renders without sharding', () => {
  test('the value absent, 1 as a number, in a values file, as a string, and with a new cluster version: byte-identical', () => {
    const base = templateText(INSTALL);
    assert.equal(templateText([...INSTALL, '--set', 'scan.shards=1']), base);
    assert.equal(templateText([...INSTALL, '--set-string', 'scan.shards=1']), base);
    assert.equal(templateText([...INSTALL, ...K8S_133, '--set', 'scan.shards=1']), base);
    assert.equal(
      templateText([...INSTALL, '--set', 'scan.shards=1', '--set', 'scan.shardNetworkPolicy.enabled=true']),
      base,
      'the NetworkPolicy is for shards only',
    );
  });

  test('nothing of sharding is in it: a plain Job, no Service, Deployment, shard Secret or variables', () => {
    const docs = render([...INSTALL, ...K8S_133, '--set', 'scan.shards=1']);
    assert.deepEqual(
      docs.filter((d) => ['Service', 'Deployment', 'NetworkPolicy', 'Secret'].includes(d.kind as string)),
      [],
    );
    const job = jobSpec(docs);
    for (const field of ['completionMode', 'completions', 'parallelism', 'backoffLimitPerIndex', 'successPolicy'])
      assert.equal(job[field], undefined, field);
    assert.equal(job.backoffLimit, 1);
    assert.equal(podSpec(docs).subdomain, undefined);
    assert.equal(podSpec(docs).topologySpreadConstraints, undefined);
    assert.ok(!JSON.stringify(docs).includes('SHARD_'));
    assert.ok(!JSON.stringify(docs).includes('scan-shard'));
  });
});

describe('scan.shards 4 on Kubernetes 1.33', () => {
  const docs = render([...SHARDED, ...K8S_133]);

  test('renders the unsharded objects plus the shard Service, the Secret and the Trivy server, all valid', () => {
    validateAll(docs);
    const unsharded = names(render(INSTALL));
    assert.deepEqual(
      names(docs),
      [
        ...unsharded,
        'Deployment/ephor-scanner-trivy',
        'Secret/ephor-scanner-shards',
        'Service/ephor-scanner-shards',
        'Service/ephor-scanner-trivy',
      ].sort(),
    );
  });

  test('the CronJob runs an Indexed Job of 4 Pods that is done when index 0 is, with per-index retries', () => {
    const job = jobSpec(docs);
    assert.equal(job.completionMode, 'Indexed');
    assert.equal(job.completions, 4);
    assert.equal(job.parallelism, 4);
    assert.equal(job.backoffLimitPerIndex, 1, 'backoffLimit per shard');
    assert.equal(job.backoffLimit, undefined, 'Kubernetes then defaults it to no Job-wide limit');
    assert.equal(job.podReplacementPolicy, 'Failed');
    assert.deepEqual(job.successPolicy, { rules: [{ succeededIndexes: '0' }] });
    assert.equal(job.activeDeadlineSeconds, 3600, 'one deadline for all shards');
    assert.equal(one(docs, 'ConfigMap').data.SCAN_DEADLINE, '3300s', 'SCAN_DEADLINE as unsharded');
    assert.deepEqual(job.podFailurePolicy.rules[0].onExitCodes.values, [2], 'a configuration error still fails it');
    assert.equal(one(docs, 'CronJob').spec.concurrencyPolicy, 'Forbid');
    assert.equal(podSpec(docs).restartPolicy, 'Never', 'required by backoffLimitPerIndex');
  });

  test('the headless Service selects the shard Pods by a fixed label and publishes them before they are ready', () => {
    const service = one(docs, 'Service', 'ephor-scanner-shards');
    assert.equal(service.spec.clusterIP, 'None');
    assert.equal(service.spec.publishNotReadyAddresses, true);
    assert.deepEqual(service.spec.ports, [{ name: 'shard', port: 8470, targetPort: 'shard', protocol: 'TCP' }]);
    const selector = service.spec.selector as Record<string, string>;
    assert.equal(selector['app.kubernetes.io/component'], 'scan-shard');
    const podLabels = jobSpec(docs).template.metadata.labels as Record<string, string>;
    for (const [key, value] of Object.entries(selector)) assert.equal(podLabels[key], value, key);
    assert.ok(!Object.keys(selector).some((key) => key.includes('job-name')), 'job-name changes with every run');
    assert.equal(podSpec(docs).subdomain, 'ephor-scanner-shards');
    assert.deepEqual(scanner(docs).ports, [{ name: 'shard', containerPort: 8470, protocol: 'TCP' }]);
  });

  test("every shard gets the shard variables, and the coordinator URL is index 0's hostname under the Service", () => {
    const c = scanner(docs);
    assert.deepEqual(envOf(c, 'SHARD_COUNT'), { name: 'SHARD_COUNT', value: '4' });
    assert.deepEqual(envOf(c, 'SHARD_LISTEN'), { name: 'SHARD_LISTEN', value: '0.0.0.0:8470' });
    assert.deepEqual(envOf(c, 'JOB_NAME')?.valueFrom, { fieldRef: { fieldPath: "metadata.labels['job-name']" } });
    assert.deepEqual(envOf(c, 'SHARD_TOKEN')?.valueFrom, {
      secretKeyRef: { name: 'ephor-scanner-shards', key: 'shard-token' },
    });
    assert.equal(envOf(c, 'JOB_COMPLETION_INDEX'), undefined, 'set by Kubernetes in an Indexed Job');
    // A scheduled run's Job and the hostname the Job controller gives index 0 (<job name>-<index>, subdomain).
    const jobName = 'ephor-scanner-29410560';
    const url = new URL(expand(c, 'SHARD_COORDINATOR_URL', { JOB_NAME: jobName }));
    assert.equal(url.protocol, 'http:');
    assert.equal(url.hostname, `${jobName}-0.${podSpec(docs).subdomain as string}`);
    assert.equal(url.port, '8470');
  });

  test('the shards spread over nodes, counting only their own run', () => {
    assert.deepEqual(podSpec(docs).topologySpreadConstraints, [
      {
        maxSkew: 1,
        topologyKey: 'kubernetes.io/hostname',
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: { matchLabels: one(docs, 'Service', 'ephor-scanner-shards').spec.selector },
        matchLabelKeys: ['batch.kubernetes.io/controller-uid'],
      },
    ]);
  });

  test('the tokens are generated into the Secret and reach the Pods only by reference', () => {
    const secret = one(docs, 'Secret', 'ephor-scanner-shards');
    assert.equal(secret.type, 'Opaque');
    assert.deepEqual(Object.keys(secret.data as Obj).sort(), ['shard-token', 'trivy-server-token']);
    const tokens = Object.values(secret.data as Record<string, string>).map((b64) =>
      Buffer.from(b64, 'base64').toString(),
    );
    for (const token of tokens) assert.match(token, /^[A-Za-z0-9]{48}$/);
    assert.notEqual(tokens[0], tokens[1]);
    for (const d of docs.filter((doc) => doc.kind !== 'Secret'))
      for (const token of tokens) assert.ok(!JSON.stringify(d).includes(token), `a token is in ${d.kind}`);
    // helm template has no cluster to look the Secret up in: each render generates (an upgrade reuses, README).
    const again = one(render([...SHARDED, ...K8S_133]), 'Secret', 'ephor-scanner-shards');
    assert.notEqual(again.data['shard-token'], secret.data['shard-token']);
  });

  test("the shards are clients of the chart's Trivy server; the cache volume is the server's", () => {
    const data = one(docs, 'ConfigMap').data as Record<string, string>;
    assert.equal(data.TRIVY_CACHE_MODE, 'server');
    assert.equal(data.TRIVY_SERVER_URL, 'http://ephor-scanner-trivy.ephor.svc:4954');
    assert.equal(data.TRIVY_SCAN_CACHE_MAX_SIZE, undefined, "the scanner's own layer cache bound is not used");
    assert.deepEqual(envOf(scanner(docs), 'TRIVY_SERVER_TOKEN')?.valueFrom, {
      secretKeyRef: { name: 'ephor-scanner-shards', key: 'trivy-server-token' },
    });
    const shardCache = (podSpec(docs).volumes as Obj[]).find((v) => v.name === 'trivy-cache');
    assert.deepEqual(shardCache, { name: 'trivy-cache', emptyDir: { sizeLimit: '5Gi' } });

    const deployment = one(docs, 'Deployment', 'ephor-scanner-trivy');
    assert.equal(deployment.spec.replicas, 1);
    assert.equal(deployment.spec.strategy.type, 'Recreate', 'the claim is ReadWriteOnce');
    const pod = deployment.spec.template.spec as Obj;
    const server = pod.containers[0] as Obj;
    assert.equal(server.image, scanner(docs).image, 'the scanner image contains Trivy');
    assert.deepEqual(server.command, ['/bin/sh', '-c']);
    assert.deepEqual(
      server.args.slice(1),
      ['/tmp/trivy-cache', String((5 * 1024 * 1024) / 2), '4954'],
      'KiB: half of 5Gi',
    );
    assert.match(server.args[0] as string, /exec trivy server --listen "0\.0\.0\.0:\$2" --cache-dir "\$0"\n$/);
    assert.deepEqual(envOf(server, 'TRIVY_TOKEN')?.valueFrom, {
      secretKeyRef: { name: 'ephor-scanner-shards', key: 'trivy-server-token' },
    });
    assert.equal(envOf(server, 'TRIVY_TOKEN_HEADER')?.value, data.TRIVY_SERVER_TOKEN_HEADER);
    assert.deepEqual(server.readinessProbe.httpGet, { path: '/healthz', port: 'http' });
    assert.deepEqual(server.ports, [{ name: 'http', containerPort: 4954, protocol: 'TCP' }]);
    assert.deepEqual(server.securityContext, scanner(docs).securityContext);
    assert.equal(pod.automountServiceAccountToken, false, 'the server needs no Kubernetes API');
    const cache = (pod.volumes as Obj[]).find((v) => v.name === 'trivy-cache');
    assert.deepEqual(cache?.persistentVolumeClaim, { claimName: 'ephor-scanner-cache' });
    const service = one(docs, 'Service', 'ephor-scanner-trivy');
    assert.deepEqual(service.spec.ports, [{ name: 'http', port: 4954, targetPort: 'http', protocol: 'TCP' }]);
    for (const [key, value] of Object.entries(service.spec.selector as Record<string, string>))
      assert.equal(deployment.spec.template.metadata.labels[key], value, key);
    assert.equal(service.spec.selector['app.kubernetes.io/component'], 'trivy-server', 'not the shard Pods');
  });

  test('RBAC and the ServiceAccount are those of one Pod: every shard reads as one Pod does', () => {
    const rbac = (d: Obj[]) => d.filter((doc) => /Role|ServiceAccount/.test(doc.kind as string));
    assert.deepEqual(rbac(docs), rbac(render([...INSTALL, ...K8S_133])));
    assert.equal(podSpec(docs).serviceAccountName, 'ephor-scanner');
  });
});

describe('scan.shards: the version-gated Job fields', () => {
  const job = (version: string) => jobSpec(render([...SHARDED, '--kube-version', version]));
  const spread = (version: string) =>
    podSpec(render([...SHARDED, '--kube-version', version])).topologySpreadConstraints[0] as Obj;

  test('Kubernetes 1.27: none of them, the Job-wide backoffLimit scaled to the shards, still an Indexed Job', () => {
    const docs = render([...SHARDED, '--kube-version', '1.27.4']);
    validateAll(docs);
    const spec = jobSpec(docs);
    assert.equal(spec.completionMode, 'Indexed');
    assert.equal(spec.completions, 4);
    assert.equal(spec.backoffLimit, 4);
    for (const field of ['backoffLimitPerIndex', 'podReplacementPolicy', 'successPolicy'])
      assert.equal(spec[field], undefined, field);
    assert.deepEqual(spread('1.27.4').matchLabelKeys, ['batch.kubernetes.io/controller-uid']);
  });

  test('1.25 and 1.26 have no matchLabelKeys (nor the controller-uid label it names)', () => {
    assert.equal(spread('1.26.0').matchLabelKeys, undefined);
    assert.equal(spread('1.25.0').whenUnsatisfiable, 'ScheduleAnyway');
  });

  test('1.29 and 1.30: per-index retries and replacement only after termination, no successPolicy yet', () => {
    for (const version of ['1.29.0', '1.30.2']) {
      const spec = job(version);
      assert.equal(spec.backoffLimitPerIndex, 1);
      assert.equal(spec.podReplacementPolicy, 'Failed');
      assert.equal(spec.backoffLimit, undefined);
      assert.equal(spec.successPolicy, undefined, version);
    }
  });

  test('1.31 and later: successPolicy on index 0; cloud version strings (v1.31.1-eks-...) count too', () => {
    assert.deepEqual(job('1.31.0').successPolicy, { rules: [{ succeededIndexes: '0' }] });
    assert.deepEqual(job('v1.31.1-eks-1234').successPolicy, { rules: [{ succeededIndexes: '0' }] });
  });

  test('backoffLimit is per shard on both sides of the gate', () => {
    const args = [...SHARDED, '--set', 'backoffLimit=3'];
    assert.equal(jobSpec(render([...args, ...K8S_133])).backoffLimitPerIndex, 3);
    assert.equal(jobSpec(render([...args, '--kube-version', '1.28.0'])).backoffLimit, 12);
  });
});

describe('scan.shards: options', () => {
  test('scan.shardNetworkPolicy.enabled: only shard-to-shard traffic on the shard port reaches the shards', () => {
    const docs = render([...SHARDED, '--set', 'scan.shardNetworkPolicy.enabled=true', '--set', 'scan.shardPort=9000']);
    validateAll(docs);
    const policy = one(docs, 'NetworkPolicy', 'ephor-scanner-shards');
    const shardLabels = one(docs, 'Service', 'ephor-scanner-shards').spec.selector as Obj;
    assert.deepEqual(policy.spec, {
      podSelector: { matchLabels: shardLabels },
      policyTypes: ['Ingress'],
      ingress: [{ from: [{ podSelector: { matchLabels: shardLabels } }], ports: [{ protocol: 'TCP', port: 9000 }] }],
    });
    assert.equal(envOf(scanner(docs), 'SHARD_LISTEN')?.value, '0.0.0.0:9000');
    assert.match(envOf(scanner(docs), 'SHARD_COORDINATOR_URL')?.value as string, /:9000$/);
    assert.equal(render(SHARDED).filter((d) => d.kind === 'NetworkPolicy').length, 0, 'off by default');
  });

  test("scan.shardNetworkPolicy.enabled: the chart's Trivy server admits only this release's Pods, on its port", () => {
    const args = [...SHARDED, '--set', 'scan.shardNetworkPolicy.enabled=true', '--set', 'trivyServer.port=5000'];
    const docs = render(args);
    // With the test hook: `helm test`'s check Pod asks the server too.
    const all = renderWithHooks(args);
    validateAll(docs);
    const policy = one(docs, 'NetworkPolicy', 'ephor-scanner-trivy');
    const server = one(docs, 'Deployment', 'ephor-scanner-trivy');
    assert.deepEqual(policy.spec.podSelector, { matchLabels: server.spec.selector.matchLabels });
    assert.deepEqual(policy.spec.policyTypes, ['Ingress']);
    assert.deepEqual(policy.spec.ingress[0].ports, [{ protocol: 'TCP', port: 5000 }]);
    const admitted = policy.spec.ingress[0].from[0].podSelector.matchLabels as Record<string, string>;
    const selects = (labels: Record<string, string>) => Object.entries(admitted).every(([k, v]) => labels[k] === v);
    assert.ok(selects(jobSpec(docs).template.metadata.labels), 'the shards reach it');
    assert.ok(selects(one(all, 'Pod').metadata.labels), "helm test's check Pod reaches it");
    assert.ok(!selects({ 'app.kubernetes.io/name': 'ephor-scanner', 'app.kubernetes.io/instance': 'other' }));
    assert.equal(policy.spec.ingress.length, 1);
    const external = render([...args, '--set', 'trivy.serverUrl=http://trivy.security:4954']);
    assert.deepEqual(
      external.filter((d) => d.kind === 'NetworkPolicy').map((d) => d.metadata.name),
      ['ephor-scanner-shards'],
      "an external server is not the chart's to fence",
    );
  });

  test('scan.shardSecret.existingSecret: no chart Secret; shards and server read that one', () => {
    const docs = render([...SHARDED, '--set', 'scan.shardSecret.existingSecret=scanner-tokens']);
    assert.equal(docs.filter((d) => d.kind === 'Secret').length, 0);
    const ref = (container: Obj, name: string) => envOf(container, name)?.valueFrom.secretKeyRef as Obj;
    assert.deepEqual(ref(scanner(docs), 'SHARD_TOKEN'), { name: 'scanner-tokens', key: 'shard-token' });
    assert.deepEqual(ref(scanner(docs), 'TRIVY_SERVER_TOKEN'), { name: 'scanner-tokens', key: 'trivy-server-token' });
    const server = one(docs, 'Deployment').spec.template.spec.containers[0] as Obj;
    assert.deepEqual(ref(server, 'TRIVY_TOKEN'), { name: 'scanner-tokens', key: 'trivy-server-token' });
  });

  test('an external trivy.serverUrl: the chart runs no server and keeps no cache claim', () => {
    const docs = render([...SHARDED, '--set', 'trivy.serverUrl=http://trivy.trivy-system:4954']);
    validateAll(docs);
    assert.equal(docs.filter((d) => ['Deployment', 'PersistentVolumeClaim'].includes(d.kind as string)).length, 0);
    assert.equal(one(docs, 'ConfigMap').data.TRIVY_SERVER_URL, 'http://trivy.trivy-system:4954');
    assert.equal(envOf(scanner(docs), 'TRIVY_SERVER_TOKEN'), undefined, 'its token is trivy.serverToken');
    assert.deepEqual(Object.keys(one(docs, 'Secret', 'ephor-scanner-shards').data as Obj).sort(), [
      'shard-token',
      'trivy-server-token',
    ]);
  });

  test("the server's Pod takes the scanner's placement, extra environment and volumes, the DB mirror and header", () => {
    const docs = render([
      ...SHARDED,
      '-f',
      valuesFile(`
nodeSelector: { pool: scanners }
tolerations: [{ key: dedicated, operator: Equal, value: scanners, effect: NoSchedule }]
extraEnv: [{ name: HTTPS_PROXY, value: "http://proxy:3128" }]
extraVolumes: [{ name: ca, configMap: { name: corp-ca } }]
extraVolumeMounts: [{ name: ca, mountPath: /etc/ssl/certs/corp, readOnly: true }]
trivy: { dbRepo: [mirror.internal/trivy-db:2, ghcr.io/aquasecurity/trivy-db:2], skipDbUpdate: true, serverTokenHeader: X-Trivy }
trivyServer: { port: 10000, resources: { limits: { memory: 4Gi } } }
`),
    ]);
    const pod = one(docs, 'Deployment').spec.template.spec as Obj;
    const server = pod.containers[0] as Obj;
    assert.deepEqual(pod.nodeSelector, { pool: 'scanners' });
    assert.equal(pod.tolerations[0].value, 'scanners');
    assert.equal(envOf(server, 'HTTPS_PROXY')?.value, 'http://proxy:3128');
    assert.equal(
      envOf(server, 'TRIVY_DB_REPOSITORY')?.value,
      'mirror.internal/trivy-db:2,ghcr.io/aquasecurity/trivy-db:2',
    );
    assert.equal(envOf(server, 'TRIVY_SKIP_DB_UPDATE')?.value, 'true');
    assert.equal(envOf(server, 'TRIVY_TOKEN_HEADER')?.value, 'X-Trivy');
    assert.equal(one(docs, 'ConfigMap').data.TRIVY_SERVER_TOKEN_HEADER, 'X-Trivy', 'the clients send it there');
    assert.deepEqual((pod.volumes as Obj[]).at(-1), { name: 'ca', configMap: { name: 'corp-ca' } });
    assert.deepEqual((server.volumeMounts as Obj[]).at(-1), {
      name: 'ca',
      mountPath: '/etc/ssl/certs/corp',
      readOnly: true,
    });
    assert.deepEqual(server.resources, {
      requests: { cpu: '500m', memory: '1Gi' },
      limits: { cpu: '2', memory: '4Gi' },
    });
    assert.equal(server.args.at(-1), '10000');
    assert.equal(one(docs, 'ConfigMap').data.TRIVY_SERVER_URL, 'http://ephor-scanner-trivy.ephor.svc:10000');
  });

  test('scan.shardSpool.storageClass: a ReadWriteMany spool claim every shard mounts, SPOOL_DIR on it', () => {
    const plain = render(SHARDED);
    assert.equal(envOf(scanner(plain), 'SPOOL_DIR'), undefined, 'no spool by default');
    assert.ok(!names(plain).includes('PersistentVolumeClaim/ephor-scanner-spool'));
    const docs = render([
      ...SHARDED,
      '--set',
      'scan.shardSpool.storageClass=efs-sc',
      '--set',
      'scan.shardSpool.size=2Gi',
    ]);
    validateAll(docs);
    assert.deepEqual(one(docs, 'PersistentVolumeClaim', 'ephor-scanner-spool').spec, {
      accessModes: ['ReadWriteMany'],
      storageClassName: 'efs-sc',
      resources: { requests: { storage: '2Gi' } },
    });
    assert.deepEqual(envOf(scanner(docs), 'SPOOL_DIR'), { name: 'SPOOL_DIR', value: '/var/spool/ephor-scanner' });
    assert.deepEqual((scanner(docs).volumeMounts as Obj[]).at(-1), {
      name: 'spool',
      mountPath: '/var/spool/ephor-scanner',
    });
    assert.deepEqual((podSpec(docs).volumes as Obj[]).at(-1), {
      name: 'spool',
      persistentVolumeClaim: { claimName: 'ephor-scanner-spool' },
    });
    const unsharded = render([...INSTALL, '--set', 'scan.shardSpool.storageClass=efs-sc']);
    assert.ok(!JSON.stringify(unsharded).includes('spool'), 'one Pod spools on its cache volume, as before');
    assert.equal(
      renderError([...SHARDED, '--set', 'scan.shardSpool.storageClass=efs-sc', '--set', 'scan.shardSpool.size=lots']),
      'scan.shardSpool.size must be a Kubernetes quantity such as 1Gi or 500Mi, not "lots"',
    );
  });

  test('cache.enabled=false: the server keeps its cache in an emptyDir for as long as it runs', () => {
    const docs = render([...SHARDED, '--set', 'cache.enabled=false']);
    assert.equal(docs.filter((d) => d.kind === 'PersistentVolumeClaim').length, 0);
    const volumes = one(docs, 'Deployment').spec.template.spec.volumes as Obj[];
    assert.deepEqual(
      volumes.find((v) => v.name === 'trivy-cache'),
      { name: 'trivy-cache', emptyDir: { sizeLimit: '5Gi' } },
    );
  });

  test("the server's start: a layer cache over half of cache.size is cleared, then trivy server runs in its place", (t) => {
    const work = mkdtempSync(path.join(tmpdir(), 'ephor-trivy-server-start-'));
    t.after(() => rmSync(work, { recursive: true, force: true }));
    // A stand-in trivy that records its arguments; the script runs under sh as the container's command does.
    const bin = path.join(work, 'bin');
    mkdirSync(bin);
    writeFileSync(path.join(bin, 'trivy'), '#!/bin/sh\necho "trivy $*" > "$0.args"\n', { mode: 0o755 });
    const start = (cacheDir: string): { stdout: string; trivyArgs: string } => {
      const docs = render([...SHARDED, '--set', 'cache.size=2Mi', '--set', `trivy.cacheDir=${cacheDir}`]);
      const server = one(docs, 'Deployment').spec.template.spec.containers[0] as Obj;
      const r = spawnSync(server.command[0] as string, [...(server.command.slice(1) as string[]), ...server.args], {
        encoding: 'utf8',
        env: { PATH: `${bin}:/usr/bin:/bin` },
        timeout: 10_000,
      });
      assert.equal(r.status, 0, r.stderr);
      return { stdout: r.stdout, trivyArgs: readFileSync(path.join(bin, 'trivy.args'), 'utf8') };
    };
    const cache = path.join(work, 'cache');
    mkdirSync(path.join(cache, 'fanal'), { recursive: true });
    mkdirSync(path.join(cache, 'db'));
    writeFileSync(path.join(cache, 'db', 'trivy.db'), Buffer.alloc(3 * 1024 * 1024, 1));
    writeFileSync(path.join(cache, 'fanal', 'fanal.db'), Buffer.alloc(512 * 1024, 1));
    const under = start(cache);
    assert.equal(under.stdout, '', 'half a MiB is under the bound (1 MiB): kept');
    assert.ok(existsSync(path.join(cache, 'fanal', 'fanal.db')));
    assert.equal(under.trivyArgs, `trivy server --listen 0.0.0.0:4954 --cache-dir ${cache}\n`);
    writeFileSync(path.join(cache, 'fanal', 'fanal.db'), Buffer.alloc(2 * 1024 * 1024, 1));
    const over = start(cache);
    assert.match(over.stdout, /^the layer cache \(\d+ KiB\) is over 1024 KiB \(half of cache\.size\): cleared\n$/);
    assert.ok(!existsSync(path.join(cache, 'fanal')), 'the layer cache is gone');
    assert.ok(existsSync(path.join(cache, 'db', 'trivy.db')), 'the vulnerability DB beside it is kept');
    assert.equal(over.trivyArgs, under.trivyArgs);
  });

  test('helm lint --strict passes sharded, with every sharding option', () => {
    for (const extra of [
      [],
      ['--set', 'scan.shardNetworkPolicy.enabled=true', '--kube-version', '1.33.0'],
      ['--set', 'scan.shardSpool.storageClass=efs-sc', '--kube-version', '1.27.0'],
      ['--set', 'trivy.serverUrl=http://trivy.trivy-system:4954', '--set', 'scan.shardSecret.existingSecret=tokens'],
    ]) {
      const r = runHelm(['lint', CHART, '--strict', ...SHARDED, ...extra], HELM_ENV);
      assert.equal(r.status, 0, `helm lint --strict ${extra.join(' ')}:\n${r.stdout}${r.stderr}`);
    }
  });
});

describe('scan.shards: refused values, each with a sentence', () => {
  test('a release name too long for the hostnames <job name>-<index> is refused; unsharded it is fine', () => {
    // 50 characters: the longest CronJob name that leaves <name>-<timestamp>-<one digit> within 63.
    const fits = 'scanner-for-the-production-clusters-in-region-one1';
    assert.equal(fits.length, 50);
    const fitsDocs = render([...SHARDED, '--set', `fullnameOverride=${fits}`]);
    assert.equal(one(fitsDocs, 'CronJob').metadata.name, fits);
    const tooLong = `${fits}x`;
    assert.equal(
      renderError([...SHARDED, '--set', `fullnameOverride=${tooLong}`]),
      `scan.shards=4 needs a CronJob name of at most 50 characters, and "${tooLong}" has 51: each run's Job is named <CronJob name>-<timestamp> (11 characters added) and each shard Pod's hostname <Job name>-<index> must be a DNS label of at most 63 characters, so a manual run (kubectl create job --from=cronjob/${tooLong}) needs a Job name of at most 61 characters too; install with a shorter release name or set fullnameOverride`,
    );
    render([...INSTALL, '--set', `fullnameOverride=${tooLong}`]);
    // Eleven shards: index 10 has two digits.
    assert.match(
      renderError([...INSTALL, '--set', 'scan.shards=11', '--set', `fullnameOverride=${fits}`]),
      /at most 49/,
    );
    render([...INSTALL, '--set', 'scan.shards=100', '--set', `fullnameOverride=${fits.slice(0, 49)}`]);
    // The release name path too (fullname = <release>-ephor-scanner, at most 52).
    const release = 'production-eu-west-cluster-number-one';
    const r = runHelm(['template', release, CHART, '-n', 'ephor', ...SHARDED], HELM_ENV);
    assert.notEqual(r.status, 0);
    assert.ok(
      r.stderr.includes(`needs a CronJob name of at most 50 characters, and "${release}-ephor-scanner" has 51`),
      r.stderr,
    );
    assert.equal(runHelm(['template', release, CHART, '-n', 'ephor', ...INSTALL], HELM_ENV).status, 0);
  });

  test('shard counts, ports and cache modes that cannot work', () => {
    const refused: Array<[string[], string]> = [
      [['--set', 'scan.shards=0'], 'scan.shards must be a whole number from 1 to 100 (scanner Pods per run), not "0"'],
      [
        ['--set', 'scan.shards=101'],
        'scan.shards must be a whole number from 1 to 100 (scanner Pods per run), not "101"',
      ],
      [
        ['--set', 'scan.shards=4', '--set', 'scan.shardPort=80'],
        'scan.shardPort must be a whole number from 1024 to 65535 (the port index 0 listens on for the other shards; the Pods run as non-root), not "80"',
      ],
      [
        ['--set', 'scan.shards=4', '--set', 'trivyServer.port=http'],
        'trivyServer.port must be a whole number from 1024 to 65535 (the port of the Trivy server the shards share), not "http"',
      ],
      [
        ['--set', 'scan.shards=4', '--set', 'trivy.cacheMode=ephemeral'],
        'scan.shards=4 needs trivy.cacheMode=server (the default), not "ephemeral": the shards are clients of one shared Trivy server (the chart\'s, or trivy.serverUrl), which keeps the layer cache and the vulnerability DB for all of them',
      ],
    ];
    for (const [args, message] of refused) assert.equal(renderError([...INSTALL, ...args]), message);
  });
});
