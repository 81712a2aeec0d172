import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as prom from 'prom-client';
import {
  Counter,
  collectDefaultMetrics,
  DROPPED_SERIES_METRIC,
  type DropInfo,
  Gauge,
  Histogram,
  MetricsRegistry,
  Summary,
} from './index.ts';
import { parseSamples, promtoolCheck } from './testdata/promtool.ts';

/** Fill a registry with the same metrics and data through the given metric classes. */
function populate(
  reg: prom.Registry,
  classes: { Counter: typeof prom.Counter; Gauge: typeof prom.Gauge; Histogram: typeof prom.Histogram },
) {
  const c = new classes.Counter({
    name: 'app_requests_total',
    help: 'Requests.',
    labelNames: ['method', 'code'],
    registers: [reg],
  });
  c.inc({ method: 'GET', code: '200' });
  c.labels('POST', '500').inc(3);
  c.labels({ method: 'GET', code: '200' }).inc(0.5);
  const g = new classes.Gauge({
    name: 'app_queue_depth',
    help: 'Depth.',
    labelNames: ['queue'],
    registers: [reg],
  });
  g.set({ queue: 'a' }, 7);
  g.inc({ queue: 'a' });
  g.labels('b').dec(2);
  g.set({ queue: 'c' }, -0.25);
  const h = new classes.Histogram({
    name: 'app_latency_seconds',
    help: 'Latency.',
    labelNames: ['route'],
    buckets: [0.1, 0.5, 1],
    registers: [reg],
  });
  h.observe({ route: '/a' }, 0.05);
  h.observe({ route: '/a' }, 0.7);
  h.labels('/b').observe(3);
  h.zero({ route: '/c' });
  const plain = new classes.Gauge({ name: 'app_up', help: 'Up.', registers: [reg] });
  plain.set(1);
}

