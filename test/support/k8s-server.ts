// Loopback stand-in for kube-apiserver (1.32), faithful to what kubectl and client libraries see.
// Facts cited as "facts §N" are in ../shared/reference/k8s-api-facts.md.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { namespace as namespaceObject, type KubeObject } from './k8s-objects.js';
import { K8S_FIXTURES_DIR } from './paths.js';

export type ResourceName = 'deployments' | 'statefulsets' | 'daemonsets' | 'cronjobs' | 'pods' | 'replicasets' | 'jobs' | 'namespaces' | 'secrets' | 'serviceaccounts';
export interface KubeFault {
  resource: ResourceName;
  namespace?: string;
  status?: 401 | 403 | 404 | 410 | 429 | 500 | 503;
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
  /**
   * Serve HTTPS with a self-signed certificate for 127.0.0.1 (made at run time with the `openssl` CLI).
   * Needed whenever kubectl must send a token: client-go only sends credentials over TLS (kubernetes/kubectl#744).
   */
  tls?: boolean;
}
export interface RecordedRequest { method: string; path: string; query: Record<string, string>; headers: Record<string, string | string[] | undefined>; status: number }
export interface KubeServer {
  /** http://127.0.0.1:PORT, or https://… with `tls` */
  url: string;
  /** PEM of the self-signed server certificate (its own CA) when `tls` is set */
  caCert?: string;
  /** Recorded on arrival; `status` stays 0 while the answer is pending (stalled). */
  requests: RecordedRequest[];
  addObjects(...objects: KubeObject[]): void;
  setFaults(faults: KubeFault[]): void;
  writeKubeconfig(dir: string, opts?: { token?: string; namespace?: string; insecureSkipTlsVerify?: boolean }): Promise<string>;
  close(): Promise<void>;
}

interface ResourceInfo { group: string; version: string; kind: string; namespaced: boolean }

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
};
const RESOURCE_NAMES = Object.keys(RESOURCES) as ResourceName[];
const RESOURCE_BY_KIND = new Map(RESOURCE_NAMES.map((name) => [RESOURCES[name].kind, name]));
const SERVED_GROUPS = ['apps', 'batch'];
const DEFAULT_USER = 'system:serviceaccount:ephor:ephor-scanner';

function apiVersionOf(info: ResourceInfo): string {
  return info.group ? `${info.group}/${info.version}` : info.version;
}

/** `deployments.apps`, or just `pods` for the core group — how the server names a resource in messages. */
function qualifiedResource(resource: ResourceName): string {
  const { group } = RESOURCES[resource];
  return group ? `${resource}.${group}` : resource;
}

function readK8sFixture(relativePath: string): any {
  return JSON.parse(readFileSync(path.join(K8S_FIXTURES_DIR, relativePath), 'utf8'));
}

// ---------------------------------------------------------------- Status bodies (facts §3)

interface Answer { code: number; body: unknown; headers?: Record<string, string>; text?: boolean; indented?: boolean }

class StatusError extends Error {
  constructor(readonly answer: Answer) { super(String((answer.body as KubeObject).message)); }
}

function statusAnswer(code: number, reason: string, message: string, details?: KubeObject, metadata: KubeObject = {}): Answer {
  const body: KubeObject = { kind: 'Status', apiVersion: 'v1', metadata, status: 'Failure', message, reason };
  if (details) body.details = details;
  body.code = code;
  return { code, body };
}

function resourceDetails(resource: ResourceName, name?: string): KubeObject {
  const { group } = RESOURCES[resource];
  return { ...(name !== undefined && { name }), ...(group && { group }), kind: resource };
}

const unauthorized = (): Answer => ({ code: 401, body: readK8sFixture('status/401_unauthorized.json') });
const pathNotFound = (): Answer => ({ code: 404, body: readK8sFixture('status/404_notfound_resource.json') });
const badRequest = (message: string): Answer => statusAnswer(400, 'BadRequest', message);

function objectNotFound(resource: ResourceName, name: string): Answer {
  return statusAnswer(404, 'NotFound', `${qualifiedResource(resource)} "${name}" not found`, resourceDetails(resource, name));
}

