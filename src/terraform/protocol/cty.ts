// cty, Terraform's type system, as far as the wire needs it: types with their JSON encoding (schema
// `type` bytes, dynamic values), and values to and from msgpack (DynamicValue.msgpack) and JSON
// (RawState.json). A value is always read against a type: msgpack alone cannot tell a list from a set,
// an object from a map, or an integer-valued number from an int.
import { decode, Encoder, ExtData } from '@msgpack/msgpack';
import { TerraformError, TerraformErrorCode } from '../errors.ts';

/** A cty type. Collections and structures are objects; primitives and `dynamic` are strings. */
export type CtyType =
  | 'string'
  | 'number'
  | 'bool'
  | 'dynamic'
  | { readonly list: CtyType }
  | { readonly set: CtyType }
  | { readonly map: CtyType }
  | { readonly object: Readonly<Record<string, CtyType>>; readonly optional?: readonly string[] }
  | { readonly tuple: readonly CtyType[] };

/** A value not known until apply (shown as `(known after apply)`); on the wire any msgpack extension. */
export class Unknown {
  private constructor() {}
  /** The one unknown value. */
  static readonly value: Unknown = Object.freeze(new Unknown()) as Unknown;
  toJSON(): string {
    return '(known after apply)';
  }
}
/** The unknown value. */
export const unknown: Unknown = Unknown.value;

/** True when `v` is the unknown value. */
export function isUnknown(v: unknown): v is Unknown {
  return v === Unknown.value;
}

/** A value of a `dynamic` attribute together with its concrete type (kept so it goes back as it came). */
export class Dynamic {
  readonly type: CtyType;
  readonly value: CtyValue;
  constructor(type: CtyType, value: CtyValue) {
    this.type = type;
    this.value = value;
  }
}

/** A cty value in JavaScript: null, unknown, primitives, arrays (list, set, tuple), plain objects (map, object). */
export type CtyValue =
  | null
  | Unknown
  | string
  | number
  | boolean
  | Dynamic
  | readonly CtyValue[]
  | { readonly [key: string]: CtyValue };

/** Path to a value inside another, for messages: `.team.members[2]`. */
export type ValuePath = readonly (string | number)[];

function fail(path: ValuePath, message: string): never {
  throw new TerraformError(TerraformErrorCode.value, `${formatPath(path)}: ${message}`);
}

/** `a.b[0]["k"]`, the way Terraform prints a path; `(root)` for the empty path. */
export function formatPath(path: ValuePath): string {
  if (path.length === 0) return '(root)';
  return path
    .map((step, i) => (typeof step === 'number' ? `[${step}]` : i === 0 ? step : `.${step}`))
    .join('');
}

// ---- types and their JSON encoding ----

/** The JSON type encoding Terraform uses in schemas: `"string"`, `["list","string"]`, `["object",{...}]`. */
export function typeToJson(type: CtyType): unknown {
  if (typeof type === 'string') return type;
  if ('list' in type) return ['list', typeToJson(type.list)];
  if ('set' in type) return ['set', typeToJson(type.set)];
  if ('map' in type) return ['map', typeToJson(type.map)];
  if ('tuple' in type) return ['tuple', type.tuple.map(typeToJson)];
  const attrs = Object.fromEntries(Object.entries(type.object).map(([k, t]) => [k, typeToJson(t)]));
  return type.optional?.length ? ['object', attrs, [...type.optional]] : ['object', attrs];
}

/** Parse the JSON type encoding (see {@link typeToJson}). Throws `CAP_ERR_TERRAFORM_TYPE` on anything else. */
export function typeFromJson(json: unknown): CtyType {
  const bad = (): never => {
    throw new TerraformError(TerraformErrorCode.type, `not a cty type: ${JSON.stringify(json)}`);
  };
  if (json === 'string' || json === 'number' || json === 'bool' || json === 'dynamic') return json;
  if (!Array.isArray(json) || json.length < 2) return bad();
  const [kind, arg, optional] = json as [unknown, unknown, unknown];
  switch (kind) {
    case 'list':
      return { list: typeFromJson(arg) };
    case 'set':
      return { set: typeFromJson(arg) };
    case 'map':
      return { map: typeFromJson(arg) };
    case 'tuple':
      return Array.isArray(arg) ? { tuple: arg.map(typeFromJson) } : bad();
    case 'object': {
      if (arg === null || typeof arg !== 'object' || Array.isArray(arg)) return bad();
      const object = Object.fromEntries(Object.entries(arg).map(([k, t]) => [k, typeFromJson(t)]));
      if (optional === undefined) return { object };
      if (!Array.isArray(optional) || !optional.every((o) => typeof o === 'string')) return bad();
      return { object, optional };
    }
    default:
      return bad();
  }
}

