// Loopback stand-in for kube-apiserver (1.32), faithful to what kubectl and client libraries see.
// Facts cited as "facts §N" are in ../shared/reference/k8s-api-facts.md. The real documents under
// ../shared/fixtures/k8s are read lazily, when a request needs one; without ../shared (a clean clone, the demo) a
// built-in minimal document of the same shape is served instead.
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { createLeaseApi, LEASE_GROUP, LEASE_OPENAPI, LEASE_RESOURCE_LIST, type LeaseControl } from './k8s-leases.js';
import { namespace as namespaceObject, type KubeObject } from './k8s-objects.js';
import { K8S_FIXTURES_DIR } from './paths.js';

export type ResourceName =
  | 'deployments'
  | 'statefulsets'
  | 'daemonsets'
  | 'cronjobs'
  | 'pods'
  | 'replicasets'
  | 'jobs'
  | 'namespaces'
  | 'nodes'
  | 'secrets'
  | 'serviceaccounts';
export interface KubeFault {
  resource: ResourceName;
  namespace?: string;
  /**
   * 403 also makes SelfSubjectAccessReviews for this resource (in this namespace, or anywhere without one, and
   * cluster-wide) answer `allowed: false`, as RBAC would.
   */
  status?: 401 | 403 | 404 | 410 | 429 | 500 | 503;
  /**
   * 403 only: `status.reason` of the SelfSubjectAccessReview. The RBAC authorizer gives none for a plain denial;
   * it gives one when a binding names a role that does not exist, e.g.
   * `RBAC: clusterrole.rbac.authorization.k8s.io "ephor-scanner" not found`.
   */
  reviewReason?: string;
  onlyContinue?: boolean;
  times?: number;
  stallMs?: number;
  /** 429 only: answer like the max-inflight / priority-and-fairness filter, which writes text/plain, not a Status. */
  plainText?: boolean;
}
export interface KubeServerOptions {
  namespaces?: Record<string, Record<string, string>>;
  objects?: KubeObject[];
  faults?: KubeFault[];
  token?: string;
  user?: string;
  maxPageSize?: number;
  /** false: no SelfSubjectReview API (404, as before Kubernetes 1.28 without the beta enabled). Default true. */
  selfSubjectReview?: boolean;
  /**
   * For clusters of tens of thousands of objects (the benchmark): objects given to `objects` and `addObjects` are
   * taken over instead of copied (the caller must not change them afterwards), and each is serialised once, when
   * it is added, so that a list page is answered by joining strings. Answers are byte for byte the same.
   */
  bulk?: boolean;
  /**
   * Serve HTTPS with a self-signed certificate for 127.0.0.1 (made at run time with the `openssl` CLI).
   * Needed whenever kubectl must send a token: client-go only sends credentials over TLS (kubernetes/kubectl#744).
   */
  tls?: boolean;
}
export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  status: number;
}
export interface KubeServer {
  /** http://127.0.0.1:PORT, or https://… with `tls` */
  url: string;
  /** PEM of the self-signed server certificate (its own CA) when `tls` is set */
  caCert?: string;
  /** Recorded on arrival; `status` stays 0 while the answer is pending (stalled). */
  requests: RecordedRequest[];
  /** TCP connections accepted so far (a keep-alive client makes fewer than it sends requests). */
  readonly connections: number;
  addObjects(...objects: KubeObject[]): void;
  setFaults(faults: KubeFault[]): void;
  /** coordination.k8s.io Leases (k8s-leases.ts): seed, read and overwrite them, make their calls fail, see requests. */
  leases: LeaseControl;
  writeKubeconfig(
    dir: string,
    opts?: { token?: string; namespace?: string; insecureSkipTlsVerify?: boolean },
  ): Promise<string>;
  close(): Promise<void>;
}

interface ResourceInfo {
  group: string;
  version: string;
  kind: string;
  namespaced: boolean;
}

const RESOURCES: Record<ResourceName, ResourceInfo> = {
  deployments: { group: 'apps', version: 'v1', kind: 'Deployment', namespaced: true },
  statefulsets: { group: 'apps', version: 'v1', kind: 'StatefulSet', namespaced: true },
  daemonsets: { group: 'apps', version: 'v1', kind: 'DaemonSet', namespaced: true },
  replicasets: { group: 'apps', version: 'v1', kind: 'ReplicaSet', namespaced: true },
  cronjobs: { group: 'batch', version: 'v1', kind: 'CronJob', namespaced: true },
  jobs: { group: 'batch', version: 'v1', kind: 'Job', namespaced: true },
  pods: { group: '', version: 'v1', kind: 'Pod', namespaced: true },
  secrets: { group: '', version: 'v1', kind: 'Secret', namespaced: true },
  serviceaccounts: { group: '', version: 'v1', kind: 'ServiceAccount', namespaced: true },
  namespaces: { group: '', version: 'v1', kind: 'Namespace', namespaced: false },
  nodes: { group: '', version: 'v1', kind: 'Node', namespaced: false },
};
const RESOURCE_NAMES = Object.keys(RESOURCES) as ResourceName[];
const RESOURCE_BY_KIND = new Map(RESOURCE_NAMES.map((name) => [RESOURCES[name].kind, name]));
const SERVED_GROUPS = ['apps', 'batch', LEASE_GROUP];
const DEFAULT_USER = 'system:serviceaccount:ephor:ephor-scanner';

function apiVersionOf(info: ResourceInfo): string {
  return info.group ? `${info.group}/${info.version}` : info.version;
}

/** `deployments.apps`, or just `pods` for the core group — how the server names a resource in messages. */
function qualifiedResource(resource: ResourceName): string {
  const { group } = RESOURCES[resource];
  return group ? `${resource}.${group}` : resource;
}

/** A real fixture document, or `fallback()` when ../shared is not there (a clean clone: the demo). */
function readK8sFixture(relativePath: string, fallback: () => unknown): any {
  const file = path.join(K8S_FIXTURES_DIR, relativePath);
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : fallback();
}

// ---------------------------------------------------------------- Status bodies (facts §3)

interface Answer {
  code: number;
  body: unknown;
  headers?: Record<string, string>;
  text?: boolean;
  indented?: boolean;
  /** `body` already serialised (compact JSON, UTF-8): list answers assembled from the objects' cached serialisations. */
  json?: Buffer;
}

class StatusError extends Error {
  constructor(readonly answer: Answer) {
    super(String((answer.body as KubeObject).message));
  }
}

function statusAnswer(
  code: number,
  reason: string,
  message: string,
  details?: KubeObject,
  metadata: KubeObject = {},
): Answer {
  const body: KubeObject = { kind: 'Status', apiVersion: 'v1', metadata, status: 'Failure', message, reason };
  if (details) body.details = details;
  body.code = code;
  return { code, body };
}

function resourceDetails(resource: ResourceName, name?: string): KubeObject {
  const { group } = RESOURCES[resource];
  return { ...(name !== undefined && { name }), ...(group && { group }), kind: resource };
}

