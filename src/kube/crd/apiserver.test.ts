// Generated CRDs judged by the real kube-apiserver (one control plane for the file): the CRD is accepted
// and Established, valid objects get their defaults, invalid ones are refused by the apiserver itself (enum,
// minimum, pattern, format, CEL, list types), unknown fields are pruned, the status and scale subresources,
// printer columns, selectable fields and a deprecated second version work. The structural checker is held
// to the apiserver's judgement too: what it flags, the apiserver refuses.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { type ControlPlane, startControlPlane } from 'capstan/testing';
import { z } from 'zod';
import {
  type Condition,
  checkStructural,
  conditionTime,
  crdManifest,
  customResource,
  embeddedResource,
  immutable,
  installCustomResources,
  intOrString,
  KubeClient,
  KubeError,
  KubeErrorCode,
  listMap,
  listSet,
  preserveUnknownFields,
  type StructuralSchema,
  statusConditions,
  withRules,
} from '../index.ts';

const WidgetSpec = z.object({
  size: z.enum(['small', 'medium', 'large']).describe('How big'),
  replicas: z.int32().min(1).max(10).default(2),
  name: z
    .string()
    .regex(/^[a-z]+$/)
    .max(10),
  contact: z.email().optional(),
  ratio: z.number().gt(0).lt(1).optional(),
  step: z.int().multipleOf(5).optional(),
  when: z.iso.datetime().optional(),
  note: z.string().nullable().optional(),
  region: immutable(z.string().max(20)).optional(),
  // A nullable enum: the apiserver refuses null for an enum, nullable or not, so the choice is a CEL rule.
  color: z.enum(['red', 'blue']).nullable().optional(),
  level: z.int().min(1).nullable().optional(),
  mode: z.union([z.literal('a'), z.literal('b')]).default('a'),
  ports: listMap(
    z
      .array(
        z.object({
          name: z.string().max(15),
          port: z.int32(),
          protocol: z.enum(['TCP', 'UDP']).default('TCP'),
        }),
      )
      .max(4),
    'name',
  ).optional(),
  tags: listSet(z.array(z.string().max(20)).max(8)).optional(),
  maxUnavailable: intOrString().optional(),
  extra: preserveUnknownFields().optional(),
  template: embeddedResource().optional(),
  labels: z
    .record(
      z
        .string()
        .regex(/^[a-z]+$/)
        .max(20),
      z.string().max(20),
    )
    .optional(),
  source: z
    .discriminatedUnion('type', [
      z.object({ type: z.literal('git'), url: z.url().max(200), ref: z.string().max(100).optional() }),
      z.object({ type: z.literal('image'), image: z.string().max(200) }),
    ])
    .optional(),
  limits: withRules(z.object({ min: z.int32(), max: z.int32() }), {
    rule: 'self.min <= self.max',
    message: 'min must not exceed max',
  }).optional(),
});

