// Keeps src/ephor/contract.ts in step with the JSON Schemas in contract/: each field list exported beside a type
// must name exactly the schema object's required and optional properties (the compiler checks each list against its
// type), every object and every enumeration of the schemas must be covered, and the enumerations must agree.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  CONTAINER_FIELDS,
  SBOM_FORMATS,
  SBOM_INGEST_REQUEST_FIELDS,
  SBOM_INGEST_RESPONSE_FIELDS,
  SBOM_INGEST_STATUSES,
  SCAN_INGEST_REQUEST_FIELDS,
  SCAN_INGEST_RESPONSE_FIELDS,
  SCAN_STATUSES,
  SEVERITIES,
  VULNERABILITY_FIELDS,
  WORKLOAD_FIELDS,
  WORKLOAD_KINDS,
  type SchemaFields,
} from '../../src/ephor/contract.js';
import { schemaDocument, type SchemaName } from '../support/contract.js';

interface SchemaNode {
  type?: string | string[];
  required?: string[];
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  additionalProperties?: SchemaNode | boolean;
  $defs?: Record<string, SchemaNode>;
  enum?: unknown[];
}

const SCHEMAS: SchemaName[] = ['ingest-request', 'ingest-response', 'sbom-request', 'sbom-response'];

/** Schema object (schema name + JSON pointer) → the type's field list. */
const OBJECTS: Array<{ type: string; schema: SchemaName; pointer: string; fields: SchemaFields }> = [
  { type: 'ScanIngestRequest', schema: 'ingest-request', pointer: '', fields: SCAN_INGEST_REQUEST_FIELDS },
  { type: 'WorkloadPayload', schema: 'ingest-request', pointer: '/$defs/workload', fields: WORKLOAD_FIELDS },
  { type: 'ContainerPayload', schema: 'ingest-request', pointer: '/$defs/container', fields: CONTAINER_FIELDS },
  { type: 'Vulnerability', schema: 'ingest-request', pointer: '/$defs/vulnerability', fields: VULNERABILITY_FIELDS },
  { type: 'ScanIngestResponse', schema: 'ingest-response', pointer: '', fields: SCAN_INGEST_RESPONSE_FIELDS },
  { type: 'SbomIngestRequest', schema: 'sbom-request', pointer: '', fields: SBOM_INGEST_REQUEST_FIELDS },
  { type: 'SbomIngestResponse', schema: 'sbom-response', pointer: '', fields: SBOM_INGEST_RESPONSE_FIELDS },
];

/** Schema enumeration → the runtime list of the values this scanner uses, and how the two must relate. */
const ENUMS: Array<{ name: string; schema: SchemaName; pointer: string; values: readonly string[]; subset?: true }> = [
  {
    name: 'SEVERITIES',
    schema: 'ingest-request',
    pointer: '/$defs/vulnerability/properties/severity',
    values: SEVERITIES,
  },
  {
    name: 'WORKLOAD_KINDS',
    schema: 'ingest-request',
    pointer: '/$defs/workload/properties/kind',
    values: WORKLOAD_KINDS,
  },
  // `running` is left out on purpose: a scan row can never be updated (contract §7.14).
  {
    name: 'SCAN_STATUSES',
    schema: 'ingest-request',
    pointer: '/properties/status',
    values: SCAN_STATUSES,
    subset: true,
  },
  { name: 'SBOM_FORMATS', schema: 'sbom-request', pointer: '/properties/format', values: SBOM_FORMATS },
  {
    name: 'SBOM_INGEST_STATUSES',
    schema: 'sbom-response',
    pointer: '/properties/status',
    values: SBOM_INGEST_STATUSES,
  },
];

function nodeAt(schema: SchemaName, pointer: string): SchemaNode {
  let node = schemaDocument(schema) as unknown as SchemaNode;
  for (const step of pointer.split('/').slice(1)) {
    node = (node as Record<string, SchemaNode>)[step]!;
    assert.ok(node, `${schema} has no ${pointer}`);
  }
  return node;
}

/**
 * JSON pointers of the nodes that satisfy `wanted`, through properties, items, maps and $defs. The allOf branches are
 * not walked: they only add conditions to properties declared above (sbom's bomFormat or spdxVersion key).
 */
function pointersWhere(node: SchemaNode, wanted: (node: SchemaNode) => boolean, pointer = ''): string[] {
  const found = wanted(node) ? [pointer] : [];
  const children: Array<[string, SchemaNode]> = [
    ...Object.entries(node.properties ?? {}).map(([k, v]): [string, SchemaNode] => [`/properties/${k}`, v]),
    ...Object.entries(node.$defs ?? {}).map(([k, v]): [string, SchemaNode] => [`/$defs/${k}`, v]),
    ...(node.items ? [['/items', node.items] as [string, SchemaNode]] : []),
    ...(typeof node.additionalProperties === 'object'
      ? [['/additionalProperties', node.additionalProperties] as [string, SchemaNode]]
      : []),
  ];
  return [...found, ...children.flatMap(([step, child]) => pointersWhere(child, wanted, pointer + step))];
}

const sorted = (values: readonly string[]) => [...values].sort();

describe('contract.ts against the contract schemas', () => {
  for (const { type, schema, pointer, fields } of OBJECTS) {
    test(`${type}: its field list names exactly the properties of ${schema}#${pointer || '/'}`, () => {
      const node = nodeAt(schema, pointer);
      const properties = Object.keys(node.properties ?? {});
      const required = node.required ?? [];
      assert.deepEqual(sorted(fields.required), sorted(required), `${type}: required properties`);
      assert.deepEqual(
        sorted(fields.optional),
        sorted(properties.filter((p) => !required.includes(p))),
        `${type}: optional properties`,
      );
    });
  }

  for (const schema of SCHEMAS) {
    test(`every object with properties in ${schema} has a type in contract.ts`, () => {
      const objects = pointersWhere(nodeAt(schema, ''), (node) => node.properties !== undefined);
      const covered = OBJECTS.filter((o) => o.schema === schema).map((o) => o.pointer);
      assert.deepEqual(sorted(objects), sorted(covered));
    });

    test(`every enumeration in ${schema} has a list in contract.ts`, () => {
      const enums = pointersWhere(nodeAt(schema, ''), (node) => node.enum !== undefined);
      const covered = ENUMS.filter((e) => e.schema === schema).map((e) => e.pointer);
      assert.deepEqual(sorted(enums), sorted(covered));
    });
  }

  for (const { name, schema, pointer, values, subset } of ENUMS) {
    test(`${name} ${subset ? 'is part of' : 'equals'} the enumeration ${schema}#${pointer}`, () => {
      const allowed = nodeAt(schema, pointer).enum as string[];
      if (subset) {
        assert.deepEqual(
          values.filter((v) => !allowed.includes(v)),
          [],
        );
      } else assert.deepEqual(sorted(values), sorted(allowed));
    });
  }

  test('SCAN_STATUSES never includes running (a scan row is never updated, contract §7.14)', () => {
    assert.equal((SCAN_STATUSES as readonly string[]).includes('running'), false);
  });
});