describe('prom-client compatibility', () => {
  test('same samples as prom-client for counters, gauges, histograms, through labels() and objects', async () => {
    const ours = new MetricsRegistry();
    const theirs = new prom.Registry();
    populate(ours, { Counter, Gauge, Histogram });
    populate(theirs, prom);
    // prom-client writes `le` first, we write it last: compare label sets, not their order.
    const canonical = (m: Map<string, string>) =>
      new Map(
        [...m].map(([k, v]) => {
          const i = k.indexOf('{');
          return [
            i < 0
              ? k
              : `${k.slice(0, i)}{${k
                  .slice(i + 1, -1)
                  .split(',')
                  .sort()
                  .join(',')}}`,
            v,
          ];
        }),
      );
    const a = canonical(parseSamples(await ours.metrics()));
    const b = canonical(parseSamples(await theirs.metrics()));
    assert.equal(a.get(`${DROPPED_SERIES_METRIC}`), undefined);
    for (const [series, value] of b) assert.equal(a.get(series), value, series);
    assert.equal(a.size, b.size, 'no extra series (the dropped-series counter has none yet)');
    assert.equal(a.get('app_latency_seconds_bucket{le="0.5",route="/a"}'), '1');
    assert.equal(a.get('app_latency_seconds_bucket{le="1",route="/a"}'), '2');
    assert.equal(a.get('app_latency_seconds_bucket{le="+Inf",route="/b"}'), '1');
    assert.equal(a.get('app_latency_seconds_count{route="/c"}'), '0');
  });

  test('values and UTF-8 labels come out as prom-client writes them, across chunk boundaries', async () => {
    const values = [
      0,
      -0,
      7,
      9,
      10,
      99,
      4294967295,
      4294967296,
      -3,
      1e21,
      0.1 + 0.2,
      1.5e-7,
      123456789012,
      -0.5,
      12.25,
      0.0005,
      -7.0625,
      99999999999.9999,
      1e11 + 0.5,
      0.3,
      1e-4,
      999999999999999,
      1e15,
      2 ** 53 + 2,
      Math.PI,
      -1e-5,
      1234.5678,
      0.1,
      5e-324,
      Number.MAX_VALUE,
    ];
    // Many values in the ranges the fast paths cover, against JavaScript's own spelling.
    for (let i = 0; i < 2000; i++)
      values.push(Math.round((i * 7.77 - 5000) * 1e4) / 1e4, i * 0.25, i * 1e9 + i);
    const fill = (reg: prom.Registry, G: typeof prom.Gauge) => {
      const g = new G({ name: 'odd_values', help: 'Values.', labelNames: ['v', 'name'], registers: [reg] });
      values.forEach((v, i) => {
        g.set({ v: String(i), name: 'zürich €😀' }, v);
      });
      // Enough multi-byte series that 64 KiB chunk boundaries fall inside them.
      const many = new G({ name: 'many_unicode', help: 'Many.', labelNames: ['city'], registers: [reg] });
      for (let i = 0; i < 5000; i++) many.set({ city: `København-${i}-東京😀` }, i * 3);
    };
    const ours = new MetricsRegistry();
    const theirs = new prom.Registry();
    fill(ours, Gauge);
    fill(theirs, prom.Gauge);
    const text = await ours.metrics();
    assert.deepEqual(parseSamples(text), parseSamples(await theirs.metrics()));
    // The streamed bytes decode to the same text, and each chunk is valid UTF-8 on its own.
    const chunks: Buffer[] = [];
    for await (const c of ours.expose()) chunks.push(c);
    assert.ok(chunks.length > 1, 'several chunks');
    assert.equal(Buffer.concat(chunks).toString('utf8'), text);
    for (const c of chunks) assert.ok(!c.toString('utf8').includes('\uFFFD'), 'no character split');
    assert.match(text, /odd_values\{v="6",name="zürich €😀"\} 4294967295\n/);
    assert.match(text, /odd_values\{v="8",name="zürich €😀"\} -3\n/);
  });

  test('scrapes follow set(), remove() and reset() between them (cached line prefixes stay right)', async () => {
    for (const maxSeriesPerMetric of [5, Number.POSITIVE_INFINITY]) {
      const reg = new MetricsRegistry({ maxSeriesPerMetric });
      const g = new Gauge({ name: 'temp', help: 'T.', labelNames: ['room'], registers: [reg] });
      const h = new Histogram({ name: 'lat', help: 'L.', labelNames: ['r'], buckets: [1], registers: [reg] });
      g.set({ room: 'a' }, 1);
      g.set({ room: 'b' }, 2);
      h.observe({ r: 'x' }, 0.5);
      const samples = async () => parseSamples(await reg.metrics());
      assert.equal((await samples()).get('temp{room="a"}'), '1');
      // Gauge.set() replaces prom-client's entry object; the next scrape must show the new value.
      g.set({ room: 'a' }, 20.5);
      g.inc({ room: 'b' }, 3);
      h.observe({ r: 'x' }, 2);
      let s = await samples();
      assert.equal(s.get('temp{room="a"}'), '20.5');
      assert.equal(s.get('temp{room="b"}'), '5');
      assert.equal(s.get('lat_bucket{r="x",le="1"}'), '1');
      assert.equal(s.get('lat_count{r="x"}'), '2');
      g.remove({ room: 'a' });
      s = await samples();
      assert.equal(s.get('temp{room="a"}'), undefined);
      assert.equal(s.get('temp{room="b"}'), '5');
      g.set({ room: 'a' }, 7);
      g.reset();
      h.reset();
      g.set({ room: 'c' }, 1);
      s = await samples();
      assert.deepEqual(
        [...s.keys()].filter((k) => k.startsWith('temp') || k.startsWith('lat')),
        ['temp{room="c"}'],
        String(maxSeriesPerMetric),
      );
    }
  });

  test('plain prom-client metrics (not Capstan classes) register and serialize', async () => {
    const reg = new MetricsRegistry();
    const c = new prom.Counter({ name: 'x_total', help: 'x', registers: [reg] });
    c.inc(2);
    const s = new prom.Summary({ name: 'x_summary', help: 's', percentiles: [0.5, 0.9], registers: [reg] });
    for (let i = 1; i <= 10; i++) s.observe(i);
    assert.ok(c instanceof prom.Counter);
    const out = parseSamples(await reg.metrics());
    assert.equal(out.get('x_total'), '2');
    assert.equal(out.get('x_summary_count'), '10');
    assert.equal(out.get('x_summary_sum'), '55');
    assert.ok(out.has('x_summary{quantile="0.9"}'));
    // prom-client's own API on our registry keeps working.
    assert.equal(reg.getSingleMetric('x_total'), c);
    const json = await reg.getMetricsAsJSON();
    assert.ok(json.some((m) => m.name === 'x_total'));
    reg.removeSingleMetric('x_total');
    assert.equal(parseSamples(await reg.metrics()).has('x_total'), false);
  });

  test('Capstan classes are prom-client classes: get(), reset(), remove(), startTimer()', async () => {
    const reg = new MetricsRegistry();
    const c = new Counter({ name: 'y_total', help: 'y', labelNames: ['k'], registers: [reg] });
    assert.ok(c instanceof prom.Counter);
    c.inc({ k: 'a' }, 2);
    c.inc({ k: 'b' });
    c.remove('b');
    assert.deepEqual(
      (await c.get()).values.map((v) => [v.labels.k, v.value]),
      [['a', 2]],
    );
    const h = new Histogram({ name: 'y_seconds', help: 'y', registers: [reg] });
    const end = h.startTimer();
    const seconds = end();
    assert.ok(seconds >= 0);
    const g = new Gauge({ name: 'y_gauge', help: 'y', registers: [reg] });
    const stop = g.startTimer();
    stop();
    c.reset();
    const out = parseSamples(await reg.metrics());
    assert.equal(out.has('y_total{k="a"}'), false);
    assert.equal(out.get('y_seconds_count'), '1');
    assert.throws(() => c.inc(-1), /decrease/);
    assert.throws(() => c.inc({ nope: 'x' } as never), /not included/);
  });

  test('collectDefaultMetrics works against the registry and passes promtool', async () => {
    const reg = new MetricsRegistry();
    collectDefaultMetrics({ register: reg, prefix: 'svc_' });
    const text = await reg.metrics();
    assert.match(text, /^svc_process_cpu_user_seconds_total \d/m);
    assert.match(text, /^svc_nodejs_eventloop_lag_seconds \d/m);
    const r = await promtoolCheck(text);
    // 3 = lint findings only (prom-client names a gauge *_total); 1 would be a parse error.
    assert.ok(r.code === 0 || r.code === 3, r.output);
    assert.doesNotMatch(r.output, /error while linting|parsing error/);
  });

  test('duplicate names are refused with CAP_ERR_RUNTIME_METRICS_DUPLICATE', () => {
    const reg = new MetricsRegistry();
    new Counter({ name: 'dup_total', help: 'd', registers: [reg] });
    assert.throws(() => new Gauge({ name: 'dup_total', help: 'd', registers: [reg] }), {
      code: 'CAP_ERR_RUNTIME_METRICS_DUPLICATE',
    });
  });
});

