import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as prom from 'prom-client';
import { bindCounter, bindGauge, bindHistogram } from './bound.ts';
import { Counter, Gauge, Histogram, MetricsRegistry } from './index.ts';

const BUCKETS = [0.005, 0.01, 0.1, 1];
/** Values on, between, below and above the bounds; 0 and a repeated value too. */
const VALUES = [0, 0.001, 0.005, 0.0050001, 0.01, 0.05, 0.1, 0.7, 1, 1.0001, 42, 0.01];

function metrics(
  register: prom.Registry,
  classes: { Counter: typeof prom.Counter; Histogram: typeof prom.Histogram },
) {
  return {
    counter: new classes.Counter({
      name: 'req_total',
      help: 'Requests.',
      labelNames: ['method', 'code'],
      registers: [register],
    }),
    histogram: new classes.Histogram({
      name: 'req_seconds',
      help: 'Durations.',
      labelNames: ['method', 'code'],
      buckets: BUCKETS,
      registers: [register],
    }),
  };
}

for (const [kind, make] of [
  ['a MetricsRegistry (guarded)', () => new MetricsRegistry({ maxSeriesPerMetric: 100 })],
  ['a plain prom-client Registry', () => new prom.Registry()],
] as const) {
  test(`bound series write what prom-client's own calls write, in ${kind}`, async () => {
    const plainReg = make();
    const boundReg = make();
    const classes = plainReg instanceof MetricsRegistry ? { Counter, Histogram } : prom;
    const plain = metrics(plainReg, classes);
    const bound = metrics(boundReg, classes);
    const ok = {
      c: bindCounter(bound.counter, { method: 'GET', code: '2xx' }),
      h: bindHistogram(bound.histogram, { method: 'GET', code: '2xx' }),
    };
    const bad = {
      c: bindCounter(bound.counter, { method: 'POST', code: '5xx' }),
      h: bindHistogram(bound.histogram, { method: 'POST', code: '5xx' }),
    };
    for (const v of VALUES) {
      plain.counter.inc({ method: 'GET', code: '2xx' });
      plain.histogram.observe({ method: 'GET', code: '2xx' }, v);
      ok.c.inc();
      ok.h.observe(v);
      plain.counter.inc({ method: 'POST', code: '5xx' }, v);
      plain.histogram.observe({ method: 'POST', code: '5xx' }, v * 2);
      bad.c.inc(v);
      bad.h.observe(v * 2);
    }
    assert.equal(await boundReg.metrics(), await plainReg.metrics());
    assert.match(await boundReg.metrics(), /req_seconds_count\{method="GET",code="2xx"\} 12\n/);

    // reset() swaps the series map: bound series start again on the new one.
    plain.counter.reset();
    bound.counter.reset();
    plain.histogram.reset();
    bound.histogram.reset();
    for (const v of [0.002, 3]) {
      plain.counter.inc({ method: 'GET', code: '2xx' }, 2);
      plain.histogram.observe({ method: 'GET', code: '2xx' }, v);
      ok.c.inc(2);
      ok.h.observe(v);
    }
    assert.equal(await boundReg.metrics(), await plainReg.metrics());

    // remove() drops one series: the bound one recreates it rather than adding to a detached entry.
    plain.counter.remove({ method: 'GET', code: '2xx' });
    bound.counter.remove({ method: 'GET', code: '2xx' });
    plain.histogram.remove({ method: 'GET', code: '2xx' });
    bound.histogram.remove({ method: 'GET', code: '2xx' });
    plain.counter.inc({ method: 'GET', code: '2xx' });
    plain.histogram.observe({ method: 'GET', code: '2xx' }, 0.02);
    ok.c.inc();
    ok.h.observe(0.02);
    assert.equal(await boundReg.metrics(), await plainReg.metrics());
  });
}

test('bound series refuse what prom-client refuses, and count nothing for it', async () => {
  const reg = new MetricsRegistry();
  const { counter, histogram } = metrics(reg, { Counter, Histogram });
  const c = bindCounter(counter, { method: 'GET', code: '2xx' });
  const h = bindHistogram(histogram, { method: 'GET', code: '2xx' });
  c.inc();
  h.observe(0.5);
  assert.throws(() => c.inc(-1), /decrease a counter/);
  assert.throws(() => c.inc(Number.POSITIVE_INFINITY), /not a valid number/);
  assert.throws(() => h.observe(Number.NaN), /not a valid number/);
  assert.throws(() => h.observe(Number.POSITIVE_INFINITY), /not a valid number/);
  // A label the metric does not have: refused on the first write, as by the metric itself.
  assert.throws(
    () => bindCounter(counter, { method: 'GET', nope: 'x' } as never).inc(),
    /Added label "nope"/,
  );
  const text = await reg.metrics();
  assert.match(text, /req_total\{method="GET",code="2xx"\} 1\n/);
  assert.match(text, /req_seconds_count\{method="GET",code="2xx"\} 1\n/);
  assert.match(text, /req_seconds_sum\{method="GET",code="2xx"\} 0.5\n/);
});

test('a series the cardinality guard refused stays refused: the bound series keeps asking, never writes', async () => {
  const drops: string[] = [];
  const reg = new MetricsRegistry({
    maxSeriesPerMetric: 1,
    onDrop: (d) => drops.push(JSON.stringify(d.labels)),
  });
  const { counter, histogram } = metrics(reg, { Counter, Histogram });
  bindCounter(counter, { method: 'GET', code: '2xx' }).inc();
  bindHistogram(histogram, { method: 'GET', code: '2xx' }).observe(0.1);
  const refusedC = bindCounter(counter, { method: 'PUT', code: '4xx' });
  const refusedH = bindHistogram(histogram, { method: 'PUT', code: '4xx' });
  for (let i = 0; i < 3; i++) {
    refusedC.inc();
    refusedH.observe(0.1);
  }
  const text = await reg.metrics();
  assert.doesNotMatch(text, /PUT/);
  assert.match(text, /capstan_metrics_dropped_series_total\{metric="req_total"\} 3\n/);
  assert.match(text, /capstan_metrics_dropped_series_total\{metric="req_seconds"\} 3\n/);
  assert.ok(drops.length >= 1);
});

test('a bound gauge moves like inc/dec, and follows set() and reset() made the ordinary way', async () => {
  const make = () => {
    const reg = new MetricsRegistry();
    return { reg, g: new Gauge({ name: 'in_flight', help: 'In flight.', registers: [reg] }) };
  };
  const plain = make();
  const bound = make();
  const b = bindGauge(bound.g, {});
  const steps: Array<[string, number]> = [
    ['inc', 1],
    ['inc', 1],
    ['dec', 1],
    ['set', 10],
    ['dec', 3],
    ['reset', 0],
    ['inc', 2],
  ];
  for (const [op, v] of steps) {
    if (op === 'set') {
      plain.g.set(v);
      bound.g.set(v);
    } else if (op === 'reset') {
      plain.g.reset();
      bound.g.reset();
    } else {
      plain.g[op as 'inc' | 'dec'](v);
      b[op as 'inc' | 'dec'](v);
    }
    assert.equal(await bound.reg.metrics(), await plain.reg.metrics(), `after ${op} ${v}`);
  }
  assert.match(await bound.reg.metrics(), /in_flight 2\n/);
});
