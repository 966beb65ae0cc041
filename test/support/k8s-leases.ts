// coordination.k8s.io/v1 Leases for the stand-in kube-apiserver (k8s-server.ts hooks this in with a few lines).
// Modelled on the real server, read in its source:
// - Lease types: kubernetes/api coordination/v1/types.go @ 10b39a39 (every spec field optional; acquireTime and
//   renewTime are MicroTime, written by apimachinery meta/v1/micro_time.go as RFC3339Micro
//   "2006-01-02T15:04:05.000000Z07:00" in UTC and parsed with that layout, so exactly six fraction digits are required).
// - Strategy: kubernetes/kubernetes pkg/registry/coordination/lease/strategy.go: nothing is defaulted or cleared,
//   AllowCreateOnUpdate (a PUT to a missing Lease creates it), no unconditional update (a PUT needs resourceVersion);
//   validation (pkg/apis/coordination/validation): leaseDurationSeconds > 0, leaseTransitions >= 0.
// - Store (kubernetes/apiserver pkg/registry/generic/registry/store.go Update, rest/create.go, rest/update.go):
//   uid and creationTimestamp set on create; generation is whatever the creator sent (the Lease strategy sets none)
//   and an update cannot change it; a PUT whose resourceVersion is not the stored one is the 409 Conflict below;
//   a uid in the PUT body is a precondition (storage Preconditions.Check); an update that changes nothing is not
//   written and keeps its resourceVersion (etcd3 GuaranteedUpdate).
// - Status texts: kubernetes/apimachinery pkg/api/errors/errors.go @ eed236ce (NewConflict "Operation cannot be
//   fulfilled on %s %q: %v", NewAlreadyExists "%s %q already exists", NewNotFound "%s %q not found", NewInvalid) with
//   apiserver's OptimisticLockErrorMsg; a create in a missing namespace is the NamespaceLifecycle admission's 404
//   `namespaces "x" not found`; decoding errors are handlers/rest.go transformDecodeError.
// Not modelled: managedFields (kubectl hides them by default), PATCH, DELETE, watch, cluster-wide lists,
// label/field selectors and paging of the Lease list, protobuf request bodies (kubectl and the scanner send JSON).
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import type { KubeObject } from './k8s-objects.js';

export const LEASE_GROUP = 'coordination.k8s.io';
const LEASE_API_VERSION = `${LEASE_GROUP}/v1`;
const QUALIFIED = `leases.${LEASE_GROUP}`;
const OPTIMISTIC_LOCK_ERROR_MSG =
  'the object has been modified; please apply your changes to the latest version and try again';
const RFC3339_MICRO = '2006-01-02T15:04:05.000000Z07:00';

/** kubernetes/kubernetes api/discovery/apis__coordination.k8s.io__v1.json @ e0a566e71f693433f4bed729380e215e98a263ea. */
export const LEASE_RESOURCE_LIST = {
  apiVersion: 'v1',
  groupVersion: LEASE_API_VERSION,
  kind: 'APIResourceList',
  resources: [
    {
      kind: 'Lease',
      name: 'leases',
      namespaced: true,
      singularName: 'lease',
      storageVersionHash: 'gqkMMb/YqFM=',
      verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
    },
  ],
};

/**
 * OpenAPI v3, reduced to what kubectl 1.32 reads before `create` / `replace` with its default --validate=strict:
 * cli-runtime's QueryParamVerifierV3 fetches `/openapi/v3`, then the group-version's document, and looks for a PATCH
 * operation with this GVK that takes the `fieldValidation` query parameter; if found, kubectl sends
 * `fieldValidation=Strict` and lets the server validate (without it kubectl wants the full /openapi/v2 schema).
 * Shapes from kubernetes/kubernetes api/openapi-spec/v3/apis__coordination.k8s.io__v1_openapi.json (the real
 * document, 122 KB, also describes every schema and operation).
 */
