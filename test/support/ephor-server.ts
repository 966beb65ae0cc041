// A loopback stand-in for the Ephor API (shared/reference/ephor-api-contract.md, holbein-io/ephor v0.2.1).
// It answers like the real API and models what the API does with a scan payload (contract §3.4), so tests
// can check which findings Ephor would leave open, resolve or reopen.
//
// Request pipeline of an ingest POST, in the real server's order:
//   content type (415) → JSON parse (400 invalid-format) → Jackson binding with its coercions (400 invalid-format)
//   → Bean Validation (400 validation-error) → PostgreSQL limits (500, nothing stored) → model (201).
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { Worker } from 'node:worker_threads';
import { gunzipSync } from 'node:zlib';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ErrorObject } from 'ajv/dist/2020.js';
import { schemaDocument, schemaErrors, validate, type SchemaName } from './contract.js';

// ---------------------------------------------------------------------------------------------------------------
// Public API

export interface ScriptedResponse {
  status?: number;
  body?: string;
  html?: boolean;
  headers?: Record<string, string>;
  delayMs?: number;
  reset?: boolean;
  processAnyway?: boolean;
}

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  rawBody: Buffer;
  /** Parsed JSON when parseable (gunzipped for sbom). */
  body?: unknown;
  receivedAt: number;
  finishedAt?: number;
  /** status 0 / body '' while unanswered, and when the socket was reset or the client left first. */
  response: { status: number; body: string };
  /** Ingest POSTs with a parseable body: strict schema check of the body as sent ([] = conforms). */
  contractErrors?: string[];
  /** Why the stand-in refused the request: what the real server would have logged. */
  rejectedBecause?: string[];
  /** Id of the scan row this request created (also for a scripted answer with processAnyway). */
  scanId?: number;
  /** `light` mode only: the body's size in bytes (the body itself is not kept). */
  bytes?: number;
  /** `light` mode only: what the scan body held. */
  summary?: LightSummary;
}

export interface LightSummary {
  /** Workloads, vulnerability entries and CRITICAL ones, counted from their keys' bytes (what the answer reports). */
  workloads: number;
  vulnerabilities: number;
  critical: number;
  /** Set once the body had its full check (one in `lightSample`): what the parse found, and how long it took. */
  checked?: {
    namespace: string;
    workloads: number;
    containers: number;
    vulnerabilities: number;
    critical: number;
    ms: number;
  };
}

export interface EphorServerOptions {
  script?: ScriptedResponse[];
  requireHeader?: { name: string; value: string };
  /**
   * Benchmark mode for scan ingests of tens of thousands of workloads (gigabytes of bodies): no model, no contract
   * validation, nothing of the body kept (`rawBody` stays empty; `bytes` and `summary` record it). Before answering,
   * the stand-in checks the content type, UTF-8 and the braces around the body (415/400 as the API) and counts its
   * entries from their keys, then answers 201 with the real response's fields (auto_resolved and reopened 0). The
   * whole body is parsed and its shape checked (the contract's required fields with their JSON types) later, in a
   * worker thread, when `settled()` is called: so the check neither delays the answers nor competes for CPU with the
   * client being measured. A body that fails the check gets `rejectedBecause`. Bodies waiting for their check are
   * kept in memory; past 512 MiB of them the checks start at once and the answer waits for them. The proxy header,
   * scripts (which take precedence) and SBOM ingests work as without it.
   */
  light?: boolean;
  /** `light` mode: check one body in this many (the 1st, the (n+1)-th, …); default 1, every body. */
  lightSample?: number;
}

export interface InstanceState {
  status: 'open' | 'resolved' | 'triaged' | 'false_positive' | 'accepted_risk';
  resolutionType?: 'auto' | 'manual';
}

export interface ContainerQuery {
  namespace: string;
  workload: string;
  kind: string;
  container: string;
}
export interface VulnerabilityIdentity {
  cveId: string;
  packageName: string;
  packageVersion: string | null;
  scannerType: string;
}
export type FindingQuery = ContainerQuery & VulnerabilityIdentity;
export interface SeededFinding extends FindingQuery {
  severity?: string;
  status?: InstanceState['status'];
  /** Only for status 'resolved'; default 'manual'. */
  resolutionType?: 'auto' | 'manual';
}

export interface ScanRow {
  id: number;
  namespace: string;
  scanLabel: string;
  status: string;
  scanGroupId: string | null;
  startedAt: string;
  completedAt: string | null;
  trivyVersion: string | null;
  autoResolved: number;
  reopened: number;
}

export interface StoredSbom {
  id: string;
  imageReference: string;
  imageDigest: string | null;
  contentHash: string;
  format: string;
  scanGroupId: string | null;
  document: Record<string, unknown>;
  /** ISO instants: first_seen is set on creation; last_seen again on every dedup hit ("updated"). */
  firstSeen: string;
  lastSeen: string;
  /** Rows indexed into sbom_packages: top-level components (CycloneDX) / packages (SPDX) with a string name and version. */
  packageCount: number;
}

export interface EphorServer {
  url: string;
  requests: ReceivedRequest[];
  scanIngests(): ReceivedRequest[];
  /** Highest number of POST /scans/ingest handled at once (contract §3.7: must stay 1). */
  maxConcurrentIngests: number;
  /** Highest number of POST /sbom/ingest handled at once. */
  maxConcurrentSbomIngests: number;
  /** Highest number of ingest POSTs of both kinds handled at once. */
  maxConcurrentPosts: number;
  /**
   * Every pair of ingest POSTs (scan or SBOM, from any client) that were being handled at the same time, as
   * [earlier, later]: the later arrived while the earlier was not yet answered. Contract §3.7: there must be none,
   * also between two scanner runs.
   */
  overlappingPosts(): Array<[ReceivedRequest, ReceivedRequest]>;
  pushScript(...r: ScriptedResponse[]): void;
  seedFinding(f: SeededFinding): void;
  instance(q: FindingQuery): InstanceState | undefined;
  openFindings(q: ContainerQuery): VulnerabilityIdentity[];
  workloadLabels(namespace: string, name: string, kind: string): Record<string, string> | undefined;
  /** Stored container columns (only ever overwritten by non-null values). */
  containerAttributes(q: ContainerQuery): Record<string, unknown> | undefined;
  /** The global vulnerability row: severity is frozen at creation; attributes only overwritten by non-null values. */
  vulnerability(q: VulnerabilityIdentity): { severity: string; attributes: Record<string, unknown> } | undefined;
  scans(): ScanRow[];
  sboms(): StoredSbom[];
  /** Resolves once no request is being handled (e.g. a delayed processAnyway request has committed). */
  settled(): Promise<void>;
  close(): Promise<void>;
}

export async function startEphorServer(opts: EphorServerOptions = {}): Promise<EphorServer> {
  const server = new EphorStandIn(opts);
  await server.listen();
  return server;
}

// ---------------------------------------------------------------------------------------------------------------
// Schemas and the facts derived from them

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

interface SchemaNode {
  $ref?: string;
  $defs?: Record<string, SchemaNode>;
  type?: string | string[];
  enum?: Json[];
  pattern?: string;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  items?: SchemaNode;
}

const INGEST_SCHEMA = schemaDocument('ingest-request') as SchemaNode;
const SBOM_SCHEMA = schemaDocument('sbom-request') as SchemaNode;

function patternOf(schema: SchemaNode, property: string): string {
  const pattern = schema.properties?.[property]?.pattern;
  if (!pattern) throw new Error(`contract schema: ${property} has no pattern`);
  return pattern;
}
const INSTANT_PATTERN = patternOf(INGEST_SCHEMA, 'started_at');
const UUID_PATTERN = patternOf(INGEST_SCHEMA, 'scan_group_id');
/** The schema's stand-in for @NotBlank. */
const NOT_BLANK_PATTERN = patternOf(INGEST_SCHEMA, 'namespace');

