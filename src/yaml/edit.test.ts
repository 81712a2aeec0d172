import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  editYaml,
  formatPath,
  formatYaml,
  getPath,
  parsePath,
  parseScalar,
  YamlError,
  type YamlErrorCode,
} from './index.ts';

function codeOf(fn: () => unknown): YamlErrorCode {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof YamlError, String(err));
    return err.code;
  }
  assert.fail('no error');
}

const set = (text: string, path: string, value: unknown, document?: number) =>
  editYaml(text)
    .set(path, value, document === undefined ? {} : { document })
    .toString();

describe('editYaml', () => {
  test('a scalar changes in place; its comment and every other byte stay', () => {
    const text = '# head\nspec:\n  replicas: 3   # floor\n  other: x\n';
    assert.equal(set(text, 'spec.replicas', 0), '# head\nspec:\n  replicas: 0   # floor\n  other: x\n');
  });

  test('setting the value it already has changes nothing, whatever its spelling', () => {
    const text = "a: 0x10\nb: 'x'\nc: [1, 2]\nd: ~\ne: !!str 5\n";
    const e = editYaml(text).set('a', 16).set('b', 'x').set('c', [1, 2]).set('d', null).set('e', '5');
    assert.equal(e.toString(), text);
  });

  test('quoting style is kept when it can carry the value', () => {
    const text = `a: "x"\nb: 'y'\nc: z\nd: plain\n`;
    assert.equal(set(text, 'a', 'new'), `a: "new"\nb: 'y'\nc: z\nd: plain\n`);
    assert.equal(set(text, 'b', "it's"), `a: "x"\nb: 'it''s'\nc: z\nd: plain\n`);
    // A plain scalar that would read back as something else gets quotes.
    assert.equal(set(text, 'c', '0'), `a: "x"\nb: 'y'\nc: "0"\nd: plain\n`);
    assert.equal(set(text, 'c', 'true'), `a: "x"\nb: 'y'\nc: "true"\nd: plain\n`);
    assert.equal(set(text, 'c', 'a: b'), `a: "x"\nb: 'y'\nc: "a: b"\nd: plain\n`);
    // A number replaces a quoted string as a number.
    assert.equal(set(text, 'a', 8080), "a: 8080\nb: 'y'\nc: z\nd: plain\n");
  });

  test('block scalars stay blocks', () => {
    const text = 'cfg: |\n  one\n  two\nnext: 1\n';
    assert.equal(set(text, 'cfg', 'uno\ndos\ntres\n'), 'cfg: |\n  uno\n  dos\n  tres\nnext: 1\n');
    assert.equal(set(text, 'cfg', 'single'), 'cfg: single\nnext: 1\n');
  });

  test('a missing key is added after its siblings, at their column; missing maps on the way too', () => {
    const text = 'metadata:\n    name: web   # four-space file\n    labels:\n        app: web\n# end\n';
    assert.equal(
      set(text, 'metadata.namespace', 'shop'),
      'metadata:\n    name: web   # four-space file\n    labels:\n        app: web\n    namespace: shop\n# end\n',
    );
    assert.equal(
      set('spec:\n  replicas: 1\n', 'spec.strategy.rollingUpdate.maxSurge', '25%'),
      'spec:\n  replicas: 1\n  strategy:\n    rollingUpdate:\n      maxSurge: 25%\n',
    );
    assert.equal(set('metadata:\nspec: {}\n', 'metadata.name', 'x'), 'metadata:\n  name: x\nspec: {}\n');
    assert.equal(set('a: 1\n', 'b["x.y"]', 2), 'a: 1\nb:\n  x.y: 2\n');
  });

  test('lists: index, append at the length, block and flow; past the end is an error', () => {
    const text = 'args:\n- a\n- b # second\nflow: [x, y]\n';
    assert.equal(set(text, 'args[1]', 'B'), 'args:\n- a\n- B # second\nflow: [x, y]\n');
    assert.equal(set(text, 'args[2]', 'c'), 'args:\n- a\n- b # second\n- c\nflow: [x, y]\n');
    assert.equal(set(text, 'flow[2]', 'z, w'), 'args:\n- a\n- b # second\nflow: [x, y, "z, w"]\n');
    assert.equal(set(text, 'flow[0]', '{'), 'args:\n- a\n- b # second\nflow: ["{", y]\n');
    assert.equal(set('v: ["get"]\nw:\n- \'a\'\n', 'v[1]', 'list'), 'v: ["get", "list"]\nw:\n- \'a\'\n');
    assert.equal(set('v: ["get"]\nw:\n- \'a\'\n', 'w[1]', 'b'), "v: [\"get\"]\nw:\n- 'a'\n- 'b'\n");
    assert.equal(
      set('c:\n  - name: a\n', 'c[1]', { name: 'b', image: 'i' }),
      'c:\n  - name: a\n  - name: b\n    image: i\n',
    );
    assert.equal(
      codeOf(() => set(text, 'args[5]', 'x')),
      'CAP_ERR_YAML_EDIT',
    );
  });

  test('maps and lists as values: block style at the right indentation, following the file', () => {
    assert.equal(set('a:\n  b: 1\nc: 2\n', 'a', { x: [1, 2] }), 'a:\n  x:\n    - 1\n    - 2\nc: 2\n');
    assert.equal(set('k:\n- 1\nc: 2\n', 'c', { l: ['a'] }), 'k:\n- 1\nc:\n  l:\n  - a\n');
    assert.equal(set('a: {b: 1}\n', 'a.b', { c: [1] }), 'a: {b: {"c":[1]}}\n');
    assert.equal(set('a:\n  b: 1\n', 'a', {}), 'a: {}\n');
  });

  test('CRLF files keep CRLF in what is added; no final newline stays so', () => {
    assert.equal(set('a: 1\r\nb:\r\n  c: 2\r\n', 'b.d', 'x'), 'a: 1\r\nb:\r\n  c: 2\r\n  d: x\r\n');
    assert.equal(set('a: 1\r\nb:\r\n  c: 2', 'b.d', 'x'), 'a: 1\r\nb:\r\n  c: 2\r\n  d: x');
  });

  test('JSON stays JSON: double quotes, one entry per line where the file has them', () => {
    const text = '{\n  "a": {"b": 1},\n  "c": "x"\n}\n';
    assert.equal(set(text, 'c', 'y'), '{\n  "a": {"b": 1},\n  "c": "y"\n}\n');
    assert.equal(set(text, 'd', 'z'), '{\n  "a": {"b": 1},\n  "c": "x",\n  "d": "z"\n}\n');
    assert.equal(set(text, 'a.e', 2), '{\n  "a": {"b": 1, "e": 2},\n  "c": "x"\n}\n');
    assert.deepEqual(JSON.parse(set(text, 'a.e', [1])), { a: { b: 1, e: [1] }, c: 'x' });
  });

  test('multi-document files: the document is named, by index or by kind and name', () => {
    const text = 'kind: A\nmetadata: {name: a}\n---\nkind: B\nmetadata: {name: b}\n---\n';
    const e = editYaml(text);
    assert.equal(
      codeOf(() => e.set('x', 1)),
      'CAP_ERR_YAML_NOT_FOUND',
    );
    assert.equal(e.findDocument('b'), 1);
    assert.equal(e.findDocument('B', 'b'), 1);
    assert.equal(
      codeOf(() => e.findDocument('B', 'c')),
      'CAP_ERR_YAML_NOT_FOUND',
    );
    assert.equal(
      codeOf(() => e.get('kind', { document: 7 })),
      'CAP_ERR_YAML_NOT_FOUND',
    );
    assert.equal(
      e.set('metadata.name', 'bb', { document: 1 }).toString(),
      'kind: A\nmetadata: {name: a}\n---\nkind: B\nmetadata: {name: bb}\n---\n',
    );
    assert.equal(editYaml('---\na: 1\n---\n').get('a'), 1, 'one non-empty document needs no index');
  });

  test('refused: through an alias, under a scalar, invalid YAML', () => {
    const text = 'base: &b {x: 1}\nuse: *b\n';
    assert.equal(
      codeOf(() => set(text, 'use.x', 2)),
      'CAP_ERR_YAML_EDIT',
    );
    assert.equal(
      codeOf(() => set(text, 'use', 2)),
      'CAP_ERR_YAML_EDIT',
    );
    assert.equal(set(text, 'base.x', 2), 'base: &b {x: 2}\nuse: *b\n');
    assert.equal(
      codeOf(() => set('a: 1\n', 'a.b', 2)),
      'CAP_ERR_YAML_EDIT',
    );
    assert.equal(
      codeOf(() => editYaml('a: 1\na: 2\n')),
      'CAP_ERR_YAML_SYNTAX',
    );
    assert.equal(
      codeOf(() => editYaml('a: [1\n')),
      'CAP_ERR_YAML_SYNTAX',
    );
    assert.equal(
      codeOf(() => set('a: 1\n', 'a[', 2)),
      'CAP_ERR_YAML_PATH',
    );
  });

  test('get reads values; a missing path is not found', () => {
    const e = editYaml('spec:\n  containers:\n  - {name: a, image: "i:1"}\n');
    assert.equal(e.get('spec.containers[0].image'), 'i:1');
    assert.equal(e.get('spec.containers.0.name'), 'a');
    assert.deepEqual(e.get(''), { spec: { containers: [{ name: 'a', image: 'i:1' }] } });
    assert.equal(e.has('spec.containers[1]'), false);
    assert.equal(
      codeOf(() => e.get('spec.nope')),
      'CAP_ERR_YAML_NOT_FOUND',
    );
  });
});