export const LEASE_OPENAPI: Record<string, unknown> = {
  '/openapi/v3': {
    paths: { 'apis/coordination.k8s.io/v1': { serverRelativeURL: '/openapi/v3/apis/coordination.k8s.io/v1?hash=1' } },
  },
  '/openapi/v3/apis/coordination.k8s.io/v1': {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: 'v1.32.3' },
    paths: {
      '/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}': {
        patch: {
          description: 'partially update the specified Lease',
          operationId: 'patchCoordinationV1NamespacedLease',
          parameters: [
            {
              description:
                'fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields.',
              in: 'query',
              name: 'fieldValidation',
              schema: { type: 'string', uniqueItems: true },
            },
          ],
          'x-kubernetes-action': 'patch',
          'x-kubernetes-group-version-kind': { group: LEASE_GROUP, kind: 'Lease', version: 'v1' },
        },
      },
    },
    components: {},
  },
};

export type LeaseVerb = 'get' | 'list' | 'create' | 'update';

export interface LeaseFault {
  /**
   * 403: RBAC denies the verb (also answers access reviews for it with `allowed: false`). 404: the Lease API itself
   * is missing (the resource type, not the object: the body of an unknown path). 500, 503: server errors.
   * Absent: only `stallMs`, then the normal answer.
   */
  status?: 403 | 404 | 500 | 503;
  /** Wait this long before answering; over 2^31-1 ms (e.g. Infinity) the request never answers (a hang). */
  stallMs?: number;
  /** Default: every verb. */
  verbs?: LeaseVerb[];
  namespace?: string;
  name?: string;
  /** How many requests it hits; default unlimited. */
  times?: number;
}

export interface LeaseRequest {
  verb: LeaseVerb;
  namespace: string;
  name?: string;
  /** The parsed JSON body of a create or update. */
  body?: KubeObject;
  /** 0 while the answer is pending. */
  status: number;
  /** Date.now() on arrival and when answered. */
  receivedAt: number;
  answeredAt?: number;
}

/** What tests use to play another holder, an outage or RBAC: direct access to the stored Leases. */
export interface LeaseControl {
  /** Creates or overwrites a Lease as another client's write would (new resourceVersion; uid kept). Returns it. */
  put(lease: KubeObject): KubeObject;
  get(namespace: string, name: string): KubeObject | undefined;
  delete(namespace: string, name: string): boolean;
  /** Replaces the faults; they apply from this moment on. */
  setFaults(faults: LeaseFault[]): void;
  /** Every Lease request, in arrival order. */
  readonly requests: LeaseRequest[];
}

export interface LeaseAnswer {
  code: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** What the server lends the Lease module: its revision counter, namespaces, user and Status bodies. */
export interface LeaseHost {
  /** The store's latest resourceVersion, and the next one for a write (one counter for every resource, as etcd's). */
  revision(): number;
  nextRevision(): number;
  namespaceExists(namespace: string): boolean;
  stall(ms: number): Promise<void>;
  /** RBAC's reason for an allowed access review. */
  allowedReason: string;
  status(code: number, reason: string, message: string, details?: KubeObject): LeaseAnswer;
  forbidden(verb: LeaseVerb, namespace: string, name?: string): LeaseAnswer;
  pathNotFound(): LeaseAnswer;
  internalError(): LeaseAnswer;
  serviceUnavailable(): LeaseAnswer;
  methodNotAllowed(): LeaseAnswer;
}

export interface LeaseApi {
  control: LeaseControl;
  /** The answer to a Lease request, or undefined when the path is not a Lease path. */
  answer(req: http.IncomingMessage, url: URL): Promise<LeaseAnswer> | undefined;
  /** An access review about leases (undefined for any other resource). */
  review(attributes: {
    verb?: string;
    group?: string;
    resource?: string;
    namespace?: string;
    name?: string;
  }): { allowed: boolean; reason?: string } | undefined;
}

// ---------------------------------------------------------------- MicroTime

const MICRO_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{6})(Z|[+-]\d{2}:\d{2})$/;
const UP_TO_SECONDS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/;

