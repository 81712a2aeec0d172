// Edits over a corpus of commented, hand-written Kubernetes manifests (testdata/corpus: block and flow
// styles, quoting, block scalars, anchors, CRLF, JSON, multi-document streams, no final newline). For every
// scalar of every document: setting it to its own value leaves the file byte-identical; setting it to a
// new value changes only the lines of that value, and the file reads back with exactly that change. For
// every map and list: adding a key or an item inserts one line indented as its siblings and nothing else.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { editYaml, type PathSegment, YamlError, YamlErrorCode } from './index.ts';

const dir = fileURLToPath(new URL('./testdata/corpus/', import.meta.url));
const files = readdirSync(dir).sort();

type Leaf = { path: PathSegment[]; value: unknown };

/** Every scalar leaf and every map and list of a value, with their paths. */
function walk(
  value: unknown,
  path: PathSegment[],
  leaves: Leaf[],
  maps: PathSegment[][],
  lists: PathSegment[][],
) {
  if (Array.isArray(value)) {
    lists.push(path);
    for (const [i, v] of value.entries()) walk(v, [...path, i], leaves, maps, lists);
  } else if (value !== null && typeof value === 'object') {
    maps.push(path);
    for (const [k, v] of Object.entries(value)) walk(v, [...path, k], leaves, maps, lists);
  } else {
    leaves.push({ path, value });
  }
}

function setIn(value: unknown, path: readonly PathSegment[], leaf: unknown): unknown {
  const copy = structuredClone(value) as Record<PropertyKey, unknown>;
  let cur = copy;
  for (const seg of path.slice(0, -1)) cur = cur[seg] as Record<PropertyKey, unknown>;
  cur[path[path.length - 1]!] = leaf;
  return copy;
}

function changed(value: unknown): unknown {
  if (typeof value === 'number') return value + 1;
  if (typeof value === 'boolean') return !value;
  // The first line of a multi-line string, so the line count stays.
  if (typeof value === 'string') return value.replace(/^[^\n]*/, (first) => `${first}-edited`);
  return 'now-set';
}

/** Lines differing between a and b, after their common head and tail: [first line, count in a, count in b]. */
function lineDiff(a: string, b: string): { first: number; removed: string[]; added: string[] } {
  const x = a.split('\n');
  const y = b.split('\n');
  let head = 0;
  while (head < x.length && head < y.length && x[head] === y[head]) head++;
  let tail = 0;
  while (
    tail < x.length - head &&
    tail < y.length - head &&
    x[x.length - 1 - tail] === y[y.length - 1 - tail]
  )
    tail++;
  return { first: head + 1, removed: x.slice(head, x.length - tail), added: y.slice(head, y.length - tail) };
}

/** Whether the path goes through an alias (`*labels`): such an edit is refused, not made. */
function throughAlias(text: string, document: number, path: readonly PathSegment[]): boolean {
  const doc = parseAllDocuments(text, { merge: true })[document]!;
  for (let i = 1; i <= path.length; i++) {
    const node = doc.getIn(path.slice(0, i), true) as
      | { source?: unknown; constructor: { name: string } }
      | undefined;
    if (node === undefined || node?.constructor.name === 'Alias') return true;
  }
  return false;
}

/** The 1-based lines a node at `path` spans in `text`. */
function nodeLines(
  text: string,
  document: number,
  path: readonly PathSegment[],
): { first: number; last: number } {
  const doc = parseAllDocuments(text, { merge: true })[document]!;
  const node = doc.getIn(path, true) as { range: [number, number, number] };
  const line = (offset: number) => text.slice(0, offset).split('\n').length;
  let end = node.range[1];
  while (end > node.range[0] && /\s/.test(text[end - 1]!)) end--;
  return { first: line(node.range[0]), last: line(Math.max(end, node.range[0])) };
}