const Widget = customResource('Widget')
  .inGroup('crd.capstan.dev')
  .withShortNames('wdg')
  .inCategories('capstan')
  .version('v1beta1', {
    spec: z.object({ size: z.enum(['small', 'medium', 'large']), name: z.string() }),
    deprecated: 'crd.capstan.dev/v1beta1 Widget is deprecated; use crd.capstan.dev/v1',
  })
  .version('v1', {
    spec: WidgetSpec,
    status: z.object({
      replicas: z.int32().optional(),
      selector: z.string().optional(),
      phase: z.enum(['Pending', 'Ready']).optional(),
      conditions: statusConditions().optional(),
    }),
    scale: {
      specReplicasPath: '.spec.replicas',
      statusReplicasPath: '.status.replicas',
      labelSelectorPath: '.status.selector',
    },
    printerColumns: [
      { name: 'Size', type: 'string', jsonPath: '.spec.size' },
      { name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas' },
      { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
    ],
    selectableFields: ['.spec.size'],
  })
  .storedAs('v1');

const ns = 'default';
const base = `/apis/crd.capstan.dev/v1/namespaces/${ns}/widgets`;
let cp: ControlPlane;
let kube: KubeClient;

before(async () => {
  cp = await startControlPlane();
  kube = await KubeClient.fromKubeconfig({ path: cp.kubeconfigPath });
  await installCustomResources(kube, [Widget]);
});
after(async () => {
  await kube?.close();
  await cp?.stop();
});

interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: apiserver JSON, read field by field in assertions.
  json: any;
}
async function call(path: string, method = 'GET', body?: unknown): Promise<Answer> {
  const res = await cp.request(path, { method, ...(body !== undefined ? { body } : {}) });
  return { status: res.status, json: res.body ? JSON.parse(res.body) : undefined };
}

function widget(name: string, spec: Record<string, unknown>) {
  return { apiVersion: 'crd.capstan.dev/v1', kind: 'Widget', metadata: { name }, spec };
}

function kubectl(...args: string[]) {
  assert.ok(cp.assets.kubectl, `no kubectl in ${cp.assets.dir}`);
  return spawnSync(cp.assets.kubectl, ['--kubeconfig', cp.kubeconfigPath, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
}

describe('a generated CRD on the real apiserver', () => {
  test('accepted, Established, structural (no NonStructuralSchema condition), schema stored as generated', async () => {
    const crd = await call('/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.crd.capstan.dev');
    assert.equal(crd.status, 200);
    const conditions = crd.json.status.conditions as Array<{ type: string; status: string }>;
    assert.ok(conditions.some((c) => c.type === 'Established' && c.status === 'True'));
    assert.ok(!conditions.some((c) => c.type === 'NonStructuralSchema' && c.status === 'True'));
    const stored = crd.json.spec.versions.find((v: { name: string }) => v.name === 'v1');
    assert.deepEqual(stored.schema, crdManifest(Widget).spec.versions[1]!.schema);
  });

  test('a valid object: created, defaults applied, unknown fields pruned, preserved ones kept', async () => {
    const res = await call(
      base,
      'POST',
      widget('ok', {
        size: 'small',
        name: 'abc',
        ports: [{ name: 'http', port: 80 }],
        maxUnavailable: '25%',
        extra: { anything: { goes: [1, 2] } },
        template: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { a: 'b' } },
        note: null,
        color: null,
        level: null,
        labels: { app: 'web' },
        source: { type: 'git', url: 'https://example.com/site.git' },
        bogus: 'pruned',
      }),
    );
    assert.equal(res.status, 201, JSON.stringify(res.json));
    const spec = res.json.spec;
    assert.equal(spec.replicas, 2, 'default replicas');
    assert.equal(spec.mode, 'a', 'default of a literal union');
    assert.deepEqual(spec.ports, [{ name: 'http', port: 80, protocol: 'TCP' }], 'default inside a list item');
    assert.equal('bogus' in spec, false, 'unknown field pruned');
    assert.deepEqual(spec.extra, { anything: { goes: [1, 2] } });
    assert.equal(spec.template.data.a, 'b');
    assert.equal(spec.maxUnavailable, '25%');
    assert.equal(spec.note, null);
    assert.equal(spec.color, null, 'a nullable enum takes null');
    assert.equal(spec.level, null, 'a nullable bounded integer takes null');
    assert.deepEqual(
      spec.source,
      { type: 'git', url: 'https://example.com/site.git' },
      'a discriminated union variant',
    );
    const intToo = await call(
      base,
      'POST',
      widget('ok-int', { size: 'large', name: 'b', maxUnavailable: 1 }),
    );
    assert.equal(intToo.status, 201, JSON.stringify(intToo.json));
  });

  const invalid: Array<[string, Record<string, unknown>, RegExp]> = [
    ['wrong enum', { size: 'huge', name: 'a' }, /spec\.size: Unsupported value: "huge"/],
    [
      'replicas below minimum',
      { size: 'small', name: 'a', replicas: 0 },
      /spec\.replicas: Invalid value: 0: spec\.replicas in body should be greater than or equal to 1/,
    ],
    [
      'replicas above maximum',
      { size: 'small', name: 'a', replicas: 11 },
      /spec\.replicas in body should be less than or equal to 10/,
    ],
    ['pattern', { size: 'small', name: 'ABC' }, /spec\.name in body should match '\^\[a-z\]\+\$'/],
    ['maxLength', { size: 'small', name: 'abcdefghijk' }, /spec\.name: Too long/],
    [
      'format email',
      { size: 'small', name: 'a', contact: 'not-an-email' },
      /spec\.contact in body must be of type email/,
    ],
    [
      'format date-time',
      { size: 'small', name: 'a', when: 'yesterday' },
      /spec\.when in body must be of type date-time/,
    ],
    [
      'exclusive minimum',
      { size: 'small', name: 'a', ratio: 0 },
      /spec\.ratio in body should be greater than 0/,
    ],
    ['multipleOf', { size: 'small', name: 'a', step: 7 }, /spec\.step in body should be a multiple of 5/],
    [
      'failing CEL rule',
      { size: 'small', name: 'a', limits: { min: 5, max: 1 } },
      /spec\.limits: Invalid value: "object": min must not exceed max/,
    ],
    [
      'duplicate list-map key',
      {
        size: 'small',
        name: 'a',
        ports: [
          { name: 'x', port: 1 },
          { name: 'x', port: 2 },
        ],
      },
      /spec\.ports\[1\]: Duplicate value/,
    ],
    [
      'duplicate set item',
      { size: 'small', name: 'a', tags: ['t', 't'] },
      /spec\.tags\[1\]: Duplicate value: "t"/,
    ],
    ['missing required field', { name: 'a' }, /spec\.size: Required value/],
    [
      'int-or-string of another type',
      { size: 'small', name: 'a', maxUnavailable: true },
      /spec\.maxUnavailable/,
    ],
    [
      'record key rule (CEL)',
      { size: 'small', name: 'a', labels: { BAD: 'x' } },
      /spec\.labels: Invalid value: "object": keys must match/,
    ],
    [
      'discriminated union: a variant without its required field',
      { size: 'small', name: 'a', source: { type: 'git' } },
      /spec\.source: Invalid value: "object": type git requires url and allows no image/,
    ],
    [
      'discriminated union: a field of another variant',
      { size: 'small', name: 'a', source: { type: 'image', image: 'nginx', url: 'https://x.dev' } },
      /spec\.source: Invalid value: "object": type image requires image and allows no url/,
    ],
    [
      'discriminated union: an unknown tag',
      { size: 'small', name: 'a', source: { type: 'svn' } },
      /spec\.source\.type: Unsupported value: "svn"/,
    ],
    [
      'nullable enum: another value',
      { size: 'small', name: 'a', color: 'green' },
      /spec\.color: Invalid value: "string": must be one of "red", "blue"/,
    ],
    // A null in a field that is not nullable is pruned before validation: the field is then missing.
    ['null where not nullable', { size: 'small', name: null }, /spec\.name: Required value/],
  ];
  for (const [what, spec, expected] of invalid) {
    test(`refused by the apiserver: ${what}`, async () => {
      const res = await call(base, 'POST', widget(`bad-${what.replace(/[^a-z]+/g, '-')}`, spec));
      assert.equal(res.status, 422, JSON.stringify(res.json));
      assert.equal(res.json.reason, 'Invalid');
      assert.match(res.json.message, expected);
    });
  }

  test('the custom resource is a ResourceType: the typed kube client creates, reads, scales it', async () => {
    const widgets = kube.resource(Widget, ns);
    // newObject: the spec as users write it (replicas and mode have defaults), parsed by zod.
    const created = await widgets.create(
      Widget.newObject({ name: 'typed' }, { size: 'large', name: 'typed', replicas: 3 }),
    );
    assert.equal(created.spec.mode, 'a');
    // Typed from the zod schema: spec.replicas is a number, spec.size one of three strings.
    const replicas: number = created.spec.replicas;
    const size: 'small' | 'medium' | 'large' = created.spec.size;
    assert.deepEqual([replicas, size], [3, 'large']);
    await widgets.scale('typed', 4);
    assert.equal((await widgets.get('typed')).spec.replicas, 4);
    await assert.rejects(
      widgets.create({ ...created, metadata: { name: 'typed-bad' }, spec: { ...created.spec, replicas: 0 } }),
      (err: unknown) => err instanceof KubeError && err.code === KubeErrorCode.invalid && err.status === 422,
    );
  });

  test('an immutable field: set on create, an update changing it refused, one keeping it accepted', async () => {
    const created = await call(base, 'POST', widget('fixed', { size: 'small', name: 'fixed', region: 'eu' }));
    assert.equal(created.status, 201, JSON.stringify(created.json));
    const changed = await call(`${base}/fixed`, 'PUT', {
      ...created.json,
      spec: { ...created.json.spec, region: 'us' },
    });
    assert.equal(changed.status, 422, JSON.stringify(changed.json));
    assert.match(changed.json.message, /spec\.region: Invalid value: "string": is immutable/);
    const kept = await call(`${base}/fixed`, 'PUT', {
      ...created.json,
      spec: { ...created.json.spec, size: 'large' },
    });
    assert.equal(kept.status, 200, JSON.stringify(kept.json));
  });

  test('status subresource: /status writes status only, the main resource ignores status', async () => {
    const created = await call(base, 'POST', {
      ...widget('st', { size: 'medium', name: 'st' }),
      status: { phase: 'Ready' },
    });
    assert.equal(created.status, 201);
    assert.equal(created.json.status, undefined, 'status dropped on create');
    const withStatus = { ...created.json, status: { phase: 'Ready', replicas: 2, selector: 'app=st' } };
    const put = await call(`${base}/st/status`, 'PUT', {
      ...withStatus,
      spec: { ...created.json.spec, size: 'large' },
    });
    assert.equal(put.status, 200, JSON.stringify(put.json));
    assert.equal(put.json.status.phase, 'Ready');
    assert.equal(put.json.spec.size, 'medium', 'spec unchanged through /status');
    const badStatus = await call(`${base}/st/status`, 'PUT', { ...put.json, status: { phase: 'Lost' } });
    assert.equal(badStatus.status, 422, 'the status schema is enforced too');
    // Conditions as setCondition writes them (metav1.Condition): accepted; a status outside True/False/Unknown,
    // an empty reason or a repeated type are refused.
    const ready: Condition = {
      type: 'Ready',
      status: 'True',
      reason: 'AllReplicasReady',
      message: '',
      lastTransitionTime: conditionTime(Date.now()),
      observedGeneration: 1,
    };
    const withCondition = await call(`${base}/st/status`, 'PUT', {
      ...put.json,
      status: { ...put.json.status, conditions: [ready] },
    });
    assert.equal(withCondition.status, 200, JSON.stringify(withCondition.json));
    assert.deepEqual(withCondition.json.status.conditions, [ready]);
    for (const [what, conditions, expected] of [
      [
        'a status outside True/False/Unknown',
        [{ ...ready, status: 'Maybe' }],
        /status\.conditions\[0\]\.status: Unsupported value: "Maybe"/,
      ],
      ['an empty reason', [{ ...ready, reason: '' }], /status\.conditions\[0\]\.reason/],
      ['a repeated type', [ready, ready], /status\.conditions\[1\]: Duplicate value/],
    ] as const) {
      const res = await call(`${base}/st/status`, 'PUT', {
        ...withCondition.json,
        status: { ...withCondition.json.status, conditions },
      });
      assert.equal(res.status, 422, what);
      assert.match(res.json.message, expected, what);
    }
  });

  test('scale subresource: /scale reads and writes spec.replicas; kubectl scale works', async () => {
    const scale = await call(`${base}/st/scale`);
    assert.equal(scale.status, 200, JSON.stringify(scale.json));
    assert.equal(scale.json.kind, 'Scale');
    assert.equal(scale.json.spec.replicas, 2);
    assert.equal(scale.json.status.replicas, 2);
    assert.equal(scale.json.status.selector, 'app=st');
    const put = await call(`${base}/st/scale`, 'PUT', { ...scale.json, spec: { replicas: 5 } });
    assert.equal(put.status, 200, JSON.stringify(put.json));
    assert.equal((await call(`${base}/st`)).json.spec.replicas, 5);
    const tooMany = await call(`${base}/st/scale`, 'PUT', { ...put.json, spec: { replicas: 50 } });
    assert.equal(tooMany.status, 422, 'the maximum holds through /scale');
    const r = kubectl('scale', 'widget/st', '--replicas=3', '-n', ns);
    assert.equal(r.status, 0, r.stderr);
    assert.equal((await call(`${base}/st`)).json.spec.replicas, 3);
  });

  test('kubectl get prints the printer columns; short name and category resolve', () => {
    const r = kubectl('get', 'wdg', 'st', '-n', ns);
    assert.equal(r.status, 0, r.stderr);
    const [header, row] = r.stdout.trim().split('\n');
    assert.match(header!, /^NAME\s+SIZE\s+REPLICAS\s+PHASE$/);
    assert.match(row!, /^st\s+medium\s+3\s+Ready$/);
    const byCategory = kubectl('get', 'capstan', '-n', ns, '-o', 'name');
    assert.equal(byCategory.status, 0, byCategory.stderr);
    assert.match(byCategory.stdout, /^widget\.crd\.capstan\.dev\/st$/m);
  });

  test('selectable field: --field-selector spec.size', () => {
    const r = kubectl('get', 'widgets', '-n', ns, '--field-selector', 'spec.size=medium', '-o', 'name');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'widget.crd.capstan.dev/st');
  });

  test('two versions: v1beta1 served (deprecated, with its warning), objects readable in both', async () => {
    const old = await call(`/apis/crd.capstan.dev/v1beta1/namespaces/${ns}/widgets`, 'POST', {
      apiVersion: 'crd.capstan.dev/v1beta1',
      kind: 'Widget',
      metadata: { name: 'old' },
      spec: { size: 'large', name: 'old' },
    });
    assert.equal(old.status, 201, JSON.stringify(old.json));
    // Stored as v1 (conversion None): defaults of the v1 schema apply on read in v1.
    const asV1 = await call(`${base}/old`);
    assert.equal(asV1.json.apiVersion, 'crd.capstan.dev/v1');
    assert.equal(asV1.json.spec.replicas, 2);
    const asBeta = await call(`/apis/crd.capstan.dev/v1beta1/namespaces/${ns}/widgets/st`);
    assert.equal(asBeta.json.apiVersion, 'crd.capstan.dev/v1beta1');
    const r = kubectl('get', 'widgets.v1beta1.crd.capstan.dev', 'old', '-n', ns, '-o', 'name');
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stderr,
      /Warning: crd\.capstan\.dev\/v1beta1 Widget is deprecated; use crd\.capstan\.dev\/v1/,
    );
  });
});

