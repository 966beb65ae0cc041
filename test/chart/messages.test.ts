// What `helm install` prints for a bad value, with the real Helm: one sentence naming the key, what is wrong and the
// fix (templates/_validate.tpl), never a JSON-Schema regular expression; values.schema.json keeps only what its own
// messages say well (types, enums, unknown keys). Helm renders the same way for install, upgrade and template.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CHART } from '../support/helm.js';
import { chartRenderer } from './chart-render.js';

const { render, renderError, renderStderr, valuesFile } = chartRenderer('ephor-chart-messages-');
const api = ['--set', 'ephor.apiUrl=http://ephor-api:8080'];
const ns = ['--set', 'scan.namespaces=default'];
const ok = [...api, ...ns];

/** What a schema pattern failure looks like: a regular expression no user should have to read. */
const RAW_SCHEMA_TEXT = /Does not match pattern|String length must be|\^\(|\[a-z0-9/;

const NAMESPACE_RULE =
  "(lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)";
const GLOB_RULE =
  "is neither a namespace name nor a glob of one (lower-case letters, digits, '-', '*' for any run of characters, '?' for one)";
const EMPTY_ENTRY = 'remove the trailing or doubled comma (entries are separated by single commas)';
const DURATION_RULE = 'must be whole seconds (300) or a duration such as 90s, 10m or 1h30m';
const SIZE_RULE = 'must be a size from 64Ki to 1Gi: bytes (1048576) or with a suffix (512Ki, 8Mi)';
const NO_DB =
  'trivy.skipDbUpdate=true needs a vulnerability DB that is already in trivy.cacheDir, but with cache.enabled=false that is an emptyDir that starts empty every run, so every scan would fail: set cache.enabled=true (a persistent cache that keeps the DB between runs), or trivy.skipDbUpdate=false (download the DB each run; trivy.dbRepo for a mirror)';
const NO_DB_END =
  ', or use an external Trivy server (trivy.serverUrl), or mount a volume holding the DB under trivy.cacheDir with extraVolumes and extraVolumeMounts';

const sentences: [string, string[], string][] = [
  [
    'trivy.serverUrl not an http(s) URL',
    [...ok, '--set', 'trivy.serverUrl=trivy-server:4954'],
    'trivy.serverUrl must be the http(s) URL of a Trivy server without credentials, query or fragment, e.g. http://trivy-server.trivy:4954, not "trivy-server:4954"',
  ],
  [
    'trivy.serverTokenHeader not a header name',
    [...ok, '--set', 'trivy.serverUrl=http://trivy-server:4954', '--set', 'trivy.serverTokenHeader=Trivy Token'],
    'trivy.serverTokenHeader must be an HTTP header name (letters, digits and \'-\', e.g. Trivy-Token), not "Trivy Token"',
  ],
  // The common mistakes of a first install
  [
    'missing ephor.apiUrl',
    ns,
    'ephor.apiUrl is required: the Ephor API base URL, e.g. --set ephor.apiUrl=http://ephor-api:8080',
  ],
  [
    'missing scan.namespaces',
    api,
    `scan.namespaces is required: --set 'scan.namespaces={default,production}' (a list), --set scan.namespaces='default\\,production' (commas escaped for Helm), or "*" for all namespaces`,
  ],
  [
    'an empty namespace list',
    [...api, '--set', 'scan.namespaces={}'],
    `scan.namespaces is required: --set 'scan.namespaces={default,production}' (a list), --set scan.namespaces='default\\,production' (commas escaped for Helm), or "*" for all namespaces`,
  ],
  [
    'a trailing comma in scan.namespaces',
    [...api, '--set', 'scan.namespaces=default\\,'],
    `scan.namespaces has an empty entry in "default,": ${EMPTY_ENTRY}`,
  ],
  [
    'a doubled comma in a values file',
    [...api, '-f', valuesFile('scan:\n  namespaces: "default,,production"\n')],
    `scan.namespaces has an empty entry in "default,,production": ${EMPTY_ENTRY}`,
  ],
  [
    'an empty item in a list',
    [...api, '-f', valuesFile('scan:\n  namespaces: [default, ""]\n')],
    `scan.namespaces has an empty entry in ["default",""]: ${EMPTY_ENTRY}`,
  ],
  [
    'a namespace name with capitals',
    [...api, '--set', 'scan.namespaces=Default'],
    `scan.namespaces: "Default" is not a namespace name ${NAMESPACE_RULE}`,
  ],
  [
    'a namespace name with a space inside',
    [...api, '-f', valuesFile('scan:\n  namespaces: "default, pro duction"\n')],
    `scan.namespaces: "pro duction" is not a namespace name ${NAMESPACE_RULE}`,
  ],
  [
    '"*" with names',
    [...api, '--set', 'scan.namespaces={default,*}'],
    'scan.namespaces: "*" (all namespaces) cannot be combined with namespace names; leave some out with scan.excludeNamespaces instead',
  ],
  [
    'ephor.apiUrl without a scheme',
    [...ns, '--set', 'ephor.apiUrl=ephor-api:8080'],
    'ephor.apiUrl must be an http:// or https:// URL, e.g. http://ephor-api:8080, not "ephor-api:8080"',
  ],
  [
    'ephor.apiUrl not http(s)',
    [...ns, '--set', 'ephor.apiUrl=ftp://ephor'],
    'ephor.apiUrl must be an http:// or https:// URL, e.g. http://ephor-api:8080, not "ftp://ephor"',
  ],
  [
    'ephor.apiUrl with a space',
    [...ns, '--set', 'ephor.apiUrl=http://ephor api'],
    'ephor.apiUrl must not contain spaces: "http://ephor api"',
  ],
  [
    'ephor.apiUrl without a host',
    [...ns, '--set', 'ephor.apiUrl=https:///api'],
    'ephor.apiUrl must name a host after "https:///api", e.g. http://ephor-api:8080',
  ],
  [
    'scan.concurrency 0',
    [...ok, '--set', 'scan.concurrency=0'],
    'scan.concurrency must be a whole number from 1 to 64 (images scanned at the same time), not "0"',
  ],
  [
    'scan.concurrency "65" as a string',
    [...ok, '--set-string', 'scan.concurrency=65'],
    'scan.concurrency must be a whole number from 1 to 64 (images scanned at the same time), not "65"',
  ],
  [
    'scan.concurrency -1',
    [...ok, '--set', 'scan.concurrency=-1'],
    'scan.concurrency must be a whole number from 1 to 64 (images scanned at the same time), not "-1"',
  ],
  [
    'scan.concurrency "many"',
    [...ok, '--set', 'scan.concurrency=many'],
    'scan.concurrency must be a whole number from 1 to 64 (images scanned at the same time), not "many"',
  ],
  [
    'skipDbUpdate without a persistent cache',
    [...ok, '--set', 'trivy.skipDbUpdate=true', '--set', 'cache.enabled=false'],
    `${NO_DB}${NO_DB_END}`,
  ],
  [
    'skipDbUpdate as the string "True" without a persistent cache',
    [...ok, '--set-string', 'trivy.skipDbUpdate=True', '--set', 'cache.enabled=false'],
    `${NO_DB}${NO_DB_END}`,
  ],
  [
    'skipDbUpdate with a volume mounted beside, not under, the cache directory',
    [
      ...ok,
      '--set',
      'trivy.skipDbUpdate=true',
      '--set',
      'cache.enabled=false',
      '-f',
      valuesFile('extraVolumeMounts: [{ name: db, mountPath: /tmp/trivy-cache-db }]\n'),
    ],
    `${NO_DB}${NO_DB_END}`,
  ],
  // Other formats the schema checked with a regular expression
  [
    'ephor.maxRetries 11',
    [...ok, '--set', 'ephor.maxRetries=11'],
    'ephor.maxRetries must be a whole number from 0 to 10 (retries of a failed request), not "11"',
  ],
  [
    'ephor.maxPayloadBytes below 64Ki',
    [...ok, '--set', 'ephor.maxPayloadBytes=1000'],
    `ephor.maxPayloadBytes ${SIZE_RULE}, not "1000"`,
  ],
  [
    'ephor.maxPayloadBytes above 1Gi',
    [...ok, '--set', 'ephor.maxPayloadBytes=2Gi'],
    `ephor.maxPayloadBytes ${SIZE_RULE}, not "2Gi"`,
  ],
  [
    'ephor.maxPayloadBytes with a unit Kubernetes does not know',
    [...ok, '--set', 'ephor.maxPayloadBytes=8MB'],
    `ephor.maxPayloadBytes ${SIZE_RULE}, not "8MB"`,
  ],
  ['ephor.timeout 0', [...ok, '--set', 'ephor.timeout=0'], 'ephor.timeout must be longer than 0, not "0"'],
  ['ephor.timeout 0s', [...ok, '--set', 'ephor.timeout=0s'], 'ephor.timeout must be longer than 0, not "0s"'],
  [
    'kube.timeout over a day',
    [...ok, '--set', 'kube.timeout=25h'],
    'kube.timeout must be at most 24h (86400 seconds), not "25h"',
  ],
  [
    'trivy.timeout of 100000 seconds',
    [...ok, '--set', 'trivy.timeout=100000'],
    'trivy.timeout must be at most 24h (86400 seconds), not "100000"',
  ],
  [
    'trivy.dbUpdateTimeout in minutes spelt out',
    [...ok, '--set', 'trivy.dbUpdateTimeout=5min'],
    `trivy.dbUpdateTimeout ${DURATION_RULE}, not "5min"`,
  ],
  [
    'an unknown severity',
    [...ok, '--set', 'scan.severity=CRITICAL\\,SEVERE'],
    'scan.severity: "SEVERE" is not a severity; choose from CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN (any case)',
  ],
  [
    'an unknown severity in a list',
    [...ok, '--set', 'scan.severity={HIGH,SEVERE}'],
    'scan.severity: "SEVERE" is not a severity; choose from CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN (any case)',
  ],
  [
    'a trailing comma in scan.severity',
    [...ok, '--set', 'scan.severity=CRITICAL\\,'],
    `scan.severity has an empty entry in "CRITICAL,": ${EMPTY_ENTRY}`,
  ],
  [
    'no severity',
    [...ok, '--set', 'scan.severity='],
    'scan.severity must name at least one of CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN',
  ],
  [
    'an unknown workload type',
    [...ok, '--set', 'scan.workloadTypes={Deployment,Job}'],
    'scan.workloadTypes: "Job" is not a workload type; choose from Deployment, StatefulSet, DaemonSet, CronJob, Pod (any case)',
  ],
  [
    'an exclusion glob with capitals',
    [...api, '--set', 'scan.namespaces=*', '--set', 'scan.excludeNamespaces={Kube-*}'],
    `scan.excludeNamespaces: "Kube-*" ${GLOB_RULE}`,
  ],
  [
    'an exclusion as a regular expression',
    [...api, '--set', 'scan.namespaces=*', '--set', 'scan.excludeNamespaces=kube-.+'],
    `scan.excludeNamespaces: "kube-.+" ${GLOB_RULE}`,
  ],
  [
    'an exclusion with a trailing comma',
    [...api, '--set', 'scan.namespaces=*', '--set', 'scan.excludeNamespaces=kube-*\\,'],
    `scan.excludeNamespaces has an empty entry in "kube-*,": ${EMPTY_ENTRY}`,
  ],
  [
    'an exclusion of an explicit namespace',
    [...api, '--set', 'scan.namespaces={default,kube-system}', '--set', 'scan.excludeNamespaces={kube-*}'],
    'scan.excludeNamespaces: "kube-*" excludes "kube-system", which scan.namespaces names explicitly; remove one or the other',
  ],
  [
    'an exclusion of an explicit namespace by "?"',
    [...api, '--set', 'scan.namespaces=team-a\\,team-bb', '--set', 'scan.excludeNamespaces=team-?'],
    'scan.excludeNamespaces: "team-?" excludes "team-a", which scan.namespaces names explicitly; remove one or the other',
  ],
  [
    'an unknown workload type in a comma string',
    [...ok, '--set', 'scan.workloadTypes=Pod\\,ReplicaSet'],
    'scan.workloadTypes: "ReplicaSet" is not a workload type; choose from Deployment, StatefulSet, DaemonSet, CronJob, Pod (any case)',
  ],
  ['trivy.timeout 0', [...ok, '--set', 'trivy.timeout=0'], 'trivy.timeout must be longer than 0, not "0"'],
  [
    'scan.deadlineMargin -5',
    [...ok, '--set', 'scan.deadlineMargin=-5'],
    'scan.deadlineMargin must be a whole number, 0 or more (seconds kept free at the end of a run), not "-5"',
  ],
  [
    'scan.deadlineMargin as a duration',
    [...ok, '--set-string', 'scan.deadlineMargin=5m'],
    'scan.deadlineMargin must be a whole number, 0 or more (seconds kept free at the end of a run), not "5m"',
  ],
  [
    'registryAuth.enabled yes',
    [...ok, '--set', 'registryAuth.enabled=yes'],
    'registryAuth.enabled must be true or false, not "yes"',
  ],
  [
    'trivy.skipDbUpdate "1"',
    [...ok, '--set-string', 'trivy.skipDbUpdate=1'],
    'trivy.skipDbUpdate must be true or false, not "1"',
  ],
  ['sbom.enabled on', [...ok, '--set', 'sbom.enabled=on'], 'sbom.enabled must be true or false, not "on"'],
  [
    'a relative trivy.cacheDir',
    [...ok, '--set', 'trivy.cacheDir=cache'],
    'trivy.cacheDir must be an absolute path, e.g. /tmp/trivy-cache, not "cache"',
  ],
  [
    'redis without a backend',
    [...ok, '--set', 'trivy.cacheMode=redis'],
    'trivy.cacheMode=redis needs trivy.cacheBackend, e.g. redis://redis:6379',
  ],
  [
    'a backend that is not a Redis URL',
    [...ok, '--set', 'trivy.cacheMode=redis', '--set', 'trivy.cacheBackend=memcached://:pw@cache:11211'],
    'trivy.cacheBackend must be a redis:// or rediss:// URL, e.g. redis://redis:6379 (a password goes in it as redis://:PASSWORD@redis:6379)',
  ],
  [
    'a DB mirror with a scheme',
    [...ok, '--set', 'trivy.dbRepo=https://registry.internal/trivy-db:2'],
    'trivy.dbRepo: "https://registry.internal/trivy-db:2" is not a repository reference; give it without a scheme, e.g. registry.internal/aquasec/trivy-db:2',
  ],
  [
    'a Java DB mirror list with a trailing comma',
    [...ok, '--set', 'trivy.javaDbRepo=registry.internal/trivy-java-db:1\\,'],
    `trivy.javaDbRepo has an empty entry in "registry.internal/trivy-java-db:1,": ${EMPTY_ENTRY}`,
  ],
  [
    'cache.size 1GB',
    [...ok, '--set', 'cache.size=1GB'],
    'cache.size must be a Kubernetes quantity such as 1Gi or 500Mi, not "1GB"',
  ],
  [
    'tmp.sizeLimit 5 GiB',
    [...ok, '--set', 'tmp.sizeLimit=5 GiB'],
    'tmp.sizeLimit must be a Kubernetes quantity such as 1Gi or 500Mi, not "5 GiB"',
  ],
  [
    'a header name with a space',
    [...ok, '--set', 'ephor.authHeader=X Token', '--set', 'ephor.authValue=x'],
    `ephor.authHeader must be an HTTP header name (letters, digits and '-', e.g. Authorization or X-Api-Key), not "X Token"`,
  ],
  [
    'a header the scanner sets itself',
    [...ok, '--set', 'ephor.authHeader=Content-Type', '--set', 'ephor.authValue=x'],
    'ephor.authHeader "Content-Type" is a header the scanner sets itself; choose another, e.g. Authorization or X-Api-Key',
  ],
  [
    'an X-Forwarded-* header',
    [...ok, '--set', 'ephor.authHeader=X-Forwarded-User', '--set', 'ephor.authValue=x'],
    'ephor.authHeader "X-Forwarded-User": an X-Forwarded-* header would make Ephor register the scanner as a user; choose another, e.g. Authorization or X-Api-Key',
  ],
  [
    'authHeader without authValue',
    [...ok, '--set', 'ephor.authHeader=Authorization'],
    'ephor.authHeader is set but ephor.authValue is empty: set both, or neither, or use ephor.existingSecret',
  ],
  [
    'authValue without authHeader',
    [...ok, '--set', 'ephor.authValue=x'],
    'ephor.authValue is set but ephor.authHeader is empty: set both (e.g. --set ephor.authHeader=Authorization)',
  ],
  [
    'authValue with existingSecret',
    [...ok, '--set', 'ephor.authValue=x', '--set', 'ephor.authHeader=A', '--set', 'ephor.existingSecret=s'],
    'ephor.authValue and ephor.existingSecret are both set: keep the value in the existing Secret only',
  ],
  // RBAC and the run lock
  [
    'namespaced RBAC with "*"',
    [...api, '--set', 'scan.namespaces=*', '--set', 'rbac.scope=namespaced'],
    'rbac.scope=namespaced needs explicit scan.namespaces; with "*" use rbac.scope=cluster',
  ],
  [
    'namespaced RBAC with a selector',
    [...ok, '--set', 'scan.namespaceSelector=team=payments', '--set', 'rbac.scope=namespaced'],
    'rbac.scope=namespaced cannot grant the namespace list that scan.namespaceSelector needs: use rbac.scope=cluster, or drop the selector and list the namespaces',
  ],
  [
    "the chart's RBAC for the namespace's default ServiceAccount",
    [...ok, '--set', 'serviceAccount.create=false'],
    'rbac.create=true with serviceAccount.create=false would grant the scanner\'s rules (pull secrets included) to the ServiceAccount "default", which every Pod of namespace "ephor" runs as unless it names another: set serviceAccount.name to a dedicated account, or serviceAccount.create=true',
  ],
  [
    'runLock.name that is not a Lease name',
    [...ok, '--set', 'runLock.name=Scanner_Lock'],
    `runLock.name must be a Lease name (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters), e.g. ephor-scanner, not "Scanner_Lock"`,
  ],
  [
    'runLock.namespace that is not a namespace name',
    [...ok, '--set', 'runLock.namespace=locks.example'],
    `runLock.namespace must be a namespace name (lower-case letters, digits and '-', at most 63 characters) or empty for the release namespace, not "locks.example"`,
  ],
];

describe('a bad value fails helm install with one sentence naming the key and the fix', () => {
  for (const [name, args, message] of sentences) {
    test(name, () => {
      const stderr = renderStderr(args);
      assert.doesNotMatch(stderr, RAW_SCHEMA_TEXT);
      assert.equal(renderError(args), message);
    });
  }

  test('values that may hold secrets are never repeated in a message', () => {
    const credentials = renderStderr([...ns, '--set', 'ephor.apiUrl=https://scanner:s3cr3t-pw@ephor.example.com']);
    assert.match(
      credentials,
      /ephor\.apiUrl must not contain credentials \(user:password@\): set ephor\.authHeader and ephor\.authValue, or ephor\.existingSecret, instead/,
    );
    const query = renderStderr([...ns, '--set', 'ephor.apiUrl=https://ephor.example.com/?token=s3cr3t-pw']);
    assert.match(
      query,
      /ephor\.apiUrl must not have a query string \(\?\.\.\.\) or fragment \(#\.\.\.\): give the base URL only, e.g\. http:\/\/ephor-api:8080/,
    );
    const backend = renderStderr([
      ...ok,
      '--set',
      'trivy.cacheMode=redis',
      '--set',
      'trivy.cacheBackend=redis:/:s3cr3t-pw@r',
    ]);
    assert.match(backend, /trivy\.cacheBackend must be a redis:\/\/ or rediss:\/\/ URL/);
    for (const stderr of [credentials, query, backend]) assert.ok(!stderr.includes('s3cr3t'), stderr);
  });
});

describe('what the schema still checks: its own messages name the key and the allowed values', () => {
  const schema: [string, string[], string][] = [
    [
      'an unknown cache mode',
      ['--set', 'trivy.cacheMode=disk'],
      '- trivy.cacheMode: trivy.cacheMode must be one of the following: "server", "ephemeral", "shared", "redis"',
    ],
    [
      'an unknown log level',
      ['--set', 'log.level=verbose'],
      '- log.level: log.level must be one of the following: "debug", "info", "warn", "error"',
    ],
    [
      'an unknown SBOM format',
      ['--set', 'sbom.format=xml'],
      '- sbom.format: sbom.format must be one of the following: "cyclonedx", "spdx-json", "spdx"',
    ],
    [
      'an unknown rbac.scope',
      ['--set', 'rbac.scope=global'],
      '- rbac.scope: rbac.scope must be one of the following: "cluster", "namespaced"',
    ],
    [
      'a misspelt key',
      ['--set', 'registryAuth.enable=false'],
      '- registryAuth: Additional property enable is not allowed',
    ],
    [
      'a misspelt scan key',
      ['--set', 'scan.namespace=default'],
      '- scan: Additional property namespace is not allowed',
    ],
    ['a misspelt run lock key', ['--set', 'runLock.lease=x'], '- runLock: Additional property lease is not allowed'],
    [
      'a selector as a map',
      ['--set', 'scan.namespaceSelector.team=payments'],
      '- scan.namespaceSelector: Invalid type. Expected: string, given: object',
    ],
    [
      'a selector as a list',
      ['--set', 'scan.namespaceSelector={team=payments}'],
      '- scan.namespaceSelector: Invalid type. Expected: string, given: array',
    ],
    [
      'a fractional concurrency',
      ['-f', valuesFile('scan:\n  concurrency: 2.5\n')],
      '- scan.concurrency: Invalid type. Expected: [integer,string], given: number',
    ],
    [
      'rbac.nodes as a word',
      ['--set', 'rbac.nodes=yes'],
      '- rbac.nodes: Invalid type. Expected: [boolean,null], given: string',
    ],
  ];
  for (const [name, args, line] of schema) {
    test(name, () => {
      const lines = renderStderr([...ok, ...args]).split('\n');
      assert.ok(lines.includes(line), `expected the line\n${line}\nin\n${lines.join('\n')}`);
    });
  }

  test('values.schema.json has no pattern, length or range checks on what the templates check', () => {
    const text = readFileSync(path.join(CHART, 'values.schema.json'), 'utf8');
    assert.doesNotMatch(text, /"pattern"|"minItems"|"uniqueItems"|"maximum"/);
    const schema = JSON.parse(text) as { properties: Record<string, { properties?: Record<string, object> }> };
    for (const key of ['apiUrl', 'maxRetries', 'maxPayloadBytes'])
      assert.deepEqual(Object.keys(schema.properties.ephor!.properties![key]!).sort(), ['description', 'type'], key);
    for (const key of ['namespaces', 'concurrency', 'deadlineMargin'])
      assert.ok(
        !('minimum' in schema.properties.scan!.properties![key]!) &&
          !('minLength' in schema.properties.scan!.properties![key]!),
        key,
      );
  });
});

describe('what is accepted', () => {
  test('the edges of each range and every spelling the scanner takes', () => {
    const docs = render([
      ...ok,
      '-f',
      valuesFile(`
ephor: { apiUrl: "HTTPS://ephor.example.com:8443/base/", timeout: 1.5h, maxRetries: 10, maxPayloadBytes: "64ki" }
scan: { concurrency: 64, deadlineMargin: 0, severity: [critical, Unknown], workloadTypes: "pod, DEPLOYMENT" }
kube: { timeout: 500ms }
trivy: { timeout: "86400", dbUpdateTimeout: 24h, skipDbUpdate: "TRUE", cacheDir: /var/cache/trivy/ }
registryAuth: { enabled: "False" }
sbom: { enabled: true }
cache: { size: 1.5Gi }
tmp: { sizeLimit: "500M" }
runLock: { name: ephor-scanner.prod, namespace: locks }
`),
    ]);
    const cm = docs.find((d) => d.kind === 'ConfigMap')!.data as Record<string, string>;
    assert.equal(cm.EPHOR_MAX_PAYLOAD_BYTES, '64ki');
    assert.equal(cm.SCAN_CONCURRENCY, '64');
    assert.equal(cm.KUBE_TIMEOUT, '500ms');
    assert.equal(cm.REGISTRY_AUTH_ENABLED, 'false');
  });

  test('skipDbUpdate without a persistent cache, when a volume holding the DB is mounted under trivy.cacheDir', () => {
    const docs = render([
      ...ok,
      '--set',
      'trivy.skipDbUpdate=true',
      '--set',
      'cache.enabled=false',
      '-f',
      valuesFile(
        'extraVolumes: [{ name: db, persistentVolumeClaim: { claimName: trivy-db } }]\nextraVolumeMounts: [{ name: db, mountPath: /tmp/trivy-cache/db/ }]\n',
      ),
    ]);
    assert.ok(docs.some((d) => d.kind === 'CronJob'));
    render([...ok, '--set', 'trivy.skipDbUpdate=true']); // the persistent cache (default) keeps the DB
  });

  test('skipDbUpdate without a persistent cache, with an external Trivy server (trivy.serverUrl)', () => {
    const args = [...ok, '--set', 'trivy.skipDbUpdate=true', '--set', 'cache.enabled=false'];
    const docs = render([...args, '--set', 'trivy.serverUrl=http://trivy-server:4954']);
    assert.ok(docs.some((d) => d.kind === 'CronJob'));
    assert.ok(renderStderr([...args, '--set', 'trivy.serverUrl=']).includes(`${NO_DB}${NO_DB_END}`));
  });
});