describe('exposition format', () => {
  test('escapes label values and HELP, spells NaN and infinities', async () => {
    const reg = new MetricsRegistry();
    const g = new Gauge({
      name: 'esc_value',
      help: 'Help with \\ backslash,\nnewline and "quotes".',
      labelNames: ['v'],
      registers: [reg],
    });
    g.set({ v: 'back\\slash' }, Number.NaN);
    g.set({ v: 'quote"d' }, Number.POSITIVE_INFINITY);
    g.set({ v: 'new\nline' }, Number.NEGATIVE_INFINITY);
    g.set({ v: 'plain' }, 1e-7);
    const text = await reg.metrics();
    assert.match(text, /^# HELP esc_value Help with \\\\ backslash,\\nnewline and "quotes"\.$/m);
    assert.match(text, /^esc_value\{v="back\\\\slash"\} NaN$/m);
    assert.match(text, /^esc_value\{v="quote\\"d"\} \+Inf$/m);
    assert.match(text, /^esc_value\{v="new\\nline"\} -Inf$/m);
    assert.match(text, /^esc_value\{v="plain"\} 1e-7$/m);
    const om = await reg.metricsString({ format: 'openmetrics' });
    assert.match(om, /^# HELP esc_value Help with \\\\ backslash,\\nnewline and \\"quotes\\"\.$/m);
    const r = await promtoolCheck(text);
    assert.equal(r.code, 0, r.output);
  });

  test('OpenMetrics: counter families without _total, samples with it, UNIT, unknown type, # EOF last', async () => {
    const reg = new MetricsRegistry();
    new Counter({ name: 'om_requests_total', help: 'r', registers: [reg] }).inc();
    new Counter({ name: 'om_bare', help: 'b', registers: [reg] }).inc(2);
    new Histogram({
      name: 'om_wait_seconds',
      help: 'w',
      unit: 'seconds',
      buckets: [1],
      registers: [reg],
    }).observe(2);
    const om = await reg.metricsString({ format: 'openmetrics' });
    assert.match(om, /^# TYPE om_requests counter\nom_requests_total 1$/m);
    assert.match(om, /^# TYPE om_bare counter\nom_bare_total 2$/m);
    assert.match(om, /^# TYPE om_wait_seconds histogram\n# UNIT om_wait_seconds seconds\n/m);
    assert.match(om, /^om_wait_seconds_bucket\{le="\+Inf"\} 1$/m);
    assert.ok(om.endsWith('\n# EOF\n'));
    assert.equal(om.indexOf('# EOF'), om.length - 6);
    const text = await reg.metrics();
    assert.doesNotMatch(text, /# EOF|# UNIT/);
    assert.match(text, /^# TYPE om_requests_total counter\nom_requests_total 1$/m);
    // prom-client's own OpenMetrics path renames counters in place; ours must not.
    assert.ok(reg.getSingleMetric('om_requests_total'));
  });

  test('a unit that is not the name suffix is refused', () => {
    const reg = new MetricsRegistry();
    assert.throws(() => new Gauge({ name: 'size', help: 's', unit: 'bytes', registers: [reg] }), {
      code: 'CAP_ERR_RUNTIME_METRICS_INVALID',
    });
    assert.equal(reg.getSingleMetric('size'), undefined);
  });

  test('default labels are added to every series, and changing them takes effect', async () => {
    const reg = new MetricsRegistry();
    const c = new Counter({ name: 'dl_total', help: 'd', labelNames: ['a'], registers: [reg] });
    c.inc({ a: '1' });
    assert.ok(parseSamples(await reg.metrics()).has('dl_total{a="1"}'));
    reg.setDefaultLabels({ svc: 'api' });
    assert.ok(parseSamples(await reg.metrics()).has('dl_total{a="1",svc="api"}'));
    reg.setDefaultLabels({ svc: 'web' });
    assert.ok(parseSamples(await reg.metrics()).has('dl_total{a="1",svc="web"}'));
  });

  test('100k series pass promtool, and serialization yields to the event loop in between', async () => {
    const reg = new MetricsRegistry({ maxSeriesPerMetric: Number.POSITIVE_INFINITY });
    for (let m = 0; m < 50; m++) {
      const c = new Counter({
        name: `big_${m}_total`,
        help: `Counter ${m}.`,
        labelNames: ['route', 'code'],
        registers: [reg],
      });
      const g = new Gauge({
        name: `big_depth_${m}`,
        help: `Gauge ${m}.`,
        labelNames: ['route'],
        registers: [reg],
      });
      for (let i = 0; i < 1000; i++) {
        c.inc({ route: `/r/${i}`, code: '200' }, i);
        g.set({ route: `/r/${i}` }, i / 3);
      }
    }
    // An immediate scheduled now can only run before the end if the serializer yields.
    let ticks = 0;
    const tick = () => {
      ticks++;
      if (!finished) setImmediate(tick);
    };
    let finished = false;
    setImmediate(tick);
    const text = await reg.metrics();
    finished = true;
    assert.ok(ticks > 1, `serializer yielded ${ticks} times`);
    const samples = parseSamples(text);
    assert.equal(samples.size, 100_000);
    assert.equal(samples.get('big_49_total{route="/r/999",code="200"}'), '999');
    const r = await promtoolCheck(text);
    assert.equal(r.code, 0, r.output);
  });

  test('an aborted exposition stops with the abort reason', async () => {
    const reg = new MetricsRegistry();
    const c = new Counter({ name: 'ab_total', help: 'a', labelNames: ['i'], registers: [reg] });
    for (let i = 0; i < 5000; i++) c.inc({ i: String(i) });
    const ac = new AbortController();
    ac.abort(new Error('client went away'));
    await assert.rejects(async () => {
      for await (const _ of reg.expose({ signal: ac.signal })) {
        /* drain */
      }
    }, /client went away/);
  });
});

describe('cardinality guard', () => {
  test('drops series beyond the limit, counts them per metric, reports once', async () => {
    const drops: DropInfo[] = [];
    const reg = new MetricsRegistry({ maxSeriesPerMetric: 5, onDrop: (d) => drops.push(d) });
    const perMetric: DropInfo[] = [];
    const c = new Counter({ name: 'g_total', help: 'g', labelNames: ['u'], registers: [reg] });
    const h = new Histogram({
      name: 'g_seconds',
      help: 'g',
      labelNames: ['u'],
      buckets: [1],
      registers: [reg],
      maxSeries: 2,
      onDrop: (d) => perMetric.push(d),
    });
    for (let i = 0; i < 12; i++) {
      c.inc({ u: `user-${i}` });
      h.labels(`user-${i}`).observe(0.5); // labels().observe bypasses Histogram#observe
    }
    c.inc({ u: 'user-0' }, 10); // an existing series is still writable at the limit
    const out = parseSamples(await reg.metrics());
    assert.equal([...out.keys()].filter((k) => k.startsWith('g_total{')).length, 5);
    assert.equal(out.get('g_total{u="user-0"}'), '11');
    assert.equal([...out.keys()].filter((k) => k.startsWith('g_seconds_count{')).length, 2);
    assert.equal(out.get(`${DROPPED_SERIES_METRIC}{metric="g_total"}`), '7');
    assert.equal(out.get(`${DROPPED_SERIES_METRIC}{metric="g_seconds"}`), '10');
    assert.deepEqual(drops.map((d) => [d.metric, d.limit, d.labels.u]).sort(), [
      ['g_seconds', 2, 'user-2'],
      ['g_total', 5, 'user-5'],
    ]);
    assert.equal(perMetric.length, 1);
  });

  test('remove() and reset() free room under the limit', async () => {
    const reg = new MetricsRegistry({ maxSeriesPerMetric: 2 });
    const g = new Gauge({ name: 'room', help: 'r', labelNames: ['k'], registers: [reg] });
    g.set({ k: 'a' }, 1);
    g.set({ k: 'b' }, 1);
    g.set({ k: 'c' }, 1);
    g.remove('a');
    g.set({ k: 'c' }, 2);
    let out = parseSamples(await reg.metrics());
    assert.equal(out.get('room{k="c"}'), '2');
    assert.equal(out.has('room{k="a"}'), false);
    g.reset();
    g.set({ k: 'x' }, 1);
    g.set({ k: 'y' }, 1);
    g.set({ k: 'z' }, 1);
    out = parseSamples(await reg.metrics());
    assert.deepEqual(
      [...out.keys()].filter((k) => k.startsWith('room')),
      ['room{k="x"}', 'room{k="y"}'],
    );
    assert.equal(out.get(`${DROPPED_SERIES_METRIC}{metric="room"}`), '2');
  });

  test('plain prom-client metrics are guarded too; exemplar-enabled ones are left alone', async () => {
    const reg = new MetricsRegistry({ maxSeriesPerMetric: 2 });
    reg.setContentType(prom.Registry.OPENMETRICS_CONTENT_TYPE as never);
    const plain = new prom.Gauge({ name: 'pg_plain', help: 'p', labelNames: ['k'], registers: [reg] });
    const ex = new prom.Counter({
      name: 'ex_total',
      help: 'e',
      labelNames: ['k'],
      enableExemplars: true,
      registers: [reg],
    });
    for (const k of ['a', 'b', 'c', 'd']) {
      plain.set({ k }, 1);
      ex.inc({ labels: { k }, value: 1, exemplarLabels: { trace: k } } as never);
    }
    const out = await reg.metricsString();
    assert.equal(out.match(/^pg_plain\{/gm)?.length, 2);
    assert.equal(out.match(/^ex_total\{/gm)?.length, 4);
    assert.match(out, new RegExp(`^${DROPPED_SERIES_METRIC}\\{metric="pg_plain"\\} 2$`, 'm'));
  });

  test('bad limits are refused', () => {
    assert.throws(() => new MetricsRegistry({ maxSeriesPerMetric: 0 }), {
      code: 'CAP_ERR_RUNTIME_METRICS_INVALID',
    });
    const reg = new MetricsRegistry();
    assert.throws(() => new Counter({ name: 'neg_total', help: 'n', maxSeries: -1, registers: [reg] }), {
      code: 'CAP_ERR_RUNTIME_METRICS_INVALID',
    });
  });

  test('Summary works under the guard', async () => {
    const reg = new MetricsRegistry({ maxSeriesPerMetric: 1 });
    const s = new Summary({ name: 'sg', help: 's', labelNames: ['k'], percentiles: [0.5], registers: [reg] });
    s.observe({ k: 'a' }, 1);
    s.observe({ k: 'b' }, 1);
    const out = parseSamples(await reg.metrics());
    assert.equal(out.get('sg_count{k="a"}'), '1');
    assert.equal(out.has('sg_count{k="b"}'), false);
    assert.equal(out.get(`${DROPPED_SERIES_METRIC}{metric="sg"}`), '1');
  });
});
