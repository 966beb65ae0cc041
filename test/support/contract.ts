// Ajv validators over the Ephor contract schemas in contract/ (loaded at run time, never copied into code).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { CONTRACT_DIR } from './paths.js';

export type SchemaName = 'ingest-request' | 'ingest-response' | 'sbom-request' | 'sbom-response';

const SCHEMA_FILES: Record<SchemaName, string> = {
  'ingest-request': 'ephor-ingest-request.schema.json',
  'ingest-response': 'ephor-ingest-response.schema.json',
  'sbom-request': 'ephor-sbom-ingest-request.schema.json',
  'sbom-response': 'ephor-sbom-ingest-response.schema.json',
};

const ajv = new Ajv2020({ strict: true, allErrors: true });
const documents = new Map<SchemaName, Record<string, unknown>>();
const validators = new Map<SchemaName, ValidateFunction>();

/** The parsed JSON Schema document (shared; do not mutate). */
export function schemaDocument(schema: SchemaName): Record<string, unknown> {
  let document = documents.get(schema);
  if (!document) {
    document = JSON.parse(readFileSync(path.join(CONTRACT_DIR, SCHEMA_FILES[schema]), 'utf8')) as Record<
      string,
      unknown
    >;
    documents.set(schema, document);
  }
  return document;
}

function validatorFor(schema: SchemaName): ValidateFunction {
  let validator = validators.get(schema);
  if (!validator) {
    validator = ajv.compile(schemaDocument(schema));
    validators.set(schema, validator);
  }
  return validator;
}

/** Raw Ajv errors (with keyword, schemaPath and params), [] when valid. */
export function schemaErrors(schema: SchemaName, body: unknown): ErrorObject[] {
  const validator = validatorFor(schema);
  return validator(body) ? [] : [...(validator.errors ?? [])];
}

function describeError(error: ErrorObject): string {
  const where = error.instancePath === '' ? '(root)' : error.instancePath;
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'enum') return `${where} ${error.message} (${(params.allowedValues as unknown[]).join(', ')})`;
  if (typeof params.propertyName === 'string')
    return `${where} property name '${params.propertyName}' ${error.message}`;
  return `${where} ${error.message}`;
}

/** [] when valid, else readable messages "<instancePath> <message>". */
export function validate(schema: SchemaName, body: unknown): string[] {
  return schemaErrors(schema, body).map(describeError);
}

export function assertValid(schema: SchemaName, body: unknown): void {
  const messages = validate(schema, body);
  if (messages.length > 0) {
    throw new Error(`body does not match the ${schema} schema:\n  ${messages.join('\n  ')}`);
  }
}