const unauthorized = (): Answer => ({
  code: 401,
  body: readK8sFixture('status/401_unauthorized.json', () => ({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: 'Unauthorized',
    reason: 'Unauthorized',
    code: 401,
  })),
});
const pathNotFound = (): Answer => ({
  code: 404,
  body: readK8sFixture('status/404_notfound_resource.json', () => ({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: 'the server could not find the requested resource',
    reason: 'NotFound',
    details: {},
    code: 404,
  })),
});
const badRequest = (message: string): Answer => statusAnswer(400, 'BadRequest', message);

function objectNotFound(resource: ResourceName, name: string): Answer {
  return statusAnswer(
    404,
    'NotFound',
    `${qualifiedResource(resource)} "${name}" not found`,
    resourceDetails(resource, name),
  );
}

function forbidden(user: string, verb: string, resource: ResourceName, namespace?: string, name?: string): Answer {
  return forbiddenFor(user, verb, { resource, group: RESOURCES[resource].group }, namespace, name);
}

/** apimachinery NewForbidden + the RBAC authorizer's wording (compare status/403_*.json). */
function forbiddenFor(
  user: string,
  verb: string,
  { resource, group }: { resource: string; group: string },
  namespace?: string,
  name?: string,
): Answer {
  const qualified = group ? `${resource}.${group}` : resource;
  const subject = name === undefined ? qualified : `${qualified} "${name}"`;
  const scope = namespace === undefined ? 'at the cluster scope' : `in the namespace "${namespace}"`;
  const reason = `User "${user}" cannot ${verb} resource "${resource}" in API group "${group}" ${scope}`;
  const details = { ...(name !== undefined && { name }), ...(group && { group }), kind: resource };
  return statusAnswer(403, 'Forbidden', `${subject} is forbidden: ${reason}`, details);
}

/** etcd3 handleCompactedErrorForPaging: a fresh token with rv -1 (an inconsistent continuation). */
function expiredContinue(startKey: string | undefined): Answer {
  const tooOld = 'The provided continue parameter is too old to display a consistent list result.';
  if (startKey === undefined)
    return statusAnswer(410, 'Expired', `${tooOld} You can start a new list without the continue parameter.`);
  return statusAnswer(
    410,
    'Expired',
    `${tooOld} You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.`,
    undefined,
    { continue: encodeContinue(-1, startKey) },
  );
}

/** The watch cache's Status 429 ("storage is (re)initializing") — a real Status-bodied 429 with retryAfterSeconds. */
function tooManyRequests(plainText: boolean): Answer {
  if (plainText)
    return {
      code: 429,
      body: 'Too many requests, please try again later.\n',
      headers: { 'Retry-After': '1' },
      text: true,
    };
  return {
    ...statusAnswer(429, 'TooManyRequests', 'storage is (re)initializing', { retryAfterSeconds: 1 }),
    headers: { 'Retry-After': '1' },
  };
}

function internalError(): Answer {
  const cause = 'etcdserver: request timed out';
  return statusAnswer(500, 'InternalError', `Internal error occurred: ${cause}`, { causes: [{ message: cause }] });
}

const serviceUnavailable = (): Answer =>
  statusAnswer(503, 'ServiceUnavailable', 'the server is currently unable to handle the request');
const methodNotAllowed = (): Answer =>
  statusAnswer(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');

// ---------------------------------------------------------------- continue tokens (facts §4)

interface ContinuePosition {
  rv: number;
  start: string;
}

function encodeContinue(rv: number, start: string): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv, start })).toString('base64url');
}

