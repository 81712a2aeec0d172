import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  conditionTime,
  findCondition,
  isConditionTrue,
  removeCondition,
  setCondition,
} from './conditions.ts';

const T0 = Date.parse('2026-12-02T10:00:00.400Z');

test('setCondition: a new type gets the transition time, at second precision', () => {
  const list = setCondition(
    undefined,
    { type: 'Ready', status: 'False', reason: 'Starting', observedGeneration: 1 },
    T0,
  );
  assert.deepEqual(list, [
    {
      type: 'Ready',
      status: 'False',
      observedGeneration: 1,
      lastTransitionTime: '2026-12-02T10:00:00Z',
      reason: 'Starting',
      message: '',
    },
  ]);
});

test('setCondition: the transition time moves only when the status changes', () => {
  const a = setCondition([], { type: 'Ready', status: 'False', reason: 'Starting' }, T0);
  const b = setCondition(
    a,
    { type: 'Ready', status: 'False', reason: 'Pulling', message: 'image', observedGeneration: 2 },
    T0 + 60_000,
  );
  assert.equal(b[0]?.lastTransitionTime, '2026-12-02T10:00:00Z', 'same status: time kept');
  assert.equal(b[0]?.reason, 'Pulling');
  assert.equal(b[0]?.observedGeneration, 2);
  const c = setCondition(b, { type: 'Ready', status: 'True', reason: 'Available' }, T0 + 120_000);
  assert.equal(c[0]?.lastTransitionTime, '2026-12-02T10:02:00Z', 'status changed: time moved');
  assert.equal(a[0]?.reason, 'Starting', 'the input is not modified');
});

test('setCondition keeps other types and their order; find, isTrue, remove', () => {
  let list = setCondition([], { type: 'Ready', status: 'True', reason: 'Ok', observedGeneration: 3 }, T0);
  list = setCondition(list, { type: 'Degraded', status: 'False', reason: 'Ok' }, T0);
  list = setCondition(list, { type: 'Ready', status: 'True', reason: 'StillOk', observedGeneration: 3 }, T0);
  assert.deepEqual(
    list.map((c) => c.type),
    ['Ready', 'Degraded'],
  );
  assert.equal(findCondition(list, 'Degraded')?.status, 'False');
  assert.equal(isConditionTrue(list, 'Ready'), true);
  assert.equal(isConditionTrue(list, 'Ready', 3), true);
  assert.equal(isConditionTrue(list, 'Ready', 4), false, 'a Ready from an older generation does not count');
  assert.equal(isConditionTrue(list, 'Degraded'), false);
  assert.deepEqual(
    removeCondition(list, 'Ready').map((c) => c.type),
    ['Degraded'],
  );
  assert.equal(conditionTime(T0), '2026-12-02T10:00:00Z');
});
