// What the framework does to values between Terraform and the handlers: defaults, "(known after apply)",
// requires-replace, validators, merging what a handler returned, and environment fallbacks.
import {
  type CtyValue,
  formatPath,
  isUnknown,
  unknown,
  type ValuePath,
  valuesEqual,
} from '../protocol/cty.ts';
import type { Diagnostics } from './diagnostics.ts';
import type { AttributeSpec, FieldSpec } from './schema.ts';

type Obj = Record<string, CtyValue>;
type FieldMap = Readonly<Record<string, FieldSpec>>;

function isObj(v: CtyValue | undefined): v is Obj {
  return v !== null && v !== undefined && typeof v === 'object' && !Array.isArray(v) && !isUnknown(v);
}

/** A shallow-per-level copy of an object value, so the planner never edits what it was given. */
function copy(v: Obj): Obj {
  return { ...v };
}

/**
 * The planned new state of a resource from Terraform's proposed new state: defaults where the configuration
 * is silent, and, when anything changes (or on create), computed values the configuration does not set
 * become unknown unless the attribute keeps its state (`useStateForUnknown`).
 */
export function planResource(fields: FieldMap, prior: Obj | null, proposed: Obj, config: Obj): Obj {
  const planned = applyDefaults(fields, proposed, config);
  if (prior !== null && valuesEqual(planned, prior)) return planned;
  return markUnknown(fields, planned, config, prior);
}

/** The nested fields of a field and how they nest, when it has any. */
function nestedOf(field: FieldSpec): { mode: string; fields: FieldMap } | undefined {
  if (field.kind === 'block') return { mode: field.mode, fields: field.fields };
  return field.nested ? { mode: field.nested.mode, fields: field.nested.fields } : undefined;
}

/** Apply `fn` to each nested object of `value`, with the configuration's and the prior state's counterpart. */
function mapNested(
  mode: string,
  value: CtyValue | undefined,
  config: CtyValue | undefined,
  prior: CtyValue | undefined,
  fn: (v: Obj, c: Obj | null, p: Obj | null) => Obj,
): CtyValue | undefined {
  const obj = (x: CtyValue | undefined): Obj | null => (isObj(x) ? x : null);
  if (mode === 'single') return isObj(value) ? fn(value, obj(config), obj(prior)) : value;
  if (Array.isArray(value)) {
    // Lists and sets pair elements by position (sets arrive in Terraform's order on every call).
    const c = Array.isArray(config) ? config : [];
    const p = Array.isArray(prior) ? prior : [];
    return value.map((e: CtyValue, i: number) => (isObj(e) ? fn(e, obj(c[i]), obj(p[i])) : e));
  }
  if (mode === 'map' && isObj(value)) {
    const c = obj(config);
    const p = obj(prior);
    return Object.fromEntries(
      Object.entries(value).map(([k, e]) => [k, isObj(e) ? fn(e, obj(c?.[k]), obj(p?.[k])) : e]),
    );
  }
  return value;
}

function applyDefaults(fields: FieldMap, value: Obj, config: Obj | null): Obj {
  const out = copy(value);
  for (const [name, field] of Object.entries(fields)) {
    const configured = config?.[name] ?? null;
    if (field.kind === 'attribute' && field.default !== undefined && configured === null) {
      out[name] = field.default;
      continue;
    }
    const nested = nestedOf(field);
    if (nested) {
      out[name] =
        mapNested(nested.mode, out[name], configured, null, (v, c) => applyDefaults(nested.fields, v, c)) ??
        null;
    }
  }
  return out;
}

function markUnknown(fields: FieldMap, planned: Obj, config: Obj | null, prior: Obj | null): Obj {
  const out = copy(planned);
  for (const [name, field] of Object.entries(fields)) {
    const configured = config?.[name] ?? null;
    if (field.kind === 'attribute' && field.computed && configured === null && field.default === undefined) {
      const keep =
        field.useStateForUnknown && prior !== null && prior[name] !== null && prior[name] !== undefined;
      out[name] = keep ? (prior[name] as CtyValue) : unknown;
      continue;
    }
    const nested = nestedOf(field);
    if (nested) {
      out[name] =
        mapNested(nested.mode, out[name], configured, prior?.[name], (v, c, p) =>
          markUnknown(nested.fields, v, c, p),
        ) ?? null;
    }
  }
  return out;
}

/**
 * Attributes whose change replaces the resource: those marked `requiresReplace`, and, when the resource has
 * no `update`, every attribute the configuration sets.
 */
export function replacePaths(fields: FieldMap, prior: Obj, planned: Obj, canUpdate: boolean): ValuePath[] {
  const paths: ValuePath[] = [];
  for (const [name, field] of Object.entries(fields)) {
    const flagged =
      field.kind === 'attribute'
        ? field.requiresReplace || (!canUpdate && (field.required || field.optional))
        : !canUpdate;
    if (flagged && !valuesEqual(prior[name], planned[name])) paths.push([name]);
  }
  return paths;
}