/** Bean Validation messages of the DTOs (ScanIngestRequest, WorkloadData, ContainerData, VulnerabilityData, SbomIngestRequest). */
const FIELD_MESSAGES: Record<string, string> = {
  namespace: 'Namespace is required',
  scan_label: 'Scan label is required',
  status: 'Status is required',
  workloads: 'Workloads list is required',
  'workloads.namespace': 'Namespace is required',
  'workloads.name': 'Name is required',
  'workloads.kind': 'Kind is required',
  'workloads.containers': 'Containers list is required and must not be empty',
  'containers.name': 'Container name is required',
  'vulnerabilities.cve_id': 'CVE ID is required',
  'vulnerabilities.package_name': 'Package name is required',
  'vulnerabilities.severity': 'Severity is required',
  'vulnerabilities.scanner_type': 'Scanner type is required',
  image_reference: 'Image reference is required',
  format: 'Format is required',
  sbom: 'SBOM document is required',
};

const SBOM_FORMATS = ['cyclonedx', 'spdx'];
const SBOM_MAX_BYTES = 5 * 1024 * 1024;
const CONTAINER_ATTRIBUTES = [
  'image_name',
  'image_tag',
  'image_created',
  'base_image_created',
  'detected_ecosystems',
  'os_family',
  'os_name',
  'repo_digests',
];
/** Overwritten on an existing vulnerability only when non-null; severity is never updated. */
const VULNERABILITY_ATTRIBUTES = [
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
];

// ---------------------------------------------------------------------------------------------------------------
// Jackson-like binding: what reaches the DTO, or InvalidFormat (a 400 with no field list).
// Models the coercions the contract verified (§3.3): numbers/booleans read as strings, enum ordinals,
// epoch-second dates, "" as null for dates/UUIDs/numbers, unknown keys dropped.

class InvalidFormat extends Error {}

interface BindContext {
  root: SchemaNode;
  /** false for the SBOM request, whose `format` is a plain String checked later by the service. */
  javaEnums: boolean;
}

function bindRequest(root: SchemaNode, body: Json, javaEnums: boolean): Json {
  if (body === null) throw new InvalidFormat('request body is missing');
  return bindValue(root, body, '', { root, javaEnums });
}

function bindValue(node: SchemaNode, value: Json, where: string, ctx: BindContext): Json {
  const schema = resolveRef(node, ctx.root);
  if (value === null) return null;
  if (ctx.javaEnums && schema.enum) return bindEnum(schema.enum, value, where);
  if (schema.pattern === INSTANT_PATTERN) return bindInstant(value, where);
  if (schema.pattern === UUID_PATTERN) return bindUuid(value, where);
  const types = [schema.type ?? []].flat();
  if (types.includes('object')) return bindObject(schema, value, where, ctx);
  if (types.includes('array')) return bindArray(schema, value, where, ctx);
  if (types.includes('number')) return bindNumber(value, where);
  if (types.includes('string')) return bindString(value, where);
  return value;
}

function resolveRef(node: SchemaNode, root: SchemaNode): SchemaNode {
  if (!node.$ref) return node;
  const target = root.$defs?.[node.$ref.replace('#/$defs/', '')];
  if (!target) throw new Error(`contract schema: unresolved ${node.$ref}`);
  return target;
}

function cannotRead(where: string, value: Json, expected: string): never {
  throw new InvalidFormat(`${where || '(body)'}: cannot read ${JSON.stringify(value)} as ${expected}`);
}

function isJsonObject(value: Json): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function joinPath(where: string, key: string): string {
  return where ? `${where}.${key}` : key;
}

function bindObject(schema: SchemaNode, value: Json, where: string, ctx: BindContext): Json {
  if (!isJsonObject(value)) cannotRead(where, value, 'an object');
  if (schema.properties) {
    // Unknown (e.g. camelCase) keys are dropped, as with FAIL_ON_UNKNOWN_PROPERTIES off.
    const known = Object.entries(schema.properties).filter(([key]) => Object.hasOwn(value, key));
    return Object.fromEntries(
      known.map(([key, property]) => [key, bindValue(property, value[key] ?? null, joinPath(where, key), ctx)]),
    );
  }
  const valueSchema = schema.additionalProperties;
  if (typeof valueSchema === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, bindValue(valueSchema, item, joinPath(where, key), ctx)]),
    );
  }
  return value; // free-form Map<String, Object> (scan_config, sbom), kept verbatim
}

function bindArray(schema: SchemaNode, value: Json, where: string, ctx: BindContext): Json {
  if (!Array.isArray(value)) cannotRead(where, value, 'an array');
  const items = schema.items ?? {};
  return value.map((item, index) => bindValue(items, item, `${where}[${index}]`, ctx));
}

function bindString(value: Json, where: string): Json {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return cannotRead(where, value, 'a string');
}

function bindEnum(values: Json[], value: Json, where: string): Json {
  if (typeof value === 'string' && values.includes(value)) return value;
  // FAIL_ON_NUMBERS_FOR_ENUMS is off: an integer is the constant's ordinal.
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < values.length)
    return values[value] ?? null;
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- an enum's values are strings
  return cannotRead(where, value, `one of ${values.join('|')}`);
}

function bindNumber(value: Json, where: string): Json {
  if (typeof value === 'number') return value;
  if (typeof value === 'string') {
    const text = value.trim();
    if (text === '') return null;
    if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) return Number(text);
  }
  return cannotRead(where, value, 'a number');
}

function bindUuid(value: Json, where: string): Json {
  if (value === '') return null;
  if (typeof value === 'string' && new RegExp(UUID_PATTERN).test(value)) return value.toLowerCase();
  return cannotRead(where, value, 'a UUID');
}

const ISO_INSTANT =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{0,9}))?([Zz]|[+-]\d{2}:\d{2}(?::\d{2})?|\+00(?:00)?)$/;

function bindInstant(value: Json, where: string): Json {
  if (typeof value === 'number') return epochSecondsToIso(value, where);
  if (typeof value !== 'string') return cannotRead(where, value, 'an instant');
  const text = value.trim();
  if (text === '') return null;
  // A number, or a numeric string, is read as epoch SECONDS (Jackson's default), not milliseconds.
  if (/^-?\d+(\.\d+)?$/.test(text)) return epochSecondsToIso(Number(text), where);
  const millis = isoInstantMillis(text);
  return millis === undefined ? cannotRead(where, value, 'an ISO-8601 instant') : new Date(millis).toISOString();
}

function epochSecondsToIso(seconds: number, where: string): string {
  const date = new Date(seconds * 1000);
  if (Number.isNaN(date.getTime())) return cannotRead(where, seconds, 'an instant');
  return date.toISOString();
}

function isoInstantMillis(text: string): number | undefined {
  const match = ISO_INSTANT.exec(text);
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const fraction = Number(`0.${match[7] ?? ''}0`);
  const utc = Date.UTC(year, month - 1, day, hour, minute, second);
  const calendar = new Date(utc);
  const isRealDate =
    calendar.getUTCMonth() === month - 1 && calendar.getUTCDate() === day && hour < 24 && minute < 60 && second < 60;
  if (!isRealDate) return undefined;
  return utc + Math.round(fraction * 1000) - offsetMillis(match[8] ?? 'Z');
}

function offsetMillis(offset: string): number {
  if (/^[Zz]$/.test(offset)) return 0;
  const sign = offset.startsWith('-') ? -1 : 1;
  const [hours = 0, minutes = 0, seconds = 0] = offset.slice(1).split(':').map(Number);
  // "+0000" splits to a single 0: fine, only a zero offset may come without a colon.
  return sign * ((hours * 60 + minutes) * 60 + seconds) * 1000;
}

// ---------------------------------------------------------------------------------------------------------------
// What the Ajv violations of a bound request mean on the real server

interface FieldError {
  field: string;
  message: string;
  rejected_value?: unknown;
}
interface Verdict {
  /** Bean Validation failures: 400 validation-error listing all of them. */
  fieldErrors: FieldError[];
  /** Failures only the database (or a NullPointerException) finds: 500 and the transaction rolled back. */
  internalErrors: string[];
}
type ViolationKind = 'bean' | 'internal' | 'ignored';

