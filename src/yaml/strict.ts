// Strict decoding: YAML into a zod schema with yaml.v3's KnownFields. A key the schema does not know is an
// error (zod's plain `z.object` would drop it silently), located at file:line:column with a did-you-mean;
// a duplicate key is an error; every problem of every document is listed at once. Locating is lazy: the
// happy path is the `yaml` package's parse plus zod, and positions are looked up only for problems.
import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  type Node,
  parseAllDocuments,
  stringify,
  type YAMLMap,
} from 'yaml';
import type { z } from 'zod';
import { formatProblem, YamlError, YamlErrorCode, type YamlProblem } from './errors.ts';
import { formatPath, type PathSegment } from './path.ts';
import { duplicateKeyMessage, isEmptyDocument, LineIndex } from './positions.ts';
import { didYouMean } from './suggest.ts';

/** Options of {@link parseStrict} and {@link parseAllStrict}. */
export interface StrictOptions {
  /** The file's name in problems (default `<input>`). */
  readonly file?: string;
}

/**
 * Picks the schema of each document from its data (for streams mixing kinds); undefined checks only the
 * YAML itself. See {@link schemaByKind}.
 */
export type SchemaSelector = (document: unknown, index: number) => z.ZodType | undefined;

/**
 * A {@link SchemaSelector} choosing by `apiVersion` and `kind`: a Deployment gets the Deployment schema, a
 * custom resource its CRD's; a document of no listed kind gets `fallback` (e.g. {@link kubeObjectSchema}).
 */
export function schemaByKind(
  schemas: readonly { apiVersion: string; kind: string; schema: z.ZodType }[],
  fallback?: z.ZodType,
): SchemaSelector {
  const byKey = new Map(schemas.map((s) => [`${s.apiVersion}\n${s.kind}`, s.schema]));
  return (doc) => {
    const d = doc as { apiVersion?: unknown; kind?: unknown } | null;
    const key = d !== null && typeof d === 'object' ? `${String(d.apiVersion)}\n${String(d.kind)}` : '';
    return byKey.get(key) ?? fallback;
  };
}

/** What {@link checkYaml} found: the decoded documents (undefined where one failed) and every problem. */
export interface YamlCheck<T> {
  /** One entry per non-empty document, in order: the schema's output, or undefined when it had problems. */
  readonly values: (T | undefined)[];
  /** The 0-based index (among all `---` sections) of each entry of `values`. */
  readonly documents: number[];
  /** Every problem, in document and file order. */
  readonly problems: YamlProblem[];
}

type ParsedDocument = Document.Parsed;
type ZodDef = { type: string; [key: string]: unknown };

function defOf(schema: unknown): ZodDef | undefined {
  return (schema as { _zod?: { def?: ZodDef } } | undefined)?._zod?.def;
}

/** A key the schema does not know, or a value JSON cannot carry, found while walking value and schema together. */
interface Finding {
  path: PathSegment[];
  /** The unknown key (its position is the key's), or undefined for a value problem. */
  key?: string;
  message: string;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The schema under wrappers that do not change which keys are known (optional, default, pipe input...). */
function unwrap(schema: unknown): ZodDef | undefined {
  let def = defOf(schema);
  for (let guard = 0; def !== undefined && guard < 64; guard++) {
    switch (def.type) {
      case 'optional':
      case 'nullable':
      case 'default':
      case 'prefault':
      case 'catch':
      case 'readonly':
      case 'nonoptional':
      case 'success':
        def = defOf(def['innerType']);
        break;
      case 'pipe':
        def = defOf(def['in']);
        break;
      case 'lazy':
        def = defOf((def['getter'] as () => unknown)());
        break;
      default:
        return def;
    }
  }
  return def;
}

/** The keys an object-like schema knows (objects, and both sides of an intersection). */
function knownKeys(def: ZodDef | undefined): string[] {
  if (def === undefined) return [];
  if (def.type === 'object') return Object.keys(def['shape'] as object);
  if (def.type === 'intersection')
    return [...knownKeys(unwrap(def['left'])), ...knownKeys(unwrap(def['right']))];
  return [];
}

/** Values JSON (and so the Kubernetes API) cannot carry: `.inf`, `.nan`. */
function checkJsonValues(value: unknown, path: PathSegment[], out: Finding[]): void {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) out.push({ path: [...path], message: `${value} cannot be written as JSON` });
  } else if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      path.push(i);
      checkJsonValues(value[i], path, out);
      path.pop();
    }
  } else if (isPlainObject(value)) {
    for (const k in value) {
      path.push(k);
      checkJsonValues(value[k], path, out);
      path.pop();
    }
  }
}

