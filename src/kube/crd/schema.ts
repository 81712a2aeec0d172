// zod schemas to the structural OpenAPI v3 schemas a CRD carries. We walk zod's own definitions
// (`schema._zod.def`, the shape zod documents for library authors) instead of post-processing
// `z.toJSONSchema`: that one quietly turns what JSON Schema cannot hold (bigint, Date, int64) into `{}` and
// unions into `anyOf`, both of which the apiserver refuses as non-structural, and it cannot say where. Here
// every node is converted on purpose, and every problem comes back with its path, all at once.
import { z } from 'zod';

/** One `x-kubernetes-validations` entry: a CEL rule the apiserver evaluates on every write. */
export interface CelRule {
  /** The CEL expression; `self` is this field (and `oldSelf` its previous value, for transition rules). */
  readonly rule: string;
  /** What the apiserver answers when the rule is false (static). */
  readonly message?: string;
  /** A CEL expression building the message from `self`. */
  readonly messageExpression?: string;
  /** The error reason: `FieldValueInvalid` (the default), `FieldValueForbidden`, `FieldValueRequired`, `FieldValueDuplicate`. */
  readonly reason?:
    | 'FieldValueInvalid'
    | 'FieldValueForbidden'
    | 'FieldValueRequired'
    | 'FieldValueDuplicate';
  /** A path (`.spec.x`) relative to this field that the error is reported on. */
  readonly fieldPath?: string;
  /** Evaluate the transition rule on create too, with `oldSelf` an optional (`oldSelf.hasValue()`). */
  readonly optionalOldSelf?: boolean;
}

/**
 * The Kubernetes-only extras of one field, attached to a zod schema with {@link kubeField} (or the shortcuts
 * {@link withRules}, {@link listMap}, {@link listSet}, {@link atomicList}, {@link preserveUnknownFields},
 * {@link intOrString}, {@link embeddedResource}). They are plain data in a zod registry, read when the CRD is
 * generated; parsing with zod is unaffected.
 */
export interface KubeFieldOptions {
  /** CEL rules (`x-kubernetes-validations`); several calls add up. */
  readonly validations?: readonly CelRule[];
  /** `x-kubernetes-list-type` of an array: `atomic`, `set` (unique scalars) or `map` (objects keyed by `listMapKeys`). */
  readonly listType?: 'atomic' | 'set' | 'map';
  /** `x-kubernetes-list-map-keys`: the item fields that identify an item of a `map` list (they must be required). */
  readonly listMapKeys?: readonly string[];
  /** `x-kubernetes-map-type` of an object: `atomic` (replaced whole by server-side apply) or `granular`. */
  readonly mapType?: 'atomic' | 'granular';
  /** `x-kubernetes-preserve-unknown-fields`: the apiserver keeps fields the schema does not name. */
  readonly preserveUnknownFields?: boolean;
  /** `x-kubernetes-int-or-string`: an integer or a string (like a port number or name, or `25%`). */
  readonly intOrString?: boolean;
  /** `x-kubernetes-embedded-resource`: a whole Kubernetes object (apiVersion, kind, metadata) inside this one. */
  readonly embeddedResource?: boolean;
  /** An OpenAPI format the apiserver checks (`int32`, `date-time`, `email`...), over the one derived from zod. */
  readonly format?: string;
  /**
   * Bounds on a record's entries (zod records have none). A bound also keeps CEL rules over a map within
   * the apiserver's cost budget, which it estimates from the largest size the schema allows.
   */
  readonly minProperties?: number;
  readonly maxProperties?: number;
}

/**
 * Where {@link kubeField} records extras. A zod registry: a schema derived from a marked one (`.optional()`,
 * `.describe()`) keeps them, because zod looks registries up through a schema's parents.
 */
export const kubeFields = z.registry<KubeFieldOptions>();

/**
 * Attach Kubernetes extras to a field. Returns a copy of `schema` (the original stays unmarked, so one
 * schema can be reused plainly elsewhere); `validations` add to rules already on it.
 *
 * ```ts
 * ports: kubeField(z.array(Port).max(16), { listType: 'map', listMapKeys: ['name'] })
 * ```
 */
export function kubeField<S extends z.ZodType>(schema: S, options: KubeFieldOptions): S {
  const before = kubeFields.get(schema) ?? {};
  const copy = schema.clone() as S;
  const validations = [...(before.validations ?? []), ...(options.validations ?? [])];
  kubeFields.add(copy, { ...before, ...options, ...(validations.length > 0 ? { validations } : {}) });
  return copy;
}

