// The Ephor API's bodies as TypeScript types, mirroring contract/*.schema.json (the repository's copy of the API
// schemas, holbein-io/ephor v0.2.1). Each object type has a field list beside it, `*_FIELDS`, with the schema's
// required and optional property names; test/unit/contract-types.test.ts checks every list against the schema, and
// the compiler checks every list against its type, so a field the schema gains or loses fails one of the two.
//
// Request types describe what this scanner sends, which is narrower than what the schema allows: optional values are
// omitted, never null, and some fields the schema makes optional are always sent (they are required here).
// Response types describe what the scanner reads, which may be looser than what the server promises.
//
// `scan_config` is free-form in the schema (a JSON object stored verbatim); its content is this scanner's ledger,
// typed below as ScanConfig.
import type { ContainerNotDeliveredReason, DiscoveryError, TagReason } from '../types.js';

// ---- Enumerations ----

export type Severity = 'CRITICAL' | 'HIGH' | 'MEDIUM' | 'LOW' | 'UNKNOWN';
export const SEVERITIES: readonly Severity[] = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'UNKNOWN'];

export type WorkloadKind = 'Deployment' | 'StatefulSet' | 'DaemonSet' | 'CronJob' | 'Pod';
export const WORKLOAD_KINDS: readonly WorkloadKind[] = ['Deployment', 'StatefulSet', 'DaemonSet', 'CronJob', 'Pod'];

/** The schema also allows `running`, which this scanner never sends: a scan row can never be updated (§7.14). */
export type ScanStatus = 'completed' | 'failed';
export const SCAN_STATUSES: readonly ScanStatus[] = ['completed', 'failed'];

export type SbomFormat = 'cyclonedx' | 'spdx';
export const SBOM_FORMATS: readonly SbomFormat[] = ['cyclonedx', 'spdx'];

/** `created` (HTTP 201, a new document) or `updated` (HTTP 200, the same SBOM was already stored). */
export type SbomIngestStatus = 'created' | 'updated';
export const SBOM_INGEST_STATUSES: readonly SbomIngestStatus[] = ['created', 'updated'];

// ---- POST /api/v1/scans/ingest (ephor-ingest-request.schema.json) ----

/** `$defs/vulnerability`. Its natural key is (cve_id, package_name, package_version, scanner_type). */
export interface Vulnerability {
  cve_id: string;
  package_name: string;
  /** Always sent, `""` when Trivy has none: the Go scanner's convention, part of the natural key (§7.5). */
  package_version: string;
  severity: Severity;
  scanner_type: string;
  package_class?: string;
  package_type?: string;
  title?: string;
  description?: string;
  primary_url?: string;
  published_date?: string;
  /** Omitted when there is no fix: any non-null value counts as fixable (§7.6). */
  fixed_version?: string;
  references?: string[];
  cvss_v3_vector?: string;
  cvss_v3_score?: number;
  /** Not sent: the server uses its own clock when it creates the vulnerability row. */
  first_detected?: string;
  /** Not sent: parsed but ignored by the server. */
  last_seen?: string;
}
export const VULNERABILITY_FIELDS = requestFields<Vulnerability>()({
  required: ['cve_id', 'package_name', 'severity', 'scanner_type'],
  optional: [
    'package_version',
    'title',
    'description',
    'primary_url',
    'published_date',
    'fixed_version',
    'package_class',
    'package_type',
    'references',
    'cvss_v3_vector',
    'cvss_v3_score',
    'first_detected',
    'last_seen',
  ],
});

/** `$defs/container`. Absent, null and `[]` vulnerabilities all auto-resolve the container's findings (§7.4). */
export interface ContainerPayload {
  name: string;
  image_name: string;
  image_tag: string;
  image_created?: string;
  /** Not sent: Trivy does not report it. */
  base_image_created?: string;
  detected_ecosystems?: string[];
  os_family?: string;
  os_name?: string;
  repo_digests?: string[];
  vulnerabilities: Vulnerability[];
}
export const CONTAINER_FIELDS = requestFields<ContainerPayload>()({
  required: ['name'],
  optional: [
    'image_name',
    'image_tag',
    'image_created',
    'base_image_created',
    'detected_ecosystems',
    'os_family',
    'os_name',
    'repo_digests',
    'vulnerabilities',
  ],
});

/** `$defs/workload`. Labels are always sent whole: the server replaces them on every POST (§7.8). */
export interface WorkloadPayload {
  namespace: string;
  name: string;
  kind: WorkloadKind;
  labels: Record<string, string>;
  containers: ContainerPayload[];
}
export const WORKLOAD_FIELDS = requestFields<WorkloadPayload>()({
  required: ['namespace', 'name', 'kind', 'containers'],
  optional: ['labels'],
});