/**
 * Walk `value` along `schema`, reporting every key a `z.object` does not declare (unless it opted into
 * extra keys with `z.looseObject` or `.catchall(...)`). `extra` holds keys known elsewhere (the other
 * side of an intersection).
 */
function walk(
  value: unknown,
  schema: unknown,
  path: PathSegment[],
  out: Finding[],
  extra?: readonly string[],
): void {
  const def = unwrap(schema);
  if (def === undefined) {
    checkJsonValues(value, path, out);
    return;
  }
  switch (def.type) {
    case 'object': {
      if (!isPlainObject(value)) {
        checkJsonValues(value, path, out);
        return;
      }
      const shape = def['shape'] as Record<string, unknown>;
      const catchall = def['catchall'];
      const catchallType = defOf(catchall)?.type;
      const strict = catchall === undefined || catchallType === 'never';
      for (const k in value) {
        path.push(k);
        if (Object.hasOwn(shape, k)) walk(value[k], shape[k], path, out);
        else if (extra?.includes(k)) {
          // Known to the other side of an intersection, which walks it.
        } else if (strict) {
          const known = extra ? [...Object.keys(shape), ...extra] : Object.keys(shape);
          const hint = didYouMean(k, known);
          out.push({
            path: [...path],
            key: k,
            message: `unknown field ${JSON.stringify(k)}${hint === undefined ? '' : ` (did you mean ${JSON.stringify(hint)}?)`}`,
          });
        } else walk(value[k], catchall, path, out);
        path.pop();
      }
      return;
    }
    case 'record':
      if (!isPlainObject(value)) {
        checkJsonValues(value, path, out);
        return;
      }
      for (const k in value) {
        path.push(k);
        walk(value[k], def['valueType'], path, out);
        path.pop();
      }
      return;
    case 'array':
      if (!Array.isArray(value)) {
        checkJsonValues(value, path, out);
        return;
      }
      for (let i = 0; i < value.length; i++) {
        path.push(i);
        walk(value[i], def['element'], path, out);
        path.pop();
      }
      return;
    case 'tuple': {
      if (!Array.isArray(value)) {
        checkJsonValues(value, path, out);
        return;
      }
      const items = def['items'] as unknown[];
      for (let i = 0; i < value.length; i++) {
        path.push(i);
        walk(value[i], i < items.length ? items[i] : def['rest'], path, out);
        path.pop();
      }
      return;
    }
    case 'intersection': {
      const left = unwrap(def['left']);
      const right = unwrap(def['right']);
      const before = out.length;
      walk(value, def['left'], path, out, [...(extra ?? []), ...knownKeys(right)]);
      walk(value, def['right'], path, out, [...(extra ?? []), ...knownKeys(left)]);
      // A value problem both sides found once each.
      const seen = new Set<string>();
      const merged = out.splice(before).filter((f) => {
        const id = f.key !== undefined ? `${formatPath(f.path)}|key` : `${formatPath(f.path)}|${f.message}`;
        if (seen.has(id)) return false;
        seen.add(id);
        return true;
      });
      out.push(...merged);
      return;
    }
    case 'union': {
      walkUnion(value, def, path, out, extra);
      return;
    }
    default: {
      checkJsonValues(value, path, out);
      return;
    }
  }
}