/** Mirrors apiserver storage.DecodeContinue, including its error texts. */
function decodeContinue(token: string): ContinuePosition {
  const invalid = (why: string) =>
    new StatusError(badRequest(`invalid continue token: continue key is not valid: ${why}`));
  if (!/^[A-Za-z0-9_-]*$/.test(token)) throw invalid('illegal base64 data');
  let parsed: any;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch (error) {
    throw invalid((error as Error).message);
  }
  if (parsed?.v !== 'meta.k8s.io/v1')
    throw invalid(`server does not recognize this encoded version "${parsed?.v ?? ''}"`);
  if (!Number.isInteger(parsed.rv) || parsed.rv === 0)
    throw invalid('incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
  if (typeof parsed.start !== 'string' || parsed.start === '')
    throw invalid('encoded start key empty (version meta.k8s.io/v1)');
  const key = parsed.start.startsWith('/') ? parsed.start : `/${parsed.start}`;
  if (cleanPath(key) !== key) throw invalid(parsed.start);
  return { rv: parsed.rv, start: key.slice(1) };
}

/** Go's path.Clean for absolute paths. */
function cleanPath(absolute: string): string {
  const normalized = path.posix.normalize(absolute);
  return normalized.length > 1 && normalized.endsWith('/') ? normalized.slice(0, -1) : normalized;
}

// ---------------------------------------------------------------- selectors

type LabelRequirement = (labels: Record<string, string>) => boolean;

const LABEL_KEY = '[A-Za-z0-9](?:[-A-Za-z0-9_./]*[A-Za-z0-9])?';
const LABEL_VALUE = '(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?';
const SET_REQUIREMENT = new RegExp(`^(${LABEL_KEY})\\s+(in|notin)\\s*\\(([^()]*)\\)$`);
const EQUALITY_REQUIREMENT = new RegExp(`^(${LABEL_KEY})\\s*(==|!=|=)\\s*(${LABEL_VALUE})$`);
const EXISTS_REQUIREMENT = new RegExp(`^(!?)\\s*(${LABEL_KEY})$`);

/** Equality- and set-based requirements joined by commas (commas inside `( )` belong to a set). */
export function parseLabelSelector(selector: string): LabelRequirement[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of selector) {
    if (char === '(') depth++;
    if (char === ')') depth--;
    if (char === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += char;
  }
  parts.push(current);
  return parts
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map(parseLabelRequirement);
}

function parseLabelRequirement(text: string): LabelRequirement {
  const has = (labels: Record<string, string>, key: string) => Object.hasOwn(labels, key);
  const set = SET_REQUIREMENT.exec(text);
  if (set) {
    const [, key = '', operator, list = ''] = set;
    const values = list.split(',').map((value) => value.trim());
    return operator === 'in'
      ? (labels) => has(labels, key) && values.includes(labels[key] ?? '')
      : (labels) => !has(labels, key) || !values.includes(labels[key] ?? '');
  }
  const equality = EQUALITY_REQUIREMENT.exec(text);
  if (equality) {
    const [, key = '', operator, value] = equality;
    return operator === '!='
      ? (labels) => labels[key] !== value
      : (labels) => has(labels, key) && labels[key] === value;
  }
  const exists = EXISTS_REQUIREMENT.exec(text);
  if (exists) {
    const [, negated, key = ''] = exists;
    return negated ? (labels) => !has(labels, key) : (labels) => has(labels, key);
  }
  throw new StatusError(
    badRequest(`unable to parse requirement: found '${text}', expected: a valid label selector requirement`),
  );
}

/** Field labels each resource supports (metadata.name / metadata.namespace work everywhere). */
const FIELD_LABELS: Partial<Record<ResourceName, string[]>> = {
  pods: [
    'spec.nodeName',
    'spec.restartPolicy',
    'spec.schedulerName',
    'spec.serviceAccountName',
    'spec.hostNetwork',
    'status.phase',
    'status.podIP',
    'status.nominatedNodeName',
  ],
  secrets: ['type'],
  namespaces: ['status.phase'],
  // pkg/registry/core/node/strategy.go NodeToSelectableFields
  nodes: ['spec.unschedulable'],
};

type ObjectPredicate = (object: KubeObject) => boolean;

function parseFieldSelector(resource: ResourceName, selector: string): ObjectPredicate[] {
  const supported = ['metadata.name', 'metadata.namespace', ...(FIELD_LABELS[resource] ?? [])];
  return selector
    .split(',')
    .filter((part) => part.trim() !== '')
    .map((part) => {
      const match = /^\s*([\w.]+)\s*(==|!=|=)\s*([^,]*?)\s*$/.exec(part);
      if (!match) throw new StatusError(badRequest(`invalid selector: '${selector}'; can't understand '${part}'`));
      const [, field = '', operator, value] = match;
      if (!supported.includes(field)) throw new StatusError(badRequest(`field label not supported: ${field}`));
      const read = (object: KubeObject) =>
        String(field.split('.').reduce<any>((node, key) => node?.[key], object) ?? '');
      return operator === '!=' ? (object) => read(object) !== value : (object) => read(object) === value;
    });
}

// ---------------------------------------------------------------- content negotiation (metadata-only responses)

/**
 * What a GET asked for in `Accept` (apiserver `negotiation.NegotiateOutputMediaType` + `RequestScope.AllowsMediaTypeTransform`):
 * the full object, or `as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1|v1beta1`.
 */
export type Representation =
  { as: 'full' } | { as: 'PartialObjectMetadata' | 'PartialObjectMetadataList'; version: 'v1' | 'v1beta1' };

/** Media types the real server serialises (`MediaTypesForSerializer`; CBOR is feature-gated off in 1.32). */
const SERVED_MEDIA_TYPES = ['application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf'];
const META_GROUP = 'meta.k8s.io';

interface AcceptClause {
  type: string;
  subtype: string;
  params: Map<string, string>;
  q: number;
}

/** RFC 7231 Accept, as goautoneg reads it: clauses ordered by q (stable), q=0 dropped. */
function parseAccept(header: string): AcceptClause[] {
  const clauses: AcceptClause[] = [];
  for (const part of header.split(',')) {
    const [range = '', ...rawParams] = part.split(';').map((piece) => piece.trim());
    const [type = '', subtype = ''] = range.toLowerCase().split('/');
    if (!type || !subtype) continue;
    const params = new Map<string, string>();
    let q = 1;
    for (const raw of rawParams) {
      const eq = raw.indexOf('=');
      if (eq < 0) continue;
      const key = raw.slice(0, eq).trim().toLowerCase();
      const value = raw
        .slice(eq + 1)
        .trim()
        .replace(/^"(.*)"$/, '$1');
      if (key === 'q') q = Number.parseFloat(value);
      else params.set(key, value);
    }
    if (q > 0) clauses.push({ type, subtype, params, q });
  }
  return clauses
    .map((clause, index) => ({ clause, index }))
    .sort((a, b) => b.clause.q - a.clause.q || a.index - b.index)
    .map(({ clause }) => clause);
}

function mediaTypeMatches(clause: AcceptClause, mediaType: string): boolean {
  const [type, subtype] = mediaType.split('/');
  return (clause.type === '*' || clause.type === type) && (clause.subtype === '*' || clause.subtype === subtype);
}

/**
 * The representation of the first clause the real server would accept. The stand-in always answers JSON, so a
 * clause for YAML or protobuf yields its representation in JSON, and `as=Table` yields the plain object (the
 * stand-in has no Table support: kubectl then prints client-side, facts §1). undefined = nothing acceptable (406).
 */
export function negotiateRepresentation(accept: string | undefined): Representation | undefined {
  if (accept === undefined || accept.trim() === '') return { as: 'full' };
  for (const clause of parseAccept(accept)) {
    const mediaType = SERVED_MEDIA_TYPES.find((candidate) => mediaTypeMatches(clause, candidate));
    if (!mediaType) continue;
    const kind = clause.params.get('as');
    if (kind === undefined) return { as: 'full' };
    const group = clause.params.get('g') ?? '';
    const version = clause.params.get('v') ?? '';
    if (group !== META_GROUP || (version !== 'v1' && version !== 'v1beta1')) continue; // not an allowed transform
    if (kind === 'PartialObjectMetadata' || kind === 'PartialObjectMetadataList') return { as: kind, version };
    if (kind === 'Table' && mediaType !== 'application/vnd.kubernetes.protobuf') return { as: 'full' };
  }
  return undefined;
}

/** errNotAcceptable from `negotiation.NewNotAcceptableError`; written raw (indented) because nothing could be negotiated. */
function notAcceptableMediaType(): Answer {
  const answer = statusAnswer(
    406,
    'NotAcceptable',
    `only the following media types are accepted: ${SERVED_MEDIA_TYPES.join(', ')}`,
  );
  return { ...answer, indented: true };
}

/** `%T` of the internal-version object the transform was given, e.g. `*apps.ReplicaSetList`. */
function internalTypeName(resource: ResourceName, list: boolean): string {
  const { group, kind } = RESOURCES[resource];
  return `*${group || 'core'}.${kind}${list ? 'List' : ''}`;
}

/** handlers/response.go asPartialObjectMetadata / asPartialObjectMetadataList (errNotAcceptable, 406). */
function partialMismatch(resource: ResourceName, representation: Representation, list: boolean): Answer | undefined {
  if (representation.as === 'PartialObjectMetadata' && list) {
    return statusAnswer(
      406,
      'NotAcceptable',
      `you requested PartialObjectMetadata, but the requested object is a list (${internalTypeName(resource, true)})`,
    );
  }
  if (representation.as === 'PartialObjectMetadataList' && !list) {
    return statusAnswer(
      406,
      'NotAcceptable',
      `you requested PartialObjectMetadataList, but the requested object is not a list (${internalTypeName(resource, false)})`,
    );
  }
  return undefined;
}

/** meta.AsPartialObjectMetadata: type meta of meta.k8s.io, the whole ObjectMeta, nothing else. */
function asPartialObjectMetadata(object: KubeObject, version: string): KubeObject {
  return {
    kind: 'PartialObjectMetadata',
    apiVersion: `${META_GROUP}/${version}`,
    metadata: structuredClone(object.metadata),
  };
}

// ---------------------------------------------------------------- storage with history (consistent paged snapshots)

/** One revision of an object, with its serialisations (the object is never changed once stored). */
interface Revision {
  rv: number;
  object: KubeObject;
  serialised?: Map<string, Buffer>;
}
interface StoredEntry {
  key: string;
  object: KubeObject;
  revision: Revision;
}

/** The object's JSON in one representation (`full` list item, or PartialObjectMetadata of a version), computed once. */
function serialisedAs(revision: Revision, representation: string, build: () => unknown): Buffer {
  revision.serialised ??= new Map();
  let json = revision.serialised.get(representation);
  if (json === undefined) {
    json = Buffer.from(JSON.stringify(build()));
    revision.serialised.set(representation, json);
  }
  return json;
}

/** Keeps every revision so all pages of one list come from one snapshot, like etcd reads at the token's rv. */
class ObjectStore {
  revision = 1000;
  /** resource → namespace ('' for cluster-scoped objects) → name → revisions */
  private readonly history = new Map<ResourceName, Map<string, Map<string, Revision[]>>>();
  /** Sorted snapshots already read (`resource|namespace|rv`); any write clears them. */
  private readonly snapshots = new Map<string, StoredEntry[]>();

  constructor(private readonly bulk = false) {}

  put(input: KubeObject): void {
    const resource = RESOURCE_BY_KIND.get(input.kind);
    if (!resource) throw new Error(`stand-in kube server: unsupported kind ${JSON.stringify(input.kind)}`);
    const info = RESOURCES[resource];
    if (info.namespaced && !input.metadata?.namespace)
      throw new Error(`stand-in kube server: ${input.kind} ${input.metadata?.name} has no metadata.namespace`);
    const rv = ++this.revision;
    const object = this.bulk ? input : structuredClone(input);
    object.apiVersion ??= apiVersionOf(info);
    object.metadata.resourceVersion = String(rv);
    const byNamespace = this.history.get(resource) ?? new Map<string, Map<string, Revision[]>>();
    this.history.set(resource, byNamespace);
    const namespace = info.namespaced ? object.metadata.namespace : '';
    const byName = byNamespace.get(namespace) ?? new Map<string, Revision[]>();
    byNamespace.set(namespace, byName);
    const revision: Revision = { rv, object };
    if (this.bulk) serialisedAs(revision, 'full', () => withoutTypeMeta(object));
    byName.set(object.metadata.name, [...(byName.get(object.metadata.name) ?? []), revision]);
    this.snapshots.clear();
  }

  has(resource: ResourceName, key: string): boolean {
    return this.latest(resource, key) !== undefined;
  }

  get(resource: ResourceName, key: string): KubeObject | undefined {
    return this.latest(resource, key)?.object;
  }

  private latest(resource: ResourceName, key: string): Revision | undefined {
    const slash = RESOURCES[resource].namespaced ? key.indexOf('/') : -1;
    const [namespace, name] = slash < 0 ? ['', key] : [key.slice(0, slash), key.slice(slash + 1)];
    return this.history.get(resource)?.get(namespace)?.get(name)?.at(-1);
  }

  /** Objects as of revision `rv`, keyed relative to the list prefix and sorted bytewise like etcd keys. */
  list(resource: ResourceName, rv: number, namespace?: string): StoredEntry[] {
    const id = `${resource}|${namespace ?? '*'}|${rv}`;
    const cached = this.snapshots.get(id);
    if (cached) return cached;
    const byNamespace = this.history.get(resource) ?? new Map<string, Map<string, Revision[]>>();
    const namespaced = RESOURCES[resource].namespaced;
    const scopes = namespace === undefined ? [...byNamespace] : [[namespace, byNamespace.get(namespace)] as const];
    const entries: StoredEntry[] = [];
    for (const [ns, byName] of scopes) {
      for (const [name, revisions] of byName ?? []) {
        const visible = revisions.filter((revision) => revision.rv <= rv).at(-1);
        const key = namespace === undefined && namespaced ? `${ns}/${name}` : name;
        if (visible) entries.push({ key, object: visible.object, revision: visible });
      }
    }
    entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    this.snapshots.set(id, entries);
    return entries;
  }
}

/** The entries from the first key ≥ `start` on (entries are sorted by key). */
function entriesFrom(entries: StoredEntry[], start: string): StoredEntry[] {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (entries[middle]!.key < start) low = middle + 1;
    else high = middle;
  }
  return low === 0 ? entries : entries.slice(low);
}

