import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebhookErrorCode } from './errors.ts';
import {
  applyJsonPatch,
  diffJsonPatch,
  escapePointerToken,
  type JsonValue,
  jsonEqual,
} from './json-patch.ts';

test('pointer tokens escape ~ before / (RFC 6901)', () => {
  assert.equal(escapePointerToken('a/b'), 'a~1b');
  assert.equal(escapePointerToken('a~b'), 'a~0b');
  // `~1` in a key must not come back as `/`: ~ first, then /.
  assert.equal(escapePointerToken('~1'), '~01');
  assert.equal(escapePointerToken('app.kubernetes.io/name'), 'app.kubernetes.io~1name');
});

test('labels added, one changed, a key removed: add, replace, remove with escaped pointers', () => {
  const before = {
    metadata: { labels: { 'app.kubernetes.io/name': 'web', tier: 'a~b' }, annotations: { x: '1' } },
  };
  const after = {
    metadata: { labels: { 'app.kubernetes.io/name': 'api', tier: 'a~b', 'sidecar/injected': 'true' } },
  };
  const patch = diffJsonPatch(before, after);
  assert.deepEqual(patch, [
    { op: 'remove', path: '/metadata/annotations' },
    { op: 'replace', path: '/metadata/labels/app.kubernetes.io~1name', value: 'api' },
    { op: 'add', path: '/metadata/labels/sidecar~1injected', value: 'true' },
  ]);
  assert.deepEqual(applyJsonPatch(before, patch), after);
});

test('a sidecar appended is one add at the end; a container prepended keeps the others', () => {
  const c = (name: string) => ({ name, image: `${name}:1` });
  const before = { spec: { containers: [c('app'), c('log')] } };
  const appended = { spec: { containers: [c('app'), c('log'), c('proxy')] } };
  assert.deepEqual(diffJsonPatch(before, appended), [
    { op: 'add', path: '/spec/containers/2', value: c('proxy') },
  ]);
  const prepended = { spec: { containers: [c('init'), c('app'), c('log')] } };
  const patch = diffJsonPatch(before, prepended);
  assert.deepEqual(patch, [{ op: 'add', path: '/spec/containers/0', value: c('init') }]);
  assert.deepEqual(applyJsonPatch(before, patch), prepended);
});

test('array elements removed from the middle and the end; a field changed in place', () => {
  const before = { a: [1, 2, 3, 4, 5], b: [{ x: 1, y: 2 }] };
  const after = { a: [1, 5], b: [{ x: 1, y: 3 }] };
  const patch = diffJsonPatch(before, after);
  assert.deepEqual(patch, [
    { op: 'remove', path: '/a/3' },
    { op: 'remove', path: '/a/2' },
    { op: 'remove', path: '/a/1' },
    { op: 'replace', path: '/b/0/y', value: 3 },
  ]);
  assert.deepEqual(applyJsonPatch(before, patch), after);
});

test('nulls, type changes, undefined keys and dates: the patch says what JSON will carry', () => {
  const before = { a: null, b: { c: 1 }, d: [1], e: 'x', f: 1 };
  const after = { a: { now: 'set' }, b: null, d: { 0: 1 }, e: undefined, f: new Date(0), g: Number.NaN };
  const patch = diffJsonPatch(before, after);
  assert.deepEqual(patch, [
    { op: 'remove', path: '/e' },
    { op: 'replace', path: '/a', value: { now: 'set' } },
    { op: 'replace', path: '/b', value: null },
    { op: 'replace', path: '/d', value: { 0: 1 } },
    { op: 'replace', path: '/f', value: '1970-01-01T00:00:00.000Z' },
    { op: 'add', path: '/g', value: null },
  ]);
  assert.deepEqual(applyJsonPatch(before, patch), JSON.parse(JSON.stringify(after)));
});

test('equal documents give an empty patch; key order does not matter', () => {
  assert.deepEqual(diffJsonPatch({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 }), []);
  assert.deepEqual(diffJsonPatch(null, null), []);
});

test('a different root is one replace of ""', () => {
  assert.deepEqual(diffJsonPatch({ a: 1 }, [1]), [{ op: 'replace', path: '', value: [1] }]);
});