/** A union: the option the value is (by discriminator, else the one that accepts it, else the closest). */
function walkUnion(
  value: unknown,
  def: ZodDef,
  path: PathSegment[],
  out: Finding[],
  extra?: readonly string[],
): void {
  const options = def['options'] as z.ZodType[];
  const discriminator = def['discriminator'] as string | undefined;
  if (discriminator !== undefined && isPlainObject(value)) {
    const tag = value[discriminator];
    const option = options.find((o) => {
      const field = unwrap(o);
      const d =
        field?.type === 'object'
          ? unwrap((field['shape'] as Record<string, unknown>)[discriminator])
          : undefined;
      return (d?.['values'] as unknown[] | undefined)?.includes(tag);
    });
    if (option !== undefined) {
      walk(value, option, path, out, extra);
      return;
    }
  }
  // Only options of the value's kind (a string option says nothing about an object's keys).
  const kinds = isPlainObject(value)
    ? ['object', 'record', 'intersection', 'union']
    : Array.isArray(value)
      ? ['array', 'tuple', 'union']
      : [];
  const candidates = options.filter((o) => kinds.includes(unwrap(o)?.type ?? ''));
  if (candidates.length === 0) {
    checkJsonValues(value, path, out);
    return;
  }
  const tried = candidates.map((option) => {
    const found: Finding[] = [];
    walk(value, option, [...path], found, extra);
    return { found, accepts: option.safeParse(value).success };
  });
  // The option that takes the value with no unknown key; else the accepting one with the fewest; else
  // (zod reports the mismatch) the closest option's unknown keys, which usually say what is wrong.
  if (tried.some((t) => t.found.length === 0 && t.accepts)) return;
  const accepting = tried.filter((t) => t.accepts);
  const pool = accepting.length > 0 ? accepting : tried;
  if (accepting.length === 0 && tried.some((t) => t.found.length === 0)) return;
  const best = pool.reduce((a, b) => (b.found.length < a.found.length ? b : a));
  out.push(...best.found);
}

/** The node at `path` (the key node when `key` is set), or the deepest node on the way. */
function locate(doc: ParsedDocument, path: readonly PathSegment[], key: boolean): Node | undefined {
  let node = doc.contents as Node | null | undefined;
  let last: Node | undefined = node ?? undefined;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    if (isAlias(node)) node = node.resolve(doc) as Node | undefined;
    if (isMap(node)) {
      const pair = (node as YAMLMap).items.find((p) =>
        isScalar(p.key) ? String(p.key.value) === String(seg) : String(p.key) === String(seg),
      );
      if (pair === undefined) return last;
      if (key && i === path.length - 1) return (pair.key as Node) ?? last;
      node = pair.value as Node | null;
      // A missing value (`key:`) is best shown at its key.
      last = node?.range && node.range[0] !== node.range[1] ? node : (pair.key as Node);
    } else if (isSeq(node)) {
      const item = node.items[Number(seg)] as Node | undefined;
      if (item === undefined) return last;
      node = item;
      last = item;
    } else {
      return last;
    }
  }
  return last;
}

/** A zod issue's message, said for a YAML reader: a missing field says so. */
function issueMessage(issue: z.core.$ZodIssue, present: boolean): string {
  if (issue.code === 'invalid_type' && !present) return `missing required field (expected ${issue.expected})`;
  return issue.message;
}

function hasPath(value: unknown, path: readonly PropertyKey[]): boolean {
  let cur = value;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, seg as string)) return false;
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  return true;
}

/**
 * Check every document of `text` against `schema` (or only the YAML itself when no schema is given) and
 * return what decoded and every problem, without throwing: syntax errors, duplicate keys, unknown fields
 * (with a did-you-mean), schema errors and values JSON cannot carry, each at file:line:column. Empty
 * documents (a trailing `---`) are skipped, as kubectl skips them. Values are JSON data: keys are strings,
 * aliases and merge keys (`<<`) resolved.
 */
