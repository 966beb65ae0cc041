// Helm chart tests: real Helm 3.17.3 renders deploy/helm/ephor-scanner; kubernetes-models validates every
// object against the Kubernetes schemas; key fields are asserted explicitly (the schemas accept misspelt
// fields). Helm comes from `bash scripts/ensure-helm.sh` (.cache/helm/helm/helm) or $HELM.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync, cpSync, rmSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { chartDefaultEnv } from '../support/chart-settings.js';
import { CHART, type HelmResult, helmWorkspace, runHelm } from '../support/helm.js';
import { one, validateAll, type Obj } from './chart-render.js';

const { work: WORK, env: HELM_ENV } = helmWorkspace('ephor-chart-test-');

/** The exact install command of the issue, with the list form that Helm's --set can parse. */
const INSTALL = ['--set', 'ephor.apiUrl=http://ephor-api:8080', '--set', 'scan.namespaces={default,production}'];

function helm(args: string[]): HelmResult {
  return runHelm(args, HELM_ENV);
}

/** What `helm install` creates: the test hook (templates/tests/, run only by `helm test`) is left out; see check-hook.test.ts. */
function render(args: string[], release = 'ephor-scanner', chart = CHART): Obj[] {
  const r = helm(['template', release, chart, '--namespace', 'ephor', '--skip-tests', ...args]);
  assert.equal(r.status, 0, `helm template ${args.join(' ')} failed:\n${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => {
      assert.equal(d.errors.length, 0, `rendered YAML does not parse: ${d.errors.join('; ')}`);
      return d.toJS() as Obj | null;
    })
    .filter((d): d is Obj => d !== null);
}

function renderFails(args: string[]): string {
  const r = helm(['template', 'ephor-scanner', CHART, '--namespace', 'ephor', ...args]);
  assert.notEqual(
    r.status,
    0,
    `expected helm template ${args.join(' ')} to fail, it rendered:\n${r.stdout.slice(0, 400)}`,
  );
  return r.stderr;
}

let fileCount = 0;
function valuesFile(content: string): string {
  const file = path.join(WORK, `values-${++fileCount}.yaml`);
  writeFileSync(file, content);
  return file;
}

function kinds(docs: Obj[]): string[] {
  return docs.map((d) => d.kind as string).sort();
}

function maybe(docs: Obj[], kind: string): Obj | undefined {
  return docs.find((d) => d.kind === kind);
}

const podSpec = (docs: Obj[]): Obj => one(docs, 'CronJob').spec.jobTemplate.spec.template.spec;
const container = (docs: Obj[]): Obj => {
  const cs = podSpec(docs).containers as Obj[];
  assert.equal(cs.length, 1);
  return cs[0] as Obj;
};

type EnvSource = {
  value?: string;
  from: 'configmap' | 'secret' | 'env' | 'secretKeyRef';
  secret?: string;
  key?: string;
};

/** The environment the scanner container gets: envFrom (ConfigMap, Secret) then env, as the kubelet merges them. */
function effectiveEnv(docs: Obj[]): Map<string, EnvSource> {
  const env = new Map<string, EnvSource>();
  const c = container(docs);
  for (const ef of (c.envFrom ?? []) as Obj[]) {
    if (ef.configMapRef) {
      const cm = one(docs, 'ConfigMap', ef.configMapRef.name);
      for (const [k, v] of Object.entries(cm.data ?? {})) env.set(k, { value: v as string, from: 'configmap' });
    } else if (ef.secretRef) {
      const s = one(docs, 'Secret', ef.secretRef.name);
      for (const [k, v] of Object.entries(s.stringData ?? {})) env.set(k, { value: v as string, from: 'secret' });
    } else {
      assert.fail(`unexpected envFrom ${JSON.stringify(ef)}`);
    }
  }
  for (const e of (c.env ?? []) as Obj[]) {
    if (e.valueFrom?.secretKeyRef) {
      env.set(e.name, {
        from: 'secretKeyRef',
        secret: e.valueFrom.secretKeyRef.name,
        key: e.valueFrom.secretKeyRef.key,
      });
    } else {
      env.set(e.name, { value: e.value, from: 'env' });
    }
  }
  return env;
}

function envValues(docs: Obj[]): Record<string, string | undefined> {
  return Object.fromEntries([...effectiveEnv(docs)].map(([k, v]) => [k, v.value]));
}

/** The settings table's chart defaults (src/config/settings.ts), plus what the install sets and the chart computes. */
const DEFAULT_ENV: Record<string, string> = {
  ...chartDefaultEnv(),
  EPHOR_API_URL: 'http://ephor-api:8080',
  SCAN_NAMESPACES: 'default,production',
  SCAN_DEADLINE: '3300s',
  RUN_LOCK_WAIT: '1650s',
  // server mode keeps its layer cache on the volume: bounded by half of cache.size (5Gi)
  TRIVY_SCAN_CACHE_MAX_SIZE: '2684354560',
  TMPDIR: '/tmp',
  HOME: '/tmp',
};

/** scan.namespaces "*" or a namespace selector: the scanner lists the namespaces themselves (rbac.test.ts has every rule). */
const NAMESPACES_RULE = { apiGroups: [''], resources: ['namespaces'], verbs: ['list'] };

describe('helm', () => {
  test('the Helm binary is available (run "bash scripts/ensure-helm.sh" if not)', () => {
    const r = helm(['version', '--short']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^v3\./);
  });

  test('helm lint --strict passes with the install values and with every option switched on', () => {
    for (const extra of [
      [],
      ['--set', 'rbac.scope=namespaced', '--set', 'cache.enabled=false'],
      [
        '--set',
        'ephor.authHeader=Authorization',
        '--set',
        'ephor.authValue=Bearer x',
        '--set',
        'trivy.dbRepo=mirror.example.com/trivy-db',
      ],
      [
        '--set',
        'scan.namespaceSelector=team=payments',
        '--set',
        'scan.excludeNamespaces={kube-*}',
        '--set',
        'scan.workloadTypes={Deployment,Pod}',
      ],
      ['--set', 'registryAuth.enabled=false', '--set', 'rbac.scope=namespaced'],
    ]) {
      const r = helm(['lint', CHART, '--strict', ...INSTALL, ...extra]);
      assert.equal(r.status, 0, `helm lint --strict ${extra.join(' ')}:\n${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });
});

