import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import {
  checkYaml,
  didYouMean,
  kubeObject,
  kubeObjectSchema,
  parseAllStrict,
  parseStrict,
  schemaByKind,
  toYaml,
  YamlError,
  YamlErrorCode,
  type YamlProblem,
} from './index.ts';

const Container = z.object({
  name: z.string(),
  image: z.string(),
  ports: z
    .array(z.object({ containerPort: z.number().int(), protocol: z.string().default('TCP') }))
    .optional(),
});
const Deployment = kubeObject({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  spec: z.object({
    replicas: z.number().int().optional(),
    paused: z.boolean().optional(),
    selector: z.object({ matchLabels: z.record(z.string(), z.string()) }),
    template: z.object({
      metadata: z.object({ labels: z.record(z.string(), z.string()).optional() }).optional(),
      spec: z.object({ containers: z.array(Container), args: z.array(z.string()).optional() }),
    }),
  }),
});

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 0
  paused: false
  selector:
    matchLabels: {app: web}
  template:
    spec:
      containers:
      - name: web
        image: nginx
        ports:
        - containerPort: 80
      args: []
`;

function problemsOf(fn: () => unknown): { code: string; problems: readonly YamlProblem[]; message: string } {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof YamlError, `not a YamlError: ${err}`);
    return { code: err.code, problems: err.problems, message: err.message };
  }
  assert.fail('no error');
}

const brief = (p: YamlProblem) => `${p.line}:${p.column} ${p.path} ${p.kind}: ${p.message}`;

describe('parseStrict', () => {
  test('decodes into the schema: zod output with defaults, explicit zero values kept', () => {
    const d = parseStrict(deployment, Deployment) as {
      spec: {
        replicas: number;
        paused: boolean;
        template: { spec: { containers: { ports: unknown[] }[]; args: [] } };
      };
    };
    assert.equal(d.spec.replicas, 0);
    assert.equal(d.spec.paused, false);
    assert.deepEqual(d.spec.template.spec.containers[0]!.ports, [{ containerPort: 80, protocol: 'TCP' }]);
    assert.deepEqual(d.spec.template.spec.args, []);
  });

  test('zero values survive a round trip through toYaml: no omitempty', () => {
    const value = {
      spec: { replicas: 0, paused: false, name: '', args: [], labels: {}, ratio: 0.0, none: null },
    };
    const text = toYaml(value);
    assert.match(text, /replicas: 0\n/);
    assert.match(text, /paused: false\n/);
    assert.match(text, /name: ""\n/);
    assert.match(text, /args: \[\]\n/);
    assert.deepEqual(parseStrict(text, z.looseObject({})), value);
    assert.deepEqual(
      parseStrict(toYaml(parseStrict(deployment, Deployment)), Deployment),
      parseStrict(deployment, Deployment),
    );
  });

  test('every unknown or misspelled key is an error at file:line:column, with a did-you-mean, all at once', () => {
    const text = deployment
      .replace('  name: web\n', '  name: web\n  lables: {app: web}\n')
      .replace('  replicas: 0', '  replica: 0')
      .replace('- containerPort: 80', '- containerport: 80')
      .replace(
        '        image: nginx\n',
        '        image: nginx\n        imagePullPolicyy: Always\n        colour: blue\n',
      );
    const { code, problems, message } = problemsOf(() =>
      parseStrict(text, Deployment, { file: 'deploy.yaml' }),
    );
    assert.equal(code, YamlErrorCode.invalid);
    assert.deepEqual(problems.map(brief), [
      '5:3 metadata.lables unknown-field: unknown field "lables" (did you mean "labels"?)',
      '7:3 spec.replica unknown-field: unknown field "replica" (did you mean "replicas"?)',
      '16:9 spec.template.spec.containers[0].imagePullPolicyy unknown-field: unknown field "imagePullPolicyy"',
      '17:9 spec.template.spec.containers[0].colour unknown-field: unknown field "colour"',
      '19:11 spec.template.spec.containers[0].ports[0].containerport unknown-field: unknown field "containerport" (did you mean "containerPort"?)',
      '19:11 spec.template.spec.containers[0].ports[0].containerPort schema: missing required field (expected number)',
    ]);
    assert.ok(problems.every((p) => p.file === 'deploy.yaml' && p.document === 0));
    assert.match(
      message,
      /^deploy\.yaml: does not match the schema \(6 problems\):\n {2}deploy\.yaml:5:3: metadata\.lables: unknown field/,
    );
  });

  test('type errors are located at the value', () => {
    const text = deployment.replace('replicas: 0', 'replicas: "3"').replace('image: nginx', 'image: 7');
    const { problems } = problemsOf(() => parseStrict(text, Deployment));
    assert.deepEqual(
      problems.map((p) => `${p.line}:${p.column} ${p.path}`),
      ['6:13 spec.replicas', '14:16 spec.template.spec.containers[0].image'],
    );
    assert.match(problems[0]!.message, /expected number/);
  });

  test('a duplicate key is an error with its line, as yaml.v3; schema problems are still listed', () => {
    const text = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n  lables: {}\n';
    const { code, problems } = problemsOf(() => parseStrict(text, kubeObjectSchema, { file: 'cm.yaml' }));
    assert.equal(code, YamlErrorCode.syntax);
    assert.deepEqual(problems.map(brief), [
      '5:3  duplicate-key: duplicate key "name"',
      '6:3 metadata.lables unknown-field: unknown field "lables" (did you mean "labels"?)',
    ]);
  });

  test('broken YAML is a syntax error listing each problem with its line', () => {
    const { code, problems } = problemsOf(() => parseStrict('a: 1\n b: 2\nc: [1, 2\n', z.unknown()));
    assert.equal(code, YamlErrorCode.syntax);
    assert.ok(problems.length >= 1);
    assert.ok(problems.every((p) => p.kind === 'syntax' && p.line >= 1));
  });

  test('one document is required; parseAllStrict takes a stream', () => {
    const two = `${deployment}---\n${deployment}`;
    assert.equal(problemsOf(() => parseStrict(two, Deployment)).code, YamlErrorCode.invalid);
    assert.equal(problemsOf(() => parseStrict('# nothing\n', Deployment)).code, YamlErrorCode.invalid);
    assert.equal(parseAllStrict(`---\n${two}---\n`, Deployment).length, 2);
  });

  test('problems of every document, with the document index', () => {
    const text = `${deployment}---\n# empty next\n---\n${deployment.replace('kind: Deployment', 'kind: Deployment\nstatus2: {}')}`;
    const { problems } = problemsOf(() => parseAllStrict(text, Deployment));
    assert.deepEqual(
      problems.map((p) => [p.document, p.line, p.path, p.message]),
      [[2, 23, 'status2', 'unknown field "status2" (did you mean "status"?)']],
    );
  });

  test('JSON decodes as YAML, with positions', () => {
    const json = JSON.stringify(parseStrict(deployment, Deployment), null, 2);
    assert.deepEqual(parseStrict(json, Deployment), parseStrict(deployment, Deployment));
    const bad = json.replace('"replicas"', '"replcias"');
    const { problems } = problemsOf(() => parseStrict(bad, Deployment, { file: 'd.json' }));
    assert.deepEqual(problems.map(brief), [
      '8:5 spec.replcias unknown-field: unknown field "replcias" (did you mean "replicas"?)',
    ]);
  });

  test('values are JSON data: string keys, aliases and merge keys resolved; .inf and .nan are problems', () => {
    const value = parseStrict(
      '1: one\ntrue: yes\nbase: &b {x: 1}\nref: *b\nmerged:\n  <<: *b\n  y: 2\n',
      z.looseObject({}),
    );
    assert.deepEqual(value, {
      '1': 'one',
      true: 'yes',
      base: { x: 1 },
      ref: { x: 1 },
      merged: { x: 1, y: 2 },
    });
    const { problems } = problemsOf(() => parseStrict('a: .inf\nb: [1, .nan]\n', z.unknown()));
    assert.deepEqual(
      problems.map((p) => `${p.line}:${p.column} ${p.path}`),
      ['1:4 a', '2:8 b[1]'],
    );
  });

  test('extra keys only where the schema says so: looseObject, catchall; strictObject reported once', () => {
    const schema = z.object({
      loose: z.looseObject({ a: z.number() }),
      counted: z.object({}).catchall(z.number()),
      strict: z.strictObject({ a: z.number() }),
      record: z.record(z.string(), z.object({ k: z.string() })),
    });
    const text =
      'loose: {a: 1, extra: x}\ncounted: {n: 1, m: two}\nstrict: {a: 1, b: 2}\nrecord: {one: {k: v, q: 1}}\n';
    const { problems } = problemsOf(() => parseStrict(text, schema));
    assert.deepEqual(
      problems.map((p) => `${p.path} ${p.kind}`),
      ['counted.m schema', 'strict.b unknown-field', 'record.one.q unknown-field'],
    );
  });

  test('unions: a discriminated union by its tag, else the option that accepts the value', () => {
    const Shape = z.discriminatedUnion('type', [
      z.object({ type: z.literal('circle'), radius: z.number() }),
      z.object({ type: z.literal('square'), side: z.number() }),
    ]);
    const { problems } = problemsOf(() => parseStrict('type: square\nside: 1\nradius: 2\n', Shape));
    assert.deepEqual(
      problems.map((p) => p.message),
      ['unknown field "radius"'],
    );
    const Either = z.union([z.string(), z.object({ a: z.number() }), z.object({ b: z.number() })]);
    assert.deepEqual(parseStrict('b: 1\n', Either), { b: 1 });
    assert.equal(parseStrict('just text\n', Either), 'just text');
    assert.deepEqual(
      problemsOf(() => parseStrict('b: 1\nc: 2\n', Either)).problems.map((p) => p.path),
      ['c'],
    );
  });

  test('intersections know the keys of both sides; optional, default, lazy and pipe are seen through', () => {
    const schema = z.intersection(z.object({ a: z.number() }), z.object({ b: z.number() })).and(
      z.object({
        c: z
          .lazy(() => z.object({ d: z.string().default('x') }))
          .optional()
          .pipe(z.any()),
      }),
    );
    assert.deepEqual(parseStrict('a: 1\nb: 2\nc: {d: y}\n', schema), { a: 1, b: 2, c: { d: 'y' } });
    assert.deepEqual(
      problemsOf(() => parseStrict('a: 1\nb: 2\nc: {e: y}\nz: 0\n', schema)).problems.map((p) => p.path),
      ['c.e', 'z'],
    );
  });

  test('kubeObjectSchema: strict metadata, string label values, other fields free', () => {
    const text =
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: {version: 1.0}\n  namespce: y\ndata: {a: b}\n';
    assert.deepEqual(
      problemsOf(() => parseStrict(text, kubeObjectSchema)).problems.map((p) => `${p.path} ${p.kind}`),
      ['metadata.labels.version schema', 'metadata.namespce unknown-field'],
    );
    assert.equal(
      problemsOf(() => parseStrict('kind: Pod\n', kubeObjectSchema)).problems[0]!.path,
      'apiVersion',
    );
  });

  test('schemaByKind picks the schema per document; others get the fallback', () => {
    const stream = `${deployment.replace('replicas: 0', 'replicass: 0')}---\napiVersion: v1\nkind: Service\nmetadata: {name: web, lables: {}}\nspec: {anything: goes}\n`;
    const check = checkYaml(
      stream,
      schemaByKind([{ apiVersion: 'apps/v1', kind: 'Deployment', schema: Deployment }], kubeObjectSchema),
    );
    assert.deepEqual(
      check.problems.map((p) => [p.document, p.path]),
      [
        [0, 'spec.replicass'],
        [1, 'metadata.lables'],
      ],
    );
    assert.deepEqual(check.values, [undefined, undefined]);
    assert.equal(checkYaml('a: 1\n---\nb: 2\n', undefined).values.length, 2);
  });

  test('didYouMean suggests only close names', () => {
    assert.equal(didYouMean('replcias', ['replicas', 'selector']), 'replicas');
    assert.equal(didYouMean('IMAGE', ['image']), 'image');
    assert.equal(didYouMean('colour', ['image', 'name', 'ports']), undefined);
    assert.equal(didYouMean('x', []), undefined);
  });
});