export function checkYaml<S extends z.ZodType>(
  text: string,
  schemaOrSelector: S | SchemaSelector | undefined,
  options: StrictOptions = {},
): YamlCheck<z.output<S>> {
  const file = options.file ?? '<input>';
  const docs = parseAllDocuments(text, {
    uniqueKeys: true,
    merge: true,
    prettyErrors: false,
  }) as ParsedDocument[];
  let lines: LineIndex | undefined;
  const at = (offset: number) => {
    lines ??= new LineIndex(text);
    return lines.position(offset);
  };
  const problems: YamlProblem[] = [];
  const values: (z.output<S> | undefined)[] = [];
  const documents: number[] = [];
  docs.forEach((doc, document) => {
    let broken = false;
    for (const e of doc.errors) {
      const duplicate = e.code === 'DUPLICATE_KEY';
      if (!duplicate) broken = true;
      problems.push({
        file,
        ...at(e.pos[0]),
        document,
        path: '',
        kind: duplicate ? 'duplicate-key' : 'syntax',
        message: duplicate ? duplicateKeyMessage(text, e.pos[0]) : e.message,
      });
    }
    if (isEmptyDocument(doc) && doc.errors.length === 0) return;
    documents.push(document);
    if (broken) {
      values.push(undefined);
      return;
    }
    const before = problems.length;
    const value = doc.toJS({ maxAliasCount: 1000 });
    const schema =
      typeof schemaOrSelector === 'function' ? schemaOrSelector(value, document) : schemaOrSelector;
    const findings: Finding[] = [];
    if (schema === undefined) checkJsonValues(value, [], findings);
    else walk(value, schema, [], findings);
    const where = (path: readonly PathSegment[], key: boolean) => {
      const node = locate(doc, path, key);
      return at(node?.range?.[0] ?? doc.range[0]);
    };
    for (const f of findings) {
      problems.push({
        file,
        ...where(f.path, f.key !== undefined),
        document,
        path: formatPath(f.path),
        kind: f.key !== undefined ? 'unknown-field' : 'schema',
        message: f.message,
      });
    }
    let out: unknown = value;
    if (schema !== undefined) {
      const result = schema.safeParse(value);
      if (result.success) out = result.data;
      else {
        for (const issue of result.error.issues) {
          if (issue.code === 'unrecognized_keys') continue; // reported above, located, with a did-you-mean
          const path = issue.path.filter((s): s is string | number => typeof s !== 'symbol');
          const present = hasPath(value, path);
          problems.push({
            file,
            ...where(path, false),
            document,
            path: formatPath(path),
            kind: 'schema',
            message: issueMessage(issue, present),
          });
        }
      }
    }
    values.push(problems.length === before ? (out as z.output<S>) : undefined);
  });
  problems.sort((a, b) => a.document - b.document || a.line - b.line || a.column - b.column);
  return { values, documents, problems };
}

/** The error {@link parseAllStrict} throws: every problem, one per line. */
export function problemsError(problems: readonly YamlProblem[], file: string): YamlError {
  const syntax = problems.some((p) => p.kind === 'syntax' || p.kind === 'duplicate-key');
  const head = `${file}: ${syntax ? 'not valid YAML' : 'does not match the schema'} (${problems.length} problem${problems.length === 1 ? '' : 's'})`;
  return new YamlError(
    syntax ? YamlErrorCode.syntax : YamlErrorCode.invalid,
    `${head}:\n${problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`,
    {
      problems,
    },
  );
}

/**
 * Decode every document of a multi-document stream (Kubernetes manifests) into `schema`, strictly: see
 * {@link checkYaml}; `schema` may be a {@link SchemaSelector} ({@link schemaByKind}) for streams mixing kinds.
 * Returns the schema's output for each non-empty document. Throws {@link YamlError}
 * listing every problem of every document: `CAP_ERR_YAML_SYNTAX` when the YAML itself is broken (a
 * duplicate key included), else `CAP_ERR_YAML_INVALID`.
 */
export function parseAllStrict<S extends z.ZodType>(
  text: string,
  schema: S | SchemaSelector,
  options: StrictOptions = {},
): z.output<S>[] {
  const { values, problems } = checkYaml(text, schema, options);
  if (problems.length > 0) throw problemsError(problems, options.file ?? '<input>');
  return values as z.output<S>[];
}

/**
 * Decode a single-document YAML (or JSON) text into `schema`, strictly: unknown keys, duplicate keys and
 * schema errors are all reported at once with file:line:column. A stream of several documents, or none,
 * is an error (`CAP_ERR_YAML_INVALID`); use {@link parseAllStrict} for those.
 *
 * ```ts
 * const deployment = parseStrict(text, DeploymentSchema, { file: 'deploy.yaml' });
 * ```
 */
export function parseStrict<S extends z.ZodType>(
  text: string,
  schema: S,
  options: StrictOptions = {},
): z.output<S> {
  const file = options.file ?? '<input>';
  const { values, documents, problems } = checkYaml(text, schema, options);
  if (problems.length > 0) throw problemsError(problems, file);
  if (values.length !== 1) {
    throw new YamlError(
      YamlErrorCode.invalid,
      `${file}: expected one YAML document, found ${values.length}${values.length > 1 ? ` (documents ${documents.join(', ')})` : ''}`,
    );
  }
  return values[0] as z.output<S>;
}

/**
 * `values` as YAML, one document each (`---` between them), every value written: `replicas: 0`,
 * `enabled: false`, `name: ""` and `args: []` stay (no omitempty), keys in their order.
 */
export function toYaml(...values: unknown[]): string {
  return values.map((v) => stringify(v, { lineWidth: 0, indentSeq: false })).join('---\n');
}