describe('the documented install', () => {
  const docs = render(INSTALL);

  test('renders exactly the expected objects, all valid Kubernetes objects', () => {
    validateAll(docs);
    assert.deepEqual(kinds(docs), [
      'ClusterRole',
      'ClusterRoleBinding',
      'ConfigMap',
      'CronJob',
      'PersistentVolumeClaim',
      'Role',
      'Role',
      'Role',
      'RoleBinding',
      'RoleBinding',
      'RoleBinding',
      'ServiceAccount',
    ]);
    for (const d of docs) {
      const suffix = { PersistentVolumeClaim: '-cache', Role: '', RoleBinding: '' }[d.kind as string] ?? '';
      if (d.kind.startsWith('Role')) {
        // read-only Roles in the scanned namespaces, the run lock's in the release namespace (rbac.test.ts)
        const lock = d.metadata.namespace === 'ephor';
        assert.equal(d.metadata.name, lock ? 'ephor-scanner-run-lock' : 'ephor-scanner');
        assert.ok(['ephor', 'default', 'production'].includes(d.metadata.namespace as string));
      } else {
        assert.equal(d.metadata.name, `ephor-scanner${suffix}`);
        if (!d.kind.startsWith('Cluster')) assert.equal(d.metadata.namespace, 'ephor');
      }
      assert.equal(d.metadata.labels['app.kubernetes.io/instance'], 'ephor-scanner');
      assert.equal(d.metadata.labels['app.kubernetes.io/version'], '0.1.0');
    }
  });

  test('the CronJob is named after the release and keeps the Go chart defaults', () => {
    const cj = one(docs, 'CronJob', 'ephor-scanner');
    assert.equal(cj.spec.schedule, '0 */6 * * *');
    assert.equal(cj.spec.concurrencyPolicy, 'Forbid');
    assert.equal(cj.spec.suspend, false);
    assert.equal(cj.spec.successfulJobsHistoryLimit, 3);
    assert.equal(cj.spec.failedJobsHistoryLimit, 3);
    assert.equal(cj.spec.timeZone, undefined);
    assert.equal(cj.spec.startingDeadlineSeconds, undefined);
    const job = cj.spec.jobTemplate.spec;
    assert.equal(job.backoffLimit, 1);
    assert.equal(job.activeDeadlineSeconds, 3600);
    assert.equal(job.ttlSecondsAfterFinished, undefined);
    assert.deepEqual(job.podFailurePolicy.rules[0], {
      action: 'FailJob',
      onExitCodes: { containerName: 'scanner', operator: 'In', values: [2] },
    });
    const pod = podSpec(docs);
    assert.equal(pod.restartPolicy, 'Never');
    assert.equal(pod.serviceAccountName, 'ephor-scanner');
    assert.equal(pod.automountServiceAccountToken, true);
    assert.equal(pod.enableServiceLinks, false);
    const c = container(docs);
    assert.equal(c.name, 'scanner');
    assert.equal(c.image, 'ghcr.io/ephor-scanner/ephor-scanner:0.1.0');
    assert.equal(c.imagePullPolicy, 'IfNotPresent');
    assert.equal(c.command, undefined, 'the image ENTRYPOINT runs the scan');
    assert.equal(c.args, undefined);
    // raised from the Go chart's 100m/512Mi and 1/2Gi: the Trivy server and its clients share the container
    assert.deepEqual(c.resources, { requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '2', memory: '3Gi' } });
    const ann = cj.spec.jobTemplate.spec.template.metadata.annotations;
    assert.match(ann['checksum/config'], /^[0-9a-f]{64}$/);
    assert.match(ann['checksum/secret'], /^[0-9a-f]{64}$/);
  });

  test('every setting reaches its environment variable with the documented default', () => {
    assert.deepEqual(envValues(docs), DEFAULT_ENV);
    assert.equal(maybe(docs, 'Secret'), undefined, 'no Secret without credentials');
  });

  test('the pod is hardened', () => {
    const pod = podSpec(docs);
    assert.deepEqual(pod.securityContext, {
      runAsNonRoot: true,
      runAsUser: 10001,
      runAsGroup: 10001,
      fsGroup: 10001,
      fsGroupChangePolicy: 'OnRootMismatch',
      seccompProfile: { type: 'RuntimeDefault' },
    });
    const sc = container(docs).securityContext;
    assert.equal(sc.runAsNonRoot, true);
    assert.equal(sc.runAsUser, 10001);
    assert.equal(sc.runAsGroup, 10001);
    assert.equal(sc.readOnlyRootFilesystem, true);
    assert.equal(sc.allowPrivilegeEscalation, false);
    assert.equal(sc.privileged, false);
    assert.deepEqual(sc.capabilities, { drop: ['ALL'] });
    assert.deepEqual(sc.seccompProfile, { type: 'RuntimeDefault' });
    assert.equal(one(docs, 'ServiceAccount').automountServiceAccountToken, false);
  });

  test('/tmp is a sized emptyDir and the Trivy cache is the PVC', () => {
    const pod = podSpec(docs);
    const mounts = container(docs).volumeMounts as Obj[];
    assert.deepEqual(mounts, [
      { name: 'tmp', mountPath: '/tmp' },
      { name: 'trivy-cache', mountPath: '/tmp/trivy-cache' },
    ]);
    assert.deepEqual(pod.volumes, [
      { name: 'tmp', emptyDir: { sizeLimit: '5Gi' } },
      { name: 'trivy-cache', persistentVolumeClaim: { claimName: 'ephor-scanner-cache' } },
    ]);
    const pvc = one(docs, 'PersistentVolumeClaim', 'ephor-scanner-cache');
    assert.deepEqual(pvc.spec, { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '5Gi' } } });
  });
});