/** apimachinery NewForbidden + the RBAC authorizer's wording (compare status/403_*.json). */
function forbidden(user: string, verb: string, resource: ResourceName, namespace?: string, name?: string): Answer {
  const subject = name === undefined ? `${qualifiedResource(resource)}` : `${qualifiedResource(resource)} "${name}"`;
  const scope = namespace === undefined ? 'at the cluster scope' : `in the namespace "${namespace}"`;
  const reason = `User "${user}" cannot ${verb} resource "${resource}" in API group "${RESOURCES[resource].group}" ${scope}`;
  return statusAnswer(403, 'Forbidden', `${subject} is forbidden: ${reason}`, resourceDetails(resource, name));
}

/** etcd3 handleCompactedErrorForPaging: a fresh token with rv -1 (an inconsistent continuation). */
function expiredContinue(startKey: string | undefined): Answer {
  const tooOld = 'The provided continue parameter is too old to display a consistent list result.';
  if (startKey === undefined) return statusAnswer(410, 'Expired', `${tooOld} You can start a new list without the continue parameter.`);
  return statusAnswer(410, 'Expired',
    `${tooOld} You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.`,
    undefined, { continue: encodeContinue(-1, startKey) });
}

/** The watch cache's Status 429 ("storage is (re)initializing") — a real Status-bodied 429 with retryAfterSeconds. */
function tooManyRequests(plainText: boolean): Answer {
  if (plainText) return { code: 429, body: 'Too many requests, please try again later.\n', headers: { 'Retry-After': '1' }, text: true };
  return { ...statusAnswer(429, 'TooManyRequests', 'storage is (re)initializing', { retryAfterSeconds: 1 }), headers: { 'Retry-After': '1' } };
}

function internalError(): Answer {
  const cause = 'etcdserver: request timed out';
  return statusAnswer(500, 'InternalError', `Internal error occurred: ${cause}`, { causes: [{ message: cause }] });
}

const serviceUnavailable = (): Answer => statusAnswer(503, 'ServiceUnavailable', 'the server is currently unable to handle the request');
const methodNotAllowed = (): Answer => statusAnswer(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');

// ---------------------------------------------------------------- continue tokens (facts §4)

interface ContinuePosition { rv: number; start: string }

function encodeContinue(rv: number, start: string): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv, start })).toString('base64url');
}

/** Mirrors apiserver storage.DecodeContinue, including its error texts. */
function decodeContinue(token: string): ContinuePosition {
  const invalid = (why: string) => new StatusError(badRequest(`invalid continue token: continue key is not valid: ${why}`));
  if (!/^[A-Za-z0-9_-]*$/.test(token)) throw invalid('illegal base64 data');
  let parsed: any;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch (error) {
    throw invalid((error as Error).message);
  }
  if (parsed?.v !== 'meta.k8s.io/v1') throw invalid(`server does not recognize this encoded version "${parsed?.v ?? ''}"`);
  if (!Number.isInteger(parsed.rv) || parsed.rv === 0) throw invalid('incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
  if (typeof parsed.start !== 'string' || parsed.start === '') throw invalid('encoded start key empty (version meta.k8s.io/v1)');
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
    if (char === ',' && depth === 0) { parts.push(current); current = ''; } else current += char;
  }
  parts.push(current);
  return parts.map((part) => part.trim()).filter((part) => part !== '').map(parseLabelRequirement);
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
    return operator === '!=' ? (labels) => labels[key] !== value : (labels) => has(labels, key) && labels[key] === value;
  }
  const exists = EXISTS_REQUIREMENT.exec(text);
  if (exists) {
    const [, negated, key = ''] = exists;
    return negated ? (labels) => !has(labels, key) : (labels) => has(labels, key);
  }
  throw new StatusError(badRequest(`unable to parse requirement: found '${text}', expected: a valid label selector requirement`));
}