describe('edits over the commented-manifest corpus', () => {
  test('the corpus has the styles it is meant to cover', () => {
    const all = files.map((f) => readFileSync(`${dir}${f}`, 'utf8'));
    assert.ok(files.length >= 12);
    assert.ok(
      all.some((t) => t.includes('\r\n')),
      'a CRLF file',
    );
    assert.ok(
      all.some((t) => !t.endsWith('\n')),
      'a file without a final newline',
    );
    assert.ok(
      all.some((t) => t.trimStart().startsWith('{')),
      'a JSON file',
    );
    assert.ok(
      all.some((t) => /&\w+/.test(t)),
      'anchors',
    );
    assert.ok(
      all.some((t) => /: [|>]/.test(t)),
      'block scalars',
    );
    assert.ok(
      all.every((t) => t.includes('#') || t.trimStart().startsWith('{')),
      'comments in every YAML file',
    );
  });

  test('why edit at the source: the Document API re-serialises, editYaml leaves every file identical', (t) => {
    let documentApi = 0;
    let editor = 0;
    for (const file of files) {
      const text = readFileSync(`${dir}${file}`, 'utf8');
      // The same no-op edit both ways: each document's metadata.name set to itself.
      const docs = parseAllDocuments(text);
      const e = editYaml(text);
      docs.forEach((d, document) => {
        const name = (d.toJS() as { metadata?: { name?: string } } | null)?.metadata?.name;
        if (name === undefined) return;
        d.setIn(['metadata', 'name'], name);
        e.set('metadata.name', name, { document });
      });
      if (docs.map((d) => d.toString()).join('') === text) documentApi++;
      if (e.toString() === text) editor++;
    }
    t.diagnostic(
      `byte-identical after a no-op edit: Document API ${documentApi}/${files.length}, editYaml ${editor}/${files.length}`,
    );
    assert.equal(editor, files.length);
    assert.ok(documentApi < files.length / 2, `Document API kept ${documentApi} identical`);
  });

  for (const file of files) {
    test(file, () => {
      const text = readFileSync(`${dir}${file}`, 'utf8');
      const base = editYaml(text, { file });
      const values = base.values();
      let scalars = 0;
      let refused = 0;
      values.forEach((docValue, document) => {
        if (docValue === null) return;
        const leaves: Leaf[] = [];
        const maps: PathSegment[][] = [];
        const lists: PathSegment[][] = [];
        walk(docValue, [], leaves, maps, lists);
        for (const { path, value } of leaves) {
          const where = `${file} doc ${document} ${path.join('.')}`;
          if (throughAlias(text, document, path)) {
            assert.throws(
              () => editYaml(text).set(path, changed(value), { document }),
              (e: unknown) =>
                e instanceof YamlError && e.code === YamlErrorCode.edit && /alias/.test(e.message),
              where,
            );
            refused++;
            continue;
          }
          scalars++;
          // No-op: byte-identical.
          assert.equal(editYaml(text).set(path, value, { document }).toString(), text, `no-op ${where}`);
          // A real change: only the value's own lines, and it reads back.
          const next = changed(value);
          const out = editYaml(text).set(path, next, { document }).toString();
          const span = nodeLines(text, document, path);
          const diff = lineDiff(text, out);
          assert.ok(diff.removed.length > 0, `set changed nothing: ${where}`);
          assert.ok(
            diff.first >= span.first && diff.first + diff.removed.length - 1 <= span.last,
            `${where}: lines ${diff.first}..${diff.first + diff.removed.length - 1} changed, value on ${span.first}..${span.last}\n-${diff.removed.join('\n-')}\n+${diff.added.join('\n+')}`,
          );
          // A folded block (`>`) of one paragraph may come back on fewer lines; anything else keeps its lines.
          if (!/(: |- )>/.test(text.split('\n')[span.first - 1]!)) {
            assert.equal(diff.added.length, diff.removed.length, `${where}: line count changed`);
          }
          const expected = values.map((v, i) => (i === document ? setIn(v, path, next) : v));
          assert.deepEqual(editYaml(out).values(), expected, where);
        }
        for (const path of maps) {
          if (throughAlias(text, document, path) && path.length > 0) continue;
          const out = editYaml(text)
            .set([...path, 'addedKey'], 'v', { document })
            .toString();
          const diff = lineDiff(text, out);
          const where = `${file} doc ${document} add key under ${path.join('.') || '(root)'}`;
          const node = parseAllDocuments(text)[document]!.getIn(path, true) as {
            flow?: boolean;
            items: { key: { range: number[] } }[];
          };
          if (node.flow) {
            assert.equal(diff.removed.length, 1, where);
            assert.ok(diff.added.length <= 2, where);
            assert.match(diff.added.join('\n'), /addedKey"?: "?v"?/, where);
          } else {
            assert.equal(diff.removed.length, 0, `${where}: only an insertion\n-${diff.removed.join('\n-')}`);
            assert.equal(diff.added.length, 1, where);
            const firstKey = node.items[0]!.key.range[0];
            const column = firstKey - (text.lastIndexOf('\n', firstKey - 1) + 1);
            assert.equal(diff.added[0]!.replace(/\r$/, ''), `${' '.repeat(column)}addedKey: v`, where);
          }
          const expected = values.map((v, i) => (i === document ? setIn(v, [...path, 'addedKey'], 'v') : v));
          assert.deepEqual(editYaml(out).values(), expected, where);
        }
        for (const path of lists) {
          if (throughAlias(text, document, path)) continue;
          const length = (editYaml(text).get(path, { document }) as unknown[]).length;
          const out = editYaml(text)
            .set([...path, length], 'appended', { document })
            .toString();
          const diff = lineDiff(text, out);
          const where = `${file} doc ${document} append to ${path.join('.')}`;
          assert.ok(diff.removed.length <= 1 && diff.added.length - diff.removed.length <= 1, where);
          const expected = values.map((v, i) =>
            i === document ? setIn(v, [...path, length], 'appended') : v,
          );
          assert.deepEqual(editYaml(out).values(), expected, where);
        }
      });
      assert.ok(scalars > 0, 'some scalars were edited');
      if (!file.includes('anchors')) assert.equal(refused, 0, 'no alias outside the anchors file');
    });
  }
});