describe('scan.namespaces forms', () => {
  const forms: [string, string[]][] = [
    ["--set 'scan.namespaces={default,production}'", ['--set', 'scan.namespaces={default,production}']],
    ["--set scan.namespaces='default\\,production'", ['--set', 'scan.namespaces=default\\,production']],
    ['values file, comma string', ['-f', valuesFile('scan:\n  namespaces: "default, production"\n')]],
    ['values file, list', ['-f', valuesFile('scan:\n  namespaces:\n    - default\n    - production\n')]],
  ];
  for (const [name, args] of forms) {
    test(`${name} -> SCAN_NAMESPACES=default,production`, () => {
      const docs = render(['--set', 'ephor.apiUrl=http://ephor-api:8080', ...args]);
      validateAll(docs);
      assert.equal(envValues(docs).SCAN_NAMESPACES, 'default,production');
    });
  }

  test('"*" scans all namespaces, and only then may the scanner list namespaces', () => {
    const docs = render(['--set', 'ephor.apiUrl=http://ephor-api:8080', '--set', 'scan.namespaces=*']);
    validateAll(docs);
    assert.equal(envValues(docs).SCAN_NAMESPACES, '*');
    const listsNamespaces = (d: Obj[]) =>
      (one(d, 'ClusterRole', 'ephor-scanner').rules as Obj[]).some((r) => isDeepStrictEqual(r, NAMESPACES_RULE));
    assert.ok(listsNamespaces(docs));
    assert.ok(!listsNamespaces(render(INSTALL)), 'no list on namespaces for explicit names');
  });

  test('the unquoted comma form fails inside Helm itself, before the chart is read', () => {
    const err = renderFails([
      '--set',
      'ephor.apiUrl=http://ephor-api:8080',
      '--set',
      'scan.namespaces=default,production',
    ]);
    assert.match(err, /key "production" has no value/);
  });
});