/** Field labels each resource supports (metadata.name / metadata.namespace work everywhere). */
const FIELD_LABELS: Partial<Record<ResourceName, string[]>> = {
  pods: ['spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'spec.hostNetwork', 'status.phase', 'status.podIP', 'status.nominatedNodeName'],
  secrets: ['type'],
  namespaces: ['status.phase'],
};

type ObjectPredicate = (object: KubeObject) => boolean;

function parseFieldSelector(resource: ResourceName, selector: string): ObjectPredicate[] {
  const supported = ['metadata.name', 'metadata.namespace', ...(FIELD_LABELS[resource] ?? [])];
  return selector.split(',').filter((part) => part.trim() !== '').map((part) => {
    const match = /^\s*([\w.]+)\s*(==|!=|=)\s*([^,]*?)\s*$/.exec(part);
    if (!match) throw new StatusError(badRequest(`invalid selector: '${selector}'; can't understand '${part}'`));
    const [, field = '', operator, value] = match;
    if (!supported.includes(field)) throw new StatusError(badRequest(`field label not supported: ${field}`));
    const read = (object: KubeObject) => String(field.split('.').reduce<any>((node, key) => node?.[key], object) ?? '');
    return operator === '!=' ? (object) => read(object) !== value : (object) => read(object) === value;
  });
}

// ---------------------------------------------------------------- content negotiation (metadata-only responses)

/**
 * What a GET asked for in `Accept` (apiserver `negotiation.NegotiateOutputMediaType` + `RequestScope.AllowsMediaTypeTransform`):
 * the full object, or `as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1|v1beta1`.
 */
export type Representation =
  | { as: 'full' }
  | { as: 'PartialObjectMetadata' | 'PartialObjectMetadataList'; version: 'v1' | 'v1beta1' };

/** Media types the real server serialises (`MediaTypesForSerializer`; CBOR is feature-gated off in 1.32). */
const SERVED_MEDIA_TYPES = ['application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf'];
const META_GROUP = 'meta.k8s.io';

interface AcceptClause { type: string; subtype: string; params: Map<string, string>; q: number }

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
      const value = raw.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
      if (key === 'q') q = Number.parseFloat(value);
      else params.set(key, value);
    }
    if (q > 0) clauses.push({ type, subtype, params, q });
  }
  return clauses.map((clause, index) => ({ clause, index }))
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
  const answer = statusAnswer(406, 'NotAcceptable', `only the following media types are accepted: ${SERVED_MEDIA_TYPES.join(', ')}`);
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
    return statusAnswer(406, 'NotAcceptable', `you requested PartialObjectMetadata, but the requested object is a list (${internalTypeName(resource, true)})`);
  }
  if (representation.as === 'PartialObjectMetadataList' && !list) {
    return statusAnswer(406, 'NotAcceptable', `you requested PartialObjectMetadataList, but the requested object is not a list (${internalTypeName(resource, false)})`);
  }
  return undefined;
}

/** meta.AsPartialObjectMetadata: type meta of meta.k8s.io, the whole ObjectMeta, nothing else. */
function asPartialObjectMetadata(object: KubeObject, version: string): KubeObject {
  return { kind: 'PartialObjectMetadata', apiVersion: `${META_GROUP}/${version}`, metadata: structuredClone(object.metadata) };
}

// ---------------------------------------------------------------- storage with history (consistent paged snapshots)

interface StoredEntry { key: string; object: KubeObject }

/** Keeps every revision so all pages of one list come from one snapshot, like etcd reads at the token's rv. */
class ObjectStore {
  revision = 1000;
  private readonly history = new Map<ResourceName, Map<string, { rv: number; object: KubeObject }[]>>();

  put(input: KubeObject): void {
    const resource = RESOURCE_BY_KIND.get(input.kind);
    if (!resource) throw new Error(`stand-in kube server: unsupported kind ${JSON.stringify(input.kind)}`);
    const info = RESOURCES[resource];
    if (info.namespaced && !input.metadata?.namespace) throw new Error(`stand-in kube server: ${input.kind} ${input.metadata?.name} has no metadata.namespace`);
    const rv = ++this.revision;
    const object = structuredClone(input);
    object.apiVersion ??= apiVersionOf(info);
    object.metadata.resourceVersion = String(rv);
    const byKey = this.history.get(resource) ?? new Map();
    this.history.set(resource, byKey);
    const key = info.namespaced ? `${object.metadata.namespace}/${object.metadata.name}` : object.metadata.name;
    byKey.set(key, [...(byKey.get(key) ?? []), { rv, object }]);
  }