describe('paths', () => {
  test('dots, indexes, quoted keys and escapes', () => {
    assert.deepEqual(parsePath('spec.template.spec.containers[0].image'), [
      'spec',
      'template',
      'spec',
      'containers',
      0,
      'image',
    ]);
    assert.deepEqual(parsePath('metadata.annotations["prometheus.io/scrape"]'), [
      'metadata',
      'annotations',
      'prometheus.io/scrape',
    ]);
    assert.deepEqual(parsePath("a['b]c']"), ['a', 'b]c']);
    assert.deepEqual(parsePath('a.b\\.c.d'), ['a', 'b.c', 'd']);
    assert.deepEqual(parsePath('data.1'), ['data', '1']);
    assert.deepEqual(parsePath(''), []);
    assert.equal(
      formatPath(['metadata', 'annotations', 'a.b/c', 'x', 0]),
      'metadata.annotations["a.b/c"].x[0]',
    );
    for (const bad of ['a..b', '.a', 'a.', 'a[', 'a[x]', 'a["b"', 'a[0]b', 'a\\']) {
      assert.equal(
        codeOf(() => parsePath(bad)),
        'CAP_ERR_YAML_PATH',
        bad,
      );
    }
  });

  test('getPath on plain values', () => {
    const v = { a: [{ b: 0 }], 'c.d': false };
    assert.equal(getPath(v, 'a[0].b'), 0);
    assert.equal(getPath(v, '["c.d"]'), false);
    assert.equal(getPath(v, 'a[1].b'), undefined);
    assert.equal(getPath(v, 'a.x'), undefined);
  });

  test('parseScalar reads a value as YAML: 0 is a number, "0" a string', () => {
    assert.equal(parseScalar('0'), 0);
    assert.equal(parseScalar('true'), true);
    assert.equal(parseScalar('null'), null);
    assert.equal(parseScalar('"0"'), '0');
    assert.equal(parseScalar('nginx:1.25'), 'nginx:1.25');
    assert.deepEqual(parseScalar('[a, 1]'), ['a', 1]);
    assert.equal(
      codeOf(() => parseScalar('[a')),
      'CAP_ERR_YAML_SYNTAX',
    );
  });
});

describe('formatYaml', () => {
  test('re-indents, keeps comments, order and CRLF', () => {
    const text = '# head\r\na:\r\n    b: 1   # one\r\n    # between\r\n    l:\r\n    -   x\r\n';
    const out = formatYaml(text);
    assert.equal(out, '# head\r\na:\r\n  b: 1 # one\r\n  # between\r\n  l:\r\n  - x\r\n');
    assert.equal(formatYaml(out), out, 'formatting is stable');
    assert.equal(formatYaml('a:\n- x\n', { sequences: 'indented' }), 'a:\n  - x\n');
    assert.equal(formatYaml('a:\n    - x\n', { indent: 4 }), 'a:\n    - x\n');
    assert.equal(
      codeOf(() => formatYaml('a: 1\na: 2\n')),
      'CAP_ERR_YAML_SYNTAX',
    );
  });
});