describe('namespace selection, standalone Pods and registry auth', () => {
  const api = ['--set', 'ephor.apiUrl=http://ephor-api:8080'];

  test('by default: no exclusions or selector in the ConfigMap, registry auth on', () => {
    const cm = one(render(INSTALL), 'ConfigMap');
    assert.equal(cm.data.SCAN_EXCLUDE_NAMESPACES, undefined);
    assert.equal(cm.data.SCAN_NAMESPACE_SELECTOR, undefined);
    assert.equal(cm.data.REGISTRY_AUTH_ENABLED, 'true');
  });

  const exclusionForms: [string, string[]][] = [
    ["--set 'scan.excludeNamespaces={kube-*,openshift-?}'", ['--set', 'scan.excludeNamespaces={kube-*,openshift-?}']],
    ["--set scan.excludeNamespaces='kube-*\\,openshift-?'", ['--set', 'scan.excludeNamespaces=kube-*\\,openshift-?']],
    ['values file, comma string', ['-f', valuesFile('scan:\n  excludeNamespaces: "kube-*, openshift-?"\n')]],
    ['values file, list', ['-f', valuesFile('scan:\n  excludeNamespaces:\n    - kube-*\n    - openshift-?\n')]],
  ];
  for (const [name, args] of exclusionForms) {
    test(`${name} -> SCAN_EXCLUDE_NAMESPACES=kube-*,openshift-?`, () => {
      const docs = render([...api, '--set', 'scan.namespaces=*', ...args]);
      validateAll(docs);
      assert.equal(envValues(docs).SCAN_EXCLUDE_NAMESPACES, 'kube-*,openshift-?');
      assert.equal(envValues(docs).SCAN_NAMESPACES, '*');
    });
  }

  test('an exclusion that matches none of the explicit namespaces is accepted', () => {
    const docs = render([
      ...INSTALL,
      '--set',
      'scan.excludeNamespaces={kube-*,prod}',
      '--set',
      'scan.namespaceSelector=team=payments',
    ]);
    validateAll(docs);
    assert.equal(envValues(docs).SCAN_EXCLUDE_NAMESPACES, 'kube-*,prod');
  });

  test('a namespace selector reaches SCAN_NAMESPACE_SELECTOR and grants list on namespaces', () => {
    const docs = render([
      ...api,
      '--set',
      'scan.namespaces=*',
      '--set',
      'scan.namespaceSelector=team=payments\\,env!=dev',
    ]);
    validateAll(docs);
    assert.equal(envValues(docs).SCAN_NAMESPACE_SELECTOR, 'team=payments,env!=dev');
    assert.ok((one(docs, 'ClusterRole').rules as Obj[]).some((r) => isDeepStrictEqual(r, NAMESPACES_RULE)));
  });

  test('a selector with explicit namespaces also lists namespaces (it filters the list by label)', () => {
    const docs = render([
      ...INSTALL,
      '-f',
      valuesFile('scan:\n  namespaceSelector: " team in (payments, billing) "\n'),
    ]);
    validateAll(docs);
    assert.equal(envValues(docs).SCAN_NAMESPACES, 'default,production');
    assert.equal(envValues(docs).SCAN_NAMESPACE_SELECTOR, 'team in (payments, billing)');
    assert.ok((one(docs, 'ClusterRole').rules as Obj[]).some((r) => isDeepStrictEqual(r, NAMESPACES_RULE)));
  });

  for (const [name, args] of [
    ['--set registryAuth.enabled=false', ['--set', 'registryAuth.enabled=false']],
    ['--set-string registryAuth.enabled=False', ['--set-string', 'registryAuth.enabled=False']],
  ] as [string, string[]][]) {
    test(`${name}: REGISTRY_AUTH_ENABLED=false and no access to secrets or serviceaccounts`, () => {
      // every rule of each combination: rbac.test.ts
      for (const docs of [
        render([...INSTALL, ...args]),
        render([...api, '--set', 'scan.namespaces=*', ...args]),
        render([...INSTALL, '--set', 'rbac.scope=namespaced', ...args]),
      ]) {
        validateAll(docs);
        assert.equal(envValues(docs).REGISTRY_AUTH_ENABLED, 'false');
        assert.ok(!JSON.stringify(docs).includes('"secrets"'));
      }
    });
  }

  test('Pod is an accepted workload type, in any case, as a list or a comma string', () => {
    for (const [args, expected] of [
      [['--set', 'scan.workloadTypes={Deployment,Pod}'], 'Deployment,Pod'],
      [['--set', 'scan.workloadTypes=deployment\\,cronjob\\,pod'], 'deployment,cronjob,pod'],
      [
        ['-f', valuesFile('scan:\n  workloadTypes: "Deployment,StatefulSet,DaemonSet,CronJob,POD"\n')],
        'Deployment,StatefulSet,DaemonSet,CronJob,POD',
      ],
    ] as [string[], string][]) {
      const docs = render([...INSTALL, ...args]);
      validateAll(docs);
      assert.equal(envValues(docs).SCAN_WORKLOAD_TYPES, expected);
    }
  });
});

