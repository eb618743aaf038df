/**
 * A corpus of hostile and malformed input, and what the route table says about each route's
 * input: its body, query and path fields (read from the route's zod schemas), and a body its schema
 * accepts, so that one field at a time can be swapped for a hostile value while the rest of the
 * body still gets the request past validation and into the handler.
 *
 * Payloads come in classes; a test sends every class to every field, rotating through the payloads
 * of a class from field to field, so every payload is sent somewhere without sending every payload
 * everywhere.
 */
import { randomUUID } from 'node:crypto';
import { getOpenApiMetadata } from '@asteasolutions/zod-to-openapi';
import type { z } from 'zod';
import type { Route } from '../../src/api/http/route';

/** Text an attacker would like to see interpreted; each is valid text and may be stored as such. */
export const TEXT_PAYLOADS = {
  sql: [
    "' OR '1'='1",
    "'; DROP TABLE customers; --",
    "1' UNION SELECT id, secret_hash FROM api_tokens --",
    "x'); delete from tenants where ('1'='1",
    "\\'; select pg_sleep(5); --",
    '" OR ""="',
    '1 OR 1=1',
    "admin'--",
  ],
  xss: [
    '<script>alert(1)</script>',
    '"><img src=x onerror=alert(1)>',
    'javascript:alert(document.cookie)',
    "'><svg/onload=alert(1)>",
    '<iframe src="javascript:alert(1)"></iframe>',
    '{{constructor.constructor("alert(1)")()}}',
    '${7*7}<b>bold</b>',
  ],
  unicode: [
    'abc\u202Eexe.txt', // RTL override
    'a\u200Db\u200Cc\u200Bd\uFEFF', // zero-width joiner, non-joiner, space, BOM
    'Ze\u0301\u0301\u0301\u0301lgo\u0336\u0336', // combining marks
    '🚀👩‍👩‍👧‍👦🏳️‍🌈𝕳𝖊𝖑𝖑𝖔', // 4-byte and ZWJ emoji
    'caf\u00e9', // NFC
    'cafe\u0301', // NFD of the same
    '\uFF41\uFF44\uFF4D\uFF49\uFF4E', // fullwidth "admin"
    '\u0130\u0131\u017F\u212A', // case-folding oddities: Turkish dotted and dotless i, long s, Kelvin sign
    '\uFFFD\uFFFF\uFFFE',
  ],
} as const;

/** Strings no field accepts, by class: every answer is 400. */
export const REFUSED_STRINGS = {
  control: [
    'a\u0000b',
    '\u0000',
    'line\r\nX-Injected: 1',
    'tab\tab',
    'esc\u001b[31m',
    'del\u007f',
    'c1\u0085\u009b',
  ],
  /** well-formed JSON escapes for ill-formed UTF-16: PostgreSQL would store U+FFFD instead */
  surrogate: ['\uD800', 'a\uDFFFb', '\uDBFF\uDBFF', 'x\uD83D'],
} as const;

/** A string far longer than any field takes (still well inside the body limit). */
export const longString = (n = 60_000) => 'A'.repeat(n);

/** Numbers at and beyond the bounds of integer columns and doubles. */
export const NUMBER_EDGES = [
  2 ** 31,
  1e308,
  -(2 ** 31) - 1,
  2 ** 53 + 1,
  Number.MAX_SAFE_INTEGER,
  -1e308,
  1e-300,
  0.1,
  0,
  -1,
];

/** Timestamps that look right and are not, or are at the edges of what a database stores. */
export const DATE_EDGES = [
  '2026-02-30T00:00:00Z',
  '2026-13-01T00:00:00Z',
  '2026-11-24T25:61:61Z',
  '0000-01-01T00:00:00Z',
  '9999-12-31T23:59:59Z',
  '+275760-09-13T00:00:00.000Z',
  '1970-01-01T00:00:00Z',
  '2026-11-24T10:00:00+14:00',
  '2026-11-24',
  '2026-11-24T10:00:00',
];

/** Addresses and CIDRs at and beyond what an address field may take. */
export const ADDRESS_EDGES = [
  '10.0.0.1/33',
  '1.2.3.4/-1',
  '::/129',
  '256.0.0.0/8',
  '01.02.03.04/8',
  '1.2.3.4/8',
  '1.2.3.4/',
  '/8',
  '1.2.3.4/8/8',
  '1.2.3.4/08',
  '1.2.3.4/ 8',
  'fe80::1%eth0/64',
  '::ffff:1.2.3.4/200',
  '0.0.0.0/0',
  '::/0',
  '127.0.0.1',
  '::ffff:127.0.0.1',
  '::1',
  '1.2.3.4, 5.6.7.8',
];

