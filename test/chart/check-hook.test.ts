// The chart's Helm test hook (`helm test ephor-scanner -n ephor`) runs `ephor-scanner check` exactly as the CronJob
// would run a scan: same ServiceAccount, image, environment, security context and volumes. Also SCAN_DEADLINE, set
// from activeDeadlineSeconds minus scan.deadlineMargin. Rendered by the real Helm (test/support/helm.ts).
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Pod } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { CHART, type HelmResult, helmWorkspace, runHelm } from '../support/helm.js';
import { REPO_ROOT } from '../support/paths.js';

type Obj = Record<string, any>;

const { work: WORK, env: HELM_ENV } = helmWorkspace('ephor-chart-hook-test-');
const INSTALL = ['--set', 'ephor.apiUrl=http://ephor-api:8080', '--set', 'scan.namespaces={default,production}'];

function helm(args: string[]): HelmResult {
  return runHelm(args, HELM_ENV);
}

/** Everything `helm template` renders, hooks included (as `helm test` would create them). */
function render(args: string[], release = 'ephor-scanner'): Obj[] {
  const r = helm(['template', release, CHART, '--namespace', 'ephor', ...args]);
  assert.equal(r.status, 0, `helm template ${args.join(' ')} failed:\n${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Obj | null)
    .filter((d): d is Obj => d !== null);
}

function renderFails(args: string[]): string {
  const r = helm(['template', 'ephor-scanner', CHART, '--namespace', 'ephor', ...args]);
  assert.notEqual(r.status, 0, `expected helm template ${args.join(' ')} to fail`);
  return r.stderr;
}

let files = 0;
function valuesFile(content: string): string {
  const file = path.join(WORK, `values-${++files}.yaml`);
  writeFileSync(file, content);
  return file;
}

const hookPod = (docs: Obj[]): Obj => {
  const pods = docs.filter((d) => d.kind === 'Pod');
  assert.equal(pods.length, 1, 'one test Pod');
  return pods[0] as Obj;
};
const cronPod = (docs: Obj[]): Obj => docs.find((d) => d.kind === 'CronJob')!.spec.jobTemplate.spec.template.spec;
const configMap = (docs: Obj[]): Obj => docs.find((d) => d.kind === 'ConfigMap')!.data;

/** The hook Pod runs the check with the same pod-level and container-level settings as the CronJob's scanner. */
function assertSameAsCronJob(docs: Obj[]): void {
  const hook = hookPod(docs).spec;
  const cron = cronPod(docs);
  for (const key of [
    'serviceAccountName',
    'automountServiceAccountToken',
    'enableServiceLinks',
    'securityContext',
    'imagePullSecrets',
    'volumes',
    'nodeSelector',
    'affinity',
    'tolerations',
    'priorityClassName',
    'restartPolicy',
  ]) {
    assert.deepEqual(hook[key], cron[key], `pod ${key}`);
  }
  const [check] = hook.containers as Obj[];
  const [scanner] = cron.containers as Obj[];
  assert.equal((hook.containers as Obj[]).length, 1);
  for (const key of ['image', 'imagePullPolicy', 'envFrom', 'env', 'securityContext', 'volumeMounts', 'resources']) {
    assert.deepEqual(check![key], scanner![key], `container ${key}`);
  }
  assert.deepEqual(check!.command, ['node', '/app/ephor-scanner.mjs', 'check']);
  assert.equal(check!.args, undefined);
}

describe('Helm test hook: ephor-scanner check', () => {
  test("renders as a helm.sh/hook: test Pod with the chart's ServiceAccount and the check command; not part of an install", () => {
    const docs = render(INSTALL);
    const pod = hookPod(docs);
    assert.doesNotThrow(() => {
      new Pod(pod).validate();
    }, 'a valid Pod');
    assert.equal(pod.metadata.name, 'ephor-scanner-check');
    assert.equal(pod.metadata.namespace, 'ephor');
    assert.equal(pod.metadata.annotations['helm.sh/hook'], 'test');
    assert.equal(pod.metadata.annotations['helm.sh/hook-delete-policy'], 'before-hook-creation,hook-succeeded');
    assert.equal(pod.metadata.labels['app.kubernetes.io/instance'], 'ephor-scanner');
    assert.equal(pod.metadata.labels['app.kubernetes.io/component'], 'check');
    assert.equal(pod.spec.serviceAccountName, 'ephor-scanner');
    assert.equal(pod.spec.restartPolicy, 'Never');
    assert.equal(pod.spec.automountServiceAccountToken, true, "the check asks the API server with the scanner's token");
    assert.deepEqual(pod.spec.containers[0].command, ['node', '/app/ephor-scanner.mjs', 'check']);
    assert.equal(pod.spec.containers[0].image, 'ghcr.io/ephor-scanner/ephor-scanner:0.1.0');
    assert.equal(pod.spec.containers[0].securityContext.readOnlyRootFilesystem, true);
    assertSameAsCronJob(docs);

    const installed = render([...INSTALL, '--skip-tests']);
    assert.equal(installed.filter((d) => d.kind === 'Pod').length, 0, 'helm install creates no Pod; helm test does');
  });

  test("sharded: the check is one process that checks the shards' Trivy server, without the shard variables", () => {
    const docs = render([...INSTALL, '--set', 'scan.shards=4', '--kube-version', '1.33.0']);
    const hook = hookPod(docs).spec;
    const cron = cronPod(docs);
    const [check] = hook.containers as Obj[];
    const [scanner] = cron.containers as Obj[];
    assert.deepEqual(hook.volumes, cron.volumes, "the same scratch volumes (the cache claim is the server's)");
    assert.deepEqual(check!.envFrom, scanner!.envFrom);
    assert.equal(configMap(docs).TRIVY_SERVER_URL, 'http://ephor-scanner-trivy.ephor.svc:4954');
    const names = (c: Obj) => (c.env as Obj[]).map((e) => e.name as string);
    assert.ok(names(check!).includes('TRIVY_SERVER_TOKEN'), 'the check reaches the server with its token');
    assert.deepEqual(
      names(scanner!).filter((name) => !names(check!).includes(name)),
      ['SHARD_COUNT', 'SHARD_LISTEN', 'JOB_NAME', 'SHARD_COORDINATOR_URL', 'SHARD_TOKEN'],
      "only the CronJob's Pods are shards",
    );
    assert.equal(hook.subdomain, undefined);
  });

  test('same environment, Secret references, extra variables and volumes as the CronJob', () => {
    const docs = render([
      ...INSTALL,
      '--set',
      'ephor.existingSecret=ephor-auth',
      '--set',
      'cache.enabled=false',
      '--set',
      'sbom.enabled=true',
      '-f',
      valuesFile(`
extraEnv:
  - name: HTTPS_PROXY
    value: http://proxy.internal:3128
  - name: NODE_EXTRA_CA_CERTS
    value: /etc/ephor-ca/ca.crt
extraVolumes:
  - name: ephor-ca
    configMap: { name: ephor-ca }
extraVolumeMounts:
  - name: ephor-ca
    mountPath: /etc/ephor-ca
    readOnly: true
imagePullSecrets: [{ name: regcred }]
nodeSelector: { kubernetes.io/os: linux }
priorityClassName: low-priority
`),
    ]);
    assertSameAsCronJob(docs);
    const check = hookPod(docs).spec.containers[0];
    assert.deepEqual(check.envFrom, [{ configMapRef: { name: 'ephor-scanner' } }]);
    assert.deepEqual(
      check.env.map((e: Obj) => e.name),
      ['TMPDIR', 'HOME', 'EPHOR_AUTH_HEADER', 'EPHOR_AUTH_VALUE', 'HTTPS_PROXY', 'NODE_EXTRA_CA_CERTS'],
    );
    assert.deepEqual(check.env[3], {
      name: 'EPHOR_AUTH_VALUE',
      valueFrom: { secretKeyRef: { name: 'ephor-auth', key: 'EPHOR_AUTH_VALUE' } },
    });
    assert.deepEqual(check.volumeMounts.at(-1), { name: 'ephor-ca', mountPath: '/etc/ephor-ca', readOnly: true });
    assert.equal(configMap(docs).SBOM_ENABLED, 'true', 'the check reads the same ConfigMap');

    const withSecret = render([
      ...INSTALL,
      '--set',
      'ephor.authHeader=Authorization',
      '--set',
      'ephor.authValue=Bearer t',
    ]);
    assertSameAsCronJob(withSecret);
    assert.deepEqual(hookPod(withSecret).spec.containers[0].envFrom, [
      { configMapRef: { name: 'ephor-scanner' } },
      { secretRef: { name: 'ephor-scanner' } },
    ]);
  });

  test('another ServiceAccount or release name: the hook follows the CronJob', () => {
    const existing = render([
      ...INSTALL,
      '--set',
      'serviceAccount.create=false',
      '--set',
      'serviceAccount.name=scanner-sa',
    ]);
    assert.equal(hookPod(existing).spec.serviceAccountName, 'scanner-sa');
    assertSameAsCronJob(existing);
    const other = render(INSTALL, 'security');
    assert.equal(hookPod(other).metadata.name, 'security-ephor-scanner-check');
    assert.equal(hookPod(other).spec.serviceAccountName, 'security-ephor-scanner');
    assertSameAsCronJob(other);
    const long = render([...INSTALL, '--set', `fullnameOverride=${'x'.repeat(60)}`]);
    assert.ok(hookPod(long).metadata.name.length <= 63);
  });

  test('the root README documents helm test next to the manual run', () => {
    const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const section = readme.slice(
      readme.indexOf('### Run a scan now'),
      readme.indexOf('\n### ', readme.indexOf('### Run a scan now') + 1),
    );
    assert.ok(section.includes('helm test ephor-scanner -n ephor'), section);
    assert.ok(section.includes('kubectl create job --from=cronjob/ephor-scanner ephor-scanner-manual -n ephor'));
  });
});

describe('SCAN_DEADLINE from activeDeadlineSeconds and scan.deadlineMargin', () => {
  const cases: Array<[string, string[], string]> = [
    ['defaults (3600 - 300)', [], '3300s'],
    [
      'activeDeadlineSeconds 7200, margin 600',
      ['--set', 'activeDeadlineSeconds=7200', '--set', 'scan.deadlineMargin=600'],
      '6600s',
    ],
    ['margin as a number in a values file', ['-f', valuesFile('scan:\n  deadlineMargin: 120\n')], '3480s'],
    ['margin 0: the Job deadline itself', ['--set', 'scan.deadlineMargin=0'], '3600s'],
    ["a Job deadline over a day: capped at the scanner's 24h", ['--set', 'activeDeadlineSeconds=172800'], '86400s'],
  ];
  for (const [name, args, expected] of cases) {
    test(`${name} -> ${expected}`, () => {
      const docs = render([...INSTALL, ...args]);
      assert.equal(configMap(docs).SCAN_DEADLINE, expected);
      assert.equal(
        docs.find((d) => d.kind === 'CronJob')!.spec.jobTemplate.spec.activeDeadlineSeconds,
        Number(args.find((a) => a.startsWith('activeDeadlineSeconds='))?.split('=')[1] ?? 3600),
      );
    });
  }

  test('a margin not smaller than activeDeadlineSeconds fails with a clear message', () => {
    const error = renderFails([...INSTALL, '--set', 'activeDeadlineSeconds=300']);
    assert.match(
      error,
      /activeDeadlineSeconds \(300\) must be larger than scan\.deadlineMargin \(300\): .*raise activeDeadlineSeconds or lower scan\.deadlineMargin/,
    );
    assert.match(
      renderFails([...INSTALL, '--set', 'activeDeadlineSeconds=600', '--set', 'scan.deadlineMargin=900']),
      /activeDeadlineSeconds \(600\) must be larger than scan\.deadlineMargin \(900\)/,
    );
  });

  test('only a whole number >= 0 is accepted, with a sentence naming the value', () => {
    const rule = 'scan.deadlineMargin must be a whole number, 0 or more (seconds kept free at the end of a run)';
    assert.ok(renderFails([...INSTALL, '--set', 'scan.deadlineMargin=-5']).includes(`${rule}, not "-5"`));
    assert.ok(renderFails([...INSTALL, '--set-string', 'scan.deadlineMargin=5m']).includes(`${rule}, not "5m"`));
    assert.match(renderFails([...INSTALL, '--set', 'scan.deadlineMargin=1.5']), /scan\.deadlineMargin/);
  });
});