describe('options', () => {
  test('authHeader/authValue go to the Secret only', () => {
    const token = 'Bearer s3cr3t-t0ken-value';
    const docs = render([...INSTALL, '--set', 'ephor.authHeader=Authorization', '--set', `ephor.authValue=${token}`]);
    validateAll(docs);
    const secret = one(docs, 'Secret', 'ephor-scanner');
    assert.equal(secret.type, 'Opaque');
    assert.deepEqual(secret.stringData, { EPHOR_AUTH_HEADER: 'Authorization', EPHOR_AUTH_VALUE: token });
    assert.equal(secret.data, undefined);
    const cm = one(docs, 'ConfigMap');
    assert.equal(cm.data.EPHOR_AUTH_HEADER, undefined);
    assert.equal(cm.data.EPHOR_AUTH_VALUE, undefined);
    for (const d of docs) {
      if (d.kind !== 'Secret') assert.ok(!JSON.stringify(d).includes('s3cr3t'), `auth value leaked into ${d.kind}`);
    }
    const env = effectiveEnv(docs);
    assert.deepEqual(env.get('EPHOR_AUTH_VALUE'), { value: token, from: 'secret' });
    assert.deepEqual(env.get('EPHOR_AUTH_HEADER'), { value: 'Authorization', from: 'secret' });
  });

  test('existingSecret: header and value come from the Secret the operator manages', () => {
    const docs = render([...INSTALL, '--set', 'ephor.existingSecret=ephor-auth']);
    validateAll(docs);
    assert.equal(maybe(docs, 'Secret'), undefined);
    const env = effectiveEnv(docs);
    assert.deepEqual(env.get('EPHOR_AUTH_HEADER'), {
      from: 'secretKeyRef',
      secret: 'ephor-auth',
      key: 'EPHOR_AUTH_HEADER',
    });
    assert.deepEqual(env.get('EPHOR_AUTH_VALUE'), {
      from: 'secretKeyRef',
      secret: 'ephor-auth',
      key: 'EPHOR_AUTH_VALUE',
    });

    const custom = render([
      ...INSTALL,
      '--set',
      'ephor.existingSecret=ephor-auth',
      '--set',
      'ephor.existingSecretKeys.authValue=token',
      '--set',
      'ephor.authHeader=X-Api-Key',
    ]);
    validateAll(custom);
    const env2 = effectiveEnv(custom);
    assert.deepEqual(env2.get('EPHOR_AUTH_HEADER'), { value: 'X-Api-Key', from: 'secret' });
    assert.deepEqual(env2.get('EPHOR_AUTH_VALUE'), { from: 'secretKeyRef', secret: 'ephor-auth', key: 'token' });
  });

  test('trivy.dbRepo and javaDbRepo set both variable names; lists are comma-joined', () => {
    const docs = render([
      ...INSTALL,
      '--set',
      'trivy.dbRepo=registry.internal/aquasecurity/trivy-db:2',
      '--set',
      'trivy.javaDbRepo={registry.internal/trivy-java-db:1,mirror.gcr.io/aquasec/trivy-java-db:1}',
    ]);
    validateAll(docs);
    const env = envValues(docs);
    assert.equal(env.TRIVY_DB_REPO, 'registry.internal/aquasecurity/trivy-db:2');
    assert.equal(env.TRIVY_DB_REPOSITORY, 'registry.internal/aquasecurity/trivy-db:2');
    assert.equal(env.TRIVY_JAVA_DB_REPO, 'registry.internal/trivy-java-db:1,mirror.gcr.io/aquasec/trivy-java-db:1');
    assert.equal(env.TRIVY_JAVA_DB_REPOSITORY, env.TRIVY_JAVA_DB_REPO);
    assert.equal(envValues(render(INSTALL)).TRIVY_DB_REPO, undefined, 'unset by default');
  });

  test('trivy.skipDbUpdate=true', () => {
    const docs = render([...INSTALL, '--set', 'trivy.skipDbUpdate=true']);
    validateAll(docs);
    assert.equal(envValues(docs).TRIVY_SKIP_DB_UPDATE, 'true');
  });

  test('cache.enabled=false: no PVC, a sized emptyDir instead', () => {
    const docs = render([...INSTALL, '--set', 'cache.enabled=false']);
    validateAll(docs);
    assert.equal(maybe(docs, 'PersistentVolumeClaim'), undefined);
    const vol = (podSpec(docs).volumes as Obj[]).find((v) => v.name === 'trivy-cache');
    assert.deepEqual(vol, { name: 'trivy-cache', emptyDir: { sizeLimit: '5Gi' } });
  });

  test('cache.storageClass, size and accessMode reach the PVC', () => {
    const docs = render([
      ...INSTALL,
      '--set',
      'cache.storageClass=fast',
      '--set',
      'cache.size=5Gi',
      '--set',
      'cache.accessMode=ReadWriteMany',
    ]);
    validateAll(docs);
    const pvc = one(docs, 'PersistentVolumeClaim');
    assert.deepEqual(pvc.spec, {
      accessModes: ['ReadWriteMany'],
      storageClassName: 'fast',
      resources: { requests: { storage: '5Gi' } },
    });
  });

  test('rbac.create=false and an existing ServiceAccount', () => {
    const docs = render([
      ...INSTALL,
      '--set',
      'rbac.create=false',
      '--set',
      'serviceAccount.create=false',
      '--set',
      'serviceAccount.name=scanner-sa',
    ]);
    validateAll(docs);
    assert.deepEqual(kinds(docs), ['ConfigMap', 'CronJob', 'PersistentVolumeClaim']);
    assert.equal(podSpec(docs).serviceAccountName, 'scanner-sa');
  });

  test('redis cache backend goes to the Secret (it may contain a password)', () => {
    const docs = render([
      ...INSTALL,
      '--set',
      'trivy.cacheMode=redis',
      '--set',
      'trivy.cacheBackend=redis://:pw@redis:6379',
    ]);
    validateAll(docs);
    assert.deepEqual(one(docs, 'Secret').stringData, { TRIVY_CACHE_BACKEND: 'redis://:pw@redis:6379' });
    assert.equal(one(docs, 'ConfigMap').data.TRIVY_CACHE_BACKEND, undefined);
    assert.equal(envValues(docs).TRIVY_CACHE_MODE, 'redis');
    // Other modes ignore a stray backend, as the Go chart did.
    const shared = render([
      ...INSTALL,
      '--set',
      'trivy.cacheMode=shared',
      '--set',
      'trivy.cacheBackend=redis://redis:6379',
    ]);
    assert.equal(envValues(shared).TRIVY_CACHE_BACKEND, undefined);
  });

  test('a values file written for the Go chart (quoted strings) renders the same variables', () => {
    const goValues = valuesFile(`
image:
  repository: ghcr.io/ephor-scanner/ephor-scanner
  tag: ""
  pullPolicy: IfNotPresent
schedule: "0 */6 * * *"
activeDeadlineSeconds: 3600
successfulJobsHistoryLimit: 3
failedJobsHistoryLimit: 3
backoffLimit: 1
serviceAccount:
  create: true
  annotations: {}
  name: ""
ephor:
  apiUrl: "https://ephor.example.com"
  authHeader: "X-Api-Key"
  authValue: "k3y"
scan:
  namespaces: "default,production"
  concurrency: "5"
  severity: "CRITICAL,HIGH"
  workloadTypes: "Deployment,StatefulSet"
trivy:
  binary: "trivy"
  cacheDir: "/var/cache/trivy"
  cacheMode: "shared"
  cacheBackend: ""
  timeout: "600"
  dbUpdateTimeout: "120"
  skipDbUpdate: "true"
  dbRepo: "registry.internal/trivy-db"
  javaDbRepo: ""
sbom:
  enabled: "true"
  format: "spdx-json"
log:
  level: "debug"
  format: "text"
cache:
  enabled: true
  storageClass: ""
  size: 2Gi
  accessMode: ReadWriteOnce
resources:
  requests: { cpu: 100m, memory: 512Mi }
  limits: { cpu: "1", memory: 2Gi }
nodeSelector: {}
tolerations: []
affinity: {}
`);
    const docs = render(['-f', goValues]);
    validateAll(docs);
    assert.deepEqual(envValues(docs), {
      ...DEFAULT_ENV,
      EPHOR_API_URL: 'https://ephor.example.com',
      EPHOR_AUTH_HEADER: 'X-Api-Key',
      EPHOR_AUTH_VALUE: 'k3y',
      SCAN_CONCURRENCY: '5',
      SCAN_SEVERITY: 'CRITICAL,HIGH',
      SCAN_WORKLOAD_TYPES: 'Deployment,StatefulSet',
      TRIVY_CACHE_DIR: '/var/cache/trivy',
      TRIVY_CACHE_MODE: 'shared',
      // shared mode's layer cache is on the volume too: half of its 2Gi
      TRIVY_SCAN_CACHE_MAX_SIZE: '1073741824',
      TRIVY_TIMEOUT: '600',
      TRIVY_DB_UPDATE_TIMEOUT: '120',
      TRIVY_SKIP_DB_UPDATE: 'true',
      TRIVY_DB_REPO: 'registry.internal/trivy-db',
      TRIVY_DB_REPOSITORY: 'registry.internal/trivy-db',
      SBOM_ENABLED: 'true',
      SBOM_FORMAT: 'spdx-json',
      LOG_LEVEL: 'debug',
      LOG_FORMAT: 'text',
    });
    assert.deepEqual((container(docs).volumeMounts as Obj[])[1], {
      name: 'trivy-cache',
      mountPath: '/var/cache/trivy',
    });
  });

  test('numbers and booleans are accepted where the Go chart had strings', () => {
    const docs = render([
      '-f',
      valuesFile(`
ephor: { apiUrl: "http://ephor-api:8080", timeout: 120, maxRetries: 0, maxPayloadBytes: 1048576 }
scan: { namespaces: [default, production], concurrency: 8, severity: [critical, high, unknown], workloadTypes: [deployment, cronjob] }
kube: { timeout: 15 }
trivy: { timeout: 900, dbUpdateTimeout: 10m, skipDbUpdate: false }
sbom: { enabled: true, format: spdx }
`),
    ]);
    validateAll(docs);
    const env = envValues(docs);
    assert.equal(env.EPHOR_TIMEOUT, '120');
    assert.equal(env.EPHOR_MAX_RETRIES, '0');
    assert.equal(env.EPHOR_MAX_PAYLOAD_BYTES, '1048576');
    assert.equal(env.SCAN_CONCURRENCY, '8');
    assert.equal(env.SCAN_SEVERITY, 'critical,high,unknown');
    assert.equal(env.SCAN_WORKLOAD_TYPES, 'deployment,cronjob');
    assert.equal(env.KUBE_TIMEOUT, '15');
    assert.equal(env.TRIVY_TIMEOUT, '900');
    assert.equal(env.TRIVY_DB_UPDATE_TIMEOUT, '10m');
    assert.equal(env.TRIVY_SKIP_DB_UPDATE, 'false');
    assert.equal(env.SBOM_ENABLED, 'true');
    assert.equal(env.SBOM_FORMAT, 'spdx');
  });

  test('operator options land where they belong', () => {
    const docs = render(
      [
        ...INSTALL,
        '-f',
        valuesFile(`
fullnameOverride: scanner
image: { repository: registry.internal/ephor-scanner, tag: "0.1.0-rc1", pullPolicy: Always }
imagePullSecrets: [{ name: regcred }]
schedule: "30 2 * * *"
timeZone: Europe/Berlin
suspend: true
startingDeadlineSeconds: 600
ttlSecondsAfterFinished: 86400
activeDeadlineSeconds: 7200
backoffLimit: 0
successfulJobsHistoryLimit: 1
failedJobsHistoryLimit: 5
serviceAccount: { annotations: { eks.amazonaws.com/role-arn: "arn:aws:iam::1:role/scanner" } }
podAnnotations: { example.com/team: security }
podLabels: { team: security }
priorityClassName: low-priority
nodeSelector: { kubernetes.io/os: linux }
tolerations: [{ key: dedicated, operator: Equal, value: scanners, effect: NoSchedule }]
affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, preference: { matchExpressions: [{ key: pool, operator: In, values: [scan] }] } }] } }
tmp: { sizeLimit: 10Gi, medium: Memory }
extraEnv:
  - { name: HTTPS_PROXY, value: "http://proxy:3128" }
  - name: TRIVY_PASSWORD
    valueFrom: { secretKeyRef: { name: registry-creds, key: password } }
extraVolumes: [{ name: ca, configMap: { name: corp-ca } }]
extraVolumeMounts: [{ name: ca, mountPath: /etc/corp-ca, readOnly: true }]
`),
      ],
      'prod',
    );
    validateAll(docs);
    const cj = one(docs, 'CronJob', 'scanner');
    assert.equal(cj.spec.schedule, '30 2 * * *');
    assert.equal(cj.spec.timeZone, 'Europe/Berlin');
    assert.equal(cj.spec.suspend, true);
    assert.equal(cj.spec.startingDeadlineSeconds, 600);
    assert.equal(cj.spec.successfulJobsHistoryLimit, 1);
    assert.equal(cj.spec.failedJobsHistoryLimit, 5);
    const job = cj.spec.jobTemplate.spec;
    assert.equal(job.ttlSecondsAfterFinished, 86400);
    assert.equal(job.activeDeadlineSeconds, 7200);
    assert.equal(job.backoffLimit, 0);
    const meta = job.template.metadata;
    assert.equal(meta.labels.team, 'security');
    assert.equal(meta.labels['app.kubernetes.io/instance'], 'prod');
    assert.equal(meta.annotations['example.com/team'], 'security');
    const pod = podSpec(docs);
    assert.equal(pod.priorityClassName, 'low-priority');
    assert.deepEqual(pod.imagePullSecrets, [{ name: 'regcred' }]);
    assert.deepEqual(pod.nodeSelector, { 'kubernetes.io/os': 'linux' });
    assert.equal(pod.tolerations[0].value, 'scanners');
    assert.equal(pod.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight, 1);
    assert.equal(pod.serviceAccountName, 'scanner');
    const c = container(docs);
    assert.equal(c.image, 'registry.internal/ephor-scanner:0.1.0-rc1');
    assert.equal(c.imagePullPolicy, 'Always');
    const env = effectiveEnv(docs);
    assert.deepEqual(env.get('HTTPS_PROXY'), { value: 'http://proxy:3128', from: 'env' });
    assert.deepEqual(env.get('TRIVY_PASSWORD'), { from: 'secretKeyRef', secret: 'registry-creds', key: 'password' });
    assert.deepEqual((c.volumeMounts as Obj[]).at(-1), { name: 'ca', mountPath: '/etc/corp-ca', readOnly: true });
    assert.deepEqual(pod.volumes[0], { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '10Gi' } });
    assert.deepEqual((pod.volumes as Obj[]).at(-1), { name: 'ca', configMap: { name: 'corp-ca' } });
    assert.equal(
      one(docs, 'ServiceAccount', 'scanner').metadata.annotations['eks.amazonaws.com/role-arn'],
      'arn:aws:iam::1:role/scanner',
    );
    assert.equal(one(docs, 'PersistentVolumeClaim').metadata.name, 'scanner-cache');
  });

  test('another release name gets <release>-ephor-scanner', () => {
    const docs = render(INSTALL, 'prod');
    assert.equal(one(docs, 'CronJob').metadata.name, 'prod-ephor-scanner');
    assert.equal(one(docs, 'PersistentVolumeClaim').metadata.name, 'prod-ephor-scanner-cache');
    // A CronJob name may have at most 52 characters (its Jobs append a suffix).
    const long = render(INSTALL, 'scanner-for-the-production-clusters-in-region-one');
    validateAll(long);
    const name = one(long, 'CronJob').metadata.name as string;
    assert.ok(name.length <= 52 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name), name);
    assert.equal(one(long, 'PersistentVolumeClaim').metadata.name, `${name}-cache`);
  });

  test('a changed ConfigMap or Secret changes the pod template checksum', () => {
    const ann = (args: string[]): Obj =>
      one(render([...INSTALL, ...args]), 'CronJob').spec.jobTemplate.spec.template.metadata.annotations;
    const base = ann([]);
    assert.deepEqual(ann([]), base, 'stable for the same values');
    assert.notEqual(ann(['--set', 'scan.concurrency=4'])['checksum/config'], base['checksum/config']);
    const a = ann(['--set', 'ephor.authHeader=Authorization', '--set', 'ephor.authValue=one']);
    const b = ann(['--set', 'ephor.authHeader=Authorization', '--set', 'ephor.authValue=two']);
    assert.notEqual(a['checksum/secret'], b['checksum/secret']);
    assert.equal(a['checksum/config'], b['checksum/config']);
  });
});

