// Unit tests: each zod construct and the schema node it becomes, the problems reported for what cannot be
// structural, the structural checker on hand-written schemas, and the manifest's own checks. The apiserver
// itself judges the generated CRDs in apiserver.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import {
  atomicList,
  type CelRule,
  type Condition,
  checkStructural,
  conditionTime,
  crdManifest,
  crdManifests,
  crdYaml,
  customResource,
  defineCustomResource,
  embeddedResource,
  exportedCustomResources,
  immutable,
  intOrString,
  isCustomResource,
  KubeError,
  KubeErrorCode,
  kubeField,
  listMap,
  listSet,
  pluralOf,
  preserveUnknownFields,
  type StructuralSchema,
  setCondition,
  statusConditions,
  withRules,
  zodToStructural,
} from '../index.ts';

/** The schema of one field, converted alone; fails the test on any problem. */
function field(schema: z.ZodType): StructuralSchema {
  const { schema: out, problems } = zodToStructural(z.object({ f: schema }), 'spec');
  assert.deepEqual(problems, []);
  return out.properties!['f']!;
}

function problemsOf(schema: z.ZodType): string[] {
  return zodToStructural(z.object({ f: schema }), 'spec').problems;
}

describe('zod to structural schema: each construct', () => {
  const cases: Array<[string, z.ZodType, StructuralSchema]> = [
    ['string', z.string(), { type: 'string' }],
    ['min/max length', z.string().min(2).max(5), { type: 'string', minLength: 2, maxLength: 5 }],
    ['exact length', z.string().length(3), { type: 'string', minLength: 3, maxLength: 3 }],
    ['regex', z.string().regex(/^a+$/), { type: 'string', pattern: '^a+$' }],
    ['case-insensitive regex', z.string().regex(/^a+$/i), { type: 'string', pattern: '(?i)^a+$' }],
    ['startsWith', z.string().startsWith('x'), { type: 'string', pattern: '^x.*' }],
    ['email', z.email(), { type: 'string', format: 'email' }],
    ['string().email()', z.string().email(), { type: 'string', format: 'email' }],
    ['uuid', z.uuid(), { type: 'string', format: 'uuid' }],
    ['datetime', z.iso.datetime(), { type: 'string', format: 'date-time' }],
    ['date', z.iso.date(), { type: 'string', format: 'date' }],
    ['url', z.url(), { type: 'string', format: 'uri' }],
    ['ipv4', z.ipv4(), { type: 'string', format: 'ipv4' }],
    ['cidr', z.cidrv4(), { type: 'string', format: 'cidr' }],
    ['number', z.number(), { type: 'number' }],
    ['int', z.int(), { type: 'integer' }],
    ['int32', z.int32(), { type: 'integer', format: 'int32' }],
    ['uint32', z.uint32(), { type: 'integer', format: 'int64', minimum: 0, maximum: 4294967295 }],
    ['float32', z.float32(), { type: 'number', format: 'float' }],
    ['min/max', z.int().min(1).max(10), { type: 'integer', minimum: 1, maximum: 10 }],
    [
      'exclusive bounds',
      z.number().gt(0).lt(1),
      { type: 'number', minimum: 0, exclusiveMinimum: true, maximum: 1, exclusiveMaximum: true },
    ],
    ['tightest bound wins', z.int().min(1).min(3).max(9).max(5), { type: 'integer', minimum: 3, maximum: 5 }],
    ['multipleOf', z.int().multipleOf(5), { type: 'integer', multipleOf: 5 }],
    ['int32 with a range', z.int32().min(1), { type: 'integer', format: 'int32', minimum: 1 }],
    ['boolean', z.boolean(), { type: 'boolean' }],
    ['enum', z.enum(['a', 'b']), { type: 'string', enum: ['a', 'b'] }],
    ['literal', z.literal('x'), { type: 'string', enum: ['x'] }],
    ['literal union', z.union([z.literal('x'), z.literal('y')]), { type: 'string', enum: ['x', 'y'] }],
    [
      'literal or null',
      z.union([z.literal('x'), z.null()]),
      {
        type: 'string',
        nullable: true,
        'x-kubernetes-validations': [{ rule: 'self in ["x"]', message: 'must be one of "x"' }],
      },
    ],
    ['number enum', z.literal([1, 2, 3]), { type: 'integer', enum: [1, 2, 3] }],
    [
      'nullable enum: a CEL rule (the apiserver refuses null for an enum, nullable or not)',
      z.enum(['a', 'b']).nullable(),
      {
        type: 'string',
        nullable: true,
        'x-kubernetes-validations': [{ rule: 'self in ["a", "b"]', message: 'must be one of "a", "b"' }],
      },
    ],
    ['union with null', z.union([z.string(), z.null()]), { type: 'string', nullable: true }],
    ['nullable', z.string().nullable(), { type: 'string', nullable: true }],
    ['int-or-string union', z.union([z.int(), z.string()]), { 'x-kubernetes-int-or-string': true }],
    ['intOrString()', intOrString(), { 'x-kubernetes-int-or-string': true }],
    ['array', z.array(z.string()), { type: 'array', items: { type: 'string' } }],
    [
      'array bounds',
      z.array(z.int()).min(1).max(3),
      { type: 'array', items: { type: 'integer' }, minItems: 1, maxItems: 3 },
    ],
    ['nonempty', z.array(z.int()).nonempty(), { type: 'array', items: { type: 'integer' }, minItems: 1 }],
    ['record', z.record(z.string(), z.int()), { type: 'object', additionalProperties: { type: 'integer' } }],
    [
      'record with enum keys',
      z.record(z.enum(['a', 'b']), z.int()),
      {
        type: 'object',
        properties: { a: { type: 'integer' }, b: { type: 'integer' } },
        required: ['a', 'b'],
      },
    ],
    [
      'partial record',
      z.partialRecord(z.enum(['a']), z.int()),
      { type: 'object', properties: { a: { type: 'integer' } } },
    ],
    [
      'record with checked keys: a CEL rule',
      z.record(z.string().regex(/^[a-z]+$/), z.string()),
      {
        type: 'object',
        additionalProperties: { type: 'string' },
        'x-kubernetes-validations': [
          { rule: 'self.all(k, k.matches("^[a-z]+$"))', message: 'keys must match ^[a-z]+$' },
        ],
      },
    ],
    [
      'object: required unless optional or defaulted',
      z.object({ a: z.string(), b: z.string().optional(), c: z.int().default(3) }),
      {
        type: 'object',
        properties: { a: { type: 'string' }, b: { type: 'string' }, c: { type: 'integer', default: 3 } },
        required: ['a'],
      },
    ],
    ['empty object', z.object({}), { type: 'object' }],
    [
      'loose object keeps unknown fields',
      z.looseObject({ a: z.string() }),
      {
        type: 'object',
        properties: { a: { type: 'string' } },
        required: ['a'],
        'x-kubernetes-preserve-unknown-fields': true,
      },
    ],
    ['strict object', z.strictObject({}), { type: 'object' }],
    ['default', z.string().default('x'), { type: 'string', default: 'x' }],
    [
      'object default',
      z.object({ a: z.int() }).default({ a: 1 }),
      { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'], default: { a: 1 } },
    ],
    ['describe', z.string().describe('why'), { type: 'string', description: 'why' }],
    [
      'meta description',
      z.string().meta({ description: 'why', title: 'T' }),
      { type: 'string', description: 'why', title: 'T' },
    ],
    [
      'description outside optional',
      z.string().optional().describe('why'),
      { type: 'string', description: 'why' },
    ],
    [
      'description inside optional',
      z.string().describe('why').optional(),
      { type: 'string', description: 'why' },
    ],
    [
      'x-kubernetes extras through meta',
      z.string().meta({ 'x-kubernetes-validations': [{ rule: 'self != ""' }] }),
      { type: 'string', 'x-kubernetes-validations': [{ rule: 'self != ""' }] },
    ],
    ['transform: the input side', z.string().transform((s) => s.length), { type: 'string' }],
    ['preprocess: the schema after it', z.preprocess((v) => v, z.int()), { type: 'integer' }],
    ['readonly', z.string().readonly(), { type: 'string' }],
    ['catch', z.string().catch('x'), { type: 'string' }],
    ['lazy, not recursive', z.lazy(() => z.string()), { type: 'string' }],
    [
      'preserveUnknownFields()',
      preserveUnknownFields(),
      { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
    ],
    [
      'preserveUnknownFields(z.unknown())',
      preserveUnknownFields(z.unknown()),
      { 'x-kubernetes-preserve-unknown-fields': true },
    ],
    [
      'embeddedResource()',
      embeddedResource(),
      {
        type: 'object',
        'x-kubernetes-preserve-unknown-fields': true,
        'x-kubernetes-embedded-resource': true,
      },
    ],
    [
      'listMap',
      listMap(z.array(z.object({ name: z.string() })), 'name'),
      {
        type: 'array',
        items: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['name'],
      },
    ],
    [
      'listSet',
      listSet(z.array(z.string())),
      { type: 'array', items: { type: 'string' }, 'x-kubernetes-list-type': 'set' },
    ],
    [
      'atomicList',
      atomicList(z.array(z.string())),
      { type: 'array', items: { type: 'string' }, 'x-kubernetes-list-type': 'atomic' },
    ],
    [
      'kubeField format and map type',
      kubeField(z.object({}), { mapType: 'atomic' }),
      { type: 'object', 'x-kubernetes-map-type': 'atomic' },
    ],
    [
      'kubeField entry bounds and format',
      kubeField(z.record(z.string(), z.string()), { maxProperties: 16, minProperties: 1 }),
      { type: 'object', additionalProperties: { type: 'string' }, minProperties: 1, maxProperties: 16 },
    ],
    [
      'kubeField format',
      kubeField(z.string(), { format: 'password' }),
      { type: 'string', format: 'password' },
    ],
  ];
  for (const [name, schema, expected] of cases) {
    test(name, () => assert.deepEqual(field(schema), expected));
  }

  test('CEL rules: strings and objects, added up over calls, kept through .optional()', () => {
    const rule: CelRule = {
      rule: 'self.a <= self.b',
      message: 'a must not exceed b',
      reason: 'FieldValueForbidden',
    };
    const marked = withRules(withRules(z.object({ a: z.int(), b: z.int() }), rule), 'has(self.a)').optional();
    assert.deepEqual(field(marked)['x-kubernetes-validations'], [rule, { rule: 'has(self.a)' }]);
  });

  test('statusConditions: metav1.Condition keyed by type; what setCondition writes parses, and the types agree', () => {
    const schema = statusConditions(8);
    const node = field(schema);
    assert.equal(node.maxItems, 8);
    assert.equal(node['x-kubernetes-list-type'], 'map');
    assert.deepEqual(node['x-kubernetes-list-map-keys'], ['type']);
    assert.deepEqual(node.items?.required, ['type', 'status', 'lastTransitionTime', 'reason', 'message']);
    assert.deepEqual(node.items?.properties?.['status']?.enum, ['True', 'False', 'Unknown']);
    const written: Condition[] = setCondition(
      [],
      { type: 'Ready', status: 'True', reason: 'Done' },
      Date.now(),
    );
    const parsed: Condition[] = schema.parse(written);
    assert.deepEqual(parsed, written);
    assert.equal(schema.safeParse([{ ...written[0], reason: '' }]).success, false);
    assert.match(conditionTime(0), /Z$/);
  });

  test('immutable: a transition rule', () => {
    assert.deepEqual(field(immutable(z.string()))['x-kubernetes-validations'], [
      { rule: 'self == oldSelf', message: 'is immutable' },
    ]);
  });

  test('marking returns a copy: the original schema stays plain', () => {
    const plain = z.array(z.string());
    listSet(plain);
    assert.deepEqual(field(plain), { type: 'array', items: { type: 'string' } });
  });

  test('two patterns: the first as pattern, the others as CEL rules (RE2 has no lookahead to join them)', () => {
    assert.deepEqual(field(z.string().regex(/^a/).regex(/b$/)), {
      type: 'string',
      pattern: '^a',
      'x-kubernetes-validations': [{ rule: 'self.matches("b$")', message: 'must match b$' }],
    });
  });

  test('every generated case passes the structural check', () => {
    for (const [name, schema] of cases) {
      assert.deepEqual(checkStructural({ type: 'object', properties: { f: field(schema) } }), [], name);
    }
  });
});

describe('zod to structural schema: what cannot be structural is reported with its path', () => {
  const bad: Array<[string, z.ZodType, RegExp]> = [
    [
      'union of types',
      z.union([z.string(), z.int().array()]),
      /^spec\.f: a union of string, array is not structural/,
    ],
    [
      'discriminated union with a field of two schemas',
      z.discriminatedUnion('kind', [
        z.object({ kind: z.literal('a'), value: z.string() }),
        z.object({ kind: z.literal('b'), value: z.int() }),
      ]),
      /^spec\.f\.value: variants of the discriminated union give this field different schemas/,
    ],
    [
      'default inside a variant',
      z.discriminatedUnion('kind', [
        z.object({ kind: z.literal('a'), n: z.int().default(1) }),
        z.object({ kind: z.literal('b') }),
      ]),
      /^spec\.f\.n: a default inside a variant of a discriminated union would be applied to every variant/,
    ],
    ['mixed enum', z.literal(['a', 1]), /^spec\.f: an enum mixing integer and string is not structural/],
    ['unknown', z.unknown(), /^spec\.f: z\.unknown\(\) has no type.*preserveUnknownFields/],
    ['any', z.any(), /^spec\.f: z\.any\(\) has no type/],
    ['date', z.date(), /^spec\.f: z\.date\(\) is not JSON; use z\.iso\.datetime\(\)/],
    ['bigint', z.bigint(), /^spec\.f: z\.bigint\(\)\/z\.int64\(\) is not JSON/],
    ['int64', z.int64(), /^spec\.f: z\.bigint\(\)/],
    ['tuple', z.tuple([z.string(), z.int()]), /^spec\.f: a tuple has no structural form/],
    [
      'intersection',
      z.intersection(z.object({ a: z.string() }), z.object({ b: z.string() })),
      /intersection/,
    ],
    ['catchall', z.object({ a: z.string() }).catchall(z.int()), /named fields and a \.catchall\(\) schema/],
    ['lookahead', z.string().regex(/^(?=a)/), /lookaround, which the apiserver's RE2 engine lacks/],
    ['backreference', z.string().regex(/(a)\1/), /backreference/],
    ['map', z.map(z.string(), z.string()), /^spec\.f: z\.map\(\) has no structural OpenAPI form/],
    ['non-JSON default', z.number().default(Number.NaN), /the default is not a JSON value/],
    [
      'nested path',
      z.object({ list: z.array(z.object({ when: z.date() })) }),
      /^spec\.f\.list\[\]\.when: z\.date\(\)/,
    ],
  ];
  for (const [name, schema, expected] of bad) {
    test(name, () => {
      const problems = problemsOf(schema);
      assert.equal(problems.length, 1, problems.join('\n'));
      assert.match(problems[0]!, expected);
    });
  }

  test('a discriminated union of objects becomes one object, an enum tag and a CEL rule per variant', () => {
    const source = z.discriminatedUnion('type', [
      z.object({ type: z.literal('git'), url: z.url(), 'ref-name': z.string().optional() }),
      z.object({ type: z.literal('image'), image: z.string(), 'ref-name': z.string().optional() }),
      z.object({ type: z.literal(['none', 'empty']) }),
    ]);
    assert.deepEqual(field(source), {
      type: 'object',
      properties: {
        type: { type: 'string', enum: ['git', 'image', 'none', 'empty'] },
        url: { type: 'string', format: 'uri' },
        'ref-name': { type: 'string' },
        image: { type: 'string' },
      },
      required: ['type'],
      'x-kubernetes-validations': [
        {
          rule: '!(self.type == "git") || (has(self.url) && !has(self.image))',
          message: 'type git requires url and allows no image',
        },
        {
          rule: '!(self.type == "image") || (has(self.image) && !has(self.url))',
          message: 'type image requires image and allows no url',
        },
        {
          rule: '!(self.type in ["none", "empty"]) || (!has(self.url) && !has(self.ref__dash__name) && !has(self.image))',
          message: 'type none or empty allows no url, ref-name, image',
        },
      ],
    });
    // A field every variant requires is simply required.
    const both = z.discriminatedUnion('k', [
      z.object({ k: z.literal('a'), name: z.string() }),
      z.object({ k: z.literal('b'), name: z.string() }),
    ]);
    assert.deepEqual(field(both), {
      type: 'object',
      properties: { k: { type: 'string', enum: ['a', 'b'] }, name: { type: 'string' } },
      required: ['k', 'name'],
    });
  });

  test('a recursive schema is reported, not looped over', () => {
    interface Tree {
      name: string;
      children?: Tree[];
    }
    const Tree: z.ZodType<Tree> = z.lazy(() =>
      z.object({ name: z.string(), children: z.array(Tree).optional() }),
    );
    const problems = problemsOf(Tree);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^spec\.f\.children\[\]: a recursive schema cannot be structural/);
  });

  test('a default zod accepts but the schema refuses (zod does not check defaults) is caught', () => {
    const r = defineCustomResource({
      group: 'x.dev',
      kind: 'A',
      versions: {
        v1: { spec: z.object({ n: z.int().min(5).default(1), s: z.string().regex(/^a/).default('b') }) },
      },
      storage: 'v1',
    });
    assert.deepEqual(catchKubeError(() => crdManifest(r)).problems, [
      'as.x.dev: version v1: spec.n: the default 1 is invalid: below the minimum 5',
      'as.x.dev: version v1: spec.s: the default "b" is invalid: does not match ^a',
    ]);
  });

  test('every problem at once, in schema order', () => {
    const problems = problemsOf(
      z.object({ a: z.date(), b: z.string(), c: z.unknown(), d: z.union([z.string(), z.boolean()]) }),
    );
    assert.deepEqual(
      problems.map((p) => p.slice(0, p.indexOf(':'))),
      ['spec.f.a', 'spec.f.c', 'spec.f.d'],
    );
  });
});

describe('checkStructural on hand-written schemas', () => {
  const cases: Array<[string, StructuralSchema, RegExp]> = [
    ['root not an object', { type: 'string' }, /^<root>: the root must have type object/],
    ['missing type', { type: 'object', properties: { a: {} } }, /^<root>\.a: no type/],
    [
      'properties with additionalProperties',
      {
        type: 'object',
        properties: { a: { type: 'object', properties: {}, additionalProperties: { type: 'string' } } },
      },
      /^<root>\.a: properties and additionalProperties exclude each other/,
    ],
    [
      'additionalProperties false',
      { type: 'object', additionalProperties: false },
      /additionalProperties: false is not allowed/,
    ],
    [
      'array without items',
      { type: 'object', properties: { a: { type: 'array' } } },
      /^<root>\.a: an array needs items/,
    ],
    [
      'anyOf',
      { type: 'object', properties: { a: { type: 'string', anyOf: [] } } },
      /^<root>\.a: anyOf is not structural/,
    ],
    ['$ref', { type: 'object', properties: { a: { $ref: '#/x', type: 'string' } } }, /\$ref is not allowed/],
    [
      'int-or-string with a type',
      { type: 'object', properties: { a: { type: 'string', 'x-kubernetes-int-or-string': true } } },
      /must not have a type/,
    ],
    [
      'unknown format',
      { type: 'object', properties: { a: { type: 'string', format: 'nope' } } },
      /format nope is not one the apiserver knows/,
    ],
    [
      'enum of the wrong type',
      { type: 'object', properties: { a: { type: 'integer', enum: ['x'] } } },
      /enum value "x" is not of type integer/,
    ],
    [
      'default of the wrong type',
      { type: 'object', properties: { a: { type: 'integer', default: 'x' } } },
      /the default "x" is not of type integer/,
    ],
    [
      'a default below the minimum',
      { type: 'object', properties: { a: { type: 'integer', minimum: 5, default: 1 } } },
      /^<root>\.a: the default 1 is invalid: below the minimum 5/,
    ],
    [
      'a default outside the enum',
      { type: 'object', properties: { a: { type: 'string', enum: ['x'], default: 'y' } } },
      /the default "y" is invalid: not one of "x"/,
    ],
    [
      'an object default missing a required field',
      {
        type: 'object',
        properties: {
          a: {
            type: 'object',
            properties: { n: { type: 'integer', maximum: 3 }, m: { type: 'string' } },
            required: ['m'],
            default: { n: 2 },
          },
        },
      },
      /the default \{"n":2\} is invalid: missing the required field m/,
    ],
    [
      'a nullable enum',
      { type: 'object', properties: { a: { type: 'string', enum: ['x'], nullable: true } } },
      /a nullable enum: the apiserver refuses null for it all the same/,
    ],
    [
      'min above max',
      { type: 'object', properties: { a: { type: 'integer', minimum: 5, maximum: 1 } } },
      /minimum 5 is above maximum 1/,
    ],
    [
      'list map key not required',
      {
        type: 'object',
        properties: {
          a: {
            type: 'array',
            items: { type: 'object', properties: { k: { type: 'string' } } },
            'x-kubernetes-list-type': 'map',
            'x-kubernetes-list-map-keys': ['k'],
          },
        },
      },
      /list map key k must be required or have a default/,
    ],
    [
      'set of objects',
      {
        type: 'object',
        properties: { a: { type: 'array', items: { type: 'object' }, 'x-kubernetes-list-type': 'set' } },
      },
      /set needs scalar items/,
    ],
    [
      'map keys without list type map',
      {
        type: 'object',
        properties: { a: { type: 'array', items: { type: 'string' }, 'x-kubernetes-list-map-keys': ['k'] } },
      },
      /needs x-kubernetes-list-type map/,
    ],
    [
      'default in metadata',
      {
        type: 'object',
        properties: { metadata: { type: 'object', properties: { name: { type: 'string', default: 'x' } } } },
      },
      /defaults are not allowed inside metadata/,
    ],
    [
      'required unknown field',
      { type: 'object', properties: {}, required: ['a'] },
      /required field a is not among the properties/,
    ],
    [
      'multi-line CEL message',
      { type: 'object', 'x-kubernetes-validations': [{ rule: 'true', message: 'a\nb' }] },
      /message must be one line/,
    ],
  ];
  for (const [name, schema, expected] of cases) {
    test(name, () => {
      const problems = checkStructural(schema);
      assert.equal(problems.length, 1, problems.join('\n'));
      assert.match(problems[0]!, expected);
    });
  }

  test('several problems are all listed', () => {
    const problems = checkStructural({
      type: 'object',
      properties: { a: {}, b: { type: 'array' }, c: { type: 'string', format: 'x' } },
    });
    assert.equal(problems.length, 3);
  });
});

const Spec = z.object({ replicas: z.int32().min(1).default(1), image: z.string() });
const Status = z.object({ replicas: z.int32().optional(), selector: z.string().optional() });

describe('custom resources and their CRD', () => {
  test('defaults: plural, singular, listKind, Namespaced, served, status subresource, conversion None', () => {
    const r = defineCustomResource({
      group: 'example.capstan.dev',
      kind: 'Policy',
      versions: { v1: { spec: Spec, status: Status } },
      storage: 'v1',
    });
    const m = crdManifest(r);
    assert.equal(m.metadata.name, 'policies.example.capstan.dev');
    assert.deepEqual(m.spec.names, {
      kind: 'Policy',
      listKind: 'PolicyList',
      plural: 'policies',
      singular: 'policy',
    });
    assert.equal(m.spec.scope, 'Namespaced');
    assert.deepEqual(m.spec.conversion, { strategy: 'None' });
    const v = m.spec.versions[0]!;
    assert.equal(v.served, true);
    assert.equal(v.storage, true);
    assert.deepEqual(v.subresources, { status: {} });
    assert.deepEqual(v.schema.openAPIV3Schema.required, ['spec']);
    assert.deepEqual(Object.keys(v.schema.openAPIV3Schema.properties!), [
      'apiVersion',
      'kind',
      'metadata',
      'spec',
      'status',
    ]);
    // The resource type is the storage version's.
    assert.deepEqual(
      { group: r.group, version: r.version, kind: r.kind, plural: r.plural, namespaced: r.namespaced },
      { group: 'example.capstan.dev', version: 'v1', kind: 'Policy', plural: 'policies', namespaced: true },
    );
  });

  test('English plurals', () => {
    assert.deepEqual(['website', 'policy', 'ingress', 'box', 'match', 'key'].map(pluralOf), [
      'websites',
      'policies',
      'ingresses',
      'boxes',
      'matches',
      'keys',
    ]);
  });

  test('the builder records the same data as the object form, and gives the same CRD', () => {
    const built = customResource('Website')
      .inGroup('example.capstan.dev')
      .clusterScoped()
      .withShortNames('web')
      .inCategories('all')
      .withLabels({ app: 'x' })
      .version('v1beta1', { spec: Spec, served: false, deprecated: 'use v1' })
      .version('v1', { spec: Spec, status: Status })
      .storedAs('v1');
    const plain = defineCustomResource({
      group: 'example.capstan.dev',
      kind: 'Website',
      scope: 'Cluster',
      shortNames: ['web'],
      categories: ['all'],
      labels: { app: 'x' },
      versions: {
        v1beta1: { spec: Spec, served: false, deprecated: 'use v1' },
        v1: { spec: Spec, status: Status },
      },
      storage: 'v1',
    });
    assert.deepEqual(built.definition, plain.definition);
    assert.equal(crdYaml(built), crdYaml(plain));
    const v1beta1 = crdManifest(built).spec.versions[0]!;
    assert.equal(v1beta1.deprecated, true);
    assert.equal(v1beta1.deprecationWarning, 'use v1');
    assert.equal(v1beta1.served, false);
    assert.equal(built.forVersion('v1beta1').version, 'v1beta1');
    assert.equal(built.namespaced, false);
  });

  test('a forked builder chain does not change the other branch', () => {
    const base = customResource('A').inGroup('x.dev');
    const one = base.withShortNames('a1');
    base.withShortNames('a2');
    assert.deepEqual(one.input.shortNames, ['a1']);
    assert.equal(base.input.shortNames, undefined);
  });

  test('types: the object type is inferred from the storage version, other versions from forVersion', () => {
    const r = defineCustomResource({
      group: 'x.dev',
      kind: 'Thing',
      versions: { v1alpha1: { spec: z.object({ old: z.string() }) }, v1: { spec: Spec, status: Status } },
      storage: 'v1',
    });
    type Obj = NonNullable<(typeof r)['__object']>;
    const obj: Obj = {
      apiVersion: 'x.dev/v1',
      kind: 'Thing',
      metadata: { name: 'a' },
      spec: { replicas: 2, image: 'nginx' },
      status: { replicas: 1 },
    };
    const replicas: number = obj.spec.replicas;
    type Old = NonNullable<ReturnType<typeof r.forVersion<'v1alpha1'>>['__object']>;
    const old: Old['spec'] = { old: 'x' };
    assert.equal(replicas + old.old.length, 3);
  });

  test('newObject: apiVersion and kind filled in, spec parsed with its defaults; a bad spec lists every issue', () => {
    const r = defineCustomResource({
      group: 'x.dev',
      kind: 'Thing',
      versions: { v1beta1: { spec: z.object({ old: z.string() }) }, v1: { spec: Spec } },
      storage: 'v1',
    });
    // replicas has a default: the input type lets it out, the object has it.
    const obj = r.newObject({ name: 'a', namespace: 'ns' }, { image: 'nginx' });
    assert.deepEqual(obj, {
      apiVersion: 'x.dev/v1',
      kind: 'Thing',
      metadata: { name: 'a', namespace: 'ns' },
      spec: { image: 'nginx', replicas: 1 },
    });
    const err = catchKubeError(() => r.newObject({ name: 'b' }, { image: 7, replicas: 0 } as never));
    assert.equal(err.code, KubeErrorCode.invalid);
    assert.equal(err.problems.length, 2);
    assert.match(err.problems[0]!, /^spec\.replicas: Too small/);
    assert.match(err.problems[1]!, /^spec\.image: Invalid input: expected string/);
  });

  test('exportedCustomResources finds branded exports, sorted by name; isCustomResource', () => {
    const a = defineCustomResource({
      group: 'x.dev',
      kind: 'A',
      versions: { v1: { spec: Spec } },
      storage: 'v1',
    });
    const found = exportedCustomResources({ z: a, a, other: { group: 'x' }, n: 1 });
    assert.deepEqual(
      found.map(([n]) => n),
      ['a', 'z'],
    );
    assert.equal(isCustomResource({ ...a }), false, 'a plain copy has no brand');
  });

  test('scale, printer columns and selectable fields are checked against the schema', () => {
    const r = defineCustomResource({
      group: 'x.dev',
      kind: 'A',
      versions: {
        v1: {
          spec: Spec,
          status: Status,
          scale: {
            specReplicasPath: '.spec.image',
            statusReplicasPath: '.status.nope',
            labelSelectorPath: '.status.selector',
          },
          printerColumns: [
            { name: 'R', type: 'integer', jsonPath: '.spec.replicas' },
            { name: 'R', type: 'integer', jsonPath: '.spec.nothing' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          selectableFields: ['.spec.image', 'spec.replicas'],
        },
      },
      storage: 'v1',
    });
    const err = catchKubeError(() => crdManifest(r));
    assert.deepEqual(err.problems, [
      'as.x.dev: version v1: scale specReplicasPath: .spec.image must be integer, not string',
      'as.x.dev: version v1: scale statusReplicasPath: .status.nope names no field of the schema',
      'as.x.dev: version v1: printer column "R" is listed twice',
      'as.x.dev: version v1: printer column "R": .spec.nothing names no field of the schema',
      'as.x.dev: version v1: selectable field spec.replicas: spec.replicas must start with .spec. or .status. or .metadata.',
    ]);
  });

  test('names, versions and storage: every problem of every resource in one KubeError', () => {
    const bad = defineCustomResource({
      group: 'nodot',
      kind: 'lower',
      shortNames: ['Bad_Short'],
      versions: {
        V1: { spec: z.object({ when: z.date() }), served: false },
        v2: { spec: Spec, statusSubresource: true },
      },
      storage: 'v2',
    });
    const good = defineCustomResource({
      group: 'x.dev',
      kind: 'A',
      versions: { v1: { spec: Spec } },
      storage: 'v1',
    });
    const twice = defineCustomResource({
      group: 'x.dev',
      kind: 'A',
      versions: { v1: { spec: Spec } },
      storage: 'v1',
    });
    const err = catchKubeError(() => crdManifests([bad, good, twice]));
    assert.equal(err.code, KubeErrorCode.crd);
    assert.deepEqual(err.problems, [
      'lowers.nodot: group "nodot" must be a lower-case domain with at least one dot (example.com)',
      'lowers.nodot: kind "lower" must be PascalCase (Website)',
      'lowers.nodot: short name "Bad_Short" must be a lower-case DNS label',
      'lowers.nodot: version V1: spec.when: z.date() is not JSON; use z.iso.datetime() (a string with format date-time)',
      'lowers.nodot: version v2: a status subresource needs a status schema',
      'lowers.nodot: version name "V1" must be a DNS label (v1, v1beta1)',
      'as.x.dev: defined more than once',
    ]);
    assert.match(err.message, /^7 problems in the custom resource definitions:\n {2}- lowers\.nodot: group/);
  });

  test('exactly one storage version, at least one served', () => {
    const r = defineCustomResource({
      group: 'x.dev',
      kind: 'A',
      versions: { v1: { spec: Spec, served: false } },
      storage: 'v2' as 'v1',
    });
    assert.deepEqual(catchKubeError(() => crdManifest(r)).problems, [
      'as.x.dev: exactly one version must be the storage version (found 0)',
      'as.x.dev: no version is served',
    ]);
  });

  test('an optional spec is not required at the root', () => {
    const r = defineCustomResource({
      group: 'x.dev',
      kind: 'A',
      versions: { v1: { spec: Spec.optional() } },
      storage: 'v1',
    });
    assert.equal(crdManifest(r).spec.versions[0]!.schema.openAPIV3Schema.required, undefined);
  });
});

function catchKubeError(fn: () => unknown): KubeError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof KubeError, String(err));
    return err;
  }
  assert.fail('expected a KubeError');
}
