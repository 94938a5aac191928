import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';

import { PosternError, type FieldError } from '../shared/errors.ts';

// Requests are checked against the JSON Schema (2020-12) objects the operations declare, the
// same objects the OpenAPI 3.1 document embeds (openapi.ts): what is documented is what is
// enforced. Every failure names its field, in the RFC 9457 `errors` extension.

export type JsonSchema = Readonly<Record<string, unknown>>;

export interface SchemaValidator {
  /** The value, checked (query values converted to the declared types); ERR_INVALID_INPUT naming each field. */
  check<T>(schema: JsonSchema, value: unknown, where: 'body' | 'query'): T;
}

const FORMATS = {
  'date-time': (s: string) => !Number.isNaN(Date.parse(s)) && /^\d{4}-\d\d-\d\dT/.test(s),
  uri: (s: string) => URL.parse(s) !== null,
  email: (s: string) => /^[^\s@]+@[^\s@]+$/.test(s),
};

/** '/profile/name' → 'profile.name', '/roles/0' → 'roles[0]'. */
function fieldName(pointer: string, child?: string): string {
  const parts = [...pointer.split('/').slice(1), ...(child === undefined ? [] : [child])];
  return parts
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce((name, p) => (/^\d+$/.test(p) ? `${name}[${p}]` : name ? `${name}.${p}` : p), '');
}

function toFieldError(e: ErrorObject, where: string): FieldError {
  const params = e.params as { missingProperty?: string; additionalProperty?: string };
  const child = params.missingProperty ?? params.additionalProperty;
  const field = fieldName(e.instancePath, child) || where;
  if (params.missingProperty) return { field, detail: 'is required' };
  if (params.additionalProperty) return { field, detail: 'is not a known field' };
  return { field, detail: e.message ?? 'is not valid' };
}

export function createSchemaValidator(): SchemaValidator {
  const options = { allErrors: true, strict: true, formats: FORMATS, useDefaults: true } as const;
  const body = new Ajv2020({ ...options, coerceTypes: false });
  // Query values arrive as text: "100" is the number a schema asks for.
  const query = new Ajv2020({ ...options, coerceTypes: true });
  const compiled = new WeakMap<JsonSchema, ValidateFunction>();
  return {
    check<T>(schema: JsonSchema, value: unknown, where: 'body' | 'query'): T {
      let validate = compiled.get(schema);
      if (!validate) {
        validate = (where === 'query' ? query : body).compile(schema);
        compiled.set(schema, validate);
      }
      if (validate(value)) return value as T;
      const fields = (validate.errors ?? []).map((e) => toFieldError(e, where));
      const unique = [...new Map(fields.map((f) => [`${f.field}:${f.detail}`, f])).values()];
      throw new PosternError(
        'ERR_INVALID_INPUT',
        `invalid ${where}: ${unique.map((f) => `${f.field} ${f.detail}`).join('; ')}`,
        { fields: unique },
      );
    },
  };
}