// Bad values and the sentence each one fails with: messages.test.ts.

test('NOTES.txt prints the manual-run and logs commands for this release', () => {
  // helm template does not render NOTES.txt, and helm install --dry-run needs a cluster:
  // render it through a copy of the chart where it is wrapped in a ConfigMap.
  const copy = path.join(WORK, 'notes-chart');
  cpSync(CHART, copy, { recursive: true });
  const notes = readFileSync(path.join(copy, 'templates', 'NOTES.txt'), 'utf8');
  rmSync(path.join(copy, 'templates', 'NOTES.txt'));
  writeFileSync(
    path.join(copy, 'templates', '_notes_under_test.tpl'),
    `{{- define "notes-under-test" -}}\n${notes}{{- end -}}\n`,
  );
  writeFileSync(
    path.join(copy, 'templates', 'notes-under-test.yaml'),
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ include "notes-under-test" . | quote }}\n',
  );
  const notesFor = (args: string[]): string =>
    one(
      render([...args, '--show-only', 'templates/notes-under-test.yaml'], 'ephor-scanner', copy),
      'ConfigMap',
      'notes',
    ).data.notes as string;
  const text = notesFor(INSTALL);
  assert.match(text, /kubectl get cronjobs -n ephor\n/);
  assert.match(text, /kubectl create job --from=cronjob\/ephor-scanner ephor-scanner-manual -n ephor\n/);
  assert.match(text, /kubectl logs -f job\/ephor-scanner-manual -n ephor\n/);
  assert.match(text, /helm test ephor-scanner -n ephor --logs\n/);
  assert.match(text, /Scanning namespaces: default,production\n/);
  const selected = notesFor([
    '--set',
    'ephor.apiUrl=http://ephor-api:8080',
    '--set',
    'scan.namespaces=*',
    '--set',
    'scan.namespaceSelector=team=payments',
    '--set',
    'scan.excludeNamespaces={kube-*}',
  ]);
  assert.match(selected, /Scanning namespaces: \* with labels team=payments, excluding kube-\*\n/);
  assert.ok(!text.includes('Sharded'), 'scan.shards 1: nothing about shards');
  const sharded = notesFor([...INSTALL, '--set', 'scan.shards=12']);
  assert.match(sharded, /\nSharded: each run is an Indexed Job of 12 Pods; index 0 alone posts to Ephor/);
  assert.match(sharded, /\nTrivy server for the shards: http:\/\/ephor-scanner-trivy\.ephor\.svc:4954 /);
  assert.match(sharded, /\nA manual run's Job name may have at most 60 characters /);
});