/**
 * Add CEL rules (`x-kubernetes-validations`) to a field; a string is a rule without a message.
 *
 * ```ts
 * withRules(z.object({ min: z.int(), max: z.int() }), { rule: 'self.min <= self.max', message: 'min must not exceed max' })
 * ```
 */
export function withRules<S extends z.ZodType>(schema: S, ...rules: Array<CelRule | string>): S {
  return kubeField(schema, { validations: rules.map((r) => (typeof r === 'string' ? { rule: r } : r)) });
}

/**
 * A field that cannot change once set (a transition rule, `self == oldSelf`): the apiserver refuses an
 * update that changes it. It may still be set later if it was absent, or removed, unless it is required.
 */
export function immutable<S extends z.ZodType>(schema: S, message = 'is immutable'): S {
  return withRules(schema, { rule: 'self == oldSelf', message });
}

/** An array of objects merged by key (`x-kubernetes-list-type: map`), e.g. containers by `name`. */
export function listMap<S extends z.ZodArray>(schema: S, ...keys: [string, ...string[]]): S {
  return kubeField(schema, { listType: 'map', listMapKeys: keys });
}

/** An array of unique scalars (`x-kubernetes-list-type: set`): the apiserver rejects duplicates. */
export function listSet<S extends z.ZodArray>(schema: S): S {
  return kubeField(schema, { listType: 'set' });
}

/** An array replaced whole by server-side apply (`x-kubernetes-list-type: atomic`). */
export function atomicList<S extends z.ZodArray>(schema: S): S {
  return kubeField(schema, { listType: 'atomic' });
}

/**
 * A field whose unknown contents the apiserver keeps (`x-kubernetes-preserve-unknown-fields`). With no
 * argument, any JSON object; pass `z.unknown()` for any JSON value, or an object schema to keep its
 * named fields checked.
 */
export function preserveUnknownFields<S extends z.ZodType = z.ZodRecord<z.ZodString, z.ZodUnknown>>(
  schema?: S,
): S {
  return kubeField((schema ?? z.record(z.string(), z.unknown())) as S, { preserveUnknownFields: true });
}

/** An integer or a string (`x-kubernetes-int-or-string`), as `maxUnavailable: 1` or `'25%'`. */
export function intOrString(): z.ZodUnion<[z.ZodInt, z.ZodString]> {
  return kubeField(z.union([z.int(), z.string()]), { intOrString: true });
}

/**
 * A whole Kubernetes object inside this one (`x-kubernetes-embedded-resource`): the apiserver checks its
 * `apiVersion`, `kind` and `metadata`. Without a schema its other fields are kept as they come.
 */
export function embeddedResource<S extends z.ZodType = z.ZodObject<z.core.$ZodLooseShape, z.core.$loose>>(
  schema?: S,
): S {
  return kubeField((schema ?? z.looseObject({})) as S, { embeddedResource: true });
}

/** A CRD's OpenAPI v3 schema node (`JSONSchemaProps` of apiextensions.k8s.io/v1), as far as Capstan emits it. */
export interface StructuralSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  format?: string;
  title?: string;
  description?: string;
  nullable?: boolean;
  default?: unknown;
  example?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  multipleOf?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  items?: StructuralSchema;
  properties?: Record<string, StructuralSchema>;
  required?: string[];
  additionalProperties?: StructuralSchema | boolean;
  'x-kubernetes-validations'?: CelRule[];
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
  /** Anything else a hand-written schema may carry; the structural check reports what the apiserver refuses. */
  [key: string]: unknown;
}

/** The parts of zod's definitions we read; zod's own types are a union too wide to narrow usefully. */
interface ZodDefView {
  type: string;
  [key: string]: unknown;
}
interface CheckView {
  check: string;
  [key: string]: unknown;
}

const defOf = (schema: z.core.$ZodType): ZodDefView => schema._zod.def as unknown as ZodDefView;
const checksOf = (def: ZodDefView): CheckView[] =>
  ((def['checks'] as z.core.$ZodCheck[] | undefined) ?? []).map((c) => c._zod.def as unknown as CheckView);