  has(resource: ResourceName, key: string): boolean {
    return this.history.get(resource)?.has(key) ?? false;
  }

  get(resource: ResourceName, key: string): KubeObject | undefined {
    return this.history.get(resource)?.get(key)?.at(-1)?.object;
  }

  /** Objects as of revision `rv`, keyed relative to the list prefix and sorted bytewise like etcd keys. */
  list(resource: ResourceName, rv: number, namespace?: string): StoredEntry[] {
    const prefix = namespace === undefined ? '' : `${namespace}/`;
    const entries: StoredEntry[] = [];
    for (const [key, revisions] of this.history.get(resource) ?? []) {
      if (!key.startsWith(prefix)) continue;
      const visible = revisions.filter((revision) => revision.rv <= rv).at(-1);
      if (visible) entries.push({ key: key.slice(prefix.length), object: visible.object });
    }
    return entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }
}

function parseSelectors(resource: ResourceName, query: URLSearchParams): ObjectPredicate {
  const labels = parseLabelSelector(query.get('labelSelector') ?? '');
  const fields = parseFieldSelector(resource, query.get('fieldSelector') ?? '');
  return (object) => labels.every((matches) => matches(object.metadata.labels ?? {})) && fields.every((matches) => matches(object));
}

interface Page { entries: StoredEntry[]; nextStart?: string; remaining: number }

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
  return remaining > 0 && lastKey !== undefined ? { entries, nextStart: `${lastKey}\u0000`, remaining } : { entries, remaining };
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
    return fourth === undefined ? { type: 'list', resource, namespace: second } : { type: 'get', resource, namespace: second, name: fourth };
  }
  const resource = served(first);
  if (resource && RESOURCES[resource].namespaced && second === undefined) return { type: 'list', resource };
  return undefined;
}

/** Discovery documents; `/apis` trimmed to the groups served here so kubectl prints no discovery errors (facts §1). */
function loadDiscovery(): Map<string, unknown> {
  const groupList = readK8sFixture('discovery/apis.json');
  const groups = groupList.groups.filter((group: KubeObject) => SERVED_GROUPS.includes(group.name));
  const documents = new Map<string, unknown>([
    ['/version', readK8sFixture('discovery/version.json')],
    ['/api', readK8sFixture('discovery/api.json')],
    ['/api/v1', readK8sFixture('discovery/api__v1.json')],
    ['/apis', { ...groupList, groups }],
    ['/apis/apps/v1', readK8sFixture('discovery/apis__apps__v1.json')],
    ['/apis/batch/v1', readK8sFixture('discovery/apis__batch__v1.json')],
  ]);
  for (const group of groups) documents.set(`/apis/${group.name}`, { kind: 'APIGroup', apiVersion: 'v1', ...group });
  return documents;
}

// ---------------------------------------------------------------- TLS

let certificate: Promise<{ key: string; cert: string }> | undefined;

/** One self-signed P-256 certificate per process, with the IP SAN Go's verifier requires. */
function selfSignedCertificate(): Promise<{ key: string; cert: string }> {
  certificate ??= (async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'ephor-kube-tls-'));
    try {
      const keyFile = path.join(dir, 'key.pem');
      const certFile = path.join(dir, 'cert.pem');
      await promisify(execFile)('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '7',
        '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile,
      ], { timeout: 20_000 });
      return { key: await readFile(keyFile, 'utf8'), cert: await readFile(certFile, 'utf8') };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  })();
  return certificate;
}

// ---------------------------------------------------------------- the server

interface RequestContext { route: Route; query: URLSearchParams }