/** Run every attribute's validators over a configuration (known, non-null values only), adding errors at their paths. */
export function validateFields(
  fields: FieldMap,
  value: Obj,
  diagnostics: Diagnostics,
  path: ValuePath = [],
): void {
  for (const [name, field] of Object.entries(fields)) {
    const v = value[name];
    if (v === null || v === undefined || isUnknown(v)) continue;
    const at = [...path, name];
    if (field.kind === 'attribute') {
      runValidators(field, v, diagnostics, at);
      if (field.nested) validateNested(field.nested.mode, field.nested.fields, v, diagnostics, at);
    } else {
      validateNested(field.mode, field.fields, v, diagnostics, at);
      const n = Array.isArray(v) ? v.length : isObj(v) ? 1 : 0;
      if (field.mode !== 'single' && field.maxItems > 0 && n > field.maxItems) {
        diagnostics.error(
          'Too many blocks',
          `at most ${field.maxItems} "${name}" blocks are allowed, got ${n}`,
          at,
        );
      }
    }
  }
}

function validateNested(
  mode: string,
  fields: FieldMap,
  v: CtyValue,
  diagnostics: Diagnostics,
  at: ValuePath,
): void {
  if (mode === 'single' && isObj(v)) validateFields(fields, v, diagnostics, at);
  else if (Array.isArray(v)) {
    v.forEach((e: CtyValue, i: number) => {
      if (isObj(e)) validateFields(fields, e, diagnostics, [...at, i]);
    });
  } else if (mode === 'map' && isObj(v)) {
    for (const [k, e] of Object.entries(v)) if (isObj(e)) validateFields(fields, e, diagnostics, [...at, k]);
  }
}

function runValidators(field: AttributeSpec, v: CtyValue, diagnostics: Diagnostics, at: ValuePath): void {
  for (const validator of field.validators) {
    const result = (validator as (value: CtyValue) => string | undefined | readonly string[])(v);
    const messages = result === undefined ? [] : typeof result === 'string' ? [result] : result;
    for (const message of messages)
      diagnostics.error('Invalid attribute value', `${formatPath(at)}: ${message}`, at);
  }
}

/**
 * Fill a planned state with what a create or update returned: the handler's value wins where the plan was
 * unknown or the attribute is computed; configured values stay as planned (Terraform rejects an apply that
 * changes them).
 */
export function mergeApplied(fields: FieldMap, planned: Obj, returned: Record<string, unknown>): Obj {
  const out = copy(planned);
  for (const [name, field] of Object.entries(fields)) {
    const r = returned[name];
    if (r === undefined) continue;
    const computed = field.kind === 'attribute' && field.computed;
    if (computed || isUnknown(planned[name])) out[name] = r as CtyValue;
  }
  return out;
}

/** Top-level attributes still unknown: after apply, Terraform refuses them. */
export function unknownPaths(value: Obj): string[] {
  return Object.entries(value)
    .filter(([, v]) => isUnknown(v))
    .map(([k]) => k);
}

/** Unknown values as null, for handlers (at apply, only computed values can still be unknown). */
export function knownOrNull(value: Obj): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(value)) {
    if (isUnknown(v)) out[k] = null;
    else if (isObj(v)) out[k] = knownOrNull(v);
    else if (Array.isArray(v))
      out[k] = v.map((e: CtyValue) => (isUnknown(e) ? null : isObj(e) ? knownOrNull(e) : e));
    else out[k] = v;
  }
  return out;
}

/** Provider configuration: fill attributes the configuration leaves out from their environment variables. */
export function applyEnvFallbacks(
  fields: FieldMap,
  config: Obj,
  env: NodeJS.ProcessEnv,
  diagnostics: Diagnostics,
): Obj {
  const out = copy(config);
  for (const [name, field] of Object.entries(fields)) {
    if (field.kind !== 'attribute') continue;
    if (out[name] === null || out[name] === undefined) {
      const from = field.env.find((e) => env[e] !== undefined && env[e] !== '');
      if (from !== undefined) {
        const raw = env[from] as string;
        if (field.type === 'string') out[name] = raw;
        else if (field.type === 'number' && raw.trim() !== '' && !Number.isNaN(Number(raw)))
          out[name] = Number(raw);
        else if (field.type === 'bool' && /^(true|false|1|0)$/i.test(raw))
          out[name] = /^(true|1)$/i.test(raw);
        else
          diagnostics.error(
            'Invalid environment variable',
            `${from}=${JSON.stringify(raw)} is not a valid ${JSON.stringify(field.type)}`,
            [name],
          );
      }
    }
    if (field.required && field.env.length > 0 && (out[name] === null || out[name] === undefined)) {
      diagnostics.error(
        'Missing provider configuration',
        `"${name}" must be set in the provider block or with ${field.env.join(' or ')}`,
        [name],
      );
    }
  }
  return out;
}