/** zod string formats the apiserver knows under its own name; their zod regexes (JavaScript) are not emitted. */
const stringFormats: Record<string, string> = {
  email: 'email',
  uuid: 'uuid',
  guid: 'uuid',
  uuidv4: 'uuid4',
  datetime: 'date-time',
  date: 'date',
  duration: 'duration',
  url: 'uri',
  ipv4: 'ipv4',
  ipv6: 'ipv6',
  cidrv4: 'cidr',
  base64: 'byte',
  hostname: 'hostname',
  mac: 'mac',
};

/** Formats the apiserver validates (k8s.io/kube-openapi strfmt plus OpenAPI's numeric ones). */
export const knownFormats: ReadonlySet<string> = new Set([
  'bsonobjectid',
  'uri',
  'email',
  'hostname',
  'ipv4',
  'ipv6',
  'cidr',
  'mac',
  'uuid',
  'uuid3',
  'uuid4',
  'uuid5',
  'isbn',
  'isbn10',
  'isbn13',
  'creditcard',
  'ssn',
  'hexcolor',
  'rgbcolor',
  'byte',
  'password',
  'date',
  'duration',
  'datetime',
  'date-time',
  'int32',
  'int64',
  'float',
  'double',
]);

/** What converting one zod schema found; `problems` name the path of each. */
export interface ConversionResult {
  schema: StructuralSchema;
  problems: string[];
}

interface Walk {
  problems: string[];
  /** Schemas being converted on the current path: meeting one again is recursion. */
  active: Set<z.core.$ZodType>;
}

interface Converted {
  schema: StructuralSchema;
  /** The field may be left out: optional, or defaulted by the apiserver. */
  optional: boolean;
}

/**
 * Convert a zod schema (a CRD's `spec` or `status`) to a structural OpenAPI v3 schema. Never throws for a
 * schema it cannot convert: `problems` lists every field that cannot be structural, each with its path
 * (`where`, e.g. `spec`, is the prefix) and what to use instead.
 */
export function zodToStructural(schema: z.core.$ZodType, where: string): ConversionResult {
  const walk: Walk = { problems: [], active: new Set() };
  const { schema: out } = convert(schema, where, walk);
  return { schema: out, problems: walk.problems };
}

function convert(input: z.core.$ZodType, path: string, walk: Walk): Converted {
  let schema = input;
  let optional = false;
  let nullable = false;
  let hasDefault = false;
  let defaultValue: unknown;
  let description: string | undefined;
  const extras: Record<string, unknown> = {};
  let options: KubeFieldOptions = {};
  const seen: z.core.$ZodType[] = [];
  // Wrappers first: each may carry a description or extras; the outermost wins, as zod's own `.describe` does.
  for (;;) {
    if (seen.includes(schema) || walk.active.has(schema)) {
      walk.problems.push(
        `${path}: a recursive schema cannot be structural (every level must be spelled out); mark the field with preserveUnknownFields()`,
      );
      return { schema: { 'x-kubernetes-preserve-unknown-fields': true }, optional: true };
    }
    seen.push(schema);
    const meta = z.globalRegistry.get(schema);
    if (meta) {
      description ??= meta.description;
      for (const [key, value] of Object.entries(meta)) {
        if ((key.startsWith('x-kubernetes-') || key === 'title' || key === 'example') && !(key in extras)) {
          extras[key] = value;
        }
      }
    }
    const kube = kubeFields.get(schema);
    if (kube) {
      const validations = [...(kube.validations ?? []), ...(options.validations ?? [])];
      options = { ...kube, ...options, ...(validations.length > 0 ? { validations } : {}) };
    }
    const def = defOf(schema);
    if (def.type === 'optional') {
      optional = true;
    } else if (def.type === 'nullable') {
      nullable = true;
    } else if (def.type === 'default' || def.type === 'prefault') {
      if (!hasDefault) {
        hasDefault = true;
        defaultValue = def['defaultValue'];
      }
      optional = true;
    } else if (def.type === 'nonoptional') {
      optional = false;
    } else if (def.type === 'pipe') {
      // A transform is client-side: the apiserver sees what goes in. `z.preprocess` is a pipe whose input is
      // the transform, so then the schema after it is what reaches the server.
      const inner = def['in'] as z.core.$ZodType;
      schema = defOf(inner).type === 'transform' ? (def['out'] as z.core.$ZodType) : inner;
      continue;
    } else if (def.type === 'lazy') {
      schema = (def['getter'] as () => z.core.$ZodType)();
      continue;
    } else if (def.type !== 'readonly' && def.type !== 'catch') {
      break;
    }
    schema = def['innerType'] as z.core.$ZodType;
  }

  for (const s of seen) walk.active.add(s);
  let out: StructuralSchema;
  try {
    out = convertBase(schema, path, walk, options);
  } finally {
    for (const s of seen) walk.active.delete(s);
  }

  if (description !== undefined && description !== '') out.description = description;
  if (options.validations && options.validations.length > 0) {
    out['x-kubernetes-validations'] = [
      ...(out['x-kubernetes-validations'] ?? []),
      ...options.validations.map((r) => ({ ...r })),
    ];
  }
  if (options.listType) out['x-kubernetes-list-type'] = options.listType;
  if (options.listMapKeys) out['x-kubernetes-list-map-keys'] = [...options.listMapKeys];
  if (options.mapType) out['x-kubernetes-map-type'] = options.mapType;
  if (options.embeddedResource) out['x-kubernetes-embedded-resource'] = true;
  if (options.format) out.format = options.format;
  if (options.minProperties !== undefined) out.minProperties = options.minProperties;
  if (options.maxProperties !== undefined) out.maxProperties = options.maxProperties;
  Object.assign(out, extras);
  if (nullable) out.nullable = true;
  // The apiserver refuses null for an enum field even when it is nullable, null listed or not (Kubernetes
  // 1.34, tried: "Unsupported value: null"); CEL rules skip null values. So a nullable enum's choice
  // becomes a rule, which says the same for every other value.
  if (out.nullable && out.enum) {
    const values = out.enum.filter((v) => v !== null);
    delete out.enum;
    const list = values.map((v) => JSON.stringify(v)).join(', ');
    out['x-kubernetes-validations'] = [
      { rule: `self in [${list}]`, message: `must be one of ${list}` },
      ...(out['x-kubernetes-validations'] ?? []),
    ];
  }
  if (hasDefault) {
    if (isJsonValue(defaultValue)) out.default = defaultValue;
    else
      walk.problems.push(`${path}: the default is not a JSON value (the apiserver stores defaults as JSON)`);
  }
  return { schema: out, optional };
}