function judge(schema: SchemaName, bound: Json): Verdict {
  const verdict: Verdict = { fieldErrors: [], internalErrors: [] };
  for (const error of schemaErrors(schema, bound)) {
    const kind = violationKind(error);
    if (kind === 'internal') verdict.internalErrors.push(`${error.instancePath} ${error.message ?? ''}`);
    if (kind !== 'bean') continue;
    const fieldError = fieldErrorOf(error, bound);
    if (!verdict.fieldErrors.some((known) => known.field === fieldError.field)) verdict.fieldErrors.push(fieldError);
  }
  return verdict;
}

function violationKind(error: ErrorObject): ViolationKind {
  // The SBOM format and document-key rules (allOf) are service checks that run after Bean Validation.
  if (error.schemaPath.startsWith('#/allOf')) return 'ignored';
  switch (error.keyword) {
    case 'required':
    case 'minLength':
    case 'minItems':
      return 'bean';
    case 'pattern':
      // Instant and UUID shapes were already enforced by the binder; only @NotBlank remains.
      return error.params.pattern === NOT_BLANK_PATTERN ? 'bean' : 'ignored';
    case 'maxLength':
    case 'propertyNames':
      return 'internal'; // VARCHAR(n) overflow, not caught by validation
    case 'enum':
      return 'ignored'; // non-null values were checked by the binder; null is reported by 'type'
    case 'type':
      return nullViolationKind(error.schemaPath);
    default:
      throw new Error(`stand-in does not know how to judge '${error.keyword}' at ${error.instancePath}`);
  }
}

/** After binding, a type violation can only be a null where the schema wants a value. */
function nullViolationKind(schemaPath: string): ViolationKind {
  if (schemaPath.endsWith('/additionalProperties/type')) return 'internal'; // null label value: NOT NULL column
  if (schemaPath.endsWith('/items/type')) return 'ignored'; // null inside a string list is stored as JSON null
  if (schemaPath === '#/type') return 'internal'; // null element of workloads/containers/vulnerabilities: NPE
  return 'bean'; // @NotNull / @NotBlank / @NotEmpty field
}

function fieldErrorOf(error: ErrorObject, bound: Json): FieldError {
  const segments = error.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (error.keyword === 'required') segments.push(String(error.params.missingProperty));
  const owner = segments.length >= 3 ? segments[segments.length - 3] : '';
  const messageKey = owner ? `${owner}.${segments.at(-1)}` : String(segments.at(-1));
  const rejected = valueAt(bound, segments);
  return {
    field: segments.map((s, i) => (/^\d+$/.test(s) ? `[${s}]` : i === 0 ? s : `.${s}`)).join(''),
    message: FIELD_MESSAGES[messageKey] ?? 'must not be blank',
    ...(rejected === null || rejected === undefined ? {} : { rejected_value: rejected }),
  };
}

function valueAt(root: Json, segments: string[]): Json | undefined {
  let current: Json | undefined = root;
  for (const segment of segments) {
    if (current === null || typeof current !== 'object') return undefined;
    current = Array.isArray(current) ? current[Number(segment)] : current[segment];
  }
  return current;
}

/** PostgreSQL rejects U+0000 in TEXT, VARCHAR and JSONB values alike (keys included). */
function nulPaths(value: Json, where = ''): string[] {
  if (typeof value === 'string') return value.includes('\u0000') ? [where || '(body)'] : [];
  if (value === null || typeof value !== 'object') return [];
  const entries: Array<[string, Json]> = Array.isArray(value)
    ? value.map((item, i) => [`${where}[${i}]`, item])
    : Object.entries(value).map(([key, item]) => [joinPath(where, key), item]);
  const badKeys = Array.isArray(value)
    ? []
    : Object.keys(value)
        .filter((key) => key.includes('\u0000'))
        .map((key) => `${joinPath(where, key)} (key)`);
  return [...badKeys, ...entries.flatMap(([path, item]) => nulPaths(item, path))];
}

// ---------------------------------------------------------------------------------------------------------------
// The model of contract §3.4

interface IngestRequest {
  namespace: string;
  scan_label: string;
  scan_group_id?: string | null;
  status: string;
  started_at?: string | null;
  completed_at?: string | null;
  trivy_version?: string | null;
  workloads: WorkloadData[];
}
interface WorkloadData {
  namespace: string;
  name: string;
  kind: string;
  containers: ContainerData[];
  labels?: Record<string, string> | null;
}
interface ContainerData {
  name: string;
  vulnerabilities?: VulnerabilityData[] | null;
  [attribute: string]: unknown;
}
interface VulnerabilityData {
  cve_id: string;
  package_name: string;
  package_version?: string | null;
  severity: string;
  scanner_type: string;
  first_detected?: string | null;
  [attribute: string]: unknown;
}
interface IngestResponse {
  scan_id: number;
  vulnerabilities: number;
  workloads: number;
  critical_vulns: number;
  auto_resolved: number;
  reopened: number;
}

interface WorkloadRow {
  id: number;
  labels: Record<string, string>;
  lastScanId: number | null;
}
interface ContainerRow {
  id: number;
  attributes: Record<string, unknown>;
}
interface VulnerabilityRow extends VulnerabilityIdentity {
  id: number;
  severity: string;
  attributes: Record<string, unknown>;
  firstDetected: string;
  lastSeen: string;
}
interface InstanceRow extends InstanceState {
  vulnerability: VulnerabilityRow;
  scanId: number | null;
}

const rowKey = (...parts: Array<string | number | null>): string => JSON.stringify(parts);
const vulnerabilityKey = (v: VulnerabilityIdentity): string =>
  rowKey(v.cveId, v.packageName, v.packageVersion, v.scannerType);

function overwriteNonNull(target: Record<string, unknown>, source: Record<string, unknown>, fields: string[]): void {
  for (const field of fields) {
    if (source[field] !== null && source[field] !== undefined) target[field] = source[field];
  }
}

class EphorModel {
  private readonly workloads = new Map<string, WorkloadRow>();
  private readonly containers = new Map<string, ContainerRow>();
  private readonly vulnerabilities = new Map<string, VulnerabilityRow>();
  private readonly instancesByContainer = new Map<number, Map<number, InstanceRow>>();
  readonly scanRows: ScanRow[] = [];
  private lastId = 0;

  /** Called only with a request that passed every check, so it cannot fail half-way (one transaction). */
  ingest(request: IngestRequest): IngestResponse {
    const scan = this.insertScan(request);
    let entries = 0;
    let critical = 0;
    for (const workloadData of request.workloads) {
      const workload = this.ensureWorkload(workloadData.namespace, workloadData.name, workloadData.kind);
      workload.lastScanId = scan.id;
      workload.labels = { ...(workloadData.labels ?? {}) }; // replaced: absent, null and {} all wipe
      for (const containerData of workloadData.containers) {
        const container = this.ensureContainer(workload, containerData.name);
        overwriteNonNull(container.attributes, containerData, CONTAINER_ATTRIBUTES);
        const reported = new Set<number>();
        for (const vulnerabilityData of containerData.vulnerabilities ?? []) {
          entries += 1;
          if (vulnerabilityData.severity === 'CRITICAL') critical += 1;
          const vulnerability = this.upsertVulnerability(vulnerabilityData);
          reported.add(vulnerability.id);
          if (this.reportInstance(container, vulnerability, scan.id) === 'reopened') scan.reopened += 1;
        }
        if (request.status !== 'failed') scan.autoResolved += this.autoResolve(container, reported, scan.id);
      }
    }
    return {
      scan_id: scan.id,
      vulnerabilities: entries,
      workloads: request.workloads.length,
      critical_vulns: critical,
      auto_resolved: scan.autoResolved,
      reopened: scan.reopened,
    };
  }

  seedFinding(f: SeededFinding): void {
    const container = this.ensureContainer(this.ensureWorkload(f.namespace, f.workload, f.kind), f.container);
    const vulnerability = this.ensureVulnerability(f, f.severity ?? 'HIGH', null);
    const status = f.status ?? 'open';
    const resolution = status === 'resolved' ? { resolutionType: f.resolutionType ?? 'manual' } : {};
    this.instancesOf(container).set(vulnerability.id, { vulnerability, status, scanId: null, ...resolution });
  }

  instance(q: FindingQuery): InstanceState | undefined {
    const container = this.findContainer(q);
    const vulnerability = this.vulnerabilities.get(vulnerabilityKey(q));
    const row = container && vulnerability && this.instancesOf(container).get(vulnerability.id);
    if (!row) return undefined;
    return row.resolutionType ? { status: row.status, resolutionType: row.resolutionType } : { status: row.status };
  }