describe('installCustomResources', () => {
  test('re-applying a changed definition updates the CRD (server-side apply)', async () => {
    const changed = customResource('Widget')
      .inGroup('crd.capstan.dev')
      .withShortNames('wdg', 'wd')
      .inCategories('capstan')
      .version('v1beta1', {
        spec: z.object({ size: z.enum(['small', 'medium', 'large']), name: z.string() }),
        deprecated: true,
      })
      .version('v1', Widget.definition.versions[1]!)
      .storedAs('v1');
    // The recorded version data is a valid version input: reuse v1 as it is.
    await installCustomResources(kube, [changed]);
    const crd = await call('/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.crd.capstan.dev');
    assert.deepEqual(crd.json.spec.names.shortNames, ['wdg', 'wd']);
    await installCustomResources(kube, [Widget]);
  });

  test('a name the apiserver does not accept (a short name another CRD of the group has) fails with the reason', async () => {
    const gadget = customResource('Gadget')
      .inGroup('crd.capstan.dev')
      .withShortNames('wdg')
      .version('v1', { spec: z.object({ a: z.string() }) })
      .storedAs('v1');
    await assert.rejects(installCustomResources(kube, [gadget], { timeoutMs: 20_000 }), (err: unknown) => {
      assert.ok(err instanceof KubeError);
      assert.equal(err.code, KubeErrorCode.crd);
      assert.match(err.message, /gadgets\.crd\.capstan\.dev: names not accepted: .*wdg/);
      return true;
    });
  });

  test('a definition that cannot be generated fails before anything is sent', async () => {
    const broken = customResource('Broken')
      .inGroup('crd.capstan.dev')
      .version('v1', { spec: z.object({ d: z.date() }) })
      .storedAs('v1');
    await assert.rejects(installCustomResources(kube, [broken]), { code: KubeErrorCode.crd });
    const res = await call('/apis/apiextensions.k8s.io/v1/customresourcedefinitions/brokens.crd.capstan.dev');
    assert.equal(res.status, 404);
  });
});