/** The type of a plain JavaScript value placed in a `dynamic` attribute: arrays are tuples, objects are objects. */
export function inferType(value: CtyValue, path: ValuePath = []): CtyType {
  if (value instanceof Dynamic) return value.type;
  if (value === null || isUnknown(value)) return 'dynamic';
  switch (typeof value) {
    case 'string':
      return 'string';
    case 'number':
      return 'number';
    case 'boolean':
      return 'bool';
  }
  if (Array.isArray(value)) return { tuple: value.map((v, i) => inferType(v, [...path, i])) };
  return {
    object: Object.fromEntries(
      Object.entries(value as Record<string, CtyValue>).map(([k, v]) => [k, inferType(v, [...path, k])]),
    ),
  };
}

// ---- values: JavaScript -> wire shape ----

// cty writes an unknown as fixext1 of type 0 (refined unknowns use type 12); any extension reads as unknown.
const UNKNOWN_EXT = new ExtData(0, new Uint8Array([0]));
const textEncoder = new TextEncoder();

/** Check `value` against `type` and turn it into what the msgpack encoder writes. */
function toWire(type: CtyType, value: CtyValue | undefined, path: ValuePath): unknown {
  if (value === null || value === undefined) return null;
  if (isUnknown(value)) return UNKNOWN_EXT;
  if (type === 'dynamic') {
    const concrete = inferType(value, path);
    const inner = value instanceof Dynamic ? value.value : value;
    if (inner === null) return null;
    if (isUnknown(inner)) return UNKNOWN_EXT;
    return [textEncoder.encode(JSON.stringify(typeToJson(concrete))), toWire(concrete, inner, path)];
  }
  if (value instanceof Dynamic) return fail(path, `a dynamic value where ${describe(type)} is expected`);
  if (type === 'string') {
    if (typeof value !== 'string') fail(path, `expected a string, got ${describeValue(value)}`);
    return value;
  }
  if (type === 'number') {
    if (typeof value !== 'number' || Number.isNaN(value))
      fail(path, `expected a number, got ${describeValue(value)}`);
    // cty has no infinities in msgpack numbers it accepts from providers except as these strings.
    if (!Number.isFinite(value)) return value > 0 ? '+Inf' : '-Inf';
    return value;
  }
  if (type === 'bool') {
    if (typeof value !== 'boolean') fail(path, `expected a bool, got ${describeValue(value)}`);
    return value;
  }
  if ('list' in type || 'set' in type) {
    const element = 'list' in type ? type.list : type.set;
    if (!Array.isArray(value)) fail(path, `expected ${describe(type)}, got ${describeValue(value)}`);
    return (value as CtyValue[]).map((v, i) => toWire(element, v, [...path, i]));
  }
  if ('tuple' in type) {
    if (!Array.isArray(value) || value.length !== type.tuple.length)
      fail(path, `expected a tuple of ${type.tuple.length}, got ${describeValue(value)}`);
    return type.tuple.map((t, i) => toWire(t, (value as CtyValue[])[i], [...path, i]));
  }
  if (typeof value !== 'object' || Array.isArray(value))
    fail(path, `expected ${describe(type)}, got ${describeValue(value)}`);
  const record = value as Record<string, CtyValue>;
  if ('map' in type) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(record)) out[k] = toWire(type.map, v, [...path, k]);
    return out;
  }
  for (const k of Object.keys(record)) {
    if (!(k in type.object) && record[k] !== undefined) fail(path, `unexpected attribute "${k}"`);
  }
  const out: Record<string, unknown> = {};
  for (const [k, t] of Object.entries(type.object)) out[k] = toWire(t, record[k], [...path, k]);
  return out;
}

function describe(type: CtyType): string {
  return JSON.stringify(typeToJson(type));
}

function describeValue(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Dynamic) return 'a dynamic value';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

const encoder = new Encoder({ ignoreUndefined: false });

/** Encode `value` of `type` as msgpack, the way cty does (DynamicValue.msgpack). */
export function encodeValue(type: CtyType, value: CtyValue): Uint8Array {
  return encoder.encode(toWire(type, value, []));
}

// ---- wire shape -> JavaScript ----

const textDecoder = new TextDecoder();