/** Values of each JSON type: a field is sent one of every type unlike its own. */
export const JSON_TYPES = {
  number: [12345, -1, 0.5, 1e308, 2 ** 53 + 1],
  boolean: [true, false],
  null: [null],
  object: [{}, { $gt: '' }, { id: 1 }],
  array: [[], ['a', 'b'], [{ a: 1 }]],
  string: ['', '12345', 'true', 'null'],
} satisfies Record<string, unknown[]>;

/** Raw JSON texts (objects written as JS literals would not keep `__proto__` as a key). */
export function protoBodies(field: string | undefined): string[] {
  const bodies = [
    '{"__proto__":{"polluted":"yes","isAdmin":true}}',
    '{"constructor":{"prototype":{"polluted":"yes"}}}',
    '{"prototype":{"polluted":"yes"}}',
    '{"__proto__":[1,2,3]}',
  ];
  if (field !== undefined) {
    const key = JSON.stringify(field);
    bodies.push(
      `{${key}:{"__proto__":{"polluted":"yes"}}}`,
      `{${key}:{"constructor":{"prototype":{"polluted":"yes"}}}}`,
      `{${key}:"x","__proto__":{"polluted":"yes"}}`,
    );
  }
  return bodies;
}

/** `levels` nested arrays, and `levels` nested objects. */
export function deepBodies(levels: number): string[] {
  return [
    `{"a":${'['.repeat(levels)}${']'.repeat(levels)}}`,
    `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`,
  ];
}

/** Bodies that are not JSON, or not a JSON object: every route taking a body refuses them. */
export const MALFORMED_JSON = [
  '{"a":',
  "{'a':1}",
  '{"a":1,}',
  '{"a":NaN}',
  '{"a":undefined}',
  '[1,2',
  '"just a string"',
  '42',
  'null',
  '{"a":"\\x41"}',
  '{"a":"\\u12"}',
  '\uFEFF{"a":1}',
  '{"a":1}{"b":2}',
  '<?xml version="1.0"?><a>1</a>',
  // JSON, but not an object
  '[]',
  '[{"__proto__":{"polluted":"yes"}}]',
  'true',
  '""',
];

/** Byte sequences that are not UTF-8, inside an otherwise valid JSON string value of `field`. */
export function brokenEncodings(field: string): Buffer[] {
  const wrap = (bytes: number[]) =>
    Buffer.concat([Buffer.from(`{${JSON.stringify(field)}:"ab`), Buffer.from(bytes), Buffer.from('cd"}')]);
  return [
    wrap([0xff, 0xfe]), // never valid in UTF-8
    wrap([0xc0, 0xaf]), // overlong "/"
    wrap([0xe0, 0x80, 0xaf]), // overlong "/", three bytes
    wrap([0xed, 0xa0, 0x80]), // an encoded lone surrogate (CESU-8)
    wrap([0xe2, 0x82]), // truncated sequence
    wrap([0xf4, 0x90, 0x80, 0x80]), // beyond U+10FFFF
    wrap([0x80]), // a lone continuation byte
  ];
}

/** Authorization headers that are no credential: each is a 401. */
export const BAD_AUTHORIZATION = [
  "Bearer ' OR '1'='1",
  'Bearer <script>alert(1)</script>',
  `Bearer ${'A'.repeat(8000)}`,
  'Bearer ppt_\u00e9\u00e9',
  'Basic YWRtaW46YWRtaW4=',
  'Bearer',
  'Bearer  ',
  'bearer null',
  'Bearer undefined',
  'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.',
  'Bearer a.b.c',
  'Bearer ppt_, Bearer ppt_',
];

/** Header values that are no request id or idempotency key; each is replaced or refused. */
export const BAD_HEADER_VALUES = [
  '<script>alert(1)</script>',
  "' OR '1'='1",
  'A'.repeat(4000),
  '\u00e9t\u00e9',
  '../../etc/passwd',
  '',
  ' ',
];

/** X-Forwarded-For values that name no address (or too many). */
export const FORWARDED_FOR = [
  'A'.repeat(100),
  "' OR '1'='1",
  '<script>alert(1)</script>',
  '999.999.999.999',
  '1.2.3.4.5',
  'unknown',
  '::ffff:999.1.1.1',
  'fe80::1%eth0-with-a-very-long-zone-index-that-goes-on-and-on',
  ', , ,',
  '1.2.3.4, <b>, 5.6.7.8',
];