  openFindings(q: ContainerQuery): VulnerabilityIdentity[] {
    const container = this.findContainer(q);
    if (!container) return [];
    return [...this.instancesOf(container).values()]
      .filter((row) => row.status === 'open')
      .map(({ vulnerability: v }) => ({
        cveId: v.cveId,
        packageName: v.packageName,
        packageVersion: v.packageVersion,
        scannerType: v.scannerType,
      }));
  }

  workloadLabels(namespace: string, name: string, kind: string): Record<string, string> | undefined {
    const workload = this.workloads.get(rowKey(namespace, name, kind));
    return workload && { ...workload.labels };
  }

  containerAttributes(q: ContainerQuery): Record<string, unknown> | undefined {
    const container = this.findContainer(q);
    return container && structuredClone(container.attributes);
  }

  vulnerability(q: VulnerabilityIdentity): { severity: string; attributes: Record<string, unknown> } | undefined {
    const row = this.vulnerabilities.get(vulnerabilityKey(q));
    return row && { severity: row.severity, attributes: structuredClone(row.attributes) };
  }

  private nextId(): number {
    this.lastId += 1;
    return this.lastId;
  }

  private insertScan(request: IngestRequest): ScanRow {
    const scan: ScanRow = {
      id: this.scanRows.length + 1,
      namespace: request.namespace,
      scanLabel: request.scan_label,
      status: request.status,
      scanGroupId: request.scan_group_id ?? null,
      startedAt: request.started_at ?? new Date().toISOString(),
      completedAt: request.completed_at ?? null,
      trivyVersion: request.trivy_version ?? null,
      autoResolved: 0,
      reopened: 0,
    };
    this.scanRows.push(scan);
    return scan;
  }

  private ensureWorkload(namespace: string, name: string, kind: string): WorkloadRow {
    const key = rowKey(namespace, name, kind);
    let workload = this.workloads.get(key);
    if (!workload) {
      workload = { id: this.nextId(), labels: {}, lastScanId: null };
      this.workloads.set(key, workload);
    }
    return workload;
  }

  private ensureContainer(workload: WorkloadRow, name: string): ContainerRow {
    const key = rowKey(workload.id, name);
    let container = this.containers.get(key);
    if (!container) {
      container = { id: this.nextId(), attributes: {} };
      this.containers.set(key, container);
    }
    return container;
  }

  private findContainer(q: ContainerQuery): ContainerRow | undefined {
    const workload = this.workloads.get(rowKey(q.namespace, q.workload, q.kind));
    return workload && this.containers.get(rowKey(workload.id, q.container));
  }

  private ensureVulnerability(
    identity: VulnerabilityIdentity,
    severity: string,
    firstDetected: string | null,
  ): VulnerabilityRow {
    const key = vulnerabilityKey(identity);
    let row = this.vulnerabilities.get(key);
    if (!row) {
      const now = new Date().toISOString();
      const { cveId, packageName, packageVersion, scannerType } = identity;
      row = {
        id: this.nextId(),
        cveId,
        packageName,
        packageVersion,
        scannerType,
        severity,
        attributes: {},
        firstDetected: firstDetected ?? now,
        lastSeen: now,
      };
      this.vulnerabilities.set(key, row);
    }
    return row;
  }

  private upsertVulnerability(data: VulnerabilityData): VulnerabilityRow {
    const identity = {
      cveId: data.cve_id,
      packageName: data.package_name,
      packageVersion: data.package_version ?? null,
      scannerType: data.scanner_type,
    };
    const row = this.ensureVulnerability(identity, data.severity, data.first_detected ?? null);
    row.lastSeen = new Date().toISOString(); // the payload's last_seen is ignored
    overwriteNonNull(row.attributes, data, VULNERABILITY_ATTRIBUTES);
    return row;
  }

  private instancesOf(container: ContainerRow): Map<number, InstanceRow> {
    let instances = this.instancesByContainer.get(container.id);
    if (!instances) {
      instances = new Map();
      this.instancesByContainer.set(container.id, instances);
    }
    return instances;
  }

  private reportInstance(
    container: ContainerRow,
    vulnerability: VulnerabilityRow,
    scanId: number,
  ): 'created' | 'reopened' | 'untouched' {
    const instances = this.instancesOf(container);
    const row = instances.get(vulnerability.id);
    if (!row) {
      instances.set(vulnerability.id, { vulnerability, status: 'open', scanId });
      return 'created';
    }
    if (row.status !== 'resolved') return 'untouched'; // open, triaged, false_positive, accepted_risk
    row.status = 'open';
    delete row.resolutionType;
    row.scanId = scanId;
    return 'reopened';
  }