function fromWire(type: CtyType, raw: unknown, path: ValuePath, json: boolean): CtyValue {
  if (raw === null || raw === undefined) return null;
  if (raw instanceof ExtData) return unknown;
  if (type === 'dynamic') {
    // msgpack: [type JSON as bytes, value]; JSON state: {"value": v, "type": t}.
    let typeJson: unknown;
    let inner: unknown;
    if (json) {
      if (typeof raw !== 'object' || !('type' in raw)) fail(path, 'dynamic value without its type');
      typeJson = (raw as { type: unknown }).type;
      inner = (raw as { value?: unknown }).value;
    } else {
      if (!Array.isArray(raw) || raw.length !== 2) fail(path, 'dynamic value is not [type, value]');
      const [t, v] = raw as [unknown, unknown];
      typeJson = JSON.parse(typeof t === 'string' ? t : textDecoder.decode(t as Uint8Array));
      inner = v;
    }
    const concrete = typeFromJson(typeJson);
    return new Dynamic(concrete, fromWire(concrete, inner, path, json));
  }
  if (type === 'string') {
    if (typeof raw !== 'string') fail(path, `expected a string, got ${describeValue(raw)}`);
    return raw;
  }
  if (type === 'number') {
    if (typeof raw === 'number') return raw;
    if (typeof raw === 'bigint') return Number(raw);
    // Numbers beyond float64 (and infinities) travel as strings.
    if (typeof raw === 'string') {
      const n = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
      if (!Number.isNaN(n)) return n;
    }
    return fail(path, `expected a number, got ${describeValue(raw)}`);
  }
  if (type === 'bool') {
    if (typeof raw !== 'boolean') fail(path, `expected a bool, got ${describeValue(raw)}`);
    return raw;
  }
  if ('list' in type || 'set' in type) {
    const element = 'list' in type ? type.list : type.set;
    if (!Array.isArray(raw)) fail(path, `expected ${describe(type)}, got ${describeValue(raw)}`);
    return (raw as unknown[]).map((v, i) => fromWire(element, v, [...path, i], json));
  }
  if ('tuple' in type) {
    if (!Array.isArray(raw) || raw.length !== type.tuple.length)
      fail(path, `expected a tuple of ${type.tuple.length}, got ${describeValue(raw)}`);
    return type.tuple.map((t, i) => fromWire(t, (raw as unknown[])[i], [...path, i], json));
  }
  if (typeof raw !== 'object' || Array.isArray(raw) || raw instanceof Uint8Array)
    fail(path, `expected ${describe(type)}, got ${describeValue(raw)}`);
  const record = raw as Record<string, unknown>;
  const out: Record<string, CtyValue> = {};
  if ('map' in type) {
    for (const [k, v] of Object.entries(record)) out[k] = fromWire(type.map, v, [...path, k], json);
    return out;
  }
  // Attributes the type has and the value lacks are null (older state). Extra ones are an error on the
  // wire, but stored state may still hold an attribute a newer schema dropped: JSON ignores them.
  if (!json) {
    for (const k of Object.keys(record)) if (!(k in type.object)) fail(path, `unexpected attribute "${k}"`);
  }
  for (const [k, t] of Object.entries(type.object)) out[k] = fromWire(t, record[k], [...path, k], json);
  return out;
}

/** Decode msgpack bytes (DynamicValue.msgpack) as a value of `type`; empty bytes are null. */
export function decodeValue(type: CtyType, bytes: Uint8Array): CtyValue {
  if (bytes.length === 0) return null;
  return fromWire(type, decode(bytes), [], false);
}

/** Decode Terraform's JSON value encoding (DynamicValue.json, RawState.json) as a value of `type`. */
export function decodeJsonValue(type: CtyType, json: string | Uint8Array): CtyValue {
  const text = typeof json === 'string' ? json : textDecoder.decode(json);
  if (text.trim() === '') return null;
  return fromWire(type, JSON.parse(text), [], true);
}

/** Plain JSON of a value, for state upgraders that work on the old shape (`null` for null and unknown). */
export function plainValue(value: CtyValue): unknown {
  if (value instanceof Dynamic) return plainValue(value.value);
  if (isUnknown(value)) return null;
  if (Array.isArray(value)) return value.map(plainValue);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plainValue(v as CtyValue)]));
  }
  return value;
}

/** Deep equality of two values (sets compared as arrays in order, the order Terraform sent them). */
export function valuesEqual(a: CtyValue | undefined, b: CtyValue | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a === null || b === null) return (a ?? null) === (b ?? null);
  if (a instanceof Dynamic || b instanceof Dynamic) {
    const av = a instanceof Dynamic ? a.value : a;
    const bv = b instanceof Dynamic ? b.value : b;
    return valuesEqual(av, bv);
  }
  if (typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as readonly CtyValue[];
    return a.length === bb.length && a.every((v, i) => valuesEqual(v, bb[i]));
  }
  const ao = a as Record<string, CtyValue>;
  const bo = b as Record<string, CtyValue>;
  const keys = new Set([...Object.keys(ao), ...Object.keys(bo)]);
  for (const k of keys) if (!valuesEqual(ao[k], bo[k])) return false;
  return true;
}
