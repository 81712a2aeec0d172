// Edits at the source level. The `yaml` package's Document API re-serialises the whole file on output, which
// moves comments, re-indents and re-quotes; here an edit finds the node's byte range in the parsed source and
// splices new text into it, so every byte outside that range stays as it was. Each edit is read back: the
// new text must parse and hold the new value, or nothing changes.
import { isDeepStrictEqual } from 'node:util';
import {
  type Document,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  type Node,
  type Pair,
  parseAllDocuments,
  type Scalar,
  stringify,
  type YAMLMap,
  type YAMLSeq,
} from 'yaml';
import { formatProblem, YamlError, YamlErrorCode, type YamlProblem } from './errors.ts';
import { formatPath, type PathSegment, parsePath } from './path.ts';
import { duplicateKeyMessage, isEmptyDocument, LineIndex, sequenceStyle } from './positions.ts';
import { renderKey, renderScalar, type ScalarStyle } from './scalar.ts';

/** Options of {@link editYaml}. */
export interface EditYamlOptions {
  /** The file's name in error messages (default `<input>`). */
  readonly file?: string;
}

/** Which document of a multi-document file an edit or read addresses. */
export interface DocumentOption {
  /**
   * 0-based index of the document (counting every `---` section, empty ones too). Required when the file
   * has more than one non-empty document; see {@link YamlEditor.findDocument}.
   */
  readonly document?: number;
}

type ParsedDocument = Document.Parsed;

const parseOptions = { uniqueKeys: true, merge: true, prettyErrors: false, keepSourceTokens: false } as const;

/** The documents of `text` and every error in them (a duplicate key is one), located. */
function parseDocuments(text: string, file: string): { docs: ParsedDocument[]; problems: YamlProblem[] } {
  const docs = parseAllDocuments(text, parseOptions) as ParsedDocument[];
  const lines = new LineIndex(text);
  const problems: YamlProblem[] = [];
  docs.forEach((doc, document) => {
    for (const e of doc.errors) {
      const { line, column } = lines.position(e.pos[0]);
      problems.push({
        file,
        line,
        column,
        document,
        path: '',
        kind: e.code === 'DUPLICATE_KEY' ? 'duplicate-key' : 'syntax',
        message: e.code === 'DUPLICATE_KEY' ? duplicateKeyMessage(text, e.pos[0]) : e.message,
      });
    }
  });
  return { docs: Array.from(docs), problems };
}

function syntaxError(problems: YamlProblem[], file: string): YamlError {
  return new YamlError(
    YamlErrorCode.syntax,
    `${file}: not valid YAML (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`,
    { problems },
  );
}

/** Where a node sits, which decides how its replacement is written. */
interface Slot {
  /** The node itself (a null value written as nothing, `key:`, is an empty-range scalar). */
  node: Node | null;
  /** The pair whose value it is, if any. */
  pair?: Pair<Node, Node | null>;
  /** The collection holding it (undefined at the document root). */
  parent?: YAMLMap | YAMLSeq;
}

function isFlowCollection(node: unknown): boolean {
  return (isMap(node) || isSeq(node)) && node.flow === true;
}

function nodeRange(node: Node): [number, number, number] {
  const r = node.range;
  if (r == null) throw new YamlError(YamlErrorCode.edit, 'a node without a source range (internal)');
  return r;
}

/**
 * A YAML file edited in place. Each {@link set} splices new text into the source at the byte range of what
 * it changes: comments, key order, quoting, indentation, blank lines and line endings elsewhere stay
 * byte-identical, and setting a value to what it already is changes nothing.
 *
 * ```ts
 * const out = editYaml(text).set('spec.replicas', 0).set('spec.template.spec.containers[0].image', 'web:2').toString();
 * ```
 */
export class YamlEditor {
  #text: string;
  #docs: ParsedDocument[];
  readonly #file: string;
  readonly #eol: string;

