// Every setting the scanner reads, in one table: its environment variable (the key), the flag that mirrors it, how
// its text is parsed, its default, the Helm value that sets it and what it means. Nothing else lists settings by
// hand: the loader (index.ts), the flags and --help (flags.ts, cli.ts), the README table (settings-table.ts) and
// `check`'s hints read this table, and test/chart/settings.test.ts checks the chart against it.
//
// Adding a setting: add an entry here (parser, default, example, flag, chart binding or none), read its typed value
// in loadConfig (index.ts) from `values.NAME`, run `npx tsx scripts/update-readme.ts`, and when the chart sets it,
// add it to templates/configmap.yaml (or secret.yaml) from the value named in `chart.value`, to values.yaml with the
// same default, and to the chart README's values table with "→ `NAME`".
import { SEVERITIES, WORKLOAD_KINDS } from '../types.js';
import {
  parseApiUrl,
  parseBoolean,
  parseByteSize,
  parseChoice,
  parseChoiceList,
  parseContextName,
  parseDurationMs,
  parseHeaderName,
  parseHeaderValue,
  parseInteger,
  parseLabelSelector,
  parseLogLevel,
  parseNamespacePatterns,
  parseNamespaces,
  parsePath,
  parsePathList,
  parseRedisUrl,
  parseRepositoryList,
  parseServerUrl,
  parseStorageSize,
} from './parse.js';
import {
  DEFAULT_LOCK_NAME,
  parseLockMode,
  parseLockName,
  parseLockNamespace,
  parseLockWait,
} from '../lock/settings.js';
import { DEFAULT_JOB, parseGroupingLabels, parseJobName, parsePushgatewayUrl } from '../metrics/grouping.js';
import { DEFAULT_EXCLUDED_OWNERS, parseOwnerKinds } from '../kube/owner-kinds.js';
import {
  DEFAULT_SHARD_PORT,
  MAX_SHARDS,
  MIN_TOKEN_LENGTH,
  parseCoordinatorUrl,
  parseListen,
  parseShardCount,
  parseShardIndex,
  parseShardTimeout,
  parseShardToken,
} from '../shard/settings.js';
import type { Setting, SettingSpec } from './setting.js';

const SWITCH = { boolean: true, parse: parseBoolean, allowed: 'true or false (also 1/0, yes/no, on/off)' } as const;
const DURATION = 'a duration';

