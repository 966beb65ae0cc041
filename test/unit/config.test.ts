import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig, type Env, type LoadOptions } from '../../src/config/index.js';
import { ValueError, parseBoolean, parseDurationMs } from '../../src/config/parse.js';
import { SETTINGS } from '../../src/config/settings.js';

const MINIMAL: Env = { EPHOR_API_URL: 'http://ephor-api:8080', SCAN_NAMESPACES: 'default' };
/** Trivy found; stdout not a terminal, as under a CronJob (LOG_FORMAT=auto → json). */
const found: LoadOptions = { resolveExecutable: (name: string) => `/usr/local/bin/${name}`, stdoutIsTerminal: false };

function load(env: Env) {
  return loadConfig({ ...MINIMAL, ...env }, found);
}

/** The messages of the ConfigError that loading `env` must throw. */
function problems(env: Env, options: LoadOptions = found): string[] {
  try {
    loadConfig({ ...MINIMAL, ...env }, options);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return error.problems.map((p) => p.message);
  }
  assert.fail(`expected a configuration error for ${JSON.stringify(env)}`);
}

function assertRejected(env: Env, ...expected: RegExp[]): void {
  const messages = problems(env).join('\n');
  for (const pattern of expected) assert.match(messages, pattern);
}

describe('configuration defaults (same as the Go scanner)', () => {
  test('minimal environment', () => {
    const config = load({});
    assert.equal(config.ephor.apiUrl, 'http://ephor-api:8080');
    assert.deepEqual(config.scan.namespaces, ['default']);
    assert.equal(config.scan.concurrency, 3);
    assert.deepEqual(config.scan.severities, ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW']);
    assert.deepEqual(config.scan.workloadKinds, ['Deployment', 'StatefulSet', 'DaemonSet', 'CronJob']);
    assert.equal(config.trivy.binary, '/usr/local/bin/trivy');
    assert.equal(config.trivy.cacheDir, '/tmp/trivy-cache');
    assert.equal(config.trivy.cacheMode, 'ephemeral');
    assert.equal(config.trivy.timeoutMs, 300_000);
    assert.equal(config.trivy.dbUpdateTimeoutMs, 60_000);
    assert.equal(config.trivy.skipDbUpdate, false);
    assert.deepEqual(config.trivy.dbRepositories, []);
    assert.equal(config.ephor.timeoutMs, 300_000);
    assert.equal(config.ephor.maxRetries, 4);
    assert.equal(config.ephor.auth, undefined);
    assert.equal(config.kube.timeoutMs, 30_000);
    assert.deepEqual(config.sbom, { enabled: false, format: 'cyclonedx' });
    assert.deepEqual(config.log, { level: 'info', format: 'json' });
    assert.deepEqual(config.warnings, []);
  });

  test('an empty value counts as unset', () => {
    assert.equal(load({ SCAN_CONCURRENCY: '', TRIVY_DB_REPO: '  ' }).scan.concurrency, 3);
  });
});

describe('accepted values', () => {
  test('lists are trimmed and de-duplicated; severities and kinds are case-insensitive', () => {
    const config = load({
      SCAN_NAMESPACES: ' prod , staging,prod',
      SCAN_SEVERITY: 'critical , High,UNKNOWN,high',
      SCAN_WORKLOAD_TYPES: 'deployment, CRONJOB',
    });
    assert.deepEqual(config.scan.namespaces, ['prod', 'staging']);
    assert.deepEqual(config.scan.severities, ['CRITICAL', 'HIGH', 'UNKNOWN']);
    assert.deepEqual(config.scan.workloadKinds, ['Deployment', 'CronJob']);
  });

  test('* means every namespace', () => {
    assert.equal(load({ SCAN_NAMESPACES: '*' }).scan.namespaces, 'all');
  });

  test('durations: integer seconds or Go durations', () => {
    assert.equal(parseDurationMs('300'), 300_000);
    assert.equal(parseDurationMs('10m'), 600_000);
    assert.equal(parseDurationMs('1h30m'), 5_400_000);
    assert.equal(parseDurationMs('1500ms'), 1500);
    assert.equal(parseDurationMs('2.5s'), 2500);
    assert.equal(load({ TRIVY_TIMEOUT: '10m', EPHOR_TIMEOUT: '90s', KUBE_TIMEOUT: '5' }).trivy.timeoutMs, 600_000);
  });

  test('auth header and value together; URL trailing slash removed', () => {
    const config = load({
      EPHOR_API_URL: 'https://ephor.example.com/base/',
      EPHOR_AUTH_HEADER: 'X-API-Key',
      EPHOR_AUTH_VALUE: 's3cret-token',
    });
    assert.equal(config.ephor.apiUrl, 'https://ephor.example.com/base');
    assert.deepEqual(config.ephor.auth, { header: 'X-API-Key', value: 's3cret-token' });
    assert.ok(config.secrets.includes('s3cret-token'));
  });

  test('DB repositories are comma lists kept in order', () => {
    const config = load({
      TRIVY_DB_REPO: 'mirror.local:5000/trivy-db:2, ghcr.io/aquasecurity/trivy-db:2',
      TRIVY_JAVA_DB_REPO: 'mirror.local:5000/trivy-java-db:1',
    });
    assert.deepEqual(config.trivy.dbRepositories, ['mirror.local:5000/trivy-db:2', 'ghcr.io/aquasecurity/trivy-db:2']);
    assert.deepEqual(config.trivy.javaDbRepositories, ['mirror.local:5000/trivy-java-db:1']);
  });

  test('namespace selection: exclusion globs and a label selector', () => {
    const config = load({
      SCAN_NAMESPACES: '*',
      SCAN_EXCLUDE_NAMESPACES: 'kube-*, default ,team-?',
      SCAN_NAMESPACE_SELECTOR: 'team in (a, b),env!=dev,!legacy,example.com/tier=web',
    });
    assert.deepEqual(config.scan.excludeNamespaces, ['kube-*', 'default', 'team-?']);
    assert.equal(config.scan.namespaceSelector, 'team in (a, b),env!=dev,!legacy,example.com/tier=web');
    assert.match(
      load({ SCAN_NAMESPACES: 'a,b', SCAN_EXCLUDE_NAMESPACES: 'kube-*' }).warnings.join(),
      /SCAN_EXCLUDE_NAMESPACES has no effect with an explicit SCAN_NAMESPACES list/,
    );
  });

  test('delivery limits, deadline, spool, dry run', () => {
    const config = load({
      EPHOR_MAX_PAYLOAD_BYTES: '512Ki',
      SCAN_DEADLINE: '55m',
      SPOOL_MAX_AGE: '72h',
      SPOOL_DIR: '/var/spool/ephor',
      TRIVY_CACHE_DIR: '/cache',
    });
    assert.equal(config.ephor.maxPayloadBytes, 512 * 1024);
    assert.equal(config.scan.deadlineMs, 55 * 60_000);
    assert.deepEqual(config.spool, { dir: '/var/spool/ephor', maxAgeMs: 72 * 3_600_000 });
    const defaults = load({ TRIVY_CACHE_DIR: '/cache' });
    assert.equal(defaults.ephor.maxPayloadBytes, 8 * 1024 * 1024);
    assert.equal(defaults.scan.deadlineMs, undefined);
    assert.deepEqual(defaults.spool, { dir: '/cache/spool', maxAgeMs: 24 * 3_600_000 });
    assert.equal(defaults.ephor.dryRun, false);
  });

  test('a dry run needs no EPHOR_API_URL', () => {
    const config = loadConfig(
      { SCAN_NAMESPACES: 'default', EPHOR_DRY_RUN: 'true', EPHOR_OUTPUT_DIR: '/tmp/out' },
      found,
    );
    assert.equal(config.ephor.dryRun, true);
    assert.equal(config.ephor.outputDir, '/tmp/out');
  });

  test('Pod is an allowed workload kind (off by default); registry auth is on by default', () => {
    assert.deepEqual(load({ SCAN_WORKLOAD_TYPES: 'pod,Deployment' }).scan.workloadKinds, ['Pod', 'Deployment']);
    assert.equal(load({}).registryAuth, true);
    assert.equal(load({ REGISTRY_AUTH_ENABLED: 'false' }).registryAuth, false);
  });

  test('shared cache mode forces concurrency 1 with a warning', () => {
    const config = load({ TRIVY_CACHE_MODE: 'Shared', SCAN_CONCURRENCY: '5' });
    assert.equal(config.trivy.cacheMode, 'shared');
    assert.equal(config.scan.concurrency, 1);
    assert.match(config.warnings.join(), /SCAN_CONCURRENCY=5 lowered to 1/);
  });

  test('redis mode with its backend; the URL and its password become secrets', () => {
    const config = load({ TRIVY_CACHE_MODE: 'redis', TRIVY_CACHE_BACKEND: 'redis://:hunter2@redis:6379' });
    assert.equal(config.trivy.cacheBackend, 'redis://:hunter2@redis:6379');
    assert.ok(config.secrets.includes('hunter2'));
  });

  test('a backend outside redis mode is ignored with a warning', () => {
    assert.match(load({ TRIVY_CACHE_BACKEND: 'redis://redis:6379' }).warnings.join(), /TRIVY_CACHE_BACKEND is ignored/);
  });

  test('booleans, log settings, SBOM format', () => {
    const config = load({
      TRIVY_SKIP_DB_UPDATE: 'TRUE',
      SBOM_ENABLED: '1',
      SBOM_FORMAT: 'SPDX',
      LOG_LEVEL: 'Warning',
      LOG_FORMAT: 'TEXT',
    });
    assert.equal(config.trivy.skipDbUpdate, true);
    assert.deepEqual(config.sbom, { enabled: true, format: 'spdx-json' });
    assert.deepEqual(config.log, { level: 'warn', format: 'text' });
  });

  test('LOG_FORMAT=auto (the default): text when stdout is a terminal, JSON otherwise; json and text are kept', () => {
    const at = (stdoutIsTerminal: boolean, env: Env = {}) =>
      loadConfig({ ...MINIMAL, ...env }, { ...found, stdoutIsTerminal }).log.format;
    assert.equal(at(true), 'text');
    assert.equal(at(false), 'json');
    assert.equal(at(true, { LOG_FORMAT: 'Auto' }), 'text');
    assert.equal(at(false, { LOG_FORMAT: 'auto' }), 'json');
    assert.equal(at(true, { LOG_FORMAT: 'json' }), 'json');
    assert.equal(at(false, { LOG_FORMAT: 'text' }), 'text');
  });

  test('--kubeconfig / KUBECONFIG and --context / KUBE_CONTEXT', () => {
    const config = load({ KUBECONFIG: '/a/config:/b/config', KUBE_CONTEXT: ' staging ' });
    assert.deepEqual(config.kube, { timeoutMs: 30_000, kubeconfig: ['/a/config', '/b/config'], context: 'staging' });
  });

  test('switches take true/false, 1/0, yes/no, on/off in any case', () => {
    for (const word of ['true', 'TRUE', '1', 'yes', 'on', 'Y', 't'])
      assert.equal(load({ EPHOR_DRY_RUN: word }).ephor.dryRun, true, word);
    for (const word of ['false', 'False', '0', 'no', 'off', 'n', 'f'])
      assert.equal(load({ EPHOR_DRY_RUN: word }).ephor.dryRun, false, word);
  });

  test('outside redis mode TRIVY_CACHE_BACKEND is not read at all: even a malformed one is only a warning', () => {
    const config = load({ TRIVY_CACHE_BACKEND: 'http://not-redis' });
    assert.equal(config.trivy.cacheBackend, undefined);
    assert.match(config.warnings.join(), /TRIVY_CACHE_BACKEND is ignored because TRIVY_CACHE_MODE=ephemeral/);
  });
});

describe('the settings table drives the loader', () => {
  test('every entry is complete and consistent: its default and example parse, the example differs', () => {
    for (const s of SETTINGS) {
      assert.ok(s.description && s.allowed, s.env);
      if (s.default !== undefined) assert.doesNotThrow(() => s.parse(s.default!), `${s.env} default`);
      assert.doesNotThrow(() => s.parse(s.example), `${s.env} example`);
      assert.notEqual(s.example, s.default, `${s.env}: the example must show something other than the default`);
      assert.ok(!(s.required && s.default !== undefined), `${s.env}: required with a default`);
      assert.equal(s.boolean === true, s.parse === parseBoolean, `${s.env}: a switch is exactly a true/false setting`);
      if (s.secret) assert.equal(s.flag, undefined, `${s.env}: a secret must not be a flag (argv is visible)`);
      if (s.flag) assert.match(s.flag, /^--[a-z][a-z-]+$/, s.env);
    }
    assert.equal(new Set(SETTINGS.map((s) => s.flag).filter(Boolean)).size, SETTINGS.filter((s) => s.flag).length);
  });

  test('a parser rejects with a ValueError (the loader turns it into a problem naming the variable)', () => {
    const concurrency = SETTINGS.find((s) => s.env === 'SCAN_CONCURRENCY')!;
    assert.throws(() => concurrency.parse('0'), ValueError);
  });

  // The auth pair and the Redis backend are only valid with their partner; their own tests above cover them.
  // So are the shard index, token and index 0's URL: required together with SHARD_COUNT > 1 (test/shard/settings.test.ts).
  const PARTNERED = new Set([
    'EPHOR_AUTH_HEADER',
    'EPHOR_AUTH_VALUE',
    'TRIVY_CACHE_BACKEND',
    'JOB_COMPLETION_INDEX',
    'SHARD_TOKEN',
    'SHARD_COORDINATOR_URL',
  ]);
  const INDEX_0: Env = { JOB_COMPLETION_INDEX: '0', SHARD_TOKEN: 'example-shard-token-0123456789abcdef' };
  const COMPANIONS: Record<string, Env> = {
    TRIVY_CACHE_MODE: { TRIVY_CACHE_BACKEND: 'redis://trivy-redis:6379' },
    // read only with an external server, and the bound only where the layer cache is TRIVY_CACHE_DIR/fanal
    TRIVY_SERVER_TOKEN: { TRIVY_SERVER_URL: 'http://trivy-server:4954' },
    TRIVY_SERVER_TOKEN_HEADER: { TRIVY_SERVER_URL: 'http://trivy-server:4954' },
    TRIVY_SCAN_CACHE_MAX_SIZE: { TRIVY_CACHE_MODE: 'server' },
    // read only in a sharded run (index 0 here)
    SHARD_COUNT: INDEX_0,
    SHARD_LISTEN: { SHARD_COUNT: '4', ...INDEX_0 },
    SHARD_TIMEOUT: { SHARD_COUNT: '4', ...INDEX_0 },
  };
  test('setting any variable to its example changes the configuration: no entry is left unread', () => {
    const base: Env = { EPHOR_API_URL: 'http://base-url:1', SCAN_NAMESPACES: 'base' };
    for (const s of SETTINGS) {
      if (PARTNERED.has(s.env)) continue;
      const companions = COMPANIONS[s.env] ?? {};
      const without = loadConfig({ ...base, ...companions }, found);
      const withExample = loadConfig({ ...base, ...companions, [s.env]: s.example }, found);
      assert.notDeepEqual(withExample, without, `${s.env}=${s.example} is not read by loadConfig`);
    }
  });
});

describe('rejections name the variable, the value and what is allowed', () => {
  test('both required variables missing', () => {
    const messages = problems({ EPHOR_API_URL: undefined, SCAN_NAMESPACES: undefined });
    assert.deepEqual(messages, [
      'EPHOR_API_URL is required (e.g. EPHOR_API_URL=http://ephor-api:8080)',
      'SCAN_NAMESPACES is required (e.g. SCAN_NAMESPACES=default,production)',
    ]);
  });

  const cases: Array<[string, Env, RegExp]> = [
    ['concurrency 0', { SCAN_CONCURRENCY: '0' }, /SCAN_CONCURRENCY="0" must be an integer from 1 to 64/],
    ['negative concurrency', { SCAN_CONCURRENCY: '-2' }, /SCAN_CONCURRENCY="-2" must be an integer from 1 to 64/],
    ['non-numeric concurrency', { SCAN_CONCURRENCY: 'three' }, /SCAN_CONCURRENCY="three" must be an integer/],
    ['zero timeout', { TRIVY_TIMEOUT: '0' }, /TRIVY_TIMEOUT="0" must be at least 1ms/],
    ['negative duration', { TRIVY_DB_UPDATE_TIMEOUT: '-5s' }, /TRIVY_DB_UPDATE_TIMEOUT="-5s" must be integer seconds/],
    [
      'garbage duration',
      { EPHOR_TIMEOUT: 'soon' },
      /EPHOR_TIMEOUT="soon" must be integer seconds \(300\) or a duration such as 90s/,
    ],
    ['timeout beyond what a timer can hold', { KUBE_TIMEOUT: '9999h' }, /KUBE_TIMEOUT="9999h" must be at most 24h/],
    [
      'URL not http',
      { EPHOR_API_URL: 'ftp://ephor' },
      /EPHOR_API_URL="ftp:\/\/ephor" must use http:\/\/ or https:\/\//,
    ],
    ['URL not a URL', { EPHOR_API_URL: 'ephor-api:8080' }, /EPHOR_API_URL="ephor-api:8080" must use http/],
    ['URL relative', { EPHOR_API_URL: '/api' }, /must be an absolute http:\/\/ or https:\/\/ URL/],
    [
      'URL with credentials',
      { EPHOR_API_URL: 'https://user:pw@ephor' },
      /must not contain credentials; use EPHOR_AUTH_HEADER/,
    ],
    ['URL with a query', { EPHOR_API_URL: 'https://ephor/?x=1' }, /must not have a query string/],
    [
      'header without value',
      { EPHOR_AUTH_HEADER: 'X-API-Key' },
      /EPHOR_AUTH_HEADER is set but EPHOR_AUTH_VALUE is not/,
    ],
    ['value without header', { EPHOR_AUTH_VALUE: 'token' }, /EPHOR_AUTH_VALUE is set but EPHOR_AUTH_HEADER is not/],
    [
      'invalid header name',
      { EPHOR_AUTH_HEADER: 'X API Key', EPHOR_AUTH_VALUE: 't' },
      /EPHOR_AUTH_HEADER="X API Key" must be an HTTP header name/,
    ],
    [
      'identity header',
      { EPHOR_AUTH_HEADER: 'X-Forwarded-User', EPHOR_AUTH_VALUE: 't' },
      /must not be an X-Forwarded-\* identity header/,
    ],
    ['reserved header', { EPHOR_AUTH_HEADER: 'Content-Type', EPHOR_AUTH_VALUE: 't' }, /is set by the scanner itself/],
    [
      'invalid namespace name',
      { SCAN_NAMESPACES: 'default,Prod_1' },
      /SCAN_NAMESPACES="default,Prod_1" contains "Prod_1", which is not a namespace name/,
    ],
    ['empty namespace item', { SCAN_NAMESPACES: 'a,,b' }, /SCAN_NAMESPACES="a,,b" has an empty item at position 2/],
    ['trailing comma', { SCAN_NAMESPACES: 'a,' }, /has an empty item at position 2/],
    ['* with names', { SCAN_NAMESPACES: 'default,*' }, /"\*" \(every namespace\) cannot be combined with names/],
    ['namespace too long', { SCAN_NAMESPACES: 'a'.repeat(64) }, /which is not a namespace name/],
    [
      'unknown severity',
      { SCAN_SEVERITY: 'CRITICAL,SEVERE' },
      /SCAN_SEVERITY="CRITICAL,SEVERE" contains "SEVERE"; allowed: CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN/,
    ],
    ['empty severity item', { SCAN_SEVERITY: 'HIGH,' }, /SCAN_SEVERITY="HIGH," has an empty item/],
    [
      'unknown workload kind',
      { SCAN_WORKLOAD_TYPES: 'Deployment,Job' },
      /contains "Job"; allowed: Deployment, StatefulSet, DaemonSet, CronJob, Pod/,
    ],
    [
      'exclusion that is not a namespace glob',
      { SCAN_NAMESPACES: '*', SCAN_EXCLUDE_NAMESPACES: 'kube_system' },
      /SCAN_EXCLUDE_NAMESPACES="kube_system" contains "kube_system", which is neither a namespace name nor a glob/,
    ],
    [
      'explicit namespace also excluded',
      { SCAN_NAMESPACES: 'kube-system,prod', SCAN_EXCLUDE_NAMESPACES: 'kube-*' },
      /SCAN_EXCLUDE_NAMESPACES excludes kube-system, which SCAN_NAMESPACES names explicitly/,
    ],
    [
      'selector with a bad requirement',
      { SCAN_NAMESPACE_SELECTOR: 'team=a,,env' },
      /SCAN_NAMESPACE_SELECTOR="team=a,,env" has an empty requirement/,
    ],
    ['selector with a bad key', { SCAN_NAMESPACE_SELECTOR: 'te am=a' }, /is not a label requirement|invalid label key/],
    [
      'selector with a bad value',
      { SCAN_NAMESPACE_SELECTOR: 'team=a b' },
      /SCAN_NAMESPACE_SELECTOR=.*(invalid label value|not a label requirement)/,
    ],
    ['selector set syntax', { SCAN_NAMESPACE_SELECTOR: 'team in (a,)' }, /empty value/],
    [
      'payload size too small',
      { EPHOR_MAX_PAYLOAD_BYTES: '1000' },
      /EPHOR_MAX_PAYLOAD_BYTES="1000" must be between 65536 bytes \(64Ki\) and/,
    ],
    [
      'payload size with a unit Kubernetes does not know',
      { EPHOR_MAX_PAYLOAD_BYTES: '8MB' },
      /EPHOR_MAX_PAYLOAD_BYTES="8MB" must be a number of bytes, optionally with a suffix such as 512Ki or 8Mi/,
    ],
    ['deadline not a duration', { SCAN_DEADLINE: 'soon' }, /SCAN_DEADLINE="soon" must be integer seconds/],
    ['spool age not a duration', { SPOOL_MAX_AGE: '-1h' }, /SPOOL_MAX_AGE="-1h" must be integer seconds/],
    [
      'registry auth not a boolean',
      { REGISTRY_AUTH_ENABLED: 'sometimes' },
      /REGISTRY_AUTH_ENABLED="sometimes" must be true or false/,
    ],
    [
      'unknown cache mode',
      { TRIVY_CACHE_MODE: 'memory' },
      /TRIVY_CACHE_MODE="memory" must be one of ephemeral, shared, redis/,
    ],
    ['redis without backend', { TRIVY_CACHE_MODE: 'redis' }, /TRIVY_CACHE_BACKEND is required/],
    [
      'redis backend not a redis URL',
      { TRIVY_CACHE_MODE: 'redis', TRIVY_CACHE_BACKEND: 'http://redis' },
      /TRIVY_CACHE_BACKEND=\(value hidden\) must be a redis:\/\/host:port/,
    ],
    ['bad boolean', { TRIVY_SKIP_DB_UPDATE: 'maybe' }, /TRIVY_SKIP_DB_UPDATE="maybe" must be true or false/],
    [
      'bad SBOM format',
      { SBOM_FORMAT: 'cyclonedx-json' },
      /SBOM_FORMAT="cyclonedx-json" must be one of cyclonedx, spdx-json, spdx/,
    ],
    ['bad log level', { LOG_LEVEL: 'verbose' }, /LOG_LEVEL="verbose" must be one of debug, info, warn, warning, error/],
    ['bad log format', { LOG_FORMAT: 'yaml' }, /LOG_FORMAT="yaml" must be one of auto, json, text/],
    ['retries out of range', { EPHOR_MAX_RETRIES: '11' }, /EPHOR_MAX_RETRIES="11" must be an integer from 0 to 10/],
    [
      'DB repository with a scheme',
      { TRIVY_DB_REPO: 'https://mirror/trivy-db' },
      /TRIVY_DB_REPO=.* give repositories without a scheme/,
    ],
  ];
  for (const [name, env, pattern] of cases) {
    test(name, () => {
      assertRejected(env, pattern);
    });
  }

  test('trivy binary not found', () => {
    const messages = problems({ TRIVY_BINARY: 'trivy-nope', PATH: '/nowhere' }, { resolveExecutable: () => undefined });
    assert.match(
      messages.join(),
      /TRIVY_BINARY="trivy-nope" was not found on PATH \(\/nowhere\); install Trivy or set TRIVY_BINARY/,
    );
  });

  test('every problem is reported at once, in the order of the settings table', () => {
    assert.deepEqual(
      problems({ LOG_FORMAT: 'xml', SCAN_SEVERITY: 'bad', SCAN_CONCURRENCY: '0', EPHOR_AUTH_VALUE: 'v' }),
      [
        'EPHOR_AUTH_VALUE is set but EPHOR_AUTH_HEADER is not; set both (the header is sent only with its value) or neither',
        'SCAN_CONCURRENCY="0" must be an integer from 1 to 64',
        'SCAN_SEVERITY="bad" contains "bad"; allowed: CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN',
        'LOG_FORMAT="xml" must be one of auto, json, text',
      ],
    );
  });

  test('a bad value is never replaced by the default, also for a switch', () => {
    assertRejected({ EPHOR_DRY_RUN: 'maybe' }, /EPHOR_DRY_RUN="maybe" must be true or false/);
    assertRejected({ SPOOL_MAX_AGE: '800h' }, /SPOOL_MAX_AGE="800h" must be at most 720h/);
  });

  test('an unknown or multi-line context is rejected; an unset one is left to the kubeconfig', () => {
    assertRejected({ KUBE_CONTEXT: 'a\nb' }, /KUBE_CONTEXT="a\\nb" must be a context name on one line/);
    assert.equal(load({}).kube.context, undefined);
  });

  test('the auth value never appears in an error message', () => {
    const secret = 'super-secret-value-\nwith-newline';
    const messages = problems({ EPHOR_AUTH_VALUE: secret, EPHOR_AUTH_HEADER: 'X-Key' }).join('\n');
    assert.match(messages, /EPHOR_AUTH_VALUE=\(value hidden\) must not contain line breaks/);
    assert.ok(!messages.includes('super-secret-value'));
  });
});
