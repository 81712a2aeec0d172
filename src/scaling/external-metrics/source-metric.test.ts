import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ScalingError, ScalingErrorCode } from '../errors.ts';
import type { MetricSource } from '../sources.ts';
import { parseLabelSelector } from './label-selector.ts';
import { rabbitmqQueueDepthMetric, sourceMetric } from './source-metric.ts';

function fakeSource(values: Map<string, number>, log: string[], key: string): MetricSource {
  return {
    description: `fake ${key}`,
    async read() {
      const v = values.get(key);
      if (v === undefined) throw new ScalingError(ScalingErrorCode.source, `fake ${key}: down`);
      return v;
    },
    async close() {
      log.push(`close ${key}`);
    },
  };
}

const query = (selector: string) => ({
  namespace: 'ns',
  selector: parseLabelSelector(selector),
  signal: new AbortController().signal,
});

test('sourceMetric: the selector picks a source, kept per label values, evicted oldest first, closed at the end', async () => {
  const values = new Map([
    ['a', 3],
    ['b', 0.5],
    ['c', 9],
  ]);
  const log: string[] = [];
  const metric = sourceMetric('depth', {
    labels: ['queue'],
    maxSources: 2,
    source: ({ queue }) => {
      log.push(`open ${queue}`);
      return fakeSource(values, log, queue ?? '');
    },
  });
  assert.deepEqual(await metric.read(query('queue=a')), [{ value: 3, labels: { queue: 'a' } }]);
  assert.deepEqual(await metric.read(query('queue in (a),env=prod')), [{ value: 3, labels: { queue: 'a' } }]);
  assert.deepEqual(await metric.read(query('queue=b')), [{ value: 0.5, labels: { queue: 'b' } }]);
  // `a` was used before `b`: the third source evicts it.
  await metric.read(query('queue=c'));
  assert.deepEqual(log, ['open a', 'open b', 'open c', 'close a']);
  await metric.close?.();
  assert.deepEqual(log.slice(4).sort(), ['close b', 'close c']);
});

test('sourceMetric: a selector that does not fix the labels is a usage error; a failing source is not a zero', async () => {
  const metric = sourceMetric('depth', {
    labels: ['queue', 'vhost'],
    source: () => fakeSource(new Map(), [], 'x'),
  });
  for (const selector of ['', 'queue=a', 'queue!=a,vhost=v', 'queue in (a,b),vhost=v']) {
    await assert.rejects(metric.read(query(selector)), (err: unknown) => {
      assert.ok(err instanceof ScalingError);
      assert.equal(err.code, ScalingErrorCode.usage);
      assert.match(err.message, /external metric "depth" needs a selector fixing .*=<value>/);
      return true;
    });
  }
  await assert.rejects(metric.read(query('queue=a,vhost=v')), {
    code: ScalingErrorCode.source,
    message: /down/,
  });
  // One source for every request when no label picks it.
  let opened = 0;
  const single = sourceMetric('total', {
    source: () => {
      opened++;
      return fakeSource(new Map([['x', 7]]), [], 'x');
    },
  });
  assert.deepEqual(await single.read(query('')), [{ value: 7, labels: {} }]);
  assert.deepEqual(await single.read(query('anything=goes')), [{ value: 7, labels: {} }]);
  assert.equal(opened, 1);
});

test('rabbitmqQueueDepthMetric: named queue_depth, the queue from the selector, a broker that is not there fails', async () => {
  const metric = rabbitmqQueueDepthMetric({ managementUrl: 'http://u:p@127.0.0.1:9', timeoutMs: 2_000 });
  assert.equal(metric.name, 'queue_depth');
  await assert.rejects(metric.read(query('')), { code: ScalingErrorCode.usage, message: /queue=<value>/ });
  await assert.rejects(metric.read(query('queue=work')), { code: ScalingErrorCode.source });
  await metric.close?.();
});