const TABLE = {
  EPHOR_API_URL: {
    flag: '--api-url',
    parse: parseApiUrl,
    required: true,
    example: 'http://ephor-api:8080',
    allowed: 'http(s) URL without credentials, query or fragment; not needed for a dry run',
    description: 'Base URL of the Ephor API; findings go to <url>/api/v1/scans/ingest',
    chart: { value: 'ephor.apiUrl' },
  },
  EPHOR_AUTH_HEADER: {
    flag: '--auth-header',
    parse: parseHeaderName,
    example: 'X-API-Key',
    allowed: 'an HTTP header name, set together with EPHOR_AUTH_VALUE',
    description:
      'Header sent with every request to Ephor (for a proxy in front of it), e.g. X-API-Key or Authorization',
    chart: { value: 'ephor.authHeader', inSecret: true },
  },
  EPHOR_AUTH_VALUE: {
    secret: true,
    parse: parseHeaderValue,
    example: 'example-token',
    allowed: 'any value without line breaks, set together with EPHOR_AUTH_HEADER; environment only',
    description: 'Value of that header; never logged',
    chart: { value: 'ephor.authValue', hint: 'ephor.authValue, or the key in ephor.existingSecret', inSecret: true },
  },
  EPHOR_TIMEOUT: {
    flag: '--ephor-timeout',
    parse: (text) => parseDurationMs(text),
    default: '300',
    example: '10m',
    allowed: DURATION,
    description: 'Timeout of one request to Ephor (large namespaces take the API tens of seconds)',
    chart: { value: 'ephor.timeout' },
  },
  EPHOR_MAX_RETRIES: {
    flag: '--ephor-max-retries',
    parse: (text) => parseInteger(text, 0, 10),
    default: '4',
    example: '2',
    allowed: 'an integer from 0 to 10',
    description: 'Retries of a POST after a network error, 408, 429, 502, 503 or 504',
    chart: { value: 'ephor.maxRetries' },
  },
  EPHOR_MAX_PAYLOAD_BYTES: {
    flag: '--ephor-max-payload-bytes',
    parse: (text) => parseByteSize(text, 64 * 1024, 1024 ** 3),
    default: '8Mi',
    example: '1Mi',
    allowed: 'bytes, or with a suffix: 512Ki, 8Mi (at least 64Ki)',
    description: 'Largest scan body; a bigger namespace is split into several POSTs by whole workloads',
    chart: { value: 'ephor.maxPayloadBytes' },
  },
  EPHOR_DRY_RUN: {
    ...SWITCH,
    flag: '--dry-run',
    default: 'false',
    example: 'true',
    description: 'Do everything but POST: write each payload to EPHOR_OUTPUT_DIR instead',
  },
  EPHOR_OUTPUT_DIR: {
    flag: '--output-dir',
    parse: parsePath,
    default: 'ephor-scanner-output',
    example: '/tmp/ephor-payloads',
    allowed: 'a directory path',
    description: 'Where a dry run writes the payloads (one file per namespace and part)',
  },
  SCAN_NAMESPACES: {
    flag: '--namespaces',
    parse: parseNamespaces,
    required: true,
    example: 'default,production',
    allowed: 'comma-separated namespace names, or * for every namespace',
    description: 'Namespaces to scan; each gets its own payload',
    chart: { value: 'scan.namespaces' },
  },
  SCAN_EXCLUDE_NAMESPACES: {
    flag: '--exclude-namespaces',
    parse: parseNamespacePatterns,
    example: 'kube-*',
    allowed: 'comma-separated namespace names or globs (* and ?), e.g. kube-*',
    description: "Namespaces left out of SCAN_NAMESPACES=* or of the selector's result",
    chart: { value: 'scan.excludeNamespaces' },
  },
  SCAN_NAMESPACE_SELECTOR: {
    flag: '--namespace-selector',
    parse: parseLabelSelector,
    example: 'team=payments,env!=dev',
    allowed: 'a Kubernetes label selector, e.g. team=payments,env!=dev',
    description: 'Only namespaces with these labels (lists namespaces: needs RBAC list on namespaces)',
    chart: { value: 'scan.namespaceSelector' },
  },
  SCAN_CONCURRENCY: {
    flag: '--concurrency',
    parse: (text) => parseInteger(text, 1, 64),
    default: '3',
    example: '8',
    allowed: 'an integer from 1 to 64',
    description: 'Trivy processes running at the same time',
    chart: { value: 'scan.concurrency' },
  },
  SCAN_SEVERITY: {
    flag: '--severity',
    parse: (text) => parseChoiceList(text, SEVERITIES),
    default: 'CRITICAL,HIGH,MEDIUM,LOW',
    example: 'CRITICAL,HIGH',
    allowed: 'comma-separated CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN (any case)',
    description: 'Severities reported',
    chart: { value: 'scan.severity' },
  },
  SCAN_WORKLOAD_TYPES: {
    flag: '--workload-types',
    parse: (text) => parseChoiceList(text, WORKLOAD_KINDS),
    default: 'Deployment,StatefulSet,DaemonSet,CronJob',
    example: 'Deployment,Pod',
    allowed: 'comma-separated Deployment, StatefulSet, DaemonSet, CronJob, Pod (any case)',
    description: 'Workload kinds discovered; Pod adds standalone Pods (no controller)',
    chart: { value: 'scan.workloadTypes' },
  },
  SCAN_OTHER_CONTROLLERS: {
    ...SWITCH,
    flag: '--scan-other-controllers',
    default: 'true',
    example: 'false',
    description:
      "Report the Pods of other controllers (Argo Rollouts, operators' custom resources, " +
      'bare ReplicaSets and Jobs) as kind Pod, named after their top-level owner',
    chart: { value: 'scan.otherControllers.enabled' },
  },
  SCAN_OTHER_CONTROLLERS_EXCLUDE: {
    flag: '--scan-other-controllers-exclude',
    parse: parseOwnerKinds,
    default: DEFAULT_EXCLUDED_OWNERS,
    example: 'Workflow.argoproj.io,TaskRun.tekton.dev',
    allowed:
      'comma-separated Kind.group (e.g. Workflow.argoproj.io), or Kind for the core group (e.g. Pod); none for none',
    description:
      'Owners whose Pods are left out of SCAN_OTHER_CONTROLLERS (and counted in the ledger): ' +
      'by default workflow, CI and batch run objects, which get new names every run',
    chart: { value: 'scan.otherControllers.exclude' },
  },
  REGISTRY_AUTH_ENABLED: {
    ...SWITCH,
    flag: '--registry-auth-enabled',
    default: 'true',
    example: 'false',
    description:
      "Pull private images with the workloads' imagePullSecrets (needs RBAC get on secrets and serviceaccounts)",
    chart: { value: 'registryAuth.enabled' },
  },
  SCAN_DEADLINE: {
    flag: '--deadline',
    parse: (text) => parseDurationMs(text),
    example: '55m',
    allowed: 'a duration from the start of the run, e.g. 55m',
    description:
      'When the time left cannot fit more scans, ' +
      'stop starting them and deliver what is done (the chart sets it below activeDeadlineSeconds)',
    chart: { value: 'scan.deadlineMargin', hint: 'activeDeadlineSeconds and scan.deadlineMargin', computed: true },
  },
  SPOOL_DIR: {
    flag: '--spool-dir',
    parse: parsePath,
    example: '/var/spool/ephor',
    allowed: 'a directory path; default TRIVY_CACHE_DIR/spool',
    description: 'Where payloads that could not be delivered wait for the next run',
  },
  SPOOL_MAX_AGE: {
    flag: '--spool-max-age',
    parse: (text) => parseDurationMs(text, 30 * 24 * 3_600_000),
    default: '24h',
    example: '72h',
    allowed: 'a duration, at most 720h',
    description: 'Spooled payloads older than this are discarded instead of delivered',
  },
  KUBE_TIMEOUT: {
    flag: '--kube-timeout',
    parse: (text) => parseDurationMs(text),
    default: '30',
    example: '15',
    allowed: DURATION,
    description: 'Timeout of one Kubernetes API request',
    chart: { value: 'kube.timeout' },
  },
  KUBECONFIG: {
    flag: '--kubeconfig',
    parse: parsePathList,
    example: '/etc/ephor/kubeconfig',
    allowed: 'kubeconfig files separated by :, as for kubectl',
    description:
      "Cluster access as kubectl's: in a pod the service account is used unless this is set; " +
      'elsewhere default ~/.kube/config',
  },
  KUBE_CONTEXT: {
    flag: '--context',
    parse: parseContextName,
    example: 'production',
    allowed: 'a context of the kubeconfig (an unknown one is a configuration error)',
    description: "The kubeconfig context to use instead of its current-context, like kubectl's --context",
  },
  RUN_LOCK: {
    flag: '--run-lock',
    parse: parseLockMode,
    default: 'lease',
    example: 'none',
    allowed: 'lease or none',
    description:
      'lease: one run at a time posts to Ephor, ' +
      'on a Kubernetes Lease taken before scanning (README "Run lock"); none: no lock',
    chart: { value: 'runLock.mode' },
  },
  RUN_LOCK_NAME: {
    flag: '--run-lock-name',
    parse: parseLockName,
    default: DEFAULT_LOCK_NAME,
    example: 'ephor-scanner-prod',
    allowed: 'a Kubernetes object name (lower-case letters, digits, "-" and ".")',
    description: 'Name of the Lease; every scanner posting to one Ephor must use the same name and namespace',
    chart: { value: 'runLock.name' },
  },
  RUN_LOCK_NAMESPACE: {
    flag: '--run-lock-namespace',
    parse: parseLockNamespace,
    example: 'ephor',
    allowed: "a namespace name; default: the Pod's own namespace, else the kubeconfig context's, else default",
    description: "Namespace of the Lease (it must exist); the chart's default is the release namespace",
    chart: { value: 'runLock.namespace' },
  },
  RUN_LOCK_WAIT: {
    flag: '--run-lock-wait',
    parse: parseLockWait,
    default: '30m',
    example: '10m',
    allowed: 'a duration, or 0 to give up at once',
    description:
      'How long a run waits while another live run holds the lock; then it exits 1, having scanned and posted nothing',
    chart: {
      value: 'runLock.wait',
      hint: 'runLock.wait (empty: half of activeDeadlineSeconds minus scan.deadlineMargin)',
      computed: true,
    },
  },
  TRIVY_BINARY: {
    flag: '--trivy-binary',
    parse: (text) => text.trim(),
    default: 'trivy',
    example: '/usr/local/bin/trivy',
    allowed: 'an executable path, or a name found on PATH',
    description: 'The Trivy executable',
    chart: { value: 'trivy.binary' },
  },
  TRIVY_CACHE_DIR: {
    flag: '--trivy-cache-dir',
    parse: parsePath,
    default: '/tmp/trivy-cache',
    example: '/var/cache/trivy',
    allowed: 'a directory path',
    description: 'Where the vulnerability databases are kept between runs',
    chart: { value: 'trivy.cacheDir' },
  },
  TRIVY_CACHE_MODE: {
    flag: '--trivy-cache-mode',
    parse: (text) => parseChoice(text, ['ephemeral', 'shared', 'redis', 'server'] as const),
    // The CLI keeps ephemeral: server mode keeps a layer cache in TRIVY_CACHE_DIR and listens on a loopback port,
    // which a one-off run at a terminal does not ask for; the chart, which has a persistent volume, defaults to server.
    default: 'ephemeral',
    example: 'redis',
    allowed: 'ephemeral, shared, redis or server',
    description:
      'Layer cache: a private one per scan, the shared cache directory (forces concurrency 1), Redis, ' +
      'or a Trivy server the scanner starts (its layer cache in TRIVY_CACHE_DIR/fanal, every scan its client; ' +
      'TRIVY_SERVER_URL: an external one)',
    chart: { value: 'trivy.cacheMode', default: 'server' },
  },
  TRIVY_SERVER_URL: {
    flag: '--trivy-server-url',
    parse: parseServerUrl,
    example: 'http://trivy-server.trivy:4954',
    allowed: 'http(s) URL without credentials, query or fragment (a path prefix is allowed)',
    description:
      "An external Trivy server (trivy-operator's, or one shared by clusters): every scan is its client, " +
      'the scanner starts none and downloads no vulnerability DB (TRIVY_CACHE_MODE unset or server)',
    chart: { value: 'trivy.serverUrl' },
  },
  TRIVY_SERVER_TOKEN: {
    secret: true,
    parse: parseHeaderValue,
    example: 'example-server-token',
    allowed: 'any value without line breaks; environment only',
    description: 'Token of the external Trivy server (its --token); passed to Trivy only in TRIVY_TOKEN, never logged',
    chart: { value: 'trivy.serverToken', inSecret: true },
  },
  TRIVY_SERVER_TOKEN_HEADER: {
    flag: '--trivy-server-token-header',
    parse: parseHeaderName,
    default: 'Trivy-Token',
    example: 'X-Trivy-Token',
    allowed: 'an HTTP header name',
    description: 'The header the external Trivy server reads the token from (its --token-header)',
    chart: { value: 'trivy.serverTokenHeader' },
  },
  TRIVY_SERVER_START_TIMEOUT: {
    flag: '--trivy-server-start-timeout',
    parse: (text) => parseDurationMs(text),
    default: '60',
    example: '2m',
    allowed: DURATION,
    description:
      'How long the Trivy server the scanner starts (server mode) may take to answer /healthz; ' +
      'past it the run scans in ephemeral mode',
  },
  TRIVY_SCAN_CACHE_MAX_SIZE: {
    flag: '--trivy-scan-cache-max-size',
    parse: parseStorageSize,
    example: '2Gi',
    allowed: 'bytes, or with a suffix: 512Mi, 5Gi (at least 1Mi); unset: no bound',
    description:
      'Largest layer cache (TRIVY_CACHE_DIR/fanal, server and shared modes): ' +
      'a larger one is cleared at the start of a run, as is one a different Trivy version wrote',
    chart: { value: 'cache.size', hint: 'cache.size (half of it)', computed: true },
  },
  TRIVY_CACHE_BACKEND: {
    secret: true,
    parse: parseRedisUrl,
    example: 'redis://trivy-redis:6379',
    allowed: 'redis://… or rediss://…; required when TRIVY_CACHE_MODE=redis; environment only',
    description:
      'Redis URL of the layer cache (may hold a password: never logged, passed to Trivy through its environment)',
    chart: { value: 'trivy.cacheBackend', inSecret: true },
  },
  TRIVY_TIMEOUT: {
    flag: '--trivy-timeout',
    parse: (text) => parseDurationMs(text),
    default: '300',
    example: '10m',
    allowed: DURATION,
    description: 'Timeout of one image scan; the Trivy process group is killed when it passes',
    chart: { value: 'trivy.timeout' },
  },
  TRIVY_DB_UPDATE_TIMEOUT: {
    flag: '--trivy-db-update-timeout',
    parse: (text) => parseDurationMs(text),
    default: '60',
    example: '2m',
    allowed: DURATION,
    description: 'Timeout of each database download attempt',
    chart: { value: 'trivy.dbUpdateTimeout' },
  },
  TRIVY_DB_REPO: {
    flag: '--trivy-db-repo',
    parse: parseRepositoryList,
    example: 'registry.local:5000/aquasec/trivy-db:2',
    allowed: 'comma-separated OCI repositories, tried in order',
    description: 'Vulnerability DB mirrors (air-gapped clusters)',
    chart: { value: 'trivy.dbRepo' },
  },
  TRIVY_JAVA_DB_REPO: {
    flag: '--trivy-java-db-repo',
    parse: parseRepositoryList,
    example: 'registry.local:5000/aquasec/trivy-java-db:1',
    allowed: 'comma-separated OCI repositories, tried in order',
    description: 'Java DB mirrors',
    chart: { value: 'trivy.javaDbRepo' },
  },
  TRIVY_SKIP_DB_UPDATE: {
    ...SWITCH,
    flag: '--trivy-skip-db-update',
    default: 'false',
    example: 'true',
    description: 'Use the databases already in TRIVY_CACHE_DIR without downloading',
    chart: { value: 'trivy.skipDbUpdate' },
  },
  SBOM_ENABLED: {
    ...SWITCH,
    flag: '--sbom-enabled',
    default: 'false',
    example: 'true',
    description: 'Also deliver one SBOM per scanned image (POST /api/v1/sbom/ingest)',
    chart: { value: 'sbom.enabled' },
  },
  SBOM_FORMAT: {
    flag: '--sbom-format',
    // Trivy's `spdx` is tag-value text; the API takes JSON, so both spellings mean spdx-json.
    parse: (text) =>
      parseChoice(text, ['cyclonedx', 'spdx-json', 'spdx'] as const) === 'cyclonedx' ? 'cyclonedx' : 'spdx-json',
    default: 'cyclonedx',
    example: 'spdx-json',
    allowed: 'cyclonedx, spdx-json or spdx',
    description: 'SBOM format',
    chart: { value: 'sbom.format' },
  },
  LOG_LEVEL: {
    flag: '--log-level',
    parse: parseLogLevel,
    default: 'info',
    example: 'debug',
    allowed: 'debug, info, warn or error',
    description: 'Lowest level logged',
    chart: { value: 'log.level' },
  },
  LOG_FORMAT: {
    flag: '--log-format',
    parse: (text) => parseChoice(text, ['auto', 'json', 'text'] as const),
    default: 'auto',
    example: 'text',
    allowed: 'auto, json or text',
    description: 'JSON lines or readable text lines; auto: text when stdout is a terminal, JSON otherwise',
    // Explicit in the chart: a CronJob's stdout is no terminal (auto would give JSON too), and log pipelines parse it.
    chart: { value: 'log.format', default: 'json' },
  },
  METRICS_PUSHGATEWAY_URL: {
    flag: '--metrics-pushgateway-url',
    parse: parsePushgatewayUrl,
    example: 'http://prometheus-pushgateway.monitoring:9091',
    allowed: 'http(s) URL without credentials, query or fragment (a path prefix is allowed)',
    description: 'Prometheus Pushgateway that each run pushes its metrics to (unset: no metrics)',
    chart: { value: 'metrics.pushgateway.url' },
  },
  METRICS_PUSHGATEWAY_JOB: {
    flag: '--metrics-pushgateway-job',
    parse: parseJobName,
    default: DEFAULT_JOB,
    example: 'ephor-scanner-prod',
    allowed: 'non-empty text without control characters',
    description: 'The job label of the pushed group',
    chart: { value: 'metrics.pushgateway.job' },
  },
  METRICS_PUSHGATEWAY_GROUPING: {
    flag: '--metrics-pushgateway-grouping',
    parse: parseGroupingLabels,
    example: 'cluster=prod-eu',
    allowed:
      "name=value,name=value: Prometheus label names other than job and the metrics' own labels, values without commas",
    description: 'Further grouping labels of the pushed group (scanners sharing a Pushgateway need distinct groups)',
    chart: {
      value: 'metrics.pushgateway.groupingLabels',
      computed: true,
      hint: 'metrics.pushgateway.groupingLabels (a map)',
    },
  },
  SHARD_COUNT: {
    flag: '--shards',
    parse: parseShardCount,
    default: '1',
    example: '4',
    allowed: `an integer from 1 to ${MAX_SHARDS}`,
    description:
      'Scanner processes sharing one run (README "Scaling out"): ' +
      '1 is a single process; more split the images, and index 0 alone posts',
    chart: {
      value: 'scan.shards',
      hint: 'scan.shards (above 1: an Indexed Job of that many Pods)',
      computed: true,
    },
  },
  JOB_COMPLETION_INDEX: {
    flag: '--shard-index',
    parse: parseShardIndex,
    example: '1',
    allowed: 'an integer from 0 to SHARD_COUNT-1; required when SHARD_COUNT is above 1',
    description: "This process's shard: 0 takes the run lock, gathers the others' results and posts; set by Kubernetes",
    chart: { value: 'scan.shards', hint: 'set by Kubernetes in the Indexed Job', computed: true },
  },
  SHARD_LISTEN: {
    flag: '--shard-listen',
    parse: parseListen,
    default: `0.0.0.0:${DEFAULT_SHARD_PORT}`,
    example: '127.0.0.1:9470',
    allowed: 'host:port, or [ipv6]:port',
    description: 'Index 0 only: the address it listens on for the other shards',
    chart: { value: 'scan.shardPort', hint: 'scan.shardPort', computed: true },
  },
  SHARD_COORDINATOR_URL: {
    flag: '--shard-coordinator-url',
    parse: parseCoordinatorUrl,
    example: 'http://ephor-scanner-0.ephor-scanner-shards:8470',
    allowed: 'http(s) URL without credentials, query or fragment; required for the shards other than index 0',
    description: "Shards other than index 0: index 0's base URL (the chart builds it from the Job's name)",
    chart: {
      value: 'scan.shardPort',
      hint: "scan.shardPort (the URL of index 0's Pod through the headless Service)",
      computed: true,
    },
  },
  SHARD_TOKEN: {
    secret: true,
    parse: parseShardToken,
    example: 'example-shard-token-0123456789abcdef',
    allowed:
      `at least ${MIN_TOKEN_LENGTH} printable characters, no spaces; ` +
      'required when SHARD_COUNT is above 1; environment only',
    description: 'The secret every request between shards carries; never logged',
    chart: {
      value: 'scan.shards',
      hint: 'the Secret <fullname>-shards the chart generates (key shard-token), or scan.shardSecret.existingSecret',
      inSecret: true,
      computed: true,
    },
  },
  SHARD_TIMEOUT: {
    flag: '--shard-timeout',
    parse: parseShardTimeout,
    default: '2m',
    example: '5m',
    allowed: 'a duration from 1s to 1h',
    description:
      'How long a shard waits for an answer of index 0 before it exits 1, ' +
      "and index 0 for a silent shard before it scans that shard's images itself",
  },
} satisfies Record<string, SettingSpec<unknown>>;

type Table = typeof TABLE;
export type SettingName = keyof Table;
/** The parsed type of a setting. */
export type SettingValue<N extends SettingName> = ReturnType<Table[N]['parse']>;
/** Every setting's value after loading without a problem: a setting with a default always has one. */
export type SettingValues = {
  [N in SettingName]: Table[N] extends { default: string } ? SettingValue<N> : SettingValue<N> | undefined;
};

export const SETTINGS: readonly Setting[] = Object.entries(TABLE).map(([env, spec]): Setting => ({ env, ...spec }));

const BY_NAME = new Map(SETTINGS.map((setting) => [setting.env, setting]));

export function settingOf(variable: string): Setting | undefined {
  return BY_NAME.get(variable);
}