export async function startKubeServer(opts: KubeServerOptions = {}): Promise<KubeServer> {
  const user = opts.user ?? DEFAULT_USER;
  const discovery = loadDiscovery();
  const store = new ObjectStore();
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
    const entry = faults.find(({ fault, remaining }) => remaining > 0
      && fault.resource === route.resource
      && (fault.namespace === undefined || fault.namespace === route.namespace)
      && (!fault.onlyContinue || Boolean(query.get('continue'))));
    if (entry) entry.remaining--;
    return entry?.fault;
  }

  function faultAnswer(fault: KubeFault, { route, query }: RequestContext): Answer | undefined {
    switch (fault.status) {
      case undefined: return undefined;
      case 401: return unauthorized();
      case 403: return forbidden(user, route.type, route.resource, route.namespace, route.type === 'get' ? route.name : undefined);
      case 404: return route.type === 'get' ? objectNotFound(route.resource, route.name) : pathNotFound();
      case 410: return expiredAnswer(query.get('continue'));
      case 429: return tooManyRequests(fault.plainText ?? false);
      case 500: return internalError();
      case 503: return serviceUnavailable();
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
      const timer = setTimeout(() => { timers.delete(timer); resolve(); }, ms);
      timers.add(timer);
    });
  }

  /** Where a list (page) starts: the latest revision, or the snapshot and key a continue token names. */
  function listPosition(query: URLSearchParams, listIdentity: string): ContinuePosition {
    const token = query.get('continue');
    if (!token) return { rv: store.revision, start: '' };
    const position = decodeContinue(token);
    const resourceVersion = query.get('resourceVersion');
    if (resourceVersion && resourceVersion !== '0') throw new StatusError(badRequest('specifying resource version is not allowed when using continue'));
    // Stand-in strictness: the real server would range over this list's keys with any well-formed token.
    const issuedFor = issuedTokens.get(token);
    if (issuedFor && !issuedFor.has(listIdentity)) {
      throw new StatusError(badRequest('invalid continue token: continue key is not valid: it was issued for a different list'));
    }
    return { rv: position.rv > 0 ? position.rv : store.revision, start: position.start }; // rv -1: inconsistent, at latest
  }

  function listAnswer(resource: ResourceName, namespace: string | undefined, query: URLSearchParams, representation: Representation): Answer {
    const info = RESOURCES[resource];
    const selected = parseSelectors(resource, query);
    const listIdentity = `${resource}|${namespace ?? ''}`;
    const { rv, start } = listPosition(query, listIdentity);
    const requestedLimit = Math.max(Number.parseInt(query.get('limit') ?? '0', 10) || 0, 0);
    const limit = requestedLimit > 0 && opts.maxPageSize ? Math.min(requestedLimit, opts.maxPageSize) : requestedLimit;

    const page = readPage(store.list(resource, rv, namespace).filter((entry) => entry.key >= start), limit, selected);
    const metadata: KubeObject = { resourceVersion: String(rv) };
    if (page.nextStart !== undefined) {
      metadata.continue = encodeContinue(rv, page.nextStart);
      issuedTokens.set(metadata.continue, (issuedTokens.get(metadata.continue) ?? new Set<string>()).add(listIdentity));
      // only an estimate in the real server, and omitted when selectors filter (facts §4)
      if (!query.get('labelSelector') && !query.get('fieldSelector')) metadata.remainingItemCount = page.remaining;
    }
    if (representation.as === 'PartialObjectMetadataList') {
      // items carry their own type meta; an empty list is built by appending to a nil slice, so it encodes as null
      const items = page.entries.map((entry) => asPartialObjectMetadata(entry.object, representation.version));
      return {
        code: 200,
        body: { kind: 'PartialObjectMetadataList', apiVersion: `${META_GROUP}/${representation.version}`, metadata, items: items.length > 0 ? items : null },
      };
    }
    return {
      code: 200,
      body: { kind: `${info.kind}List`, apiVersion: apiVersionOf(info), metadata, items: page.entries.map((entry) => withoutTypeMeta(entry.object)) },
    };
  }

  function getAnswer(resource: ResourceName, namespace: string | undefined, name: string, representation: Representation): Answer {
    const key = RESOURCES[resource].namespaced ? `${namespace}/${name}` : name;
    const object = store.get(resource, key);
    if (!object) return objectNotFound(resource, name);
    return { code: 200, body: representation.as === 'PartialObjectMetadata' ? asPartialObjectMetadata(object, representation.version) : object };
  }

  async function answer(req: http.IncomingMessage, url: URL): Promise<Answer> {
    if (opts.token !== undefined && req.headers.authorization !== `Bearer ${opts.token}`) return unauthorized();
    const route = parseResourcePath(url.pathname);
    if (!route) {
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
    const result = route.type === 'list'
      ? listAnswer(route.resource, route.namespace, url.searchParams, representation)
      : getAnswer(route.resource, route.namespace, route.name, representation);
    if (result.code !== 200) return result;
    return partialMismatch(route.resource, representation, route.type === 'list') ?? result;
  }

  const handleRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const record: RecordedRequest = {
      method: req.method ?? 'GET', path: url.pathname, query: Object.fromEntries(url.searchParams), headers: req.headers, status: 0,
    };
    requests.push(record);
    answer(req, url)
      .catch((error: unknown) => (error instanceof StatusError ? error.answer : statusAnswer(500, 'InternalError', `Internal error occurred: ${String(error)}`)))
      .then((result) => {
        record.status = result.code;
        writeAnswer(res, result);
      });
  };
  const tls = opts.tls ? await selfSignedCertificate() : undefined;
  const server = tls ? https.createServer(tls, handleRequest) : http.createServer(handleRequest);

  setFaults(opts.faults ?? []);
  for (const [name, labels] of Object.entries(opts.namespaces ?? {})) store.put(namespaceObject(name, labels));
  addObjects(...(opts.objects ?? []));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    ...(tls && { caCert: tls.cert }),
    requests,
    addObjects,
    setFaults,
    async writeKubeconfig(dir, kubeconfigOpts = {}) {
      // token: undefined → the server's own token (if any); '' → no credentials at all
      const token = kubeconfigOpts.token ?? opts.token;
      const config = {
        apiVersion: 'v1', kind: 'Config', preferences: {},
        clusters: [{
          name: 'ephor-stand-in',
          // A plain http:// server with nothing else, as a kubectl user writes it. (@kubernetes/client-node 1.4.0
          // refuses that unless insecure-skip-tls-verify is set; the scanner must cope, so the option is opt-in.)
          cluster: tls
            ? { server: url, 'certificate-authority-data': Buffer.from(tls.cert).toString('base64') }
            : { server: url, ...(kubeconfigOpts.insecureSkipTlsVerify && { 'insecure-skip-tls-verify': true }) },
        }],
        users: [{ name: 'ephor-scanner', user: token ? { token } : {} }],
        contexts: [{
          name: 'ephor-stand-in',
          context: { cluster: 'ephor-stand-in', user: 'ephor-scanner', ...(kubeconfigOpts.namespace && { namespace: kubeconfigOpts.namespace }) },
        }],
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
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections(); // includes stalled requests and idle keep-alive sockets
      await stopped;
    },
  };
}

function withoutTypeMeta(object: KubeObject): KubeObject {
  const { kind: _kind, apiVersion: _apiVersion, ...rest } = object;
  return rest;
}

function writeAnswer(res: http.ServerResponse, { code, body, headers, text, indented }: Answer): void {
  if (res.destroyed) return;
  // Content-Type stays plain application/json for metadata-only answers too: transformResponseObject passes
  // listGVKInContentType=false to WriteObjectNegotiated (only aggregated discovery names the GVK there).
  const payload = text ? String(body) : JSON.stringify(body, null, indented ? 2 : undefined);
  res.writeHead(code, {
    'Audit-Id': randomUUID(),
    'Cache-Control': 'no-cache, private',
    'Content-Type': text ? 'text/plain; charset=utf-8' : 'application/json',
    'Content-Length': Buffer.byteLength(payload),
    ...headers,
  });
  res.end(payload);
}