export interface ScanIngestRequest {
  namespace: string;
  scan_label: string;
  scan_group_id: string;
  status: ScanStatus;
  started_at: string;
  completed_at: string;
  trivy_version?: string;
  scan_config: ScanConfig;
  workloads: WorkloadPayload[];
}
export const SCAN_INGEST_REQUEST_FIELDS = requestFields<ScanIngestRequest>()({
  required: ['namespace', 'scan_label', 'status', 'workloads'],
  optional: ['scan_group_id', 'started_at', 'completed_at', 'trivy_version', 'scan_config'],
});

// ---- Its 201 answer (ephor-ingest-response.schema.json) ----

export interface ScanIngestResponse {
  scan_id: number;
  vulnerabilities: number;
  workloads: number;
  critical_vulns: number;
  auto_resolved: number;
  reopened: number;
}
export const SCAN_INGEST_RESPONSE_FIELDS = responseFields<ScanIngestResponse>()({
  required: ['scan_id', 'vulnerabilities', 'workloads', 'critical_vulns', 'auto_resolved', 'reopened'],
  optional: [],
});

/** An error answer (§3.6; no schema in contract/). Every member may be missing: a proxy may have answered. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  instance?: string;
  trace_id?: string;
  timestamp?: string;
  errors?: Array<{ field?: string; message?: string; rejected_value?: unknown }>;
}

// ---- POST /api/v1/sbom/ingest (ephor-sbom-ingest-request.schema.json) and its answer ----

export interface SbomIngestRequest {
  /** `image_name:image_tag` of the containers in the scan payload: how Ephor links an SBOM to them. */
  image_reference: string;
  image_digest?: string;
  scan_group_id: string;
  format: SbomFormat;
  /** The whole document, stored verbatim; it must hold `bomFormat` (CycloneDX) or `spdxVersion` (SPDX). */
  sbom: Record<string, unknown>;
}
export const SBOM_INGEST_REQUEST_FIELDS = requestFields<SbomIngestRequest>()({
  required: ['image_reference', 'format', 'sbom'],
  optional: ['image_digest', 'scan_group_id'],
});

/** Only `id` and `status` are required to count an answer as a success; the rest is kept when present. */
export interface SbomIngestResponse {
  id: string;
  status: SbomIngestStatus;
  image_reference?: string;
  content_hash?: string;
}
export const SBOM_INGEST_RESPONSE_FIELDS = responseFields<SbomIngestResponse>()({
  required: ['id', 'image_reference', 'content_hash', 'status'],
  optional: [],
});

// ---- scan_config: this scanner's ledger (free-form for Ephor, stored verbatim) ----

/** Run-wide facts, the same in every namespace's scan_config (RunFacts.scanConfig). */
export interface ScannerFacts {
  scanner: string;
  scanner_version: string;
  trivy_version: string | null;
  vulnerability_db: { updated_at: string | null; downloaded_at: string | null; download_error?: string };
  java_db: { ready: boolean; updated_at: string | null };
  severities: readonly Severity[];
  workload_types: readonly WorkloadKind[];
  /** SCAN_OTHER_CONTROLLERS and SCAN_OTHER_CONTROLLERS_EXCLUDE (`Kind.group`). */
  other_controllers?: { enabled: boolean; exclude: string[] };
  /** TRIVY_CACHE_MODE */
  cache_mode: string;
}

/** What the findings of one namespace cover. */
export interface Coverage {
  workloads_discovered: number;
  workloads_delivered: number;
  containers_discovered: number;
  containers_delivered: number;
  containers_not_delivered: number;
  containers_by_running_digest: number;
  containers_by_spec_tag: number;
  discovery_complete: boolean;
}

/** A container that is not in its namespace's payload, and why. */
export interface LedgerEntry {
  workload: string;
  kind: WorkloadKind;
  container: string;
  image: string;
  reason: ContainerNotDeliveredReason;
  detail: string;
  /** The platforms it runs on, when known (for `unsupported_platform`: those Trivy cannot scan). */
  platforms?: string[];
}

/** A delivered container whose findings are those of its spec tag, not of a running digest. */
export interface TagScanEntry {
  workload: string;
  kind: WorkloadKind;
  container: string;
  image: string;
  reason: TagReason;
  /** The platform the tag was scanned for (the one all Linux nodes share); absent: Trivy's default. */
  platform?: string;
}