  constructor(text: string, options: EditYamlOptions = {}) {
    this.#file = options.file ?? '<input>';
    const { docs, problems } = parseDocuments(text, this.#file);
    if (problems.length > 0) throw syntaxError(problems, this.#file);
    this.#text = text;
    this.#docs = docs;
    const firstBreak = text.indexOf('\n');
    this.#eol = firstBreak > 0 && text[firstBreak - 1] === '\r' ? '\r\n' : '\n';
  }

  /** The source as edited so far. */
  toString(): string {
    return this.#text;
  }

  /** How many documents the file has (every `---` section, empty ones included). */
  get documentCount(): number {
    return this.#docs.length;
  }

  /** Each document's data (null for an empty one). */
  values(): unknown[] {
    return this.#docs.map((d) => d.toJS());
  }

  /**
   * The index of the document whose `kind` is `kind` (case-insensitive) and, when given, whose
   * `metadata.name` is `name`: `findDocument('Deployment', 'web')`. Throws {@link YamlError}
   * `CAP_ERR_YAML_NOT_FOUND` when none or several match.
   */
  findDocument(kind: string, name?: string): number {
    const matches: number[] = [];
    this.#docs.forEach((d, i) => {
      const v = d.toJS() as { kind?: unknown; metadata?: { name?: unknown } } | null;
      if (v === null || typeof v !== 'object') return;
      if (typeof v.kind !== 'string' || v.kind.toLowerCase() !== kind.toLowerCase()) return;
      if (name !== undefined && v.metadata?.name !== name) return;
      matches.push(i);
    });
    const what = name === undefined ? kind : `${kind}/${name}`;
    if (matches.length === 1) return matches[0]!;
    throw new YamlError(
      YamlErrorCode.notFound,
      matches.length === 0
        ? `${this.#file}: no document is a ${what}`
        : `${this.#file}: ${matches.length} documents are a ${what} (documents ${matches.join(', ')}): name one`,
    );
  }