/** Content types a JSON route must answer 415 to (with a body that would parse as JSON). */
export const WRONG_CONTENT_TYPES = [
  'text/plain',
  'text/html',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=xyz',
  'application/xml',
  'application/octet-stream',
  'application/json; charset=latin1',
  'application/json; charset=koi8-r',
];

/** Path segments standing in for an id, by class, already percent-encoded as they go on the wire. */
export const PATH_PAYLOADS = {
  sql: [encodeURIComponent("' OR '1'='1"), encodeURIComponent('1; DROP TABLE tenants; --')],
  traversal: ['..%2F..%2Fetc%2Fpasswd', '..%252F..%252Fetc', '..', '.'],
  control: ['%00', 'cus_%00', '%0d%0aSet-Cookie:%20a=b', '%7f'],
  xss: [
    encodeURIComponent('<script>alert(1)</script>'),
    encodeURIComponent('"><img src=x onerror=alert(1)>'),
  ],
  long: ['A'.repeat(4000)],
  unicode: [encodeURIComponent('\u202Eabc'), encodeURIComponent('🚀🚀'), encodeURIComponent('cafe\u0301')],
  encoding: ['%ff%fe', '%c0%af', '%ed%a0%80', '%E2%82'],
  proto: [encodeURIComponent('__proto__'), 'constructor', 'prototype'],
  number: ['-1', '0', '99999999999999999999999999', '1e308'],
  blank: ['%20', '%09'],
};

/** Query values, by class, already percent-encoded as they go on the wire. */
export const QUERY_PAYLOADS = {
  sql: [encodeURIComponent("' OR '1'='1"), encodeURIComponent('1; select pg_sleep(5); --')],
  /** LIKE patterns: a filter is an exact match, never a pattern */
  wildcard: ['%25', '_', '%25%25', '*'],
  xss: [
    encodeURIComponent('<script>alert(1)</script>'),
    encodeURIComponent('"><img src=x onerror=alert(1)>'),
    encodeURIComponent('javascript:alert(1)'),
  ],
  control: ['%00', '%0d%0aSet-Cookie:%20a=b', '%1b%5b31m'],
  long: ['A'.repeat(4000)],
  unicode: [
    encodeURIComponent('\u202Eabc\u200D'),
    encodeURIComponent('🚀'),
    encodeURIComponent('\uFF41dmin'),
  ],
  encoding: ['%ff%fe', '%ed%a0%80', '%c0%af', '%'],
  number: ['-1', '1e308', '99999999999999999999999999', 'NaN', '0x10', 'Infinity'],
  traversal: ['..%2F..%2F', '..'],
  blank: ['', '%20'],
};
export type QueryClass = keyof typeof QUERY_PAYLOADS;

/** Ways of sending one query field that are not a single value. */
export const QUERY_SHAPES = (field: string, value: string) => [
  `${field}=${value}&${field}=${value}`,
  `${field}=1&${field}=2`,
  `${field}[a]=1`,
  `${field}[]=1`,
  `${field}[__proto__][polluted]=yes`,
  `${field}`,
];

/** Query strings no route should be bothered by. */
export const STRAY_QUERIES = [
  '__proto__[polluted]=yes',
  '__proto__=x&constructor[prototype][polluted]=yes',
  'x=%3Cscript%3Ealert(1)%3C%2Fscript%3E',
  `x=${'B'.repeat(4000)}`,
];

// ---------------------------------------------------------------------------------------------
// What a route's zod schemas say

/** The parts of a zod 4 schema this module reads. */
interface ZodInternals {
  _zod: {
    def: {
      type: string;
      innerType?: z.ZodType;
      in?: z.ZodType;
      out?: z.ZodType;
      element?: z.ZodType;
      options?: z.ZodType[];
      entries?: Record<string, string | number>;
      values?: unknown[];
      shape?: Record<string, z.ZodType>;
      left?: z.ZodType;
    };
  };
}

const internals = (s: z.ZodType) => (s as unknown as ZodInternals)._zod;

/** The JSON type a field takes, as far as the corpus cares. */
export type FieldKind = 'string' | 'number' | 'boolean' | 'array' | 'object' | 'other';

export interface Field {
  /** `lines.0.quantity` for a field inside the first item of `lines` */
  name: string;
  /** where the field is in a body */
  path: (string | number)[];
  kind: FieldKind;
  required: boolean;
}