test('keys named __proto__, empty and with both escapes survive diff and apply', () => {
  const before = JSON.parse('{"__proto__": {"x": 1}, "": 1, "~/": 2}');
  const after = JSON.parse('{"__proto__": {"x": 2}, "": 3, "~/": 2, "/~": 4}');
  const patch = diffJsonPatch(before, after);
  assert.deepEqual(patch, [
    { op: 'replace', path: '/__proto__/x', value: 2 },
    { op: 'replace', path: '/', value: 3 },
    { op: 'add', path: '/~1~0', value: 4 },
  ]);
  const applied = applyJsonPatch(before, patch) as Record<string, unknown>;
  assert.ok(jsonEqual(applied, after));
  assert.equal(Object.getPrototypeOf(applied), Object.prototype);
});

test('apply refuses operations that do not fit the document', () => {
  const cases: Array<[unknown, Parameters<typeof applyJsonPatch>[1]]> = [
    [{ a: 1 }, [{ op: 'remove', path: '/b' }]],
    [{ a: 1 }, [{ op: 'replace', path: '/b/c', value: 1 }]],
    [{ a: [1] }, [{ op: 'add', path: '/a/2', value: 1 }]],
    [{ a: [1] }, [{ op: 'remove', path: '/a/1' }]],
    [{ a: [1] }, [{ op: 'replace', path: '/a/01', value: 1 }]],
    [{ a: 1 }, [{ op: 'add', path: 'a', value: 1 }]],
    [{ a: 1 }, [{ op: 'remove', path: '' }]],
    [{ a: 'x' }, [{ op: 'add', path: '/a/b', value: 1 }]],
  ];
  for (const [doc, patch] of cases) {
    assert.throws(
      () => applyJsonPatch(doc, patch),
      (err: { code?: string }) => err.code === WebhookErrorCode.usage,
      JSON.stringify(patch),
    );
  }
});

// A small seeded PRNG (mulberry32): the same documents on every run, so a failure reproduces.
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KEYS = ['a', 'b', 'c', '~', '/', '~1', 'a/b', '', 'metadata', '__proto__'];

function randomValue(rand: () => number, depth: number): JsonValue {
  const r = rand();
  if (depth <= 0 || r < 0.35) {
    const leaf = rand();
    if (leaf < 0.2) return null;
    if (leaf < 0.4) return rand() < 0.5;
    if (leaf < 0.7) return Math.floor(rand() * 5);
    return KEYS[Math.floor(rand() * KEYS.length)]!;
  }
  if (r < 0.65) return Array.from({ length: Math.floor(rand() * 5) }, () => randomValue(rand, depth - 1));
  const object: Record<string, JsonValue> = {};
  for (let i = Math.floor(rand() * 5); i > 0; i--) {
    Object.defineProperty(object, KEYS[Math.floor(rand() * KEYS.length)]!, {
      value: randomValue(rand, depth - 1),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return object;
}

/** Change a copy of `value` in a few random places, as a handler would. */
function mutate(rand: () => number, value: JsonValue, depth: number): JsonValue {
  if (rand() < 0.15) return randomValue(rand, 2);
  if (Array.isArray(value)) {
    const copy = value.map((v) => (rand() < 0.3 ? mutate(rand, v, depth + 1) : v));
    const r = rand();
    if (r < 0.25) copy.splice(Math.floor(rand() * (copy.length + 1)), 0, randomValue(rand, 2));
    else if (r < 0.5 && copy.length > 0) copy.splice(Math.floor(rand() * copy.length), 1);
    return copy;
  }
  if (value !== null && typeof value === 'object') {
    const copy: Record<string, JsonValue> = JSON.parse(JSON.stringify(value));
    for (const key of Object.keys(copy)) {
      const r = rand();
      if (r < 0.2) delete copy[key];
      else if (r < 0.5) copy[key] = mutate(rand, copy[key]!, depth + 1);
    }
    if (rand() < 0.3) {
      Object.defineProperty(copy, KEYS[Math.floor(rand() * KEYS.length)]!, {
        value: randomValue(rand, 2),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return copy;
  }
  return value;
}

test('2,000 seeded random documents: applying the diff gives the changed document, and an equal one gives none', () => {
  const rand = prng(0x11_2026);
  for (let i = 0; i < 2000; i++) {
    const before = randomValue(rand, 4);
    const after = mutate(rand, before, 0);
    const patch = diffJsonPatch(before, after);
    const applied = applyJsonPatch(before, patch);
    assert.ok(jsonEqual(applied, after), `case ${i}: ${JSON.stringify({ before, after, patch })}`);
    assert.equal(patch.length === 0, jsonEqual(before, after), `case ${i}: empty patch iff equal`);
    assert.deepEqual(diffJsonPatch(after, after), []);
  }
});