/** A delivered container scanned for several platforms (the union of their findings), or also running where it
 * cannot be scanned. */
export interface MultiPlatformEntry {
  workload: string;
  kind: WorkloadKind;
  container: string;
  /** The platforms it was scanned for. */
  platforms: string[];
  /** Platforms it also runs on that Trivy cannot scan (Windows): those instances' findings are not in the payload. */
  not_scanned?: string[];
}

/** Which platforms the namespace's images were scanned for. */
export interface PlatformLedger {
  /** The nodes could be listed, so each running digest was scanned for the platform of its nodes. */
  nodes_listed: boolean;
  /** Why some images were scanned without `--platform` (nodes not listed, Linux nodes of several platforms). */
  note?: string;
  /** For nodes that could not be listed with a 403: the RBAC rule that is missing. */
  missing_rbac?: string;
  /** Delivered containers by the platform they were scanned for (`unknown`: without `--platform`); a container
   * scanned for two platforms counts for each. */
  containers_by_platform: Record<string, number>;
  /** At most MAX_LEDGER_ENTRIES; `multi_platform_omitted` counts the rest. */
  multi_platform: MultiPlatformEntry[];
  multi_platform_omitted?: number;
}

/** A list call of this namespace that failed during discovery. */
export interface DiscoveryErrorEntry {
  kind: DiscoveryError['kind'];
  status?: number;
  reason: string;
  message: string;
  /** For a 403: the RBAC rule that is missing. */
  missing_rbac?: string;
}

/** Which slice of the namespace a body is, when a namespace is sent in several parts. */
export interface PartLabel {
  index: number;
  count: number;
}

/** One namespace's ledger: what its payload holds, what it leaves out and why. */
export interface NamespaceLedger {
  coverage: Coverage;
  /** At most MAX_LEDGER_ENTRIES; `not_delivered_omitted` counts the rest. */
  not_delivered: LedgerEntry[];
  not_delivered_omitted?: number;
  scanned_by_tag: TagScanEntry[];
  scanned_by_tag_omitted?: number;
  /** Active Pods not reported because their owner cannot be (SCAN_OTHER_CONTROLLERS: its chain cannot be read;
   * without it: no Ephor kind), by the kind of their controller. */
  pods_not_attributed?: Record<string, number>;
  /** Active Pods left out by SCAN_OTHER_CONTROLLERS_EXCLUDE, by their owner's `Kind.group`. */
  pods_excluded?: Record<string, number>;
  /** Present when the run asked for the nodes' platforms. */
  platforms?: PlatformLedger;
  discovery_errors?: DiscoveryErrorEntry[];
  /** Label keys longer than Ephor's column (they would fail the whole namespace). */
  labels_dropped?: string[];
}

export interface ScanConfig extends ScannerFacts, NamespaceLedger {
  /** Set only when the namespace is sent in several parts. */
  part?: PartLabel;
}

// ---- Field lists, checked against their type by the compiler ----

/** The property names of one schema object: its `required` list, and the rest of its `properties`. */
export interface SchemaFields {
  readonly required: readonly string[];
  readonly optional: readonly string[];
}

type RequiredKeys<T> = { [K in keyof T]-?: Partial<Pick<T, K>> extends Pick<T, K> ? never : K }[keyof T];
type Nothing<K, Error> = [K] extends [never] ? unknown : Error;

/** Every key of T is listed (the lists hold only keys of T). */
type AllListed<T, Listed> = Nothing<Exclude<keyof T, Listed>, { notListed: Exclude<keyof T, Listed> }>;

/** A request type may require more than the schema, never less: a field the server requires is always sent. */
function requestFields<T>() {
  return <const R extends readonly (keyof T & string)[], const O extends readonly (keyof T & string)[]>(
    fields: { required: R; optional: O } & AllListed<T, R[number] | O[number]> &
      Nothing<
        Exclude<R[number], RequiredKeys<T>>,
        { optionalHereButRequiredBySchema: Exclude<R[number], RequiredKeys<T>> }
      >,
  ): SchemaFields => fields;
}

/** A response type may require less than the schema, never more: what the server may omit is never relied on. */
function responseFields<T>() {
  return <const R extends readonly (keyof T & string)[], const O extends readonly (keyof T & string)[]>(
    fields: { required: R; optional: O } & AllListed<T, R[number] | O[number]> &
      Nothing<
        Exclude<RequiredKeys<T>, R[number]>,
        { requiredHereButOptionalInSchema: Exclude<RequiredKeys<T>, R[number]> }
      >,
  ): SchemaFields => fields;
}