function parseSelectors(resource: ResourceName, query: URLSearchParams): ObjectPredicate {
  const labels = parseLabelSelector(query.get('labelSelector') ?? '');
  const fields = parseFieldSelector(resource, query.get('fieldSelector') ?? '');
  return (object) =>
    labels.every((matches) => matches(object.metadata.labels ?? {})) && fields.every((matches) => matches(object));
}

interface Page {
  entries: StoredEntry[];
  nextStart?: string;
  remaining: number;
}

/** Reads keys in order until `limit` match, like etcd3 GetList: keys left after the last one read → a next page. */
function readPage(candidates: StoredEntry[], limit: number, selected: ObjectPredicate): Page {
  const entries: StoredEntry[] = [];
  let read = 0;
  for (const entry of candidates) {
    if (limit > 0 && entries.length === limit) break;
    read++;
    if (selected(entry.object)) entries.push(entry);
  }
  const lastKey = entries.at(-1)?.key;
  const remaining = candidates.length - read;
  return remaining > 0 && lastKey !== undefined
    ? { entries, nextStart: `${lastKey}\u0000`, remaining }
    : { entries, remaining };
}

// ---------------------------------------------------------------- routing

type Route =
  | { type: 'list'; resource: ResourceName; namespace?: string }
  | { type: 'get'; resource: ResourceName; namespace?: string; name: string };

/** `/api/v1/...` and `/apis/{group}/{version}/...` resource paths; anything else is not a resource. */
function parseResourcePath(pathname: string): Route | undefined {
  const segments = pathname.split('/').filter((segment) => segment !== '');
  const [root, ...rest] = segments;
  const groupVersion = root === 'api' ? ['', rest.shift()] : root === 'apis' ? [rest.shift(), rest.shift()] : undefined;
  if (!groupVersion) return undefined;
  const [group, version] = groupVersion;
  const served = (name: string | undefined): ResourceName | undefined => {
    const info = RESOURCES[name as ResourceName];
    return info && info.group === group && info.version === version ? (name as ResourceName) : undefined;
  };
  const [first, second, third, fourth, ...extra] = rest;
  if (extra.length > 0) return undefined;
  if (first === 'namespaces' && served('namespaces')) {
    // for namespaces themselves the request namespace is the object's name (apiserver RequestInfoFactory)
    if (second === undefined) return { type: 'list', resource: 'namespaces' };
    if (third === undefined) return { type: 'get', resource: 'namespaces', namespace: second, name: second };
  }
  if (first === 'namespaces' && second !== undefined) {
    const resource = served(third);
    if (!resource || !RESOURCES[resource].namespaced) return undefined;
    return fourth === undefined
      ? { type: 'list', resource, namespace: second }
      : { type: 'get', resource, namespace: second, name: fourth };
  }
  const resource = served(first);
  if (resource && RESOURCES[resource].namespaced && second === undefined) return { type: 'list', resource };
  return resource ? clusterScopedRoute(resource, second, third) : undefined;
}