  #doc(option: DocumentOption): ParsedDocument {
    if (option.document !== undefined) {
      const doc = this.#docs[option.document];
      if (doc === undefined) {
        throw new YamlError(
          YamlErrorCode.notFound,
          `${this.#file}: no document ${option.document} (the file has ${this.#docs.length})`,
        );
      }
      return doc;
    }
    const nonEmpty = this.#docs.filter((d) => !isEmptyDocument(d));
    if (nonEmpty.length > 1) {
      throw new YamlError(
        YamlErrorCode.notFound,
        `${this.#file} has ${nonEmpty.length} documents: say which one (--doc N or --doc Kind/name; { document } in code)`,
      );
    }
    return nonEmpty[0] ?? this.#docs[0]!;
  }

  /** Whether `path` names something in the document. */
  has(path: string | readonly PathSegment[], option: DocumentOption = {}): boolean {
    const segments = typeof path === 'string' ? parsePath(path) : path;
    return this.#find(this.#doc(option), segments).missing === undefined;
  }

  /**
   * The value at `path` as plain data. Throws {@link YamlError} `CAP_ERR_YAML_NOT_FOUND` when the path
   * names nothing.
   */
  get(path: string | readonly PathSegment[], option: DocumentOption = {}): unknown {
    const segments = typeof path === 'string' ? parsePath(path) : path;
    const doc = this.#doc(option);
    const found = this.#find(doc, segments);
    if (found.missing !== undefined) {
      throw new YamlError(
        YamlErrorCode.notFound,
        `${this.#file}: ${formatPath(segments) || 'the document'} not found (${formatPath(segments.slice(0, found.missing + 1))} is missing)`,
      );
    }
    const node = found.slot.node;
    return node === null ? null : toJS(node, doc);
  }

  /**
   * Set the value at `path` (a scalar, a list or a map), adding missing keys (indented as their
   * siblings) and appending to a list when the index is its length. Setting a value to what it already is
   * changes nothing. Throws {@link YamlError}: `CAP_ERR_YAML_PATH` for a bad path, `CAP_ERR_YAML_EDIT`
   * when the edit cannot be made in place (through an alias, under a scalar, an index past the end).
   */
  set(path: string | readonly PathSegment[], value: unknown, option: DocumentOption = {}): this {
    const segments = typeof path === 'string' ? parsePath(path) : [...path];
    const doc = this.#doc(option);
    const docIndex = this.#docs.indexOf(doc);
    const found = this.#find(doc, segments);
    if (found.missing === undefined) {
      const current = found.slot.node === null ? null : toJS(found.slot.node, doc);
      if (isDeepStrictEqual(current, value)) return this;
    }
    const splice = this.#plan(doc, segments, found, value);
    const text = this.#text.slice(0, splice.start) + splice.text + this.#text.slice(splice.end);
    // Read back: the edit must parse and hold the value, or the file is left alone.
    const { docs, problems } = parseDocuments(text, this.#file);
    const after = docs[docIndex];
    let readBack: unknown;
    let ok = problems.length === 0 && after !== undefined;
    if (ok) {
      const f = this.#find(after!, segments);
      ok = f.missing === undefined;
      if (ok) readBack = f.slot.node === null ? null : toJS(f.slot.node, after!);
    }
    if (!ok || !isDeepStrictEqual(readBack, value)) {
      throw new YamlError(
        YamlErrorCode.edit,
        `${this.#file}: cannot set ${formatPath(segments) || 'the document'} in place: the edited text does not read back as the value${problems[0] ? ` (${formatProblem(problems[0])})` : ''}`,
      );
    }
    this.#text = text;
    this.#docs = docs;
    return this;
  }

  /**
   * Walk `segments` from the document root. `missing` is the index of the first segment not found
   * (undefined when all are), and `slot` the last node reached.
   */
  #find(
    doc: ParsedDocument,
    segments: readonly PathSegment[],
  ): { slot: Slot; missing?: number; alias?: { source: string; at: number } } {
    let slot: Slot = { node: doc.contents as Node | null };
    let alias: { source: string; at: number } | undefined;
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i]!;
      let node = slot.node;
      if (isAlias(node)) {
        alias ??= { source: node.source, at: i };
        node = (node.resolve(doc) as Node | undefined) ?? null;
      }
      if (isMap(node)) {
        const pair = findPair(node, seg);
        if (pair === undefined) return { slot, missing: i, ...(alias ? { alias } : {}) };
        slot = { node: pair.value as Node | null, pair: pair as Pair<Node, Node | null>, parent: node };
      } else if (isSeq(node)) {
        const index = typeof seg === 'number' ? seg : /^\d+$/.test(seg) ? Number(seg) : Number.NaN;
        if (!(index < node.items.length)) return { slot, missing: i, ...(alias ? { alias } : {}) };
        slot = { node: node.items[index] as Node | null, parent: node };
      } else {
        return { slot, missing: i, ...(alias ? { alias } : {}) };
      }
    }
    return alias ? { slot, alias } : { slot };
  }

  /** The one splice that makes the change. */
  #plan(
    doc: ParsedDocument,
    segments: PathSegment[],
    found: { slot: Slot; missing?: number; alias?: { source: string; at: number } },
    value: unknown,
  ): { start: number; end: number; text: string } {
    const where = (n: number) => formatPath(segments.slice(0, n)) || 'the document root';
    const { slot, missing } = found;
    if (found.alias !== undefined) {
      throw new YamlError(
        YamlErrorCode.edit,
        `${this.#file}: ${where(found.alias.at)} is an alias (*${found.alias.source}): editing through it would change every use of the anchor`,
      );
    }
    if (isAlias(slot.node)) {
      throw new YamlError(
        YamlErrorCode.edit,
        `${this.#file}: ${where(missing ?? segments.length)} is an alias (*${slot.node.source}): editing through it would change every use of the anchor`,
      );
    }
    if (missing === undefined) return this.#replace(slot, value);
    const node = slot.node;
    const rest = segments.slice(missing);
    if (isMap(node))
      return this.#addKey(node, String(rest[0]), nest(rest.slice(1), value, where(missing + 1)));
    if (isSeq(node)) {
      const index = typeof rest[0] === 'number' ? rest[0] : Number(rest[0]);
      if (index !== node.items.length) {
        throw new YamlError(
          YamlErrorCode.edit,
          `${this.#file}: ${where(missing + 1)}: index past the end (the list has ${node.items.length} item${node.items.length === 1 ? '' : 's'}; index ${node.items.length} appends)`,
        );
      }
      return this.#append(node, nest(rest.slice(1), value, where(missing + 1)));
    }
    if (node === null || (isScalar(node) && node.value === null)) {
      // `key:` (or `key: null`): the value becomes the map (or list) the rest of the path builds.
      if (doc.contents === null) {
        throw new YamlError(
          YamlErrorCode.edit,
          `${this.#file}: the document is empty: nothing to add ${where(segments.length)} to`,
        );
      }
      return this.#replace(slot, nest(rest, value, where(missing)));
    }
    throw new YamlError(
      YamlErrorCode.edit,
      `${this.#file}: ${where(missing)} is a scalar (${JSON.stringify(toJS(node, doc))}), not a map or list: cannot set ${where(segments.length)}`,
    );
  }

  /** Column (0-based) of `offset` in its line. */
  #column(offset: number): number {
    return offset - (this.#text.lastIndexOf('\n', offset - 1) + 1);
  }

  /** The offset of the line break ending the line `offset` is on (or the end of the text). */
  #lineEnd(offset: number): number {
    const nl = this.#text.indexOf('\n', offset);
    if (nl < 0) return this.#text.length;
    return nl > 0 && this.#text[nl - 1] === '\r' ? nl - 1 : nl;
  }

  /** Where a node's own text ends: past its last character, before trailing comments and blank lines. */
  #contentEnd(node: Node | null, pair?: Pair<Node, Node | null>): number {
    if (node === null || (isScalar(node) && nodeRange(node)[0] === nodeRange(node)[1])) {
      // An empty value (`key:` or `-`): after the `:`, or the `-`.
      if (pair !== undefined) return this.#text.indexOf(':', this.#contentEnd(pair.key)) + 1;
      return node === null ? 0 : nodeRange(node)[0];
    }
    if (isScalar(node)) {
      let end = nodeRange(node)[1];
      if (node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED') {
        while (end > 0 && /\s/.test(this.#text[end - 1]!)) end--;
      }
      return end;
    }
    if ((isMap(node) || isSeq(node)) && !node.flow && node.items.length > 0) {
      const last = node.items[node.items.length - 1]!;
      if (isPair(last)) return this.#contentEnd(last.value as Node | null, last as Pair<Node, Node | null>);
      return this.#contentEnd(last as Node | null);
    }
    return nodeRange(node)[1];
  }

  /** Whether block sequences in this file sit at their key's column (`key:\n- a`) rather than indented. */
  #zeroIndentSequences(): boolean {
    return sequenceStyle(this.#text) === 'compact';
  }

  /** `value` (a map or list) as block YAML, every line indented by `indent` spaces, lines joined by the file's EOL. */
  #block(value: unknown, indent: number): string[] {
    const text = stringify(value, { indent: 2, lineWidth: 0, indentSeq: !this.#zeroIndentSequences() });
    const pad = ' '.repeat(indent);
    return text
      .replace(/\n$/, '')
      .split('\n')
      .map((l) => (l === '' ? l : pad + l));
  }

  /** Text for `value` after `key:` in a block map whose keys are at column `keyColumn` (with the leading space or line break). */
  #afterKey(value: unknown, keyColumn: number, style?: ScalarStyle): string {
    if (isEmptyCollection(value)) return ` ${JSON.stringify(value)}`;
    if (isCollectionValue(value)) return this.#eol + this.#block(value, keyColumn + 2).join(this.#eol);
    return ` ${renderScalar(value, style, { flow: false, indent: keyColumn + 2, eol: this.#eol })}`;
  }

  /** Text for `value` after `- ` in a block sequence whose dashes are at column `dashColumn`. */
  #afterDash(value: unknown, dashColumn: number, style?: ScalarStyle): string {
    if (isEmptyCollection(value)) return JSON.stringify(value);
    if (isCollectionValue(value)) {
      const lines = this.#block(value, dashColumn + 2);
      return lines.join(this.#eol).slice(dashColumn + 2);
    }
    return renderScalar(value, style, { flow: false, indent: dashColumn + 2, eol: this.#eol });
  }

  /** `value` inside a flow collection: JSON for collections (valid flow YAML); scalars in their style. */
  #flowValue(value: unknown, style?: ScalarStyle): string {
    if (isCollectionValue(value)) return JSON.stringify(value);
    return renderScalar(value, style, { flow: true, indent: 0, eol: this.#eol });
  }

  /** Replace an existing node (scalar or collection) with `value`. */
  #replace(slot: Slot, value: unknown): { start: number; end: number; text: string } {
    const { node, pair, parent } = slot;
    const style = isScalar(node) ? (node.type as ScalarStyle | undefined) : undefined;
    const inFlow = isFlowCollection(parent);
    if (inFlow) {
      const r = nodeRange(node!);
      if (r[0] === r[1]) return { start: r[0], end: r[1], text: ` ${this.#flowValue(value, style)}` };
      return { start: r[0], end: r[1], text: this.#flowValue(value, style) };
    }
    // A scalar or flow collection replaced by a scalar or an empty collection: only its own bytes change.
    const simpleOld = isScalar(node) || isFlowCollection(node);
    const simpleNew = !isCollectionValue(value) || isEmptyCollection(value);
    if (node !== null && simpleOld && simpleNew && nodeRange(node)[0] !== nodeRange(node)[1]) {
      const r = nodeRange(node);
      const end = this.#contentEnd(node);
      const column = pair !== undefined ? this.#column(nodeRange(pair.key as Node)[0]) : this.#column(r[0]);
      const text = isCollectionValue(value)
        ? JSON.stringify(value)
        : renderScalar(value, style, {
            flow: false,
            indent:
              style === 'BLOCK_LITERAL' || style === 'BLOCK_FOLDED'
                ? this.#blockIndent(node as Scalar)
                : column + 2,
            eol: this.#eol,
          });
      return { start: r[0], end, text };
    }
    if (pair !== undefined) {
      // From just after `key:` to the end of the old value: a block value moves onto the following lines.
      const keyStart = nodeRange(pair.key as Node)[0];
      const colon = this.#text.indexOf(':', this.#contentEnd(pair.key as Node)) + 1;
      return {
        start: colon,
        end: this.#contentEnd(node, pair),
        text: this.#afterKey(value, this.#column(keyStart), style),
      };
    }
    if (parent !== undefined && isSeq(parent) && node !== null) {
      const dash = this.#text.lastIndexOf('-', nodeRange(node)[0]);
      const r = nodeRange(node);
      const start = r[0] === r[1] ? dash + 1 : r[0];
      const text = this.#afterDash(value, this.#column(dash), style);
      return { start, end: this.#contentEnd(node), text: r[0] === r[1] ? ` ${text}` : text };
    }
    // The document root.
    const r = nodeRange(node!);
    const text = isCollectionValue(value)
      ? this.#block(value, 0).join(this.#eol)
      : renderScalar(value, style, { flow: false, indent: 2, eol: this.#eol });
    return { start: r[0], end: this.#contentEnd(node), text };
  }

  /** The indentation of a block scalar's content lines (its first non-empty line), for a replacement block. */
  #blockIndent(node: Scalar): number {
    const r = nodeRange(node);
    const body = this.#text.slice(this.#text.indexOf('\n', r[0]) + 1, r[1]);
    const m = /^( *)\S/m.exec(body);
    return m ? m[1]!.length : this.#column(r[0]) + 2;
  }

  /** Add `key: value` to a map that lacks the key, after its last entry, indented as its entries. */
  #addKey(map: YAMLMap, key: string, value: unknown): { start: number; end: number; text: string } {
    if (map.flow) {
      const r = nodeRange(map);
      const close = this.#text.lastIndexOf('}', r[1]);
      const jsonStyle = map.items.some((p) => isScalar(p.key) && p.key.type === 'QUOTE_DOUBLE');
      const entry = `${renderKey(key, jsonStyle)}: ${jsonStyle && isCollectionValue(value) ? JSON.stringify(value) : this.#flowValue(value, jsonStyle ? 'QUOTE_DOUBLE' : undefined)}`;
      if (map.items.length === 0) return { start: close, end: close, text: entry };
      const last = map.items[map.items.length - 1]!;
      const end = last.value ? nodeRange(last.value as Node)[1] : nodeRange(last.key as Node)[1];
      return {
        start: end,
        end,
        text: `,${this.#flowSeparator(nodeRange(last.key as Node)[0], r[0])}${entry}`,
      };
    }
    const first = map.items[0]!;
    const column = this.#column(nodeRange(first.key as Node)[0]);
    const at = this.#lineEnd(this.#contentEnd(map));
    const line = `${' '.repeat(column)}${renderKey(key, false)}:${this.#afterKey(value, column)}`;
    return { start: at, end: at, text: `${this.#eol}${line}` };
  }

  /**
   * What goes between `,` and a new entry of a flow collection: a space when the collection is on one line;
   * a line break and the last entry's indentation when its entries are one per line (pretty-printed JSON).
   */
  #flowSeparator(lastEntry: number, open: number): string {
    if (this.#text.lastIndexOf('\n', lastEntry) < open) return ' ';
    return this.#eol + ' '.repeat(this.#column(lastEntry));
  }

  /** Append `value` to a list, after its last item, at the column of its dashes. */
  #append(seq: YAMLSeq, value: unknown): { start: number; end: number; text: string } {
    const r = nodeRange(seq);
    // A new item is quoted as the last one is (`verbs: ["get", "list"]` gets `"update"`).
    const last = seq.items[seq.items.length - 1];
    const quoted = isScalar(last) && (last.type === 'QUOTE_DOUBLE' || last.type === 'QUOTE_SINGLE');
    const style = quoted ? (last.type as ScalarStyle) : undefined;
    if (seq.flow) {
      const close = this.#text.lastIndexOf(']', r[1]);
      const item = this.#flowValue(value, style);
      if (seq.items.length === 0) return { start: close, end: close, text: item };
      const lastItem = nodeRange(seq.items[seq.items.length - 1] as Node);
      return {
        start: lastItem[1],
        end: lastItem[1],
        text: `,${this.#flowSeparator(lastItem[0], r[0])}${item}`,
      };
    }
    const column = this.#column(r[0]);
    const at = this.#lineEnd(this.#contentEnd(seq));
    return {
      start: at,
      end: at,
      text: `${this.#eol}${' '.repeat(column)}- ${this.#afterDash(value, column, style)}`,
    };
  }
}

function isCollectionValue(value: unknown): boolean {
  return value !== null && typeof value === 'object';
}

/** `{}` or `[]`: written inline as flow, never as an empty block. */
function isEmptyCollection(value: unknown): boolean {
  return isCollectionValue(value) && Object.keys(value as object).length === 0;
}

function findPair(map: YAMLMap, seg: PathSegment): Pair | undefined {
  const key = String(seg);
  for (const item of map.items) {
    const k = item.key;
    if (isScalar(k) ? String(k.value) === key : String(k) === key) return item as Pair;
  }
  return undefined;
}

/** The value the rest of a path builds: `nest(['a', 0], v)` is `{ a: [v] }` (only index 0 can start a list). */
function nest(rest: readonly PathSegment[], value: unknown, where: string): unknown {
  let out = value;
  for (let i = rest.length - 1; i >= 0; i--) {
    const seg = rest[i]!;
    if (typeof seg === 'number') {
      if (seg !== 0) {
        throw new YamlError(YamlErrorCode.edit, `${where}: a new list starts at index 0, not ${seg}`);
      }
      out = [out];
    } else {
      out = { [seg]: out };
    }
  }
  return out;
}

function toJS(node: Node, doc: ParsedDocument): unknown {
  return (node as Node & { toJS(doc: ParsedDocument): unknown }).toJS(doc);
}

/** Start editing `text` in place; throws {@link YamlError} `CAP_ERR_YAML_SYNTAX` (every problem) when it is not valid YAML. */
export function editYaml(text: string, options?: EditYamlOptions): YamlEditor {
  return new YamlEditor(text, options);
}