/** A MicroTime as the server stores it (UTC, six digits), or Go's time.Parse error for the RFC3339Micro layout. */
export function canonicalMicroTime(value: string): { time: string } | { error: string } {
  const match = MICRO_TIME.exec(value);
  const fail = (rest: string, layout: string) => ({
    error: `parsing time ${JSON.stringify(value)} as ${JSON.stringify(RFC3339_MICRO)}: cannot parse ${JSON.stringify(rest)} as ${JSON.stringify(layout)}`,
  });
  if (!match) {
    const head = UP_TO_SECONDS.exec(value)?.[0];
    if (!head) return fail(value, '2006');
    const rest = value.slice(head.length);
    return /^\.\d{6}/.test(rest) ? fail(rest.slice(7), 'Z07:00') : fail(rest, '.000000');
  }
  const [, year, month, day, hour, minute, second, micros = '', zone = 'Z'] = match;
  const offsetMinutes = zone === 'Z' ? 0 : (zone.startsWith('-') ? -1 : 1) * (+zone.slice(1, 3) * 60 + +zone.slice(4));
  const utcMs = Date.UTC(+year!, +month! - 1, +day!, +hour!, +minute!, +second!) - offsetMinutes * 60_000;
  if (Number.isNaN(utcMs) || +month! > 12 || +day! > 31 || +hour! > 23 || +minute! > 59 || +second! > 59)
    return { error: `parsing time ${JSON.stringify(value)}: month, day or time out of range` };
  return { time: `${new Date(utcMs).toISOString().slice(0, 19)}.${micros}Z` };
}

// ---------------------------------------------------------------- decoding a request body

const SPEC_FIELDS: Record<string, 'string' | 'int32' | 'MicroTime'> = {
  holderIdentity: 'string',
  leaseDurationSeconds: 'int32',
  acquireTime: 'MicroTime',
  renewTime: 'MicroTime',
  leaseTransitions: 'int32',
  strategy: 'string',
  preferredHolder: 'string',
};
const META_FIELDS = new Set([
  'name',
  'generateName',
  'namespace',
  'selfLink',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'labels',
  'annotations',
  'ownerReferences',
  'finalizers',
  'managedFields',
]);

interface Decoded {
  lease: KubeObject;
  /** The body as sent (for the request record). */
  sent: KubeObject;
  unknownFields: string[];
}

function jsonTypeOf(value: unknown): string {
  if (typeof value === 'number') return 'number';
  if (typeof value === 'boolean') return 'bool';
  if (Array.isArray(value)) return 'array';
  return typeof value === 'object' ? 'object' : typeof value;
}

/** The spec as Go would decode it: typed fields checked, MicroTimes canonicalised, unknown fields reported. */
function decodeSpec(spec: unknown, unknownFields: string[]): KubeObject | string {
  if (spec === undefined || spec === null) return {};
  if (typeof spec !== 'object' || Array.isArray(spec))
    return `json: cannot unmarshal ${jsonTypeOf(spec)} into Go struct field Lease.spec of type v1.LeaseSpec`;
  const decoded: KubeObject = {};
  for (const [field, value] of Object.entries(spec as KubeObject)) {
    const type = SPEC_FIELDS[field];
    if (!type) {
      unknownFields.push(`spec.${field}`);
      continue;
    }
    if (value === null) continue;
    const goType = type === 'MicroTime' ? 'string' : type;
    const wrongType = () =>
      `json: cannot unmarshal ${jsonTypeOf(value)} into Go struct field LeaseSpec.spec.${field} of type ${goType}`;
    if (type === 'int32') {
      if (typeof value !== 'number') return wrongType();
      if (!Number.isInteger(value) || value < -(2 ** 31) || value >= 2 ** 31)
        return `json: cannot unmarshal number ${value} into Go struct field LeaseSpec.spec.${field} of type int32`;
      decoded[field] = value;
    } else if (typeof value !== 'string') return wrongType();
    else if (type === 'MicroTime') {
      const parsed = canonicalMicroTime(value);
      if ('error' in parsed) return parsed.error;
      decoded[field] = parsed.time;
    } else decoded[field] = value;
  }
  // Go writes the struct's fields in their declared order
  return Object.fromEntries(Object.keys(SPEC_FIELDS).flatMap((key) => (key in decoded ? [[key, decoded[key]]] : [])));
}