/** The schema under optional/nullable/default/pipe wrappers. */
function unwrap(s: z.ZodType): { schema: z.ZodType; required: boolean } {
  let schema = s;
  let required = true;
  for (let i = 0; i < 20; i++) {
    const def = internals(schema).def;
    if (['optional', 'default', 'prefault', 'catch'].includes(def.type) && def.innerType) {
      required = false;
      schema = def.innerType;
    } else if (['nullable', 'readonly', 'nonoptional'].includes(def.type) && def.innerType) {
      schema = def.innerType;
    } else if (def.type === 'pipe' && def.in && def.out) {
      // z.preprocess(fn, schema) is a pipe from a transform into the schema
      schema = internals(def.in).def.type === 'transform' ? def.out : def.in;
    } else {
      break;
    }
  }
  return { schema, required };
}

function kindOf(s: z.ZodType): FieldKind {
  const { schema } = unwrap(s);
  const type = internals(schema).def.type;
  if (type === 'string' || type === 'enum' || type === 'literal' || type === 'date') return 'string';
  if (type === 'number' || type === 'int' || type === 'bigint') return 'number';
  if (type === 'boolean') return 'boolean';
  if (type === 'array' || type === 'tuple') return 'array';
  if (type === 'object' || type === 'record') return 'object';
  if (type === 'union') {
    const kinds = new Set((internals(schema).def.options ?? []).map(kindOf));
    return kinds.size === 1 ? ([...kinds][0] ?? 'other') : 'other';
  }
  return 'other';
}

/** The object shape of a schema (through wrappers, refinements and intersections), if it has one. */
function shapeOf(s: z.ZodType | undefined): Record<string, z.ZodType> | undefined {
  if (!s) return undefined;
  const { schema } = unwrap(s);
  const def = internals(schema).def;
  if (def.type === 'object') return def.shape;
  if (def.type === 'intersection' && def.left) return shapeOf(def.left);
  if (def.type === 'union') {
    const shapes = (def.options ?? []).map(shapeOf).filter((x) => x !== undefined);
    return shapes.length > 0 ? Object.assign({}, ...shapes) : undefined;
  }
  return undefined;
}

/** The top-level fields of a body, query or params schema. */
export function fieldsOf(s: z.ZodType | undefined): Field[] {
  const shape = shapeOf(s);
  if (!shape) return [];
  return Object.entries(shape).map(([name, field]) => ({
    name,
    path: [name],
    kind: kindOf(field),
    required: unwrap(field).required,
  }));
}

/**
 * Every field of a body schema, nested ones too: each top-level field, and inside an object field
 * or an array of objects (its first item) each of theirs, down to `depth` levels.
 */
export function bodyFieldsOf(s: z.ZodType | undefined, depth = 3): Field[] {
  const shape = shapeOf(s);
  if (!shape || depth === 0) return [];
  const fields: Field[] = [];
  for (const [name, field] of Object.entries(shape)) {
    fields.push({ name, path: [name], kind: kindOf(field), required: unwrap(field).required });
    const inner = unwrap(field).schema;
    const def = internals(inner).def;
    const [child, step] = def.type === 'array' && def.element ? [def.element, [name, 0]] : [inner, [name]];
    for (const nested of bodyFieldsOf(child, depth - 1)) {
      const path = [...step, ...nested.path];
      fields.push({ ...nested, name: path.join('.'), path });
    }
  }
  return fields;
}

/** A copy of `body` with `value` at `path`, creating the objects and arrays on the way. */
export function withValueAt(body: unknown, path: readonly (string | number)[], value: unknown): unknown {
  const [head, ...rest] = path;
  if (head === undefined) return value;
  if (typeof head === 'number') {
    const list = Array.isArray(body) ? [...(body as unknown[])] : [];
    list[head] = withValueAt(list[head], rest, value);
    return list;
  }
  const obj: Record<string, unknown> =
    body && typeof body === 'object' && !Array.isArray(body) ? { ...(body as Record<string, unknown>) } : {};
  obj[head] = withValueAt(obj[head], rest, value);
  return obj;
}