/** `/api/v1/nodes` and `/api/v1/nodes/{name}`: a resource without namespaces (the route's namespace stays unset). */
function clusterScopedRoute(
  resource: ResourceName,
  name: string | undefined,
  rest: string | undefined,
): Route | undefined {
  if (RESOURCES[resource].namespaced || rest !== undefined) return undefined;
  return name === undefined ? { type: 'list', resource } : { type: 'get', resource, name };
}

/** Discovery documents; `/apis` trimmed to the groups served here so kubectl prints no discovery errors (facts §1). */
function loadDiscovery(): Map<string, unknown> {
  const builtIn = builtInDiscovery();
  const groupList = readK8sFixture('discovery/apis.json', () => builtIn.get('/apis'));
  const groups = groupList.groups.filter((group: KubeObject) => SERVED_GROUPS.includes(group.name));
  const documents = new Map<string, unknown>([
    ['/version', readK8sFixture('discovery/version.json', () => builtIn.get('/version'))],
    ['/api', readK8sFixture('discovery/api.json', () => builtIn.get('/api'))],
    ['/api/v1', readK8sFixture('discovery/api__v1.json', () => builtIn.get('/api/v1'))],
    ['/apis', { ...groupList, groups }],
    ['/apis/apps/v1', readK8sFixture('discovery/apis__apps__v1.json', () => builtIn.get('/apis/apps/v1'))],
    ['/apis/batch/v1', readK8sFixture('discovery/apis__batch__v1.json', () => builtIn.get('/apis/batch/v1'))],
    ['/apis/coordination.k8s.io/v1', LEASE_RESOURCE_LIST],
    ...Object.entries(LEASE_OPENAPI),
  ]);
  for (const group of groups) documents.set(`/apis/${group.name}`, { kind: 'APIGroup', apiVersion: 'v1', ...group });
  return documents;
}

/** Minimal discovery documents of the real shapes, limited to what the stand-in serves (used without ../shared). */
function builtInDiscovery(): Map<string, unknown> {
  const READ_VERBS = ['get', 'list', 'watch'];
  const resourceList = (groupVersion: string, group: string) => ({
    kind: 'APIResourceList',
    ...(group && { apiVersion: 'v1' }),
    groupVersion,
    resources: RESOURCE_NAMES.filter((name) => RESOURCES[name].group === group).map((name) => ({
      name,
      singularName: RESOURCES[name].kind.toLowerCase(),
      namespaced: RESOURCES[name].namespaced,
      kind: RESOURCES[name].kind,
      verbs: READ_VERBS,
    })),
  });
  const groupEntry = (name: string) => ({
    name,
    versions: [{ groupVersion: `${name}/v1`, version: 'v1' }],
    preferredVersion: { groupVersion: `${name}/v1`, version: 'v1' },
  });
  return new Map<string, unknown>([
    [
      '/version',
      {
        major: '1',
        minor: '32',
        gitVersion: 'v1.32.3',
        gitTreeState: 'clean',
        goVersion: 'go1.23.6',
        compiler: 'gc',
        platform: 'linux/amd64',
      },
    ],
    [
      '/api',
      {
        kind: 'APIVersions',
        versions: ['v1'],
        serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1:6443' }],
      },
    ],
    ['/api/v1', resourceList('v1', '')],
    ['/apis', { kind: 'APIGroupList', apiVersion: 'v1', groups: SERVED_GROUPS.map(groupEntry) }],
    ['/apis/apps/v1', resourceList('apps/v1', 'apps')],
    ['/apis/batch/v1', resourceList('batch/v1', 'batch')],
  ]);
}

// ---------------------------------------------------------------- access reviews (who am I, may I)

const SSAR_PATH = '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews';
const SSR_PATH = '/apis/authentication.k8s.io/v1/selfsubjectreviews';
const REVIEW_READ_VERBS = new Set(['get', 'list', 'watch']);

interface ResourceAttributes {
  namespace?: string;
  verb?: string;
  group?: string;
  version?: string;
  resource?: string;
  subresource?: string;
  name?: string;
}

async function readRequestBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

// Protobuf request bodies: kubectl (client-go typed clients) POSTs built-in types as application/vnd.kubernetes.protobuf:
// the magic `k8s\0`, then a runtime.Unknown {1 typeMeta {1 apiVersion, 2 kind}, 2 raw, 3 contentEncoding, 4 contentType}
// whose raw bytes are the object (k8s.io/api generated.proto field numbers below).

type ProtoFields = Map<number, Array<Buffer | number>>;

function readVarint(bytes: Buffer, at: number): [number, number] {
  let value = 0;
  let shift = 0;
  for (let i = at; i < bytes.length; i++) {
    const byte = bytes[i]!;
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [value, i + 1];
    shift += 7;
  }
  throw new Error('truncated varint');
}

function protoFields(bytes: Buffer): ProtoFields {
  const fields: ProtoFields = new Map();
  let at = 0;
  while (at < bytes.length) {
    const [key, next] = readVarint(bytes, at);
    const [field, wireType] = [Math.floor(key / 8), key % 8];
    let value: Buffer | number;
    if (wireType === 0) [value, at] = readVarint(bytes, next);
    else if (wireType === 2) {
      const [length, start] = readVarint(bytes, next);
      if (start + length > bytes.length) throw new Error('truncated field');
      value = bytes.subarray(start, start + length);
      at = start + length;
    } else if (wireType === 1) {
      value = 0;
      at = next + 8;
    } else if (wireType === 5) {
      value = 0;
      at = next + 4;
    } else throw new Error(`wire type ${wireType}`);
    fields.set(field, [...(fields.get(field) ?? []), value]);
  }
  return fields;
}

const protoMessage = (fields: ProtoFields, field: number): ProtoFields | undefined => {
  const value = fields.get(field)?.[0];
  return Buffer.isBuffer(value) ? protoFields(value) : undefined;
};
const protoString = (fields: ProtoFields | undefined, field: number): string | undefined => {
  const value = fields?.get(field)?.[0];
  return Buffer.isBuffer(value) ? value.toString('utf8') : undefined;
};

/** SelfSubjectAccessReview / SelfSubjectReview from protobuf, as the JSON object they stand for. */
function reviewFromProtobuf(body: Buffer): KubeObject {
  if (body.subarray(0, 4).toString('latin1') !== 'k8s\0') throw new Error('missing the k8s protobuf magic');
  const unknown = protoFields(body.subarray(4));
  const typeMeta = protoMessage(unknown, 1);
  const kind = protoString(typeMeta, 2);
  const raw = protoMessage(unknown, 2) ?? new Map();
  const review: KubeObject = { kind, apiVersion: protoString(typeMeta, 1) };
  if (kind === 'SelfSubjectAccessReview') {
    const spec = protoMessage(raw, 2);
    const resource = spec && protoMessage(spec, 1);
    const nonResource = spec && protoMessage(spec, 2);
    const names = ['namespace', 'verb', 'group', 'version', 'resource', 'subresource', 'name'];
    review.spec = {
      ...(resource && {
        resourceAttributes: Object.fromEntries(
          names.map((name, i) => [name, protoString(resource, i + 1)]).filter(([, v]) => v !== undefined),
        ),
      }),
      ...(nonResource && {
        nonResourceAttributes: compactObject({ path: protoString(nonResource, 1), verb: protoString(nonResource, 2) }),
      }),
    };
  }
  return review;
}