describe('the structural checker agrees with the apiserver', () => {
  // Hand-written schemas our generator never emits: each must be flagged by checkStructural AND refused
  // by the apiserver, so the checker is held to the real rules, not to our reading of them.
  const nonStructural: Array<[string, StructuralSchema]> = [
    [
      'a field without a type',
      { type: 'object', properties: { spec: { type: 'object', properties: { a: {} } } } },
    ],
    [
      'anyOf of two types',
      {
        type: 'object',
        properties: {
          spec: { type: 'object', properties: { a: { anyOf: [{ type: 'string' }, { type: 'integer' }] } } },
        },
      },
    ],
    [
      'properties beside additionalProperties',
      {
        type: 'object',
        properties: {
          spec: {
            type: 'object',
            properties: { a: { type: 'string' } },
            additionalProperties: { type: 'string' },
          },
        },
      },
    ],
    [
      'an array without items',
      { type: 'object', properties: { spec: { type: 'object', properties: { a: { type: 'array' } } } } },
    ],
    [
      'a list-map key that is not required',
      {
        type: 'object',
        properties: {
          spec: {
            type: 'object',
            properties: {
              a: {
                type: 'array',
                'x-kubernetes-list-type': 'map',
                'x-kubernetes-list-map-keys': ['k'],
                items: { type: 'object', properties: { k: { type: 'string' } } },
              },
            },
          },
        },
      },
    ],
    [
      'a default of the wrong type',
      {
        type: 'object',
        properties: { spec: { type: 'object', properties: { a: { type: 'integer', default: 'x' } } } },
      },
    ],
    [
      'a default below the minimum',
      {
        type: 'object',
        properties: {
          spec: { type: 'object', properties: { a: { type: 'integer', minimum: 5, default: 1 } } },
        },
      },
    ],
    [
      'a default not matching the pattern',
      {
        type: 'object',
        properties: {
          spec: { type: 'object', properties: { a: { type: 'string', pattern: '^a', default: 'b' } } },
        },
      },
    ],
  ];
  for (const [i, [what, schema]] of nonStructural.entries()) {
    test(`flagged and refused: ${what}`, async () => {
      assert.notDeepEqual(checkStructural(schema), [], 'flagged by checkStructural');
      const res = await call('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', 'POST', {
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: { name: `bads${i}.crd.capstan.dev` },
        spec: {
          group: 'crd.capstan.dev',
          scope: 'Namespaced',
          names: { plural: `bads${i}`, singular: `bad${i}`, kind: `Bad${i}` },
          versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: schema } }],
        },
      });
      assert.equal(res.status, 422, `the apiserver refuses it too: ${JSON.stringify(res.json)}`);
    });
  }
});