function isJsonValue(value: unknown): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every(isJsonValue);
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.values(value as Record<string, unknown>).every(isJsonValue);
  }
  return false;
}

function convertBase(
  schema: z.core.$ZodType,
  path: string,
  walk: Walk,
  options: KubeFieldOptions,
): StructuralSchema {
  const def = defOf(schema);
  switch (def.type) {
    case 'string':
      return stringSchema(def, path, walk);
    case 'number':
      return numberSchema(def);
    case 'boolean':
      return { type: 'boolean' };
    case 'literal':
      return enumSchema(def['values'] as unknown[], path, walk);
    case 'enum':
      return enumSchema(Object.values(def['entries'] as Record<string, unknown>), path, walk);
    case 'union':
      return unionSchema(def, path, walk, options);
    case 'object':
      return objectSchema(def, path, walk, options);
    case 'record':
      // Kept whole: a typed additionalProperties would prune (or reject) what the field is meant to keep.
      if (options.preserveUnknownFields)
        return { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
      return recordSchema(def, path, walk);
    case 'array': {
      const items = convert(def['element'] as z.core.$ZodType, `${path}[]`, walk).schema;
      const out: StructuralSchema = { type: 'array', items };
      for (const check of checksOf(def)) {
        if (check.check === 'min_length') out.minItems = check['minimum'] as number;
        else if (check.check === 'max_length') out.maxItems = check['maximum'] as number;
        else if (check.check === 'length_equals') out.minItems = out.maxItems = check['length'] as number;
      }
      return out;
    }
    case 'unknown':
    case 'any':
      if (options.preserveUnknownFields) return { 'x-kubernetes-preserve-unknown-fields': true };
      walk.problems.push(
        `${path}: z.${def.type}() has no type, and every field of a structural schema needs one; give it a type, or mark it with preserveUnknownFields(z.${def.type}())`,
      );
      return { 'x-kubernetes-preserve-unknown-fields': true };
    default:
      walk.problems.push(`${path}: ${unsupported(def.type)}`);
      return {};
  }
}

function unsupported(type: string): string {
  const hints: Record<string, string> = {
    bigint: 'z.bigint()/z.int64() is not JSON; use z.int() (integer) or z.string()',
    date: 'z.date() is not JSON; use z.iso.datetime() (a string with format date-time)',
    tuple: 'a tuple has no structural form (arrays have one item schema); use an object with named fields',
    intersection:
      'an intersection has no structural form; use one object (z.object({...a.shape, ...b.shape}))',
    transform: 'a transform alone has no input type; put it after a typed schema (z.string().transform(...))',
    template_literal: 'a template literal type has no structural form; use z.string().regex(...)',
  };
  return hints[type] ?? `z.${type}() has no structural OpenAPI form`;
}

function stringSchema(def: ZodDefView, path: string, walk: Walk): StructuralSchema {
  const out: StructuralSchema = { type: 'string' };
  // A string format schema (z.email()) is its own check; z.string().email() lists it among the checks.
  const checks =
    def['format'] !== undefined ? [def as unknown as CheckView, ...checksOf(def)] : checksOf(def);
  const patterns: string[] = [];
  for (const check of checks) {
    switch (check.check) {
      case 'min_length':
        out.minLength = Math.max(out.minLength ?? 0, check['minimum'] as number);
        break;
      case 'max_length':
        out.maxLength = Math.min(out.maxLength ?? Number.POSITIVE_INFINITY, check['maximum'] as number);
        break;
      case 'length_equals':
        out.minLength = out.maxLength = check['length'] as number;
        break;
      case 'string_format': {
        const format = check['format'] as string;
        const known = stringFormats[format];
        if (known) out.format = known;
        else if (check['pattern'] instanceof RegExp) patterns.push(regexSource(check['pattern'], path, walk));
        else walk.problems.push(`${path}: the string format ${format} has no OpenAPI form; use .regex(...)`);
        break;
      }
      default:
        walk.problems.push(
          `${path}: the string check ${check.check} has no OpenAPI form; use a CEL rule (withRules)`,
        );
    }
  }
  if (patterns.length === 1) out.pattern = patterns[0]!;
  // OpenAPI has one pattern per node: several must all match, which lookaheads would say but Go's RE2 lacks.
  else if (patterns.length > 1) {
    out.pattern = patterns[0]!;
    out['x-kubernetes-validations'] = patterns.slice(1).map((p) => ({
      rule: `self.matches(${JSON.stringify(p)})`,
      message: `must match ${p}`,
    }));
  }
  return out;
}

/**
 * The apiserver compiles patterns with Go's RE2: no lookaround, no backreferences. Flags other than `u`
 * have no equivalent in a plain pattern (`i` could be `(?i)`, which RE2 has, so that one is translated).
 */
function regexSource(re: RegExp, path: string, walk: Walk): string {
  const source = re.source;
  if (/\(\?<?[=!]/.test(source)) {
    walk.problems.push(
      `${path}: the pattern /${source}/ uses lookaround, which the apiserver's RE2 engine lacks`,
    );
  }
  if (/\\[1-9]|\\k</.test(source)) {
    walk.problems.push(
      `${path}: the pattern /${source}/ uses a backreference, which the apiserver's RE2 engine lacks`,
    );
  }
  const flags = re.flags.replace(/[ugd]/g, '');
  if (flags === 'i') return `(?i)${source}`;
  if (flags !== '')
    walk.problems.push(`${path}: the pattern /${source}/${re.flags} has flags RE2 patterns cannot carry`);
  return source;
}

function numberSchema(def: ZodDefView): StructuralSchema {
  const format = def['format'] as string | undefined;
  const out: StructuralSchema =
    format === 'safeint' || format === 'int32' || format === 'uint32'
      ? { type: 'integer' }
      : { type: 'number' };
  if (format === 'int32') out.format = 'int32';
  else if (format === 'uint32') {
    // Unsigned 32 bits do not fit int32: int64 with the range spelled out.
    out.format = 'int64';
    out.minimum = 0;
    out.maximum = 4294967295;
  } else if (format === 'float32') out.format = 'float';
  else if (format === 'float64') out.format = 'double';
  for (const check of checksOf(def)) {
    const value = check['value'] as number;
    if (check.check === 'greater_than' && (out.minimum === undefined || value >= out.minimum)) {
      out.minimum = value;
      if (check['inclusive']) delete out.exclusiveMinimum;
      else out.exclusiveMinimum = true;
    } else if (check.check === 'less_than' && (out.maximum === undefined || value <= out.maximum)) {
      out.maximum = value;
      if (check['inclusive']) delete out.exclusiveMaximum;
      else out.exclusiveMaximum = true;
    } else if (check.check === 'multiple_of') {
      out.multipleOf = value;
    }
  }
  return out;
}

function enumSchema(values: unknown[], path: string, walk: Walk): StructuralSchema {
  const nonNull = values.filter((v) => v !== null && v !== undefined);
  const types = new Set(nonNull.map(jsonType));
  if (types.size !== 1) {
    walk.problems.push(
      types.size === 0
        ? `${path}: a literal null or undefined alone has no type; use .nullable() or .optional() on a typed field`
        : `${path}: an enum mixing ${[...types].sort().join(' and ')} is not structural (one type per field); use values of one type`,
    );
    return {};
  }
  const out: StructuralSchema = { type: [...types][0] as StructuralSchema['type'], enum: nonNull };
  if (nonNull.length !== values.length) out.nullable = true;
  return out;
}

function jsonType(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  if (typeof v === 'bigint') return 'bigint';
  return typeof v;
}

/** A union option as far as unions care: literal values, a null, or a typed schema. */
function unwrapOption(option: z.core.$ZodType): { kind: string; values?: unknown[]; optional: boolean } {
  let s = option;
  let optional = false;
  for (;;) {
    const def = defOf(s);
    if (def.type === 'optional' || def.type === 'nullable' || def.type === 'readonly') {
      if (def.type === 'optional') optional = true;
      if (def.type === 'nullable') return { kind: 'mixed', optional };
      s = def['innerType'] as z.core.$ZodType;
      continue;
    }
    if (def.type === 'literal') return { kind: 'literal', values: def['values'] as unknown[], optional };
    if (def.type === 'enum') {
      return { kind: 'literal', values: Object.values(def['entries'] as Record<string, unknown>), optional };
    }
    if (def.type === 'null') return { kind: 'null', optional };
    if (def.type === 'number') {
      const f = def['format'] as string | undefined;
      return { kind: f === 'safeint' || f === 'int32' || f === 'uint32' ? 'integer' : 'number', optional };
    }
    return { kind: def.type, optional };
  }
}

function unionSchema(def: ZodDefView, path: string, walk: Walk, options: KubeFieldOptions): StructuralSchema {
  const opts = def['options'] as z.core.$ZodType[];
  const parts = opts.map(unwrapOption);
  const typed = opts.filter((_, i) => parts[i]!.kind !== 'null');
  const nullable = parts.some((p) => p.kind === 'null');
  const withNull = (s: StructuralSchema): StructuralSchema => (nullable ? { ...s, nullable: true } : s);
  const kinds = new Set(parts.filter((p) => p.kind !== 'null').map((p) => p.kind));
  if (options.intOrString || (kinds.size === 2 && kinds.has('integer') && kinds.has('string'))) {
    // The apiserver's one sanctioned union; a typed schema would be refused next to the flag.
    return withNull({ 'x-kubernetes-int-or-string': true });
  }
  if (parts.every((p) => p.kind === 'literal' || p.kind === 'null')) {
    // z.union([z.literal('a'), z.literal('b')]) is an enum written longhand.
    const values = parts.flatMap((p) => p.values ?? [null]);
    return enumSchema(values, path, walk);
  }
  if (typed.length === 1) return withNull(convert(typed[0]!, path, walk).schema);
  const discriminated = def['discriminator'] !== undefined;
  if (discriminated && kinds.size === 1 && kinds.has('object')) {
    return withNull(discriminatedSchema(def['discriminator'] as string, typed, path, walk));
  }
  walk.problems.push(
    `${path}: a union of ${[...kinds].join(', ')} is not structural (the apiserver needs one type per field)` +
      '; use z.enum() for a choice of values, intOrString() for integer-or-string, z.discriminatedUnion() of objects, or one object with optional fields and a CEL rule (withRules)',
  );
  return {};
}

/** CEL keywords: a field with one of these names is reached as `self.__name__`. */
const celReserved = new Set(
  'true false null in as break const continue else for function if import let loop package namespace return var void while'.split(
    ' ',
  ),
);

/** How CEL in a CRD names a field of `self` (the apiserver's escaping of names that are not identifiers). */
function celField(name: string): string | undefined {
  if (!/^[a-zA-Z_.\-/][a-zA-Z0-9_.\-/]*$/.test(name)) return undefined;
  if (celReserved.has(name)) return `__${name}__`;
  return name
    .replaceAll('__', '__underscores__')
    .replaceAll('.', '__dot__')
    .replaceAll('-', '__dash__')
    .replaceAll('/', '__slash__');
}

/**
 * A discriminated union of objects as the apiserver can hold it: one object whose discriminator is an enum
 * of every variant's values, whose other fields are the variants' fields (each optional unless every
 * variant requires it), and one CEL rule per variant saying which fields it requires and which it forbids.
 * The TypeScript type stays the union; the apiserver enforces the same shape.
 */
function discriminatedSchema(
  discriminator: string,
  options: z.core.$ZodType[],
  path: string,
  walk: Walk,
): StructuralSchema {
  interface Variant {
    values: unknown[];
    fields: Map<string, Converted>;
  }
  const variants: Variant[] = [];
  for (const option of options) {
    let schema = option;
    while (defOf(schema).type === 'readonly') schema = defOf(schema)['innerType'] as z.core.$ZodType;
    const shape = defOf(schema)['shape'] as Record<string, z.core.$ZodType>;
    const tag = shape[discriminator];
    const values = tag ? (unwrapOption(tag).values ?? []) : [];
    const fields = new Map<string, Converted>();
    for (const [key, field] of Object.entries(shape)) {
      if (key !== discriminator) fields.set(key, convert(field, `${path}.${key}`, walk));
    }
    variants.push({ values, fields });
  }
  const properties: Record<string, StructuralSchema> = {
    [discriminator]: enumSchema(
      variants.flatMap((v) => v.values),
      `${path}.${discriminator}`,
      walk,
    ),
  };
  for (const variant of variants) {
    for (const [key, field] of variant.fields) {
      const before = properties[key];
      if (field.schema.default !== undefined) {
        walk.problems.push(
          `${path}.${key}: a default inside a variant of a discriminated union would be applied to every variant; default it in code instead`,
        );
      }
      if (before === undefined) properties[key] = field.schema;
      else if (JSON.stringify(before) !== JSON.stringify(field.schema)) {
        walk.problems.push(
          `${path}.${key}: variants of the discriminated union give this field different schemas; one field has one schema in the apiserver, so rename one of them`,
        );
      }
    }
  }
  const names = Object.keys(properties).filter((k) => k !== discriminator);
  const requiredEverywhere = names.filter((k) =>
    variants.every((v) => v.fields.has(k) && !v.fields.get(k)!.optional),
  );
  const tagField = celField(discriminator);
  const rules: CelRule[] = [];
  for (const variant of variants) {
    const requires = names.filter(
      (k) => variant.fields.has(k) && !variant.fields.get(k)!.optional && !requiredEverywhere.includes(k),
    );
    const forbids = names.filter((k) => !variant.fields.has(k));
    if (requires.length === 0 && forbids.length === 0) continue;
    const unreachable = [discriminator, ...requires, ...forbids].filter((k) => celField(k) === undefined);
    if (unreachable.length > 0 || tagField === undefined) {
      walk.problems.push(`${path}: CEL cannot name the field(s) ${unreachable.join(', ')}; rename them`);
      continue;
    }
    const literals = variant.values.map((v) => JSON.stringify(v));
    const when =
      literals.length === 1
        ? `self.${tagField} == ${literals[0]}`
        : `self.${tagField} in [${literals.join(', ')}]`;
    const checks = [
      ...requires.map((k) => `has(self.${celField(k)})`),
      ...forbids.map((k) => `!has(self.${celField(k)})`),
    ];
    const said = [
      ...(requires.length > 0 ? [`requires ${requires.join(', ')}`] : []),
      ...(forbids.length > 0 ? [`allows no ${forbids.join(', ')}`] : []),
    ].join(' and ');
    rules.push({
      rule: `!(${when}) || (${checks.join(' && ')})`,
      message: `${discriminator} ${variant.values.map(String).join(' or ')} ${said}`,
    });
  }
  return {
    type: 'object',
    properties,
    required: [discriminator, ...requiredEverywhere],
    ...(rules.length > 0 ? { 'x-kubernetes-validations': rules } : {}),
  };
}

function objectSchema(
  def: ZodDefView,
  path: string,
  walk: Walk,
  options: KubeFieldOptions,
): StructuralSchema {
  const shape = def['shape'] as Record<string, z.core.$ZodType>;
  const properties: Record<string, StructuralSchema> = {};
  const required: string[] = [];
  for (const [key, field] of Object.entries(shape)) {
    const c = convert(field, `${path}.${key}`, walk);
    properties[key] = c.schema;
    if (!c.optional) required.push(key);
  }
  const out: StructuralSchema = { type: 'object' };
  if (Object.keys(properties).length > 0) out.properties = properties;
  if (required.length > 0) out.required = required;
  const catchall = def['catchall'] as z.core.$ZodType | undefined;
  const catchType = catchall ? defOf(catchall).type : 'never';
  if (catchType === 'unknown' || catchType === 'any' || options.preserveUnknownFields) {
    // z.looseObject: keep what the schema does not name (the apiserver would prune it otherwise).
    out['x-kubernetes-preserve-unknown-fields'] = true;
  } else if (catchType !== 'never') {
    walk.problems.push(
      `${path}: an object with both named fields and a .catchall() schema is not structural (properties and additionalProperties exclude each other); use a record field beside the named ones`,
    );
  }
  return out;
}

function recordSchema(def: ZodDefView, path: string, walk: Walk): StructuralSchema {
  const keyType = def['keyType'] as z.core.$ZodType;
  const keyDef = defOf(keyType);
  const value = convert(def['valueType'] as z.core.$ZodType, `${path}.*`, walk).schema;
  if (keyDef.type === 'enum' || keyDef.type === 'literal') {
    // A record over a fixed set of keys is an object with those fields (all required, unless partial).
    const keys =
      keyDef.type === 'enum' ? Object.values(keyDef['entries'] as object) : (keyDef['values'] as unknown[]);
    const properties = Object.fromEntries(keys.map((k) => [String(k), structuredClone(value)]));
    return def['partial']
      ? { type: 'object', properties }
      : { type: 'object', properties, required: keys.map(String) };
  }
  if (keyDef.type !== 'string') {
    walk.problems.push(`${path}: record keys must be strings (JSON object keys are), not z.${keyDef.type}()`);
  }
  const out: StructuralSchema = { type: 'object', additionalProperties: value };
  // Key checks have no OpenAPI form (no propertyNames); a CEL rule over the keys says the same.
  const keyRules = keyDef.type === 'string' ? stringSchema(keyDef, `${path} (keys)`, walk) : {};
  const rules: CelRule[] = [];
  if (keyRules.pattern)
    rules.push({
      rule: `self.all(k, k.matches(${JSON.stringify(keyRules.pattern)}))`,
      message: `keys must match ${keyRules.pattern}`,
    });
  if (keyRules.maxLength !== undefined)
    rules.push({
      rule: `self.all(k, size(k) <= ${keyRules.maxLength})`,
      message: `keys must be at most ${keyRules.maxLength} characters`,
    });
  if (keyRules.minLength !== undefined)
    rules.push({
      rule: `self.all(k, size(k) >= ${keyRules.minLength})`,
      message: `keys must be at least ${keyRules.minLength} characters`,
    });
  if (rules.length > 0) out['x-kubernetes-validations'] = rules;
  return out;
}

/**
 * `status.conditions` as Kubernetes API conventions define them (`metav1.Condition`, the schema
 * kubebuilder emits): a list keyed by `type` (at most `max` entries), each with `status` True/False/Unknown,
 * `reason` (CamelCase, required), `message`, `lastTransitionTime` and `observedGeneration`. Its items are
 * what `setCondition` writes.
 *
 * ```ts
 * status: z.object({ conditions: statusConditions().optional() })
 * ```
 */
export function statusConditions(max = 16) {
  const condition = z.object({
    type: z
      .string()
      .max(316)
      .regex(
        /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/,
      )
      .describe('Type of condition in CamelCase, e.g. Ready'),
    status: z.enum(['True', 'False', 'Unknown']).describe('Status of the condition: True, False or Unknown'),
    observedGeneration: z
      .int()
      .min(0)
      .optional()
      .describe('The metadata.generation the condition was set for'),
    lastTransitionTime: z.iso
      .datetime()
      .describe('When the condition last changed from one status to another'),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/)
      .describe("The reason for the condition's last transition, in CamelCase"),
    message: z.string().max(32768).describe('A human-readable message with details about the transition'),
  });
  return listMap(z.array(condition).max(max), 'type');
}
