// Every setting the scanner reads: its environment variable, the flag that mirrors it, its default and what is allowed.
// The CLI builds its options and `--help` from this table, and a test checks the README against it.

export interface Setting {
  env: string;
  /** Long flag that overrides the variable; absent for secrets, which must never appear in argv. */
  flag?: string;
  default?: string;
  allowed: string;
  description: string;
  secret?: boolean;
  required?: boolean;
  /** A true/false setting: its flag is a switch. */
  boolean?: boolean;
}

export const SETTINGS: readonly Setting[] = [
  {
    env: 'EPHOR_API_URL',
    flag: '--api-url',
    required: true,
    allowed: 'http(s) URL without credentials, query or fragment',
    description: 'Base URL of the Ephor API; findings go to <url>/api/v1/scans/ingest',
  },
  {
    env: 'EPHOR_AUTH_HEADER',
    flag: '--auth-header',
    allowed: 'an HTTP header name, set together with EPHOR_AUTH_VALUE',
    description:
      'Header sent with every request to Ephor (for a proxy in front of it), e.g. X-API-Key or Authorization',
  },
  {
    env: 'EPHOR_AUTH_VALUE',
    secret: true,
    allowed: 'any value without line breaks, set together with EPHOR_AUTH_HEADER; environment only',
    description: 'Value of that header; never logged',
  },
  {
    env: 'EPHOR_TIMEOUT',
    flag: '--ephor-timeout',
    default: '300',
    allowed: 'a duration',
    description: 'Timeout of one request to Ephor (large namespaces take the API tens of seconds)',
  },
  {
    env: 'EPHOR_MAX_RETRIES',
    flag: '--ephor-max-retries',
    default: '4',
    allowed: 'an integer from 0 to 10',
    description: 'Retries of a POST after a network error, 408, 429, 502, 503 or 504',
  },
  {
    env: 'EPHOR_MAX_PAYLOAD_BYTES',
    flag: '--ephor-max-payload-bytes',
    default: '8Mi',
    allowed: 'bytes, or with a suffix: 512Ki, 8Mi (at least 64Ki)',
    description: 'Largest scan body; a bigger namespace is split into several POSTs by whole workloads',
  },
  {
    env: 'EPHOR_DRY_RUN',
    boolean: true,
    flag: '--dry-run',
    default: 'false',
    allowed: 'true or false',
    description: 'Do everything but POST: write each payload to EPHOR_OUTPUT_DIR instead',
  },
  {
    env: 'EPHOR_OUTPUT_DIR',
    flag: '--output-dir',
    default: 'ephor-scanner-output',
    allowed: 'a directory path',
    description: 'Where a dry run writes the payloads (one file per namespace and part)',
  },
  {
    env: 'SCAN_NAMESPACES',
    flag: '--namespaces',
    required: true,
    allowed: 'comma-separated namespace names, or * for every namespace',
    description: 'Namespaces to scan; each gets its own payload',
  },
  {
    env: 'SCAN_EXCLUDE_NAMESPACES',
    flag: '--exclude-namespaces',
    allowed: 'comma-separated namespace names or globs (* and ?), e.g. kube-*',
    description: "Namespaces left out of SCAN_NAMESPACES=* or of the selector's result",
  },
  {
    env: 'SCAN_NAMESPACE_SELECTOR',
    flag: '--namespace-selector',
    allowed: 'a Kubernetes label selector, e.g. team=payments,env!=dev',
    description: 'Only namespaces with these labels (lists namespaces: needs RBAC list on namespaces)',
  },
  {
    env: 'SCAN_CONCURRENCY',
    flag: '--concurrency',
    default: '3',
    allowed: 'an integer from 1 to 64',
    description: 'Trivy processes running at the same time',
  },
  {
    env: 'SCAN_SEVERITY',
    flag: '--severity',
    default: 'CRITICAL,HIGH,MEDIUM,LOW',
    allowed: 'comma-separated CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN (any case)',
    description: 'Severities reported',
  },
  {
    env: 'SCAN_WORKLOAD_TYPES',
    flag: '--workload-types',
    default: 'Deployment,StatefulSet,DaemonSet,CronJob',
    allowed: 'comma-separated Deployment, StatefulSet, DaemonSet, CronJob, Pod (any case)',
    description: 'Workload kinds discovered; Pod adds standalone Pods (no controller)',
  },
  {
    env: 'REGISTRY_AUTH_ENABLED',
    flag: '--registry-auth-enabled',
    default: 'true',
    allowed: 'true or false',
    description:
      "Pull private images with the workloads' imagePullSecrets (needs RBAC get on secrets and serviceaccounts)",
  },
  {
    env: 'SCAN_DEADLINE',
    flag: '--deadline',
    allowed: 'a duration from the start of the run, e.g. 55m',
    description:
      'When the time left cannot fit more scans, stop starting them and deliver what is done (the chart sets it below activeDeadlineSeconds)',
  },
  {
    env: 'SPOOL_DIR',
    flag: '--spool-dir',
    allowed: 'a directory path; default TRIVY_CACHE_DIR/spool',
    description: 'Where payloads that could not be delivered wait for the next run',
  },
  {
    env: 'SPOOL_MAX_AGE',
    flag: '--spool-max-age',
    default: '24h',
    allowed: 'a duration',
    description: 'Spooled payloads older than this are discarded instead of delivered',
  },
  {
    env: 'KUBE_TIMEOUT',
    flag: '--kube-timeout',
    default: '30',
    allowed: 'a duration',
    description: 'Timeout of one Kubernetes API request',
  },
  {
    env: 'TRIVY_BINARY',
    flag: '--trivy-binary',
    default: 'trivy',
    allowed: 'an executable path, or a name found on PATH',
    description: 'The Trivy executable',
  },
  {
    env: 'TRIVY_CACHE_DIR',
    flag: '--trivy-cache-dir',
    default: '/tmp/trivy-cache',
    allowed: 'a directory path',
    description: 'Where the vulnerability databases are kept between runs',
  },
  {
    env: 'TRIVY_CACHE_MODE',
    flag: '--trivy-cache-mode',
    default: 'ephemeral',
    allowed: 'ephemeral, shared or redis',
    description: 'Layer cache: a private one per scan, the shared cache directory (forces concurrency 1), or Redis',
  },
  {
    env: 'TRIVY_CACHE_BACKEND',
    secret: true,
    allowed: 'redis://… or rediss://…; required when TRIVY_CACHE_MODE=redis; environment only',
    description:
      'Redis URL of the layer cache (may hold a password: never logged, passed to Trivy through its environment)',
  },
  {
    env: 'TRIVY_TIMEOUT',
    flag: '--trivy-timeout',
    default: '300',
    allowed: 'a duration',
    description: 'Timeout of one image scan; the Trivy process group is killed when it passes',
  },
  {
    env: 'TRIVY_DB_UPDATE_TIMEOUT',
    flag: '--trivy-db-update-timeout',
    default: '60',
    allowed: 'a duration',
    description: 'Timeout of each database download attempt',
  },
  {
    env: 'TRIVY_DB_REPO',
    flag: '--trivy-db-repo',
    allowed: 'comma-separated OCI repositories, tried in order',
    description: 'Vulnerability DB mirrors (air-gapped clusters)',
  },
  {
    env: 'TRIVY_JAVA_DB_REPO',
    flag: '--trivy-java-db-repo',
    allowed: 'comma-separated OCI repositories, tried in order',
    description: 'Java DB mirrors',
  },
  {
    env: 'TRIVY_SKIP_DB_UPDATE',
    boolean: true,
    flag: '--trivy-skip-db-update',
    default: 'false',
    allowed: 'true or false',
    description: 'Use the databases already in TRIVY_CACHE_DIR without downloading',
  },
  {
    env: 'SBOM_ENABLED',
    boolean: true,
    flag: '--sbom-enabled',
    default: 'false',
    allowed: 'true or false',
    description: 'Also deliver one SBOM per scanned image (POST /api/v1/sbom/ingest)',
  },
  {
    env: 'SBOM_FORMAT',
    flag: '--sbom-format',
    default: 'cyclonedx',
    allowed: 'cyclonedx, spdx-json or spdx',
    description: 'SBOM format',
  },
  {
    env: 'LOG_LEVEL',
    flag: '--log-level',
    default: 'info',
    allowed: 'debug, info, warn or error',
    description: 'Lowest level logged',
  },
  {
    env: 'LOG_FORMAT',
    flag: '--log-format',
    default: 'json',
    allowed: 'json or text',
    description: 'JSON lines, or readable text lines',
  },
];

export const DURATION_HELP = 'integer seconds (300) or a duration such as 90s, 10m, 1h30m';