function compactObject(object: Record<string, unknown>): KubeObject {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined));
}

/** The review object the client sent (JSON or protobuf), or the 400/415 the real server gives. */
function parseReview(
  req: http.IncomingMessage,
  bytes: Buffer,
  kind: string,
  apiVersion: string,
): { review: KubeObject } | { error: Answer } {
  const mediaType = (req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase();
  let body: unknown;
  if (mediaType === 'application/vnd.kubernetes.protobuf') {
    try {
      body = reviewFromProtobuf(bytes);
    } catch (error) {
      return { error: badRequest(`the body of the request was in an unknown format: ${(error as Error).message}`) };
    }
  } else if (mediaType === 'application/json' || mediaType === 'application/yaml') {
    try {
      body = JSON.parse(bytes.toString('utf8'));
    } catch (error) {
      return { error: badRequest(`couldn't get version/kind; json parse error: ${(error as Error).message}`) };
    }
  } else {
    return {
      error: statusAnswer(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: ${SERVED_MEDIA_TYPES.join(', ')}`,
      ),
    };
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    return { error: badRequest("couldn't get version/kind; json parse error: expected an object") };
  const review = body as KubeObject;
  if (review.kind !== undefined && review.kind !== kind)
    return {
      error: badRequest(`${kind} in version "v1" cannot be handled as a ${review.kind}: the kind does not match`),
    };
  if (review.apiVersion !== undefined && review.apiVersion !== apiVersion) {
    return {
      error: badRequest(
        `the API version in the data (${review.apiVersion}) does not match the expected API version (${apiVersion})`,
      ),
    };
  }
  return { review };
}

/** `RBAC: allowed by …` as the RBAC authorizer words an allowing ClusterRoleBinding (plugin/pkg/auth/authorizer/rbac). */
function rbacAllowedReason(user: string): string {
  const serviceAccount = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(user);
  const subject = serviceAccount ? `ServiceAccount "${serviceAccount[2]}/${serviceAccount[1]}"` : `User "${user}"`;
  const binding = serviceAccount?.[2] ?? 'ephor-scanner';
  return `RBAC: allowed by ClusterRoleBinding "${binding}" of ClusterRole "${binding}" to ${subject}`;
}

/** The user info the authenticator gives a service-account token (or a plain user). */
function userInfo(user: string): KubeObject {
  const serviceAccount = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(user);
  return {
    username: user,
    uid: deterministicUserUid(user),
    groups: serviceAccount
      ? ['system:serviceaccounts', `system:serviceaccounts:${serviceAccount[1]}`, 'system:authenticated']
      : ['system:authenticated'],
  };
}

function deterministicUserUid(user: string): string {
  const hex = createHash('sha1').update(`user/${user}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** The spec as the server echoes it back: decoded attributes, empty fields left out (omitempty). */
function echoAttributes(attributes: ResourceAttributes): KubeObject {
  const order: (keyof ResourceAttributes)[] = [
    'namespace',
    'verb',
    'group',
    'version',
    'resource',
    'subresource',
    'name',
  ];
  return Object.fromEntries(
    order
      .filter((key) => typeof attributes[key] === 'string' && attributes[key] !== '')
      .map((key) => [key, attributes[key]]),
  );
}

// ---------------------------------------------------------------- TLS

let certificate: Promise<{ key: string; cert: string }> | undefined;

/** One self-signed P-256 certificate per process, with the IP SAN Go's verifier requires. */
function selfSignedCertificate(): Promise<{ key: string; cert: string }> {
  certificate ??= makeSelfSignedCertificate();
  return certificate;
}

/** A new self-signed certificate for 127.0.0.1 (its own CA). */
export async function makeSelfSignedCertificate(): Promise<{ key: string; cert: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'ephor-kube-tls-'));
  try {
    const keyFile = path.join(dir, 'key.pem');
    const certFile = path.join(dir, 'cert.pem');
    await promisify(execFile)(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '7',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        keyFile,
        '-out',
        certFile,
      ],
      { timeout: 20_000 },
    );
    return { key: await readFile(keyFile, 'utf8'), cert: await readFile(certFile, 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- the server

interface RequestContext {
  route: Route;
  query: URLSearchParams;
}

export async function startKubeServer(opts: KubeServerOptions = {}): Promise<KubeServer> {
  const user = opts.user ?? DEFAULT_USER;
  let discovery: Map<string, unknown> | undefined; // read on the first discovery request
  const store = new ObjectStore(opts.bulk);
  const requests: RecordedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  /** continue token → lists (resource + namespace) it was issued for */
  const issuedTokens = new Map<string, Set<string>>();
  let faults: { fault: KubeFault; remaining: number }[] = [];
  let closed = false;

  function addObjects(...objects: KubeObject[]): void {
    for (const object of objects) {
      const ns = object.kind === 'Namespace' ? undefined : object.metadata?.namespace;
      // a real object cannot exist without its namespace; create missing ones (unlabelled)
      if (ns && !store.has('namespaces', ns)) store.put(namespaceObject(ns));
      store.put(object);
    }
  }

  function setFaults(next: KubeFault[]): void {
    faults = next.map((fault) => ({ fault, remaining: fault.times ?? Infinity }));
  }

  function takeFault({ route, query }: RequestContext): KubeFault | undefined {
    const entry = faults.find(
      ({ fault, remaining }) =>
        remaining > 0 &&
        fault.resource === route.resource &&
        (fault.namespace === undefined || fault.namespace === route.namespace) &&
        (!fault.onlyContinue || Boolean(query.get('continue'))),
    );
    if (entry) entry.remaining--;
    return entry?.fault;
  }

  function faultAnswer(fault: KubeFault, { route, query }: RequestContext): Answer | undefined {
    switch (fault.status) {
      case undefined:
        return undefined;
      case 401:
        return unauthorized();
      case 403:
        return forbidden(
          user,
          route.type,
          route.resource,
          route.namespace,
          route.type === 'get' ? route.name : undefined,
        );
      case 404:
        return route.type === 'get' ? objectNotFound(route.resource, route.name) : pathNotFound();
      case 410:
        return expiredAnswer(query.get('continue'));
      case 429:
        return tooManyRequests(fault.plainText ?? false);
      case 500:
        return internalError();
      case 503:
        return serviceUnavailable();
    }
  }

  function expiredAnswer(token: string | null): Answer {
    // without a continue token the real cause is a too-old resourceVersion on the list
    if (!token) return statusAnswer(410, 'Expired', 'The resourceVersion for the provided list is too old.');
    try {
      return expiredContinue(decodeContinue(token).start);
    } catch {
      return expiredContinue(undefined);
    }
  }

  /** setTimeout cannot wait longer than 2^31-1 ms (it would fire at once); longer stalls never answer. */
  function stall(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (ms > 2 ** 31 - 1) return;
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });
  }

  /** Where a list (page) starts: the latest revision, or the snapshot and key a continue token names. */
  function listPosition(query: URLSearchParams, listIdentity: string): ContinuePosition {
    const token = query.get('continue');
    if (!token) return { rv: store.revision, start: '' };
    const position = decodeContinue(token);
    const resourceVersion = query.get('resourceVersion');
    if (resourceVersion && resourceVersion !== '0')
      throw new StatusError(badRequest('specifying resource version is not allowed when using continue'));
    // Stand-in strictness: the real server would range over this list's keys with any well-formed token.
    const issuedFor = issuedTokens.get(token);
    if (issuedFor && !issuedFor.has(listIdentity)) {
      throw new StatusError(
        badRequest('invalid continue token: continue key is not valid: it was issued for a different list'),
      );
    }
    return { rv: position.rv > 0 ? position.rv : store.revision, start: position.start }; // rv -1: inconsistent, at latest
  }

  function listAnswer(
    resource: ResourceName,
    namespace: string | undefined,
    query: URLSearchParams,
    representation: Representation,
  ): Answer {
    const info = RESOURCES[resource];
    const selected = parseSelectors(resource, query);
    const listIdentity = `${resource}|${namespace ?? ''}`;
    const { rv, start } = listPosition(query, listIdentity);
    const requestedLimit = Math.max(Number.parseInt(query.get('limit') ?? '0', 10) || 0, 0);
    const limit = requestedLimit > 0 && opts.maxPageSize ? Math.min(requestedLimit, opts.maxPageSize) : requestedLimit;

    const page = readPage(entriesFrom(store.list(resource, rv, namespace), start), limit, selected);
    const metadata: KubeObject = { resourceVersion: String(rv) };
    if (page.nextStart !== undefined) {
      metadata.continue = encodeContinue(rv, page.nextStart);
      issuedTokens.set(metadata.continue, (issuedTokens.get(metadata.continue) ?? new Set<string>()).add(listIdentity));
      // only an estimate in the real server, and omitted when selectors filter (facts §4)
      if (!query.get('labelSelector') && !query.get('fieldSelector')) metadata.remainingItemCount = page.remaining;
    }
    // Items are written from each revision's cached serialisation: the same bytes as serialising the whole list.
    if (representation.as === 'PartialObjectMetadataList') {
      // items carry their own type meta; an empty list is built by appending to a nil slice, so it encodes as null
      const { version } = representation;
      const items = page.entries.map((entry) =>
        serialisedAs(entry.revision, `metadata/${version}`, () => asPartialObjectMetadata(entry.object, version)),
      );
      return listJson(
        { kind: 'PartialObjectMetadataList', apiVersion: `${META_GROUP}/${version}`, metadata },
        items.length > 0 ? items : undefined,
      );
    }
    const items = page.entries.map((entry) =>
      serialisedAs(entry.revision, 'full', () => withoutTypeMeta(entry.object)),
    );
    return listJson({ kind: `${info.kind}List`, apiVersion: apiVersionOf(info), metadata }, items);
  }

  function getAnswer(
    resource: ResourceName,
    namespace: string | undefined,
    name: string,
    representation: Representation,
  ): Answer {
    const key = RESOURCES[resource].namespaced ? `${namespace}/${name}` : name;
    const object = store.get(resource, key);
    if (!object) return objectNotFound(resource, name);
    return {
      code: 200,
      body:
        representation.as === 'PartialObjectMetadata'
          ? asPartialObjectMetadata(object, representation.version)
          : object,
    };
  }

  /**
   * What RBAC would decide for the scanner's account: its ClusterRole reads every resource served here (get, list,
   * watch), except where a 403 fault denies it. A fault in one namespace also denies the cluster-wide question
   * (namespace omitted), since a ClusterRoleBinding would have allowed that namespace too. Faults are only looked
   * at, never used up: a review is a question, not a request for the resource.
   */
  function decide(attributes: ResourceAttributes): { allowed: boolean; reason?: string } {
    const aboutLeases = leases.review(attributes);
    if (aboutLeases) return aboutLeases;
    const resource = attributes.resource as ResourceName | undefined;
    const info = resource && RESOURCES[resource];
    const served =
      info !== undefined && info.group === (attributes.group ?? '') && (attributes.subresource ?? '') === '';
    if (!served || !REVIEW_READ_VERBS.has(attributes.verb ?? '')) return { allowed: false };
    const denial = faults.find(
      ({ fault, remaining }) =>
        remaining > 0 &&
        fault.status === 403 &&
        fault.resource === resource &&
        (fault.namespace === undefined || !attributes.namespace || fault.namespace === attributes.namespace),
    );
    if (denial) return { allowed: false, ...(denial.fault.reviewReason && { reason: denial.fault.reviewReason }) };
    return { allowed: true, reason: rbacAllowedReason(user) };
  }

  /** POST selfsubjectaccessreviews (create only; 201 with the spec echoed and the decision in status). */
  async function accessReviewAnswer(req: http.IncomingMessage): Promise<Answer> {
    if (req.method !== 'POST') return methodNotAllowed();
    const parsed = parseReview(req, await readRequestBody(req), 'SelfSubjectAccessReview', 'authorization.k8s.io/v1');
    if ('error' in parsed) return parsed.error;
    const { review } = parsed;
    const resourceAttributes = review.spec?.resourceAttributes as ResourceAttributes | undefined;
    const nonResourceAttributes = review.spec?.nonResourceAttributes as { path?: string; verb?: string } | undefined;
    if ((resourceAttributes === undefined) === (nonResourceAttributes === undefined)) {
      return statusAnswer(
        422,
        'Invalid',
        'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified',
        {
          group: 'authorization.k8s.io',
          kind: 'SelfSubjectAccessReview',
          causes: [
            {
              reason: 'FieldValueInvalid',
              message:
                'Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified',
              field: 'spec.resourceAttributes',
            },
          ],
        },
      );
    }
    const decision = resourceAttributes
      ? decide(resourceAttributes)
      : {
          allowed: nonResourceAttributes?.verb === 'get',
          ...(nonResourceAttributes?.verb === 'get' && { reason: rbacAllowedReason(user) }),
        };
    const spec = resourceAttributes
      ? { resourceAttributes: echoAttributes(resourceAttributes) }
      : { nonResourceAttributes: { ...nonResourceAttributes } };
    return {
      code: 201,
      body: {
        kind: 'SelfSubjectAccessReview',
        apiVersion: 'authorization.k8s.io/v1',
        metadata: { creationTimestamp: null },
        spec,
        status: decision,
      },
    };
  }

  /** POST selfsubjectreviews: who the server takes the caller for (`kubectl auth whoami`). */
  async function selfSubjectReviewAnswer(req: http.IncomingMessage): Promise<Answer> {
    if (req.method !== 'POST') return methodNotAllowed();
    const parsed = parseReview(req, await readRequestBody(req), 'SelfSubjectReview', 'authentication.k8s.io/v1');
    if ('error' in parsed) return parsed.error;
    return {
      code: 201,
      body: {
        kind: 'SelfSubjectReview',
        apiVersion: 'authentication.k8s.io/v1',
        metadata: { creationTimestamp: null },
        status: { userInfo: userInfo(user) },
      },
    };
  }

  async function answer(req: http.IncomingMessage, url: URL): Promise<Answer> {
    if (opts.token !== undefined && req.headers.authorization !== `Bearer ${opts.token}`) return unauthorized();
    if (url.pathname === SSAR_PATH) return accessReviewAnswer(req);
    if (url.pathname === SSR_PATH && opts.selfSubjectReview !== false) return selfSubjectReviewAnswer(req);
    const aboutLeases = leases.answer(req, url);
    if (aboutLeases) return aboutLeases;
    const route = parseResourcePath(url.pathname);
    if (!route) {
      discovery ??= loadDiscovery();
      const document = discovery.get(url.pathname);
      return document && req.method === 'GET' ? { code: 200, body: document } : pathNotFound();
    }
    if (req.method !== 'GET') return methodNotAllowed();
    const context = { route, query: url.searchParams };
    const fault = takeFault(context);
    if (fault?.stallMs !== undefined) await stall(fault.stallMs);
    const injected = fault && faultAnswer(fault, context);
    if (injected) return injected;
    const accept = req.headers.accept;
    const representation = negotiateRepresentation(Array.isArray(accept) ? accept.join(',') : accept);
    if (!representation) return notAcceptableMediaType();
    // the transform runs on what storage returned: errors (404, 400, 410) come first
    const result =
      route.type === 'list'
        ? listAnswer(route.resource, route.namespace, url.searchParams, representation)
        : getAnswer(route.resource, route.namespace, route.name, representation);
    if (result.code !== 200) return result;
    return partialMismatch(route.resource, representation, route.type === 'list') ?? result;
  }

  const handleRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const record: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      status: 0,
    };
    requests.push(record);
    void answer(req, url)
      .catch((error: unknown) =>
        error instanceof StatusError
          ? error.answer
          : statusAnswer(500, 'InternalError', `Internal error occurred: ${String(error)}`),
      )
      .then((result) => {
        record.status = result.code;
        writeAnswer(res, result);
      });
  };
  const leases = createLeaseApi({
    revision: () => store.revision,
    nextRevision: () => ++store.revision,
    // A real API server always has `default` (its bootstrap controller creates it, NamespaceLifecycle admission never
    // lets it go), and a scanner run from a kubeconfig without a namespace keeps its run lock there. The stand-in does
    // not list it, so that SCAN_NAMESPACES=* sees only a test's own namespaces, but admits Leases into it.
    namespaceExists: (name) => name === 'default' || store.has('namespaces', name),
    stall,
    allowedReason: rbacAllowedReason(user),
    status: statusAnswer,
    forbidden: (verb, namespace, name) =>
      forbiddenFor(user, verb, { resource: 'leases', group: LEASE_GROUP }, namespace, name),
    pathNotFound,
    internalError,
    serviceUnavailable,
    methodNotAllowed,
  });
  const tls = opts.tls ? await selfSignedCertificate() : undefined;
  const server = tls ? https.createServer(tls, handleRequest) : http.createServer(handleRequest);
  let connections = 0;
  server.on('connection', () => connections++);

  setFaults(opts.faults ?? []);
  for (const [name, labels] of Object.entries(opts.namespaces ?? {})) store.put(namespaceObject(name, labels));
  addObjects(...(opts.objects ?? []));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      resolve();
    });
  });
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    ...(tls && { caCert: tls.cert }),
    requests,
    get connections() {
      return connections;
    },
    addObjects,
    setFaults,
    leases: leases.control,
    async writeKubeconfig(dir, kubeconfigOpts = {}) {
      // token: undefined → the server's own token (if any); '' → no credentials at all
      const token = kubeconfigOpts.token ?? opts.token;
      const config = {
        apiVersion: 'v1',
        kind: 'Config',
        preferences: {},
        clusters: [
          {
            name: 'ephor-stand-in',
            // A plain http:// server with nothing else, as a kubectl user writes it. (@kubernetes/client-node 1.4.0
            // refuses that unless insecure-skip-tls-verify is set; the scanner must cope, so the option is opt-in.)
            cluster: tls
              ? { server: url, 'certificate-authority-data': Buffer.from(tls.cert).toString('base64') }
              : { server: url, ...(kubeconfigOpts.insecureSkipTlsVerify && { 'insecure-skip-tls-verify': true }) },
          },
        ],
        users: [{ name: 'ephor-scanner', user: token ? { token } : {} }],
        contexts: [
          {
            name: 'ephor-stand-in',
            context: {
              cluster: 'ephor-stand-in',
              user: 'ephor-scanner',
              ...(kubeconfigOpts.namespace && { namespace: kubeconfigOpts.namespace }),
            },
          },
        ],
        'current-context': 'ephor-stand-in',
      };
      const file = path.join(dir, 'kubeconfig');
      await writeFile(file, YAML.stringify(config), { mode: 0o600 });
      return file;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const stopped = new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
      server.closeAllConnections(); // includes stalled requests and idle keep-alive sockets
      await stopped;
    },
  };
}