/** The value at `path` in a JSON value, if there is one. */
export function valueAt(body: unknown, path: readonly (string | number)[]): unknown {
  let v = body;
  for (const step of path) {
    if (!v || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[step];
  }
  return v;
}

/** The example `.openapi()` gave a schema, if any. */
function exampleOf(s: z.ZodType): unknown {
  return (getOpenApiMetadata(s) as { example?: unknown }).example;
}

/**
 * A value the schema probably accepts: its example, or one built from its type and bounds.
 * `undefined` for optional fields (the sample body holds what is required only).
 */
export function sampleOf(s: z.ZodType, depth = 0): unknown {
  if (depth > 8) return undefined;
  const def = internals(s).def;
  if (['optional', 'default', 'prefault', 'catch'].includes(def.type)) return undefined;
  const example = exampleOf(s);
  if (example !== undefined) return example;
  switch (def.type) {
    case 'nullable':
    case 'readonly':
    case 'nonoptional':
      return def.innerType ? sampleOf(def.innerType, depth + 1) : undefined;
    case 'pipe':
      if (!def.in || !def.out) return undefined;
      return sampleOf(internals(def.in).def.type === 'transform' ? def.out : def.in, depth + 1);
    case 'string':
      return sampleString(s);
    case 'number': {
      const { minValue } = s as unknown as Bounds;
      return Math.max(typeof minValue === 'number' && Number.isFinite(minValue) ? minValue : 1, 1);
    }
    case 'boolean':
      return false;
    case 'enum':
      return Object.values(def.entries ?? {})[0];
    case 'literal':
      return def.values?.[0];
    case 'date':
      return new Date().toISOString();
    case 'array': {
      const item = def.element ? sampleOf(def.element, depth + 1) : undefined;
      return item === undefined ? [] : [item];
    }
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [key, field] of Object.entries(def.shape ?? {})) {
        const v = sampleOf(field, depth + 1);
        if (v !== undefined) out[key] = v;
      }
      return out;
    }
    case 'union':
      return def.options?.[0] ? sampleOf(def.options[0], depth + 1) : undefined;
    case 'record':
      return {};
    default:
      return undefined;
  }
}

/** The bounds zod 4 exposes on string and number schemas. */
interface Bounds {
  minValue?: number | null;
  minLength?: number | null;
  maxLength?: number | null;
  format?: string | null;
}

function sampleString(s: z.ZodType): string {
  const { format, minLength, maxLength } = s as unknown as Bounds;
  switch (format) {
    case 'email':
      return `corpus-${randomUUID().slice(0, 8)}@example.test`;
    case 'uuid':
    case 'guid':
      return randomUUID();
    case 'datetime':
      return new Date(Date.now() + 86_400_000).toISOString();
    case 'date':
      return new Date().toISOString().slice(0, 10);
    case 'url':
      return 'https://example.test/';
    default:
  }
  const min = minLength ?? 1;
  const base = `corpus${randomUUID().replace(/-/g, '').slice(0, 8)}`;
  const text = base.length >= min ? base : base.padEnd(min, 'x');
  return typeof maxLength === 'number' ? text.slice(0, Math.max(maxLength, min)) : text;
}

/**
 * A body the route's schema accepts, built from its examples and types with those `overrides` on
 * top that are its fields (ids of real resources, say); `undefined` when no sample passes.
 */
export function sampleBody(
  route: Route,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> | undefined {
  if (!route.body) return undefined;
  const generated = sampleOf(route.body);
  const known = new Set(fieldsOf(route.body).map((f) => f.name));
  const body = {
    ...(generated && typeof generated === 'object' && !Array.isArray(generated) ? generated : {}),
    ...Object.fromEntries(Object.entries(overrides).filter(([key]) => known.has(key))),
  } as Record<string, unknown>;
  try {
    return route.body.safeParse(body).success ? body : undefined;
  } catch {
    return undefined;
  }
}

/** Payloads of a class, taken round-robin: the n-th call of a class gets the n-th payload. */
export class Rotation {
  private readonly next = new Map<string, number>();

  take<T>(name: string, payloads: readonly T[]): T {
    const i = this.next.get(name) ?? 0;
    this.next.set(name, i + 1);
    return payloads[i % payloads.length] as T;
  }
}

/** One value of every JSON type unlike `kind`, taken from `rotation` (`null` for every kind). */
export function wrongTypesFor(kind: FieldKind, rotation: Rotation): unknown[] {
  return (Object.keys(JSON_TYPES) as (keyof typeof JSON_TYPES)[])
    .filter((type) => type !== kind)
    .map((type) => rotation.take<unknown>(`type-${type}`, JSON_TYPES[type]));
}

/** Every string anywhere in a JSON value. */
export function stringsIn(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) stringsIn(v, out);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) stringsIn(v, out);
  return out;
}