function decodeLease(host: LeaseHost, req: http.IncomingMessage, bytes: Buffer): Decoded | { error: LeaseAnswer } {
  const mediaType = (req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase();
  if (mediaType !== 'application/json')
    return {
      error: host.status(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf`,
      ),
    };
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    return { error: host.status(400, 'BadRequest', `couldn't get version/kind; json parse error: ${String(error)}`) };
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    return { error: host.status(400, 'BadRequest', "couldn't get version/kind; json parse error: expected an object") };
  const object = body as KubeObject;
  const cannotHandle = (why: string) =>
    host.status(400, 'BadRequest', `Lease in version "v1" cannot be handled as a Lease: ${why}`);
  if (object.kind !== undefined && object.kind !== 'Lease')
    return { error: cannotHandle(`the kind ${JSON.stringify(object.kind)} is not a Lease`) };
  if (object.apiVersion !== undefined && object.apiVersion !== LEASE_API_VERSION)
    return {
      error: host.status(
        400,
        'BadRequest',
        `the API version in the data (${String(object.apiVersion)}) does not match the expected API version (${LEASE_API_VERSION})`,
      ),
    };
  const unknownFields = Object.keys(object).filter((key) => !['kind', 'apiVersion', 'metadata', 'spec'].includes(key));
  const metadata = (object.metadata ?? {}) as KubeObject;
  unknownFields.push(
    ...Object.keys(metadata)
      .filter((key) => !META_FIELDS.has(key))
      .map((key) => `metadata.${key}`),
  );
  const spec = decodeSpec(object.spec, unknownFields);
  if (typeof spec === 'string') return { error: cannotHandle(spec) };
  const known = Object.fromEntries(Object.entries(metadata).filter(([key]) => META_FIELDS.has(key)));
  return { lease: { metadata: known, spec }, sent: object, unknownFields };
}

// ---------------------------------------------------------------- the API

interface Route {
  namespace: string;
  name?: string;
}

const LEASE_PATH = /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/([^/]+)\/leases(?:\/([^/]+))?\/?$/;

function leaseRoute(pathname: string): Route | undefined {
  const match = LEASE_PATH.exec(pathname);
  if (!match) return undefined;
  return { namespace: decodeURIComponent(match[1]!), ...(match[2] && { name: decodeURIComponent(match[2]) }) };
}

function verbOf(method: string | undefined, route: Route): LeaseVerb | undefined {
  if (method === 'GET') return route.name === undefined ? 'list' : 'get';
  if (method === 'POST' && route.name === undefined) return 'create';
  if (method === 'PUT' && route.name !== undefined) return 'update';
  return undefined;
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function details(name: string | undefined): KubeObject {
  return { ...(name !== undefined && { name }), group: LEASE_GROUP, kind: 'leases' };
}

/** apimachinery NewInvalid for the Lease kind (or `leases`, as Store.Update words the resourceVersion check). */
function invalid(host: LeaseHost, kind: string, name: string, field: string, value: unknown, why: string) {
  const cause = `Invalid value: ${JSON.stringify(value)}: ${why}`;
  return host.status(422, 'Invalid', `${kind}.${LEASE_GROUP} "${name}" is invalid: ${field}: ${cause}`, {
    name,
    group: LEASE_GROUP,
    kind,
    causes: [{ reason: 'FieldValueInvalid', message: cause, field }],
  });
}

function validateSpec(host: LeaseHost, name: string, spec: KubeObject): LeaseAnswer | undefined {
  if (typeof spec.leaseDurationSeconds === 'number' && spec.leaseDurationSeconds <= 0)
    return invalid(
      host,
      'Lease',
      name,
      'spec.leaseDurationSeconds',
      spec.leaseDurationSeconds,
      'must be greater than 0',
    );
  if (typeof spec.leaseTransitions === 'number' && spec.leaseTransitions < 0)
    return invalid(
      host,
      'Lease',
      name,
      'spec.leaseTransitions',
      spec.leaseTransitions,
      'must be greater than or equal to 0',
    );
  return undefined;
}

/** Go's `omitempty`: absent, null, "", 0 and empty maps or lists are not written. */
function isEmpty(value: unknown): boolean {
  if (value === undefined || value === null || value === '' || value === 0) return true;
  return typeof value === 'object' && Object.keys(value).length === 0;
}

/** Type meta first and ObjectMeta in Go's field order, as the server serialises a Lease (selfLink is never set). */
function stored(metadata: KubeObject, spec: KubeObject): KubeObject {
  const order = [...META_FIELDS].filter((key) => key !== 'selfLink');
  const meta = Object.fromEntries(order.filter((key) => !isEmpty(metadata[key])).map((key) => [key, metadata[key]]));
  return { kind: 'Lease', apiVersion: LEASE_API_VERSION, metadata: meta, spec };
}

function nowTimestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function createLeaseApi(host: LeaseHost): LeaseApi {
  const leases = new Map<string, KubeObject>();
  const requests: LeaseRequest[] = [];
  let faults: { fault: LeaseFault; remaining: number }[] = [];
  const key = (namespace: string, name: string) => `${namespace}/${name}`;

  function takeFault(verb: LeaseVerb, route: Route): LeaseFault | undefined {
    const entry = faults.find(
      ({ fault, remaining }) =>
        remaining > 0 &&
        (fault.verbs === undefined || fault.verbs.includes(verb)) &&
        (fault.namespace === undefined || fault.namespace === route.namespace) &&
        (fault.name === undefined || fault.name === route.name),
    );
    if (entry) entry.remaining--;
    return entry?.fault;
  }

  function faultAnswer(fault: LeaseFault, verb: LeaseVerb, route: Route): LeaseAnswer | undefined {
    switch (fault.status) {
      case 403:
        return host.forbidden(verb, route.namespace, verb === 'get' || verb === 'update' ? route.name : undefined);
      case 404:
        return host.pathNotFound();
      case 500:
        return host.internalError();
      case 503:
        return host.serviceUnavailable();
      case undefined:
        return undefined;
    }
  }

  function write(namespace: string, metadata: KubeObject, spec: KubeObject): KubeObject {
    const object = stored({ ...metadata, namespace, resourceVersion: String(host.nextRevision()) }, spec);
    leases.set(key(namespace, object.metadata.name as string), object);
    return structuredClone(object);
  }

  /** Create, or create-on-update: system fields set afresh (rest.FillObjectMetaSystemFields), namespace admitted. */
  function create(route: Route, lease: KubeObject, viaUpdate: boolean): LeaseAnswer {
    const name = (lease.metadata.name ?? '') as string;
    if (!name) {
      const cause = 'Required value: name or generateName is required';
      return host.status(422, 'Invalid', `Lease.${LEASE_GROUP} "" is invalid: metadata.name: ${cause}`, {
        group: LEASE_GROUP,
        kind: 'Lease',
        causes: [{ reason: 'FieldValueRequired', message: cause, field: 'metadata.name' }],
      });
    }
    if (!host.namespaceExists(route.namespace))
      return host.status(404, 'NotFound', `namespaces "${route.namespace}" not found`, {
        name: route.namespace,
        kind: 'namespaces',
      });
    const rejected = validateSpec(host, name, lease.spec as KubeObject);
    if (rejected) return rejected;
    if (!viaUpdate && lease.metadata.resourceVersion)
      return { code: 500, body: failure(500, 'resourceVersion should not be set on objects to be created') };
    if (!viaUpdate && leases.has(key(route.namespace, name)))
      return host.status(409, 'AlreadyExists', `${QUALIFIED} "${name}" already exists`, details(name));
    const { resourceVersion: _rv, uid: _uid, creationTimestamp: _created, ...rest } = lease.metadata as KubeObject;
    const metadata = { ...rest, uid: randomUUID(), creationTimestamp: nowTimestamp() };
    return { code: 201, body: write(route.namespace, metadata, lease.spec as KubeObject) };
  }

  function update(route: Route, lease: KubeObject): LeaseAnswer {
    const name = route.name!;
    const existing = leases.get(key(route.namespace, name));
    const uid = lease.metadata.uid as string | undefined;
    if (uid && uid !== (existing?.metadata.uid ?? '')) {
      const storageKey = `/registry/leases/${route.namespace}/${name}`;
      const why = `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${existing?.metadata.uid ?? ''}`;
      return host.status(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${QUALIFIED} "${name}": StorageError: invalid object, Code: 4, Key: ${storageKey}, ResourceVersion: 0, AdditionalErrorMsg: ${why}`,
        details(name),
      );
    }
    if (!existing) return create(route, lease, true);
    const resourceVersion = lease.metadata.resourceVersion as string | undefined;
    if (!resourceVersion)
      return invalid(host, 'leases', name, 'metadata.resourceVersion', 0, 'must be specified for an update');
    if (resourceVersion !== existing.metadata.resourceVersion)
      return host.status(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${QUALIFIED} "${name}": ${OPTIMISTIC_LOCK_ERROR_MSG}`,
        details(name),
      );
    const rejected = validateSpec(host, name, lease.spec as KubeObject);
    if (rejected) return rejected;
    // rest.BeforeUpdate: generation, uid and creationTimestamp stay the stored ones
    const { uid: oldUid, creationTimestamp, generation } = existing.metadata as KubeObject;
    const metadata = { ...(lease.metadata as KubeObject), uid: oldUid, creationTimestamp, generation };
    const candidate = stored({ ...metadata, namespace: route.namespace }, lease.spec as KubeObject);
    const { resourceVersion: _new, ...candidateMeta } = candidate.metadata as KubeObject;
    const { resourceVersion: _old, ...existingMeta } = existing.metadata as KubeObject;
    if (
      JSON.stringify({ ...candidate, metadata: candidateMeta }) ===
      JSON.stringify({ ...existing, metadata: existingMeta })
    )
      return { code: 200, body: structuredClone(existing) };
    return { code: 200, body: write(route.namespace, metadata, lease.spec as KubeObject) };
  }

  function failure(code: number, message: string): KubeObject {
    // a plain error reaching responsewriters.ErrorToAPIStatus: reason Unknown ("", omitted)
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, code };
  }

  function list(route: Route): LeaseAnswer {
    const items = [...leases.values()]
      .filter((lease) => lease.metadata.namespace === route.namespace)
      .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1))
      .map(({ kind: _kind, apiVersion: _apiVersion, ...item }) => structuredClone(item));
    const resourceVersion = String(host.revision());
    return {
      code: 200,
      body: { kind: 'LeaseList', apiVersion: LEASE_API_VERSION, metadata: { resourceVersion }, items },
    };
  }

  async function decodeAndWrite(
    req: http.IncomingMessage,
    url: URL,
    verb: 'create' | 'update',
    route: Route,
    record: LeaseRequest,
  ): Promise<LeaseAnswer> {
    const decoded = decodeLease(host, req, await readBody(req));
    if ('error' in decoded) return decoded.error;
    record.body = decoded.sent;
    const { metadata } = decoded.lease as { metadata: KubeObject };
    if (metadata.namespace !== undefined && metadata.namespace !== '' && metadata.namespace !== route.namespace)
      return host.status(
        400,
        'BadRequest',
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    if (verb === 'update' && metadata.name !== route.name)
      return host.status(
        400,
        'BadRequest',
        `the name of the object (${String(metadata.name ?? '')}) does not match the name on the URL (${route.name})`,
      );
    const validation = url.searchParams.get('fieldValidation') || 'Warn';
    const unknown = decoded.unknownFields.map((field) => `unknown field ${JSON.stringify(field)}`);
    if (validation === 'Strict' && unknown.length > 0)
      return host.status(
        400,
        'BadRequest',
        `Lease in version "v1" cannot be handled as a Lease: strict decoding error: ${unknown.join(', ')}`,
      );
    const answer = verb === 'create' ? create(route, decoded.lease, false) : update(route, decoded.lease);
    if (validation !== 'Warn' || unknown.length === 0 || answer.code >= 300) return answer;
    // addStrictDecodingWarnings: one `299 - "<text>"` warning per unknown field
    return { ...answer, headers: { Warning: unknown.map((text) => `299 - ${JSON.stringify(text)}`).join(', ') } };
  }

  async function answer(req: http.IncomingMessage, url: URL, route: Route): Promise<LeaseAnswer> {
    const verb = verbOf(req.method, route);
    if (!verb) return host.methodNotAllowed();
    const record: LeaseRequest = {
      verb,
      namespace: route.namespace,
      ...(route.name !== undefined && { name: route.name }),
      status: 0,
      receivedAt: Date.now(),
    };
    requests.push(record);
    const fault = takeFault(verb, route);
    if (fault?.stallMs !== undefined) await host.stall(fault.stallMs);
    let result = fault && faultAnswer(fault, verb, route);
    if (!result) {
      if (verb === 'get') {
        const lease = leases.get(key(route.namespace, route.name!));
        result = lease
          ? { code: 200, body: structuredClone(lease) }
          : host.status(404, 'NotFound', `${QUALIFIED} "${route.name}" not found`, details(route.name));
      } else if (verb === 'list') result = list(route);
      else result = await decodeAndWrite(req, url, verb, route, record);
    }
    record.status = result.code;
    record.answeredAt = Date.now();
    return result;
  }

  const control: LeaseControl = {
    requests,
    put(lease) {
      const namespace = lease.metadata?.namespace as string | undefined;
      const name = lease.metadata?.name as string | undefined;
      if (!namespace || !name) throw new Error('stand-in Lease: metadata.namespace and metadata.name are required');
      const existing = leases.get(key(namespace, name));
      const spec = decodeSpec(lease.spec, []);
      if (typeof spec === 'string') throw new Error(`stand-in Lease: ${spec}`);
      const metadata = {
        uid: randomUUID(),
        creationTimestamp: nowTimestamp(),
        ...(lease.metadata as KubeObject),
        ...(existing && { uid: existing.metadata.uid, creationTimestamp: existing.metadata.creationTimestamp }),
      };
      return write(namespace, metadata, spec);
    },
    get(namespace, name) {
      const lease = leases.get(key(namespace, name));
      return lease && structuredClone(lease);
    },
    delete(namespace, name) {
      return leases.delete(key(namespace, name));
    },
    setFaults(next) {
      faults = next.map((fault) => ({ fault, remaining: fault.times ?? Infinity }));
    },
  };

  return {
    control,
    answer(req, url) {
      const route = leaseRoute(url.pathname);
      return route && answer(req, url, route);
    },
    review(attributes) {
      if (attributes.resource !== 'leases' || (attributes.group ?? '') !== LEASE_GROUP) return undefined;
      const verb = attributes.verb as LeaseVerb;
      const denied = faults.some(
        ({ fault, remaining }) =>
          remaining > 0 &&
          fault.status === 403 &&
          (fault.verbs === undefined || fault.verbs.includes(verb)) &&
          (fault.namespace === undefined || !attributes.namespace || fault.namespace === attributes.namespace) &&
          (fault.name === undefined || !attributes.name || fault.name === attributes.name),
      );
      return denied ? { allowed: false } : { allowed: true, reason: host.allowedReason };
    },
  };
}
