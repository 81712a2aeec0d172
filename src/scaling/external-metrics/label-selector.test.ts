import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ScalingError, ScalingErrorCode } from '../errors.ts';
import { parseLabelSelector } from './label-selector.ts';
import { toQuantity } from './quantity.ts';

test('label selectors: every operator of apimachinery, and what they match', () => {
  const cases: Array<[string, Record<string, string>, boolean]> = [
    ['', {}, true],
    ['queue=work', { queue: 'work' }, true],
    ['queue==work', { queue: 'work', x: 'y' }, true],
    ['queue=work', { queue: 'other' }, false],
    ['queue!=work', { queue: 'other' }, true],
    ['queue!=work', {}, true],
    ['queue in (a, b)', { queue: 'b' }, true],
    ['queue notin (a,b)', { queue: 'b' }, false],
    ['queue', { queue: '' }, true],
    ['!queue', { queue: '' }, false],
    ['!queue', {}, true],
    ['n>3', { n: '4' }, true],
    ['n<3', { n: '4' }, false],
    ['n>3', { n: 'x' }, false],
    ['example.com/tier=gold, queue=work', { 'example.com/tier': 'gold', queue: 'work' }, true],
    ['example.com/tier=gold, queue=work', { 'example.com/tier': 'gold' }, false],
    ['queue=', { queue: '' }, true],
  ];
  for (const [text, labels, want] of cases) {
    assert.equal(parseLabelSelector(text).matches(labels), want, `${text} on ${JSON.stringify(labels)}`);
  }
  assert.equal(parseLabelSelector('queue=work,env!=x').exactValue('queue'), 'work');
  assert.equal(parseLabelSelector('queue in (work)').exactValue('queue'), 'work');
  assert.equal(parseLabelSelector('queue in (a,b)').exactValue('queue'), undefined);
  assert.equal(parseLabelSelector('queue!=work').exactValue('queue'), undefined);
});

test('label selectors: malformed ones fail with CAP_ERR_SCALING_SELECTOR and say where', () => {
  const bad: Array<[string, RegExp]> = [
    ['queue=work,', /after ","/],
    [',queue=work', /expected a label key/],
    ['queue work', /expected an operator after "queue" near "work"/],
    ['queue in work', /expected "\(" after "in"/],
    ['queue in (a b)', /"," or "\)"/],
    ['queue in (a', /"," or "\)"/],
    ['queue=a b', /expected ","/],
    ['-queue=work', /invalid label key "-queue"/],
    ['Bad_Prefix/x=1', /prefix must be a DNS subdomain/],
    [`q=${'v'.repeat(64)}`, /at most 63 characters/],
    ['q=work!', /expected/],
    ['n>three', /integer/],
    ['!', /label key after "!"/],
    ['(a)', /expected a label key/],
  ];
  for (const [text, reason] of bad) {
    assert.throws(
      () => parseLabelSelector(text),
      (err: unknown) => {
        assert.ok(err instanceof ScalingError, text);
        assert.equal(err.code, ScalingErrorCode.selector);
        assert.match(err.message, reason, text);
        return true;
      },
    );
  }
});

test('quantities: integers exact, fractions in thousandths rounded away from zero, no NaN', () => {
  assert.equal(toQuantity(0), '0');
  assert.equal(toQuantity(42), '42');
  assert.equal(toQuantity(-3), '-3');
  assert.equal(toQuantity(2 ** 60), '1152921504606846976');
  assert.equal(toQuantity(1.5), '1500m');
  assert.equal(toQuantity(0.0001), '1m');
  assert.equal(toQuantity(-0.0001), '-1m');
  assert.equal(toQuantity(1.9999), '2');
  for (const v of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
    assert.throws(() => toQuantity(v), { code: ScalingErrorCode.source });
  }
});
