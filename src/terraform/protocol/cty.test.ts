import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decode, ExtData, encode } from '@msgpack/msgpack';
import {
  type CtyType,
  Dynamic,
  decodeJsonValue,
  decodeValue,
  encodeValue,
  inferType,
  isUnknown,
  typeFromJson,
  typeToJson,
  unknown,
} from './cty.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('cty types', () => {
  test('JSON type encoding round-trips every kind', () => {
    const t: CtyType = {
      object: {
        a: 'string',
        b: { list: 'number' },
        c: { set: 'bool' },
        d: { map: { tuple: ['string', 'dynamic'] } },
        e: { object: { x: 'string' }, optional: ['x'] },
      },
    };
    const json = typeToJson(t);
    assert.deepEqual(json, [
      'object',
      {
        a: 'string',
        b: ['list', 'number'],
        c: ['set', 'bool'],
        d: ['map', ['tuple', ['string', 'dynamic']]],
        e: ['object', { x: 'string' }, ['x']],
      },
    ]);
    assert.deepEqual(typeFromJson(JSON.parse(JSON.stringify(json))), t);
  });

  test('a bad type encoding is refused with its code', () => {
    for (const bad of ['int', ['list'], ['object', []], ['tuple', 'x'], 7, null]) {
      assert.throws(() => typeFromJson(bad), { code: 'CAP_ERR_TERRAFORM_TYPE' });
    }
  });
});

describe('msgpack values (DynamicValue.msgpack)', () => {
  test('unknown is written as cty writes it (fixext1 type 0) and any extension reads as unknown', () => {
    assert.equal(hex(encodeValue('string', unknown)), 'd40000');
    assert.ok(isUnknown(decodeValue('string', Buffer.from('d40000', 'hex'))));
    // Refined unknowns (cty's extension 12, with a payload) are unknown too.
    const refined = encode(new ExtData(12, new Uint8Array([0x81, 0x01, 0xc3])));
    assert.ok(isUnknown(decodeValue('number', refined)));
    const inList = decodeValue({ list: 'string' }, encode(['a', new ExtData(0, new Uint8Array([0]))]));
    assert.deepEqual((inList as unknown[])[0], 'a');
    assert.ok(isUnknown((inList as unknown[])[1]));
  });

  test('null is nil, and empty bytes are null', () => {
    assert.equal(hex(encodeValue({ object: { a: 'string' } }, null)), 'c0');
    assert.equal(decodeValue('string', Buffer.from('c0', 'hex')), null);
    assert.equal(decodeValue('string', new Uint8Array()), null);
  });

  test('objects carry every attribute (missing ones as nil); maps only their keys', () => {
    const type: CtyType = { object: { name: 'string', size: 'number', on: 'bool' } };
    const bytes = encodeValue(type, { name: 'a' });
    assert.deepEqual(decode(bytes), { name: 'a', size: null, on: null });
    assert.deepEqual(decodeValue(type, bytes), { name: 'a', size: null, on: null });
    assert.deepEqual(decode(encodeValue({ map: 'number' }, { x: 1, y: 2.5 })), { x: 1, y: 2.5 });
  });

  test('lists, sets and tuples are arrays, typed by the schema', () => {
    const type: CtyType = {
      object: { l: { list: 'string' }, s: { set: 'number' }, t: { tuple: ['string', 'bool'] } },
    };
    const value = { l: ['a', 'b'], s: [1, 2], t: ['x', true] };
    assert.deepEqual(decodeValue(type, encodeValue(type, value)), value);
    assert.throws(() => encodeValue({ tuple: ['string'] }, ['a', 'b']), { code: 'CAP_ERR_TERRAFORM_VALUE' });
  });

  test('numbers: integers as ints, fractions as float64, big ones as strings on the way in', () => {
    assert.equal(hex(encodeValue('number', 7)), '07');
    assert.equal(decode(encodeValue('number', 1.5)), 1.5);
    assert.equal(decodeValue('number', encode('1e21')), 1e21);
    assert.throws(() => decodeValue('number', encode('twelve')), { code: 'CAP_ERR_TERRAFORM_VALUE' });
  });

  test('dynamic: [type JSON as bytes, value], the type kept for the way back', () => {
    const raw = encode([new TextEncoder().encode('["list","string"]'), ['a', 'b']]);
    const decoded = decodeValue('dynamic', raw);
    assert.ok(decoded instanceof Dynamic);
    assert.deepEqual(decoded.type, { list: 'string' });
    assert.deepEqual(decoded.value, ['a', 'b']);
    assert.equal(hex(encodeValue('dynamic', decoded)), hex(raw));
    // A plain value in a dynamic attribute gets an inferred type: arrays are tuples, objects objects.
    const plain = decode(encodeValue('dynamic', { a: [1, 'x'] })) as [Uint8Array, unknown];
    assert.equal(new TextDecoder().decode(plain[0]), '["object",{"a":["tuple",["number","string"]]}]');
    assert.deepEqual(plain[1], { a: [1, 'x'] });
    assert.deepEqual(inferType(true), 'bool');
    // Unknown and null dynamic values carry no type wrapper.
    assert.equal(hex(encodeValue('dynamic', unknown)), 'd40000');
    assert.equal(hex(encodeValue('dynamic', null)), 'c0');
  });

  test('a value of the wrong type names its path', () => {
    const type: CtyType = { object: { rules: { list: { object: { port: 'number' } } } } };
    assert.throws(
      () => encodeValue(type, { rules: [{ port: 'eighty' }] }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'CAP_ERR_TERRAFORM_VALUE');
        assert.match(err.message, /^rules\[0\]\.port: expected a number/);
        return true;
      },
    );
    assert.throws(() => encodeValue({ object: { a: 'string' } }, { b: 'x' }), /unexpected attribute "b"/);
    assert.throws(() => decodeValue('bool', encode('true')), { code: 'CAP_ERR_TERRAFORM_VALUE' });
  });
});

describe('JSON values (RawState.json)', () => {
  test('state JSON decodes against the schema, dynamic as {value, type}', () => {
    const type: CtyType = { object: { id: 'string', n: 'number', d: 'dynamic', gone: 'string' } };
    const value = decodeJsonValue(type, '{"id":"a","n":2,"d":{"value":["x"],"type":["list","string"]}}');
    const v = value as Record<string, unknown>;
    assert.equal(v.id, 'a');
    assert.equal(v.gone, null);
    assert.ok(v.d instanceof Dynamic);
    assert.deepEqual((v.d as Dynamic).value, ['x']);
    assert.equal(decodeJsonValue(type, ''), null);
    // An attribute a newer schema dropped is ignored in stored state, refused on the wire.
    assert.deepEqual(decodeJsonValue({ object: { id: 'string' } }, '{"id":"a","old":1}'), { id: 'a' });
    assert.throws(
      () => decodeValue({ object: { id: 'string' } }, encode({ id: 'a', old: 1 })),
      /unexpected attribute "old"/,
    );
  });
});
