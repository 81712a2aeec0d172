// Where a problem of a YAML file is: a zod issue's path walked down the parsed document to its node, and the
// node's offset turned into a line and column, so every problem of a file reads `file:line:col: path: what`.
// An unknown key points at the key itself and suggests the closest known one.
import { type Document, isMap, isPair, isScalar, LineCounter, type Node, parseDocument } from 'yaml';
import type { z } from 'zod';

/** A YAML file parsed with the positions of its nodes. */
export interface LocatedYaml {
  file: string;
  doc: Document.Parsed;
  lines: LineCounter;
}

/**
 * Parse `text` keeping node positions. `problems` has the parser's errors (syntax, a duplicate key with
 * `uniqueKeys`), each with its line and column; `value` is the document as plain data. `uniqueKeys: false`
 * skips the parser's own duplicate check, which compares every key of a mapping with every other one
 * (quadratic: 3 s for a mapping of 10,000 hosts); callers then check the mappings they care about.
 */
export function parseLocatedYaml(
  text: string,
  file: string,
  options: { uniqueKeys?: boolean } = {},
): { located: LocatedYaml; value: unknown; problems: string[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter: lines,
    uniqueKeys: options.uniqueKeys ?? true,
    prettyErrors: false,
  });
  const located = { file, doc, lines };
  const problems = doc.errors.map((e) => at(located, e.pos[0], e.message.split('\n')[0]!));
  return { located, value: problems.length > 0 ? undefined : doc.toJS({ maxAliasCount: 1000 }), problems };
}

/** `file:line:col: message` for the byte `offset` of a located file. */
export function at(located: LocatedYaml, offset: number, message: string): string {
  const { line, col } = located.lines.linePos(offset);
  return `${located.file}:${line}:${col}: ${message}`;
}

/** Problems made by {@link at} for `file`, in the order of their place in it (others keep theirs, last). */
export function byPosition(problems: readonly string[], file: string): string[] {
  const place = (p: string): [number, number] => {
    const m = p.startsWith(`${file}:`) ? /^(\d+):(\d+):/.exec(p.slice(file.length + 1)) : null;
    return m ? [Number(m[1]), Number(m[2])] : [Number.MAX_SAFE_INTEGER, 0];
  };
  return problems
    .map((p, i) => ({ p, i, at: place(p) }))
    .sort((a, b) => a.at[0] - b.at[0] || a.at[1] - b.at[1] || a.i - b.i)
    .map((x) => x.p);
}

/** `sources[1].timeout` for a zod path. */
export function pathText(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `${out ? '.' : ''}${String(p)}`;
  return out || '(top level)';
}

/** The node at `path`, or the deepest ancestor that exists (a missing key is reported where its mapping is). */
function nodeAt(located: LocatedYaml, path: ReadonlyArray<PropertyKey>): Node | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = located.doc.getIn(path.slice(0, n) as unknown[], true);
    if (node && typeof node === 'object' && 'range' in node) return node as Node;
  }
  return located.doc.contents ?? undefined;
}

/** The key node of `key` in the mapping at `path`. */
function keyNodeAt(located: LocatedYaml, path: ReadonlyArray<PropertyKey>, key: string): Node | undefined {
  const map = path.length === 0 ? located.doc.contents : located.doc.getIn(path as unknown[], true);
  if (!isMap(map)) return undefined;
  for (const item of map.items) {
    if (isPair(item) && isScalar(item.key) && String(item.key.value) === key) return item.key;
  }
  return undefined;
}

/** Offset of the node at `path` (0 when nothing is found). */
export function offsetOf(located: LocatedYaml, path: ReadonlyArray<PropertyKey>, key?: string): number {
  const node = (key !== undefined ? keyNodeAt(located, path, key) : undefined) ?? nodeAt(located, path);
  return node?.range?.[0] ?? 0;
}

type AnySchema = z.core.$ZodType;

/** The schema that checks the value at `path` of `data`, through optionals, pipes, arrays and unions on a discriminator. */
function schemaAt(schema: AnySchema, path: ReadonlyArray<PropertyKey>, data: unknown): AnySchema | undefined {
  let s: AnySchema | undefined = schema;
  let value = data;
  for (let i = 0; ; i++) {
    s = unwrap(s, value);
    if (!s || i === path.length) return s;
    const key = path[i]!;
    const def = s._zod.def as unknown as Record<string, unknown> & { type: string };
    if (def.type === 'object') s = (def['shape'] as Record<string, AnySchema>)[String(key)];
    else if (def.type === 'array') s = def['element'] as AnySchema;
    else if (def.type === 'record') s = def['valueType'] as AnySchema;
    else return undefined;
    value =
      value !== null && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[key] : undefined;
  }
}

function unwrap(schema: AnySchema | undefined, value: unknown): AnySchema | undefined {
  let s = schema;
  while (s) {
    const def = s._zod.def as unknown as Record<string, unknown> & { type: string };
    if (def.type === 'optional' || def.type === 'default' || def.type === 'nullable') {
      s = def['innerType'] as AnySchema;
    } else if (def.type === 'pipe') {
      s = def['in'] as AnySchema;
    } else if (def.type === 'union' && typeof def['discriminator'] === 'string') {
      const d = def['discriminator'];
      const wanted =
        value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[d] : undefined;
      s = (def['options'] as AnySchema[]).find((o) => {
        const shape = (o._zod.def as unknown as { shape?: Record<string, AnySchema> }).shape;
        const values = shape?.[d]?._zod.def as unknown as { values?: unknown[] } | undefined;
        return values?.values?.includes(wanted);
      });
    } else {
      return s;
    }
  }
  return undefined;
}

/** Keys an object schema knows. */
function knownKeys(schema: AnySchema | undefined): string[] {
  const def = schema?._zod.def as unknown as { type: string; shape?: Record<string, unknown> } | undefined;
  return def?.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

/** Edit distance, for did-you-mean. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      const cost = a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + cost);
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/** The known key closest to `key`, when close enough to be a typo. */
export function didYouMean(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const d = distance(key, k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

/**
 * Each zod issue as `file:line:col: path: message`. Unknown keys are one problem each, at the key, with the
 * known keys of that mapping (and the closest one when it looks like a typo); an unknown discriminator
 * lists the values that exist.
 */
export function issueProblems(
  issues: readonly z.core.$ZodIssue[],
  located: LocatedYaml,
  schema: AnySchema,
  data: unknown,
): string[] {
  const out: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeys(schemaAt(schema, issue.path, data));
      for (const key of issue.keys) {
        const near = didYouMean(key, known);
        const hint = near ? ` (did you mean ${near}?)` : known.length ? ` (known: ${known.join(', ')})` : '';
        const where = pathText([...issue.path, key]);
        out.push(at(located, offsetOf(located, issue.path, key), `${where}: unknown key${hint}`));
      }
      continue;
    }
    let message = issue.message;
    const options = (issue as { options?: unknown }).options;
    if (issue.code === 'invalid_union' && Array.isArray(options)) {
      const got = valueAt(data, issue.path);
      const field = String(issue.path[issue.path.length - 1] ?? 'value');
      message =
        got === undefined
          ? `required: one of ${options.join(', ')}`
          : `unknown ${field} ${JSON.stringify(got)} (one of ${options.join(', ')})`;
    } else if (issue.code === 'invalid_type' && valueAt(data, issue.path) === undefined) {
      message = `required (${issue.expected})`;
    }
    out.push(at(located, offsetOf(located, issue.path), `${pathText(issue.path)}: ${message}`));
  }
  return out;
}

function valueAt(data: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let v = data;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}