const COMMA = Buffer.from(',');

/** A 200 list answer: `head` then `"items":[…]` (or `null`) from serialised items, as JSON.stringify would write it. */
function listJson(head: KubeObject, items: Buffer[] | undefined): Answer {
  const start = Buffer.from(`${JSON.stringify(head).slice(0, -1)},"items":${items === undefined ? 'null}' : '['}`);
  if (items === undefined) return { code: 200, body: undefined, json: start };
  const pieces: Buffer[] = [start];
  items.forEach((item, i) => pieces.push(...(i > 0 ? [COMMA, item] : [item])));
  pieces.push(Buffer.from(']}'));
  return { code: 200, body: undefined, json: Buffer.concat(pieces) };
}

function withoutTypeMeta(object: KubeObject): KubeObject {
  const { kind: _kind, apiVersion: _apiVersion, ...rest } = object;
  return rest;
}

function writeAnswer(res: http.ServerResponse, { code, body, headers, text, indented, json }: Answer): void {
  if (res.destroyed) return;
  // Content-Type stays plain application/json for metadata-only answers too: transformResponseObject passes
  // listGVKInContentType=false to WriteObjectNegotiated (only aggregated discovery names the GVK there).
  const payload = json ?? (text ? String(body) : JSON.stringify(body, null, indented ? 2 : undefined));
  res.writeHead(code, {
    'Audit-Id': randomUUID(),
    'Cache-Control': 'no-cache, private',
    'Content-Type': text ? 'text/plain; charset=utf-8' : 'application/json',
    'Content-Length': typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length,
    ...headers,
  });
  res.end(payload);
}