  private autoResolve(container: ContainerRow, reported: Set<number>, scanId: number): number {
    let resolved = 0;
    for (const row of this.instancesOf(container).values()) {
      if (row.status !== 'open' || reported.has(row.vulnerability.id)) continue;
      row.status = 'resolved';
      row.resolutionType = 'auto';
      row.scanId = scanId;
      resolved += 1;
    }
    return resolved;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// SBOM documents (contract §4)

interface SbomRequest {
  image_reference: string;
  image_digest?: string | null;
  scan_group_id?: string | null;
  format: string;
  sbom: Record<string, Json>;
}

/** Checks SbomIngestionService makes after Bean Validation, in its order. */
function sbomServiceError(request: SbomRequest): FieldError | undefined {
  if (!SBOM_FORMATS.includes(request.format)) {
    return {
      field: 'format',
      message: `Unsupported SBOM format. Supported: [${SBOM_FORMATS.join(', ')}]`,
      rejected_value: request.format,
    };
  }
  const requiredKey = request.format === 'cyclonedx' ? 'bomFormat' : 'spdxVersion';
  if (!Object.hasOwn(request.sbom, requiredKey)) {
    const name = request.format === 'cyclonedx' ? 'CycloneDX' : 'SPDX';
    return { field: 'sbom', message: `${name} document must contain a '${requiredKey}' field` };
  }
  // Key order does not change the size of the compact form, so plain JSON.stringify measures it.
  const size = Buffer.byteLength(JSON.stringify(request.sbom));
  if (size > SBOM_MAX_BYTES) {
    return {
      field: 'sbom',
      message: `SBOM document exceeds maximum size of ${SBOM_MAX_BYTES} bytes (actual: ${size})`,
    };
  }
  return undefined;
}

/** SHA-256 over the sorted package identities only (the exact byte layout the server hashes is not known). */
function sbomContentHash(format: string, sbom: Record<string, Json>): string {
  const [packages, fields] =
    format === 'cyclonedx'
      ? [sbom.components, ['name', 'version', 'purl']]
      : [sbom.packages, ['name', 'versionInfo', 'downloadLocation']];
  const identities = (Array.isArray(packages) ? packages : [])
    .filter(isJsonObject)
    .map((pkg) => JSON.stringify(fields.map((field) => pkg[field] ?? null)))
    .sort();
  return createHash('sha256').update(identities.join('\n')).digest('hex');
}

/** What the service indexes into sbom_packages: top-level entries with a string name and a string version. */
function indexedPackageCount(format: string, sbom: Record<string, Json>): number {
  const [packages, versionKey] = format === 'cyclonedx' ? [sbom.components, 'version'] : [sbom.packages, 'versionInfo'];
  return (Array.isArray(packages) ? packages : []).filter(
    (pkg) => isJsonObject(pkg) && typeof pkg.name === 'string' && typeof pkg[versionKey] === 'string',
  ).length;
}

/**
 * @NotBlank on SbomIngestRequest.format: a Bean Validation failure like the other fields. The contract schema can only
 * say `enum` for it (which the service checks afterwards), so the blank case is judged here.
 */
function sbomFormatBlank(bound: Json): FieldError | undefined {
  const format = isJsonObject(bound) ? bound.format : undefined;
  if (typeof format !== 'string' || new RegExp(NOT_BLANK_PATTERN).test(format)) return undefined;
  return { field: 'format', message: FIELD_MESSAGES.format ?? 'must not be blank', rejected_value: format };
}

/** Top-level field order of the SBOM request schema (the order its violations are listed in). */
const SBOM_FIELD_ORDER = Object.keys(SBOM_SCHEMA.properties ?? {});

class SbomStore {
  private readonly documents = new Map<string, StoredSbom>();

  find(imageReference: string, contentHash: string): StoredSbom | undefined {
    return this.documents.get(rowKey(imageReference, contentHash));
  }

  create(request: SbomRequest, contentHash: string): StoredSbom {
    const now = new Date().toISOString();
    const document: StoredSbom = {
      id: randomUUID(),
      imageReference: request.image_reference,
      imageDigest: request.image_digest ?? null,
      contentHash,
      format: request.format,
      scanGroupId: request.scan_group_id ?? null,
      document: request.sbom,
      firstSeen: now,
      lastSeen: now,
      packageCount: indexedPackageCount(request.format, request.sbom),
    };
    this.documents.set(rowKey(request.image_reference, contentHash), document);
    return document;
  }

  /** Dedup hit: the stored document and digest stay; last_seen moves, and scan_group_id changes when given. */
  touch(document: StoredSbom, request: SbomRequest): StoredSbom {
    if (request.scan_group_id) document.scanGroupId = request.scan_group_id;
    document.lastSeen = new Date().toISOString();
    return document;
  }

  all(): StoredSbom[] {
    return [...this.documents.values()].map((document) => structuredClone(document));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP answers

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}
interface RequestContext {
  path: string;
  traceId: string;
}
type ProblemName =
  'invalid-format' | 'validation-error' | 'unsupported-media-type' | 'method-not-allowed' | 'internal-error';

const PROBLEMS: Record<ProblemName, { status: number; title: string; detail: string }> = {
  'invalid-format': { status: 400, title: 'Invalid Format', detail: 'Request body is malformed or unreadable' },
  'validation-error': { status: 400, title: 'Validation Error', detail: 'Request validation failed' },
  'unsupported-media-type': {
    status: 415,
    title: 'Unsupported Media Type',
    detail: "Content type 'application/octet-stream' is not supported",
  },
  'method-not-allowed': {
    status: 405,
    title: 'Method Not Allowed',
    detail: 'HTTP method is not supported for this endpoint',
  },
  'internal-error': {
    status: 500,
    title: 'Internal Server Error',
    detail: 'An unexpected error occurred. Please try again later.',
  },
};
const PROBLEM_BY_STATUS: Record<number, ProblemName> = {
  400: 'invalid-format',
  405: 'method-not-allowed',
  415: 'unsupported-media-type',
  500: 'internal-error',
};
const NGINX_REASONS: Record<number, string> = {
  413: 'Request Entity Too Large',
  503: 'Service Temporarily Unavailable',
  504: 'Gateway Time-out',
};

function jsonAnswer(status: number, value: unknown, ctx: RequestContext, contentType = 'application/json'): Answer {
  return { status, headers: { 'content-type': contentType, 'x-trace-id': ctx.traceId }, body: JSON.stringify(value) };
}

function problemAnswer(
  name: ProblemName,
  ctx: RequestContext,
  extra: { detail?: string; errors?: FieldError[] } = {},
): Answer {
  const problem = PROBLEMS[name];
  const body = {
    type: `/problems/${name}`,
    title: problem.title,
    status: problem.status,
    detail: extra.detail ?? problem.detail,
    instance: ctx.path,
    trace_id: ctx.traceId,
    timestamp: new Date().toISOString(),
    ...(extra.errors ? { errors: extra.errors } : {}),
  };
  return jsonAnswer(problem.status, body, ctx);
}

function htmlAnswer(status: number, html: string): Answer {
  return { status, headers: { 'content-type': 'text/html; charset=utf-8' }, body: html };
}

function nginxErrorPage(status: number): string {
  const title = `${status} ${NGINX_REASONS[status] ?? STATUS_CODES[status] ?? 'Error'}`;
  return `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
}

function signInPage(): string {
  return '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>Sign In</title></head>\n<body>\n<h1>Sign in</h1>\n<form method="GET" action="/oauth2/start"><button type="submit">Sign in with OpenID Connect</button></form>\n</body>\n</html>\n';
}

/** What a script step answers instead of the API, or undefined when it only delays/adds headers. */
function scriptedAnswer(step: ScriptedResponse, ctx: RequestContext): Answer | undefined {
  if (step.status === undefined && step.body === undefined && !step.html) return undefined;
  const status = step.status ?? 200;
  if (step.html) return htmlAnswer(status, step.body ?? signInPage());
  if (step.body !== undefined) {
    const looksHtml = step.body.trimStart().startsWith('<');
    return looksHtml
      ? htmlAnswer(status, step.body)
      : { status, headers: { 'content-type': 'application/json' }, body: step.body };
  }
  const problem = PROBLEM_BY_STATUS[status];
  if (problem) return problemAnswer(problem, ctx);
  if (status === 401 || status === 403) return htmlAnswer(status, signInPage());
  if (status >= 400) return htmlAnswer(status, nginxErrorPage(status));
  return { status, headers: {}, body: '' };
}

function traceIdOf(headers: IncomingMessage['headers']): string {
  for (const name of ['x-trace-id', 'x-request-id', 'x-correlation-id']) {
    const value = [headers[name] ?? []].flat().join(',');
    if (value.trim() !== '') return value;
  }
  return randomBytes(8).toString('hex');
}

function send(res: ServerResponse, record: ReceivedRequest, answer: Answer): void {
  record.response = { status: answer.status, body: answer.body };
  if (res.destroyed || res.headersSent) return;
  res.writeHead(answer.status, { ...answer.headers, 'content-length': String(Buffer.byteLength(answer.body)) });
  res.end(answer.body);
}

// ---------------------------------------------------------------------------------------------------------------
// Request bodies

type IngestKind = 'scan' | 'sbom';
const INGEST_PATHS: Record<string, IngestKind> = { '/api/v1/scans/ingest': 'scan', '/api/v1/sbom/ingest': 'sbom' };
const HEALTH_PATHS = new Set([
  '/api/v1/actuator/health',
  '/api/v1/actuator/health/liveness',
  '/api/v1/actuator/health/readiness',
]);

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function readPartThenReset(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve) => {
    const reset = (part: Buffer): void => {
      req.socket.destroy();
      resolve(part);
    };
    req.once('data', (chunk: Buffer) => {
      reset(chunk);
    });
    req.once('end', () => {
      reset(Buffer.alloc(0));
    });
    req.once('close', () => {
      reset(Buffer.alloc(0));
    });
  });
}

/** The JSON the server reads: only /sbom/ingest decodes `Content-Encoding: gzip` (exact token). */
function requestJson(kind: IngestKind, headers: IncomingMessage['headers'], raw: Buffer): { json: Json } | undefined {
  let bytes = raw;
  if (kind === 'sbom' && headers['content-encoding']?.trim().toLowerCase() === 'gzip') {
    try {
      bytes = gunzipSync(raw);
    } catch {
      return undefined;
    }
  }
  if (bytes.length === 0) return undefined;
  try {
    return { json: JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as Json };
  } catch {
    return undefined;
  }
}

/** Scan ingest goes through Jackson's converter (application/json and application/*+json); SBOM `consumes` application/json. */
function acceptsContentType(kind: IngestKind, header: string | undefined): boolean {
  const mediaType = (header ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  return mediaType === 'application/json' || (kind === 'scan' && /^application\/[^/]+\+json$/.test(mediaType));
}

/** `light` mode: bytes of received bodies waiting for their check, beyond which the checks run and answers wait. */
const LIGHT_BACKLOG_BYTES = 512 * 1024 * 1024;

interface EntryCounts {
  workloads: number;
  vulnerabilities: number;
  critical: number;
}

/**
 * `light` mode: a body looked at chunk by chunk as it arrives. The answer's counts come from occurrences of
 * `"containers":[` (workloads), `"cve_id":` (entries) and `"severity":"CRITICAL"` in compact JSON: inside a JSON string
 * every quote is escaped, so these byte sequences can only be keys (the full check compares them with the parse).
 * UTF-8 is checked natively per chunk, with a sequence cut between two chunks checked on its own; and the body must
 * start with `{` and end with `}`.
 */
class StreamedBody {
  bytes = 0;
  readonly counts: EntryCounts = { workloads: 0, vulnerabilities: 0, critical: 0 };
  private static readonly PATTERNS: Array<[keyof EntryCounts, Buffer]> = [
    ['workloads', Buffer.from('"containers":[')],
    ['vulnerabilities', Buffer.from('"cve_id":')],
    ['critical', Buffer.from('"severity":"CRITICAL"')],
  ];
  private static readonly OVERLAP = Math.max(...StreamedBody.PATTERNS.map(([, p]) => p.length)) - 1;
  private first: number | undefined;
  private last: number | undefined;
  private utf8 = true;
  /** The end of the previous chunk: the last OVERLAP bytes, and an unfinished UTF-8 sequence. */
  private tail = Buffer.alloc(0);
  private pending = Buffer.alloc(0);

  add(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.bytes += chunk.length;
    this.first ??= chunk[0];
    this.last = chunk[chunk.length - 1];
    // key patterns: inside the chunk, and those that straddle the previous chunk's end
    const window = Buffer.concat([this.tail, chunk.subarray(0, StreamedBody.OVERLAP)]);
    for (const [key, pattern] of StreamedBody.PATTERNS) {
      for (let at = chunk.indexOf(pattern); at >= 0; at = chunk.indexOf(pattern, at + pattern.length))
        this.counts[key]++;
      for (let at = window.indexOf(pattern); at >= 0 && at < this.tail.length; at = window.indexOf(pattern, at + 1)) {
        if (at + pattern.length > this.tail.length) this.counts[key]++;
      }
    }
    this.tail = Buffer.from(
      chunk.length >= StreamedBody.OVERLAP
        ? chunk.subarray(chunk.length - StreamedBody.OVERLAP)
        : Buffer.concat([this.tail, chunk]).subarray(-StreamedBody.OVERLAP),
    );
    // UTF-8: finish the sequence the previous chunk cut, then the chunk up to a sequence it cuts itself
    let start = 0;
    if (this.pending.length > 0) {
      const need = utf8SequenceLength(this.pending[0]!) - this.pending.length;
      if (chunk.length < need) {
        this.pending = Buffer.concat([this.pending, chunk]);
        return;
      }
      this.utf8 &&= isUtf8(Buffer.concat([this.pending, chunk.subarray(0, need)]));
      start = need;
    }
    const cut = unfinishedUtf8Tail(chunk, start);
    this.utf8 &&= isUtf8(chunk.subarray(start, chunk.length - cut));
    this.pending = Buffer.from(chunk.subarray(chunk.length - cut));
  }

  /** Whether the whole body was UTF-8 between `{` and `}`. */
  end(): boolean {
    return this.utf8 && this.pending.length === 0 && this.bytes > 1 && this.first === 0x7b && this.last === 0x7d;
  }
}

/** Bytes a UTF-8 sequence has, from its first byte (1 for anything that is not a lead byte: isUtf8 judges it). */
function utf8SequenceLength(lead: number): number {
  return lead >= 0xf0 && lead <= 0xf7 ? 4 : lead >= 0xe0 ? (lead <= 0xef ? 3 : 1) : lead >= 0xc0 ? 2 : 1;
}

/** How many bytes at the end of `chunk` (from `start` on) begin a UTF-8 sequence the chunk does not finish. */
function unfinishedUtf8Tail(chunk: Buffer, start: number): number {
  for (let back = 1; back <= 3 && chunk.length - back >= start; back++) {
    const byte = chunk[chunk.length - back]!;
    if ((byte & 0xc0) === 0x80) continue; // a continuation byte: look further back for the lead
    const length = utf8SequenceLength(byte);
    return length > back ? back : 0;
  }
  return 0;
}

type LightCheck = { summary: Omit<NonNullable<LightSummary['checked']>, 'ms'> } | { errors: string[] };

/**
 * The deferred half of `light` mode: the whole body parsed, the contract's required fields checked for their JSON
 * types, and the counts taken. Self-contained: a worker thread runs it from its source text (lightWorkerSource).
 */
function checkLightBody(bytes: Uint8Array): LightCheck {
  let json: unknown;
  try {
    // UTF-8 was checked before the answer. The shape needs only the ASCII structure, and latin1 decoding (a plain copy
    // into a one-byte string) is several times faster than UTF-8 decoding; JSON accepts the same documents either way.
    json = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1'));
  } catch (error) {
    return { errors: [`body is not valid JSON (${(error as Error).message})`] };
  }
  const errors: string[] = [];
  const isObject = (value: unknown): value is Record<string, unknown> =>
    typeof value === 'object' && value !== null && !Array.isArray(value);
  const need = (object: Record<string, unknown>, path: string, key: string, type: 'string' | 'array') => {
    const value = object[key];
    const ok = type === 'array' ? Array.isArray(value) : typeof value === 'string';
    if (!ok && errors.length < 20) errors.push(`${path}${key}: must be a JSON ${type}`);
    return ok;
  };
  if (!isObject(json)) return { errors: ['body: must be a JSON object'] };
  ['namespace', 'scan_label', 'status'].forEach((key) => need(json, '', key, 'string'));
  const summary = { namespace: String(json.namespace), workloads: 0, containers: 0, vulnerabilities: 0, critical: 0 };
  if (!need(json, '', 'workloads', 'array')) return { errors };
  (json.workloads as unknown[]).forEach((workload, w) => {
    summary.workloads++;
    const at = `workloads[${w}].`;
    if (!isObject(workload)) return void errors.push(`${at.slice(0, -1)}: must be a JSON object`);
    ['namespace', 'name', 'kind'].forEach((key) => need(workload, at, key, 'string'));
    if (!need(workload, at, 'containers', 'array')) return;
    (workload.containers as unknown[]).forEach((container, c) => {
      summary.containers++;
      const cat = `${at}containers[${c}].`;
      if (!isObject(container)) return void errors.push(`${cat.slice(0, -1)}: must be a JSON object`);
      need(container, cat, 'name', 'string');
      if (
        container.vulnerabilities === undefined ||
        container.vulnerabilities === null ||
        !need(container, cat, 'vulnerabilities', 'array')
      )
        return;
      (container.vulnerabilities as unknown[]).forEach((vulnerability, v) => {
        summary.vulnerabilities++;
        const vat = `${cat}vulnerabilities[${v}].`;
        if (!isObject(vulnerability)) return void errors.push(`${vat.slice(0, -1)}: must be a JSON object`);
        ['cve_id', 'package_name', 'severity', 'scanner_type'].forEach((key) =>
          need(vulnerability, vat, key, 'string'),
        );
        if (vulnerability.severity === 'CRITICAL') summary.critical++;
      });
    });
  });
  return errors.length > 0 ? { errors } : { summary };
}

/** The worker that runs checkLightBody, so that parsing gigabytes never blocks the stand-in's event loop. */
function lightWorkerSource(): string {
  return `
const { parentPort } = require('node:worker_threads');
const __name = (target) => target; // in case the transpiler kept function names with its helper
const checkLightBody = ${checkLightBody.toString()};
parentPort.on('message', ({ id, bytes }) => {
  const started = performance.now();
  let result;
  try {
    result = checkLightBody(bytes);
  } catch (error) {
    result = { errors: ['stand-in failure: ' + (error && error.stack || String(error))] };
  }
  parentPort.postMessage({ id, result, ms: performance.now() - started });
});
`;
}

// ---------------------------------------------------------------------------------------------------------------
// The server

class EphorStandIn implements EphorServer {
  url = '';
  readonly requests: ReceivedRequest[] = [];
  maxConcurrentIngests = 0;
  maxConcurrentSbomIngests = 0;
  maxConcurrentPosts = 0;
  private readonly inFlight: Record<IngestKind, number> = { scan: 0, sbom: 0 };
  private readonly postsInFlight = new Set<ReceivedRequest>();
  private readonly overlaps: Array<[ReceivedRequest, ReceivedRequest]> = [];
  private readonly script: ScriptedResponse[];
  private readonly model = new EphorModel();
  private lightScans = 0;
  private lightReceived = 0;
  private lightBacklog = 0;
  private lightChecks = 0;
  private lightWorker?: Worker;
  private readonly lightPending = new Map<number, (result: LightCheck, ms: number) => void>();
  private readonly lightQueue: Array<{ raw: Buffer; record: ReceivedRequest; counted: EntryCounts }> = [];
  private readonly sbomStore = new SbomStore();
  private readonly handlers = new Set<Promise<void>>();
  private readonly closing = new AbortController();
  private readonly http: Server;

  constructor(private readonly options: EphorServerOptions) {
    this.script = [...(options.script ?? [])];
    this.http = createServer((req, res) => {
      const handler = this.handle(req, res);
      this.handlers.add(handler);
      void handler.finally(() => this.handlers.delete(handler));
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(0, '127.0.0.1', () => {
        resolve();
      });
    });
    this.url = `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  overlappingPosts(): Array<[ReceivedRequest, ReceivedRequest]> {
    return [...this.overlaps];
  }
  scanIngests(): ReceivedRequest[] {
    return this.requests.filter((r) => r.path === '/api/v1/scans/ingest' && r.scanId !== undefined);
  }
  pushScript(...steps: ScriptedResponse[]): void {
    this.script.push(...steps);
  }
  seedFinding(f: SeededFinding): void {
    this.model.seedFinding(f);
  }
  instance(q: FindingQuery): InstanceState | undefined {
    return this.model.instance(q);
  }
  openFindings(q: ContainerQuery): VulnerabilityIdentity[] {
    return this.model.openFindings(q);
  }
  workloadLabels(namespace: string, name: string, kind: string): Record<string, string> | undefined {
    return this.model.workloadLabels(namespace, name, kind);
  }
  containerAttributes(q: ContainerQuery): Record<string, unknown> | undefined {
    return this.model.containerAttributes(q);
  }
  vulnerability(q: VulnerabilityIdentity): { severity: string; attributes: Record<string, unknown> } | undefined {
    return this.model.vulnerability(q);
  }
  scans(): ScanRow[] {
    return this.model.scanRows.map((scan) => ({ ...scan }));
  }
  sboms(): StoredSbom[] {
    return this.sbomStore.all();
  }

  async settled(): Promise<void> {
    while (this.handlers.size > 0) await Promise.allSettled([...this.handlers]);
    await this.runLightChecks();
  }

  async close(): Promise<void> {
    this.closing.abort();
    const closed = new Promise<void>((resolve) =>
      this.http.close(() => {
        resolve();
      }),
    );
    this.http.closeAllConnections();
    await closed;
    await this.settled();
    await this.lightWorker?.terminate();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const record: ReceivedRequest = {
      method: req.method ?? '',
      path,
      headers: req.headers,
      rawBody: Buffer.alloc(0),
      receivedAt: Date.now(),
      response: { status: 0, body: '' },
    };
    this.requests.push(record);
    const kind = req.method === 'POST' ? INGEST_PATHS[path] : undefined;
    const leave = this.enter(kind, record);
    const ctx: RequestContext = { path, traceId: traceIdOf(req.headers) };
    try {
      await this.serve(req, res, record, kind, ctx);
    } catch (error) {
      const clientLeft = req.socket.destroyed && record.response.status === 0;
      record.rejectedBecause = [
        clientLeft
          ? 'client went away before the body was complete'
          : `stand-in failure: ${error instanceof Error ? error.stack : String(error)}`,
      ];
      send(res, record, problemAnswer('internal-error', ctx));
    } finally {
      leave();
      record.finishedAt = Date.now();
    }
  }

  private enter(kind: IngestKind | undefined, record: ReceivedRequest): () => void {
    if (!kind) return () => undefined;
    for (const earlier of this.postsInFlight) this.overlaps.push([earlier, record]);
    this.postsInFlight.add(record);
    this.inFlight[kind] += 1;
    this.maxConcurrentIngests = Math.max(this.maxConcurrentIngests, this.inFlight.scan);
    this.maxConcurrentSbomIngests = Math.max(this.maxConcurrentSbomIngests, this.inFlight.sbom);
    this.maxConcurrentPosts = Math.max(this.maxConcurrentPosts, this.inFlight.scan + this.inFlight.sbom);
    return () => {
      this.inFlight[kind] -= 1;
      this.postsInFlight.delete(record);
    };
  }

  private async serve(
    req: IncomingMessage,
    res: ServerResponse,
    record: ReceivedRequest,
    kind: IngestKind | undefined,
    ctx: RequestContext,
  ): Promise<void> {
    if (!this.proxyLetsThrough(req)) {
      record.rawBody = await readBody(req);
      record.rejectedBecause = [`proxy: header ${this.options.requireHeader?.name} missing or wrong`];
      send(res, record, htmlAnswer(401, signInPage()));
      return;
    }
    const step = kind ? this.script.shift() : undefined;
    if (step?.reset) {
      record.rawBody = await readPartThenReset(req);
      return;
    }
    if (this.options.light && kind === 'scan' && !step) {
      send(res, record, await this.lightIngest(req, record, ctx));
      return;
    }
    record.rawBody = await readBody(req);
    const parsed = requestJson(kind ?? 'scan', req.headers, record.rawBody);
    record.body = parsed?.json;
    if (kind && parsed)
      record.contractErrors = validate(kind === 'scan' ? 'ingest-request' : 'sbom-request', parsed.json);
    if (!(await this.waitScriptedDelay(step, req, res))) return;
    const scripted = step && scriptedAnswer(step, ctx);
    let answer = scripted;
    if (!scripted || step?.processAnyway) {
      const real = this.api(req, record, ctx, parsed);
      answer = scripted ?? real;
    }
    if (answer) send(res, record, { ...answer, headers: { ...answer.headers, ...step?.headers } });
  }

  private proxyLetsThrough(req: IncomingMessage): boolean {
    const required = this.options.requireHeader;
    return !required || req.headers[required.name.toLowerCase()] === required.value;
  }

  /**
   * Waits out a scripted delay. Returns false when the request must be dropped: the server is closing, or
   * the client left and the step does not say processAnyway (then the stand-in acts as if nothing committed).
   */
  private async waitScriptedDelay(
    step: ScriptedResponse | undefined,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<boolean> {
    if (!step?.delayMs) return true;
    const stopWaiting = new AbortController();
    let clientLeft = req.socket.destroyed; // it may have gone before this listener exists
    const left = new Promise<void>((resolve) => {
      res.once('close', () => {
        clientLeft = true;
        resolve();
      });
    });
    try {
      const delay = sleep(step.delayMs, undefined, {
        signal: AbortSignal.any([this.closing.signal, stopWaiting.signal]),
      });
      await (step.processAnyway || clientLeft ? delay : Promise.race([delay, left]));
    } catch {
      return false;
    } finally {
      stopWaiting.abort();
    }
    return !this.closing.signal.aborted && (!clientLeft || step.processAnyway === true);
  }

  private api(
    req: IncomingMessage,
    record: ReceivedRequest,
    ctx: RequestContext,
    parsed: { json: Json } | undefined,
  ): Answer {
    const { path } = record;
    if (path !== '/api/v1' && !path.startsWith('/api/v1/')) return htmlAnswer(404, nginxErrorPage(404));
    const kind = INGEST_PATHS[path];
    if (kind) {
      if (req.method !== 'POST')
        return problemAnswer('method-not-allowed', ctx, {
          detail: `HTTP method '${req.method}' is not supported for this endpoint`,
        });
      return kind === 'scan' ? this.ingestScan(req, record, ctx, parsed) : this.ingestSbom(req, record, ctx, parsed);
    }
    if (HEALTH_PATHS.has(path)) {
      if (req.method !== 'GET' && req.method !== 'HEAD')
        return problemAnswer('method-not-allowed', ctx, {
          detail: `HTTP method '${req.method}' is not supported for this endpoint`,
        });
      return jsonAnswer(200, { status: 'UP' }, ctx, 'application/vnd.spring-boot.actuator.v3+json');
    }
    // Spring 6.1+ raises NoResourceFoundException, which the catch-all handler turns into a 500.
    return this.refuse(record, [`no handler for ${req.method} ${path}`], problemAnswer('internal-error', ctx));
  }

  private refuse(record: ReceivedRequest, reasons: string[], answer: Answer): Answer {
    record.rejectedBecause = reasons;
    return answer;
  }

  /** The checks both ingest endpoints share: content type, readable JSON, Jackson binding, Bean Validation. */
  private admit(
    req: IncomingMessage,
    record: ReceivedRequest,
    ctx: RequestContext,
    parsed: { json: Json } | undefined,
    kind: IngestKind,
  ): { bound: Json } | { answer: Answer } {
    const contentType = req.headers['content-type'];
    if (!acceptsContentType(kind, contentType)) {
      const detail = `Content type '${contentType ?? 'application/octet-stream'}' is not supported`;
      return { answer: this.refuse(record, [detail], problemAnswer('unsupported-media-type', ctx, { detail })) };
    }
    if (!parsed)
      return {
        answer: this.refuse(
          record,
          ['body is not readable JSON (empty, malformed, not UTF-8 or still compressed)'],
          problemAnswer('invalid-format', ctx),
        ),
      };
    let bound: Json;
    try {
      bound =
        kind === 'scan' ? bindRequest(INGEST_SCHEMA, parsed.json, true) : bindRequest(SBOM_SCHEMA, parsed.json, false);
    } catch (error) {
      if (!(error instanceof InvalidFormat)) throw error;
      return { answer: this.refuse(record, [error.message], problemAnswer('invalid-format', ctx)) };
    }
    const verdict = judge(kind === 'scan' ? 'ingest-request' : 'sbom-request', bound);
    const blankFormat = kind === 'sbom' ? sbomFormatBlank(bound) : undefined;
    if (blankFormat) {
      verdict.fieldErrors.push(blankFormat);
      const rank = (error: FieldError) => SBOM_FIELD_ORDER.indexOf(error.field.split(/[.[]/)[0] ?? '');
      verdict.fieldErrors.sort((a, b) => rank(a) - rank(b));
    }
    if (verdict.fieldErrors.length > 0) {
      const reasons = verdict.fieldErrors.map((e) => `${e.field}: ${e.message}`);
      return {
        answer: this.refuse(record, reasons, problemAnswer('validation-error', ctx, { errors: verdict.fieldErrors })),
      };
    }
    if (verdict.internalErrors.length > 0)
      return { answer: this.refuse(record, verdict.internalErrors, problemAnswer('internal-error', ctx)) };
    return { bound };
  }

  private ingestScan(
    req: IncomingMessage,
    record: ReceivedRequest,
    ctx: RequestContext,
    parsed: { json: Json } | undefined,
  ): Answer {
    const admitted = this.admit(req, record, ctx, parsed, 'scan');
    if ('answer' in admitted) return admitted.answer;
    const withNul = nulPaths(admitted.bound);
    if (withNul.length > 0)
      return this.refuse(
        record,
        withNul.map((p) => `${p}: NUL character`),
        problemAnswer('internal-error', ctx),
      );
    const response = this.model.ingest(admitted.bound as unknown as IngestRequest);
    record.scanId = response.scan_id;
    return jsonAnswer(201, response, ctx);
  }

  /**
   * `light` mode: content type, UTF-8 and the body's framing are checked and its entries counted (byte patterns,
   * natively) before the answer; the full parse and shape check follow off the request path, in arrival order.
   */
  private async lightIngest(req: IncomingMessage, record: ReceivedRequest, ctx: RequestContext): Promise<Answer> {
    // Read as it streams in, never assembled (gigabytes of 8 MiB bodies would cost more than the client sending them),
    // except the bodies kept for the full check.
    const sample = Math.max(1, Math.floor(this.options.lightSample ?? 1));
    const keep = this.lightReceived++ % sample === 0;
    const body = new StreamedBody();
    const chunks: Buffer[] = [];
    for await (const chunk of req) {
      body.add(chunk as Buffer);
      if (keep) chunks.push(chunk as Buffer);
    }
    record.bytes = body.bytes;
    const contentType = req.headers['content-type'];
    if (!acceptsContentType('scan', contentType)) {
      const detail = `Content type '${contentType ?? 'application/octet-stream'}' is not supported`;
      return this.refuse(record, [detail], problemAnswer('unsupported-media-type', ctx, { detail }));
    }
    if (!body.end())
      return this.refuse(
        record,
        ['body is not readable JSON (empty, malformed, not UTF-8 or still compressed)'],
        problemAnswer('invalid-format', ctx),
      );
    const counted = body.counts;
    record.summary = { ...counted };
    record.scanId = ++this.lightScans;
    if (keep) {
      this.lightQueue.push({ raw: Buffer.concat(chunks), record, counted });
      this.lightBacklog += body.bytes;
    }
    if (this.lightBacklog > LIGHT_BACKLOG_BYTES) await this.runLightChecks();
    const response: IngestResponse = {
      scan_id: record.scanId,
      vulnerabilities: counted.vulnerabilities,
      workloads: counted.workloads,
      critical_vulns: counted.critical,
      auto_resolved: 0,
      reopened: 0,
    };
    return jsonAnswer(201, response, ctx);
  }

  /** Checks every body waiting for it, in a worker thread; verdicts land in `summary`, or in `rejectedBecause`. */
  private async runLightChecks(): Promise<void> {
    if (this.lightQueue.length === 0) return;
    if (!this.lightWorker) {
      this.lightWorker = new Worker(lightWorkerSource(), { eval: true });
      this.lightWorker.unref();
      this.lightWorker.on('message', ({ id, result, ms }: { id: number; result: LightCheck; ms: number }) =>
        this.lightPending.get(id)?.(result, ms),
      );
    }
    // one at a time, so that only one copy of one body is in flight
    for (const { raw, record, counted } of this.lightQueue.splice(0)) {
      const id = ++this.lightChecks;
      const done = new Promise<void>((resolve) => {
        this.lightPending.set(id, (result, ms) => {
          this.lightPending.delete(id);
          this.lightBacklog -= raw.length;
          if ('errors' in result) {
            record.rejectedBecause = result.errors.map((e) => `light mode, checked after the answer: ${e}`);
          } else {
            record.summary = { ...counted, checked: { ...result.summary, ms } };
            const differs = (['workloads', 'vulnerabilities', 'critical'] as const).filter(
              (key) => result.summary[key] !== counted[key],
            );
            if (differs.length > 0)
              record.rejectedBecause = [
                `light mode: the answer's counts (${JSON.stringify(counted)}) differ from the body's in ${differs.join(', ')}`,
              ];
          }
          resolve();
        });
      });
      this.lightWorker.postMessage({ id, bytes: raw });
      await done;
    }
  }

  private ingestSbom(
    req: IncomingMessage,
    record: ReceivedRequest,
    ctx: RequestContext,
    parsed: { json: Json } | undefined,
  ): Answer {
    const admitted = this.admit(req, record, ctx, parsed, 'sbom');
    if ('answer' in admitted) return admitted.answer;
    const request = admitted.bound as unknown as SbomRequest;
    const serviceError = sbomServiceError(request);
    if (serviceError) {
      const detail = `Validation failed for field '${serviceError.field}'`;
      return this.refuse(
        record,
        [`${serviceError.field}: ${serviceError.message}`],
        problemAnswer('validation-error', ctx, { detail, errors: [serviceError] }),
      );
    }
    const contentHash = sbomContentHash(request.format, request.sbom);
    const existing = this.sbomStore.find(request.image_reference, contentHash);
    // A hit stores no document, but the lookup itself already sends image_reference to PostgreSQL.
    const withNul = nulPaths(existing ? request.image_reference : admitted.bound);
    if (withNul.length > 0)
      return this.refuse(
        record,
        withNul.map((p) => `${p}: NUL character`),
        problemAnswer('internal-error', ctx),
      );
    const stored = existing ? this.sbomStore.touch(existing, request) : this.sbomStore.create(request, contentHash);
    const body = {
      id: stored.id,
      image_reference: stored.imageReference,
      content_hash: contentHash,
      status: existing ? 'updated' : 'created',
    };
    return jsonAnswer(existing ? 200 : 201, body, ctx);
  }
}
