import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Collector, Counter, MetricsError, MetricsRegistry, type Sample } from './index.ts';
import { parseSamples, promtoolCheck } from './testdata/promtool.ts';

/** Poll `cond` until true; fails after `ms`. Used to wait for background work, never to time it. */
async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => {
    open = r;
  });
  return { promise, open };
}

describe('collectors', () => {
  test('a slow source: scrapes serve the cached values and their age, never waiting on the source', async () => {
    await using reg = new MetricsRegistry();
    const release = gate();
    let calls = 0;
    reg.registerCollector({
      name: 'pg',
      intervalMs: 20,
      timeoutMs: 60_000,
      describe: () => [{ name: 'pg_rows', help: 'Rows per table.', type: 'gauge', labelNames: ['table'] }],
      async collect() {
        calls++;
        // The first read is quick; the second takes as long as the test says (seconds in real life).
        if (calls > 1) await release.promise;
        return [
          { name: 'pg_rows', labels: { table: 'users' }, value: calls * 10 },
          { name: 'pg_rows', labels: { table: 'orders' }, value: calls },
        ];
      },
    });
    await until(() => calls === 2, 'the second (slow) collection to start');
    const status = reg.collectorStatus()[0]!;
    assert.equal(status.collecting, true);
    assert.equal(status.collections, 1);

    const first = parseSamples(await reg.metrics());
    assert.equal(first.get('pg_rows{table="users"}'), '10');
    assert.equal(first.get('pg_rows{table="orders"}'), '1');
    assert.equal(first.get('pg_last_collect_success'), '1');
    assert.equal(first.get('pg_collect_errors_total'), '0');
    const age = Number(first.get('pg_last_collect_age_seconds'));
    assert.ok(Number.isFinite(age) && age >= 0, `age ${age}`);
    // The scrape finished while the source was still busy.
    assert.equal(reg.collectorStatus()[0]!.collecting, true);
    assert.equal(calls, 2);

    release.open();
    await until(() => reg.collectorStatus()[0]!.collections >= 2, 'the slow collection to finish');
    const second = parseSamples(await reg.metrics());
    assert.equal(second.get('pg_rows{table="users"}'), '20');
  });

  test('before the first success the age is +Inf and success is 0', async () => {
    await using reg = new MetricsRegistry();
    const release = gate();
    reg.registerCollector({
      name: 'cold',
      describe: () => [{ name: 'cold_value', help: 'v', type: 'gauge' }],
      collect: async () => {
        await release.promise;
        return [{ name: 'cold_value', value: 1 }];
      },
    });
    const text = await reg.metrics();
    const out = parseSamples(text);
    assert.equal(out.get('cold_last_collect_age_seconds'), '+Inf');
    assert.equal(out.get('cold_last_collect_success'), '0');
    assert.equal(out.has('cold_value'), false);
    assert.equal((await promtoolCheck(text)).code, 0);
    release.open();
  });

  test('a timeout fails the collection, keeps the previous values and counts the error', async () => {
    const errors: MetricsError[] = [];
    await using reg = new MetricsRegistry({ onCollectError: (e) => errors.push(e) });
    let calls = 0;
    let sawAbort = false;
    reg.registerCollector({
      name: 'slowpoke',
      intervalMs: 60_000,
      timeoutMs: 150,
      describe: () => [{ name: 'slowpoke_value', help: 'v', type: 'gauge' }],
      async collect(signal) {
        calls++;
        if (calls === 1) return [{ name: 'slowpoke_value', value: 5 }];
        await new Promise<void>((resolve) =>
          signal.addEventListener('abort', () => resolve(), { once: true }),
        );
        sawAbort = signal.aborted;
        return [{ name: 'slowpoke_value', value: 99 }];
      },
    });
    await until(() => reg.collectorStatus()[0]!.collections === 1, 'first collection');
    await assert.rejects(reg.collectNow('slowpoke'), { code: 'CAP_ERR_RUNTIME_METRICS_COLLECT_TIMEOUT' });
    await until(() => sawAbort, 'the source to see its abort signal');
    const out = parseSamples(await reg.metrics());
    assert.equal(out.get('slowpoke_value'), '5');
    assert.equal(out.get('slowpoke_last_collect_success'), '0');
    assert.equal(out.get('slowpoke_collect_errors_total'), '1');
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.code, 'CAP_ERR_RUNTIME_METRICS_COLLECT_TIMEOUT');
  });

  test('a source that ignores its signal is never read twice at once', async () => {
    await using reg = new MetricsRegistry();
    let calls = 0;
    const release = gate();
    reg.registerCollector({
      name: 'stuck',
      intervalMs: 10,
      timeoutMs: 10,
      describe: () => [{ name: 'stuck_value', help: 'v', type: 'gauge' }],
      async collect() {
        calls++;
        await release.promise; // ignores the abort signal
        return [];
      },
    });
    await until(() => reg.collectorStatus()[0]!.errors >= 1, 'the timeout');
    await sleep(200); // many intervals pass; none may start a second read
    assert.equal(calls, 1);
    release.open();
    await until(() => calls >= 2, 'reads to resume once the source returns');
  });

  test('failing sources and invalid samples keep the cache and report CAP_ERR_RUNTIME_METRICS_* codes', async () => {
    await using reg = new MetricsRegistry();
    let mode: 'ok' | 'throw' | 'undescribed' | 'badlabel' | 'nan-string' = 'ok';
    reg.registerCollector({
      name: 'flaky',
      intervalMs: 60_000,
      describe: () => [{ name: 'flaky_value', help: 'v', type: 'gauge', labelNames: ['k'] }],
      collect(): Sample[] {
        if (mode === 'throw') throw new Error('connection refused');
        if (mode === 'undescribed') return [{ name: 'other_value', value: 1 }];
        if (mode === 'badlabel') return [{ name: 'flaky_value', labels: { nope: 'x' }, value: 1 }];
        if (mode === 'nan-string') return [{ name: 'flaky_value', value: '1' as unknown as number }];
        return [{ name: 'flaky_value', labels: { k: 'a' }, value: 3 }];
      },
    });
    await reg.collectNow('flaky');
    mode = 'throw';
    await assert.rejects(reg.collectNow('flaky'), (e: MetricsError) => {
      assert.equal(e.code, 'CAP_ERR_RUNTIME_METRICS_COLLECT');
      assert.match(String((e.cause as Error).message), /connection refused/);
      return true;
    });
    for (const m of ['undescribed', 'badlabel', 'nan-string'] as const) {
      mode = m;
      await assert.rejects(reg.collectNow('flaky'), { code: 'CAP_ERR_RUNTIME_METRICS_INVALID' }, m);
    }
    const out = parseSamples(await reg.metrics());
    assert.equal(out.get('flaky_value{k="a"}'), '3');
    assert.equal(out.get('flaky_collect_errors_total'), '4');
    assert.equal(reg.collectorStatus()[0]!.lastError?.code, 'CAP_ERR_RUNTIME_METRICS_INVALID');
    await assert.rejects(reg.collectNow('missing'), { code: 'CAP_ERR_RUNTIME_METRICS_INVALID' });
  });

  test('histogram, summary and counter families from a collector are valid exposition in both formats', async () => {
    await using reg = new MetricsRegistry();
    reg.registerCollector({
      name: 'src',
      intervalMs: 60_000,
      describe: () => [
        { name: 'src_wait_seconds', help: 'Wait.', type: 'histogram', unit: 'seconds' },
        { name: 'src_size_bytes', help: 'Size.', type: 'summary', unit: 'bytes' },
        { name: 'src_jobs_total', help: 'Jobs.', type: 'counter', labelNames: ['state'] },
      ],
      collect: (): Sample[] => [
        { name: 'src_wait_seconds_bucket', labels: { le: '0.5' }, value: 2 },
        { name: 'src_wait_seconds_bucket', labels: { le: '+Inf' }, value: 3 },
        { name: 'src_wait_seconds_sum', value: 4.5 },
        { name: 'src_wait_seconds_count', value: 3 },
        { name: 'src_size_bytes', labels: { quantile: '0.5' }, value: 512 },
        { name: 'src_size_bytes_sum', value: 2048 },
        { name: 'src_size_bytes_count', value: 4 },
        { name: 'src_jobs_total', labels: { state: 'done\n"ok"' }, value: 7 },
      ],
    });
    await reg.collectNow();
    const text = await reg.metrics();
    const out = parseSamples(text);
    assert.equal(out.get('src_wait_seconds_bucket{le="+Inf"}'), '3');
    assert.equal(out.get('src_jobs_total{state="done\\n\\"ok\\""}'), '7');
    const r = await promtoolCheck(text);
    assert.equal(r.code, 0, r.output);
    const om = await reg.metricsString({ format: 'openmetrics' });
    assert.match(om, /^# TYPE src_jobs counter\nsrc_jobs_total\{state="done\\n\\"ok\\""\} 7$/m);
    assert.match(om, /^# UNIT src_size_bytes bytes$/m);
    assert.match(om, /^# UNIT src_last_collect_age_seconds seconds$/m);
  });

  test('registry default labels apply to collector samples without duplicating their own', async () => {
    await using reg = new MetricsRegistry();
    reg.setDefaultLabels({ svc: 'api', kind: 'default' });
    reg.registerCollector({
      name: 'dl',
      intervalMs: 60_000,
      describe: () => [{ name: 'dl_value', help: 'v', type: 'gauge' }],
      collect: (): Sample[] => [{ name: 'dl_value', labels: { kind: 'own' }, value: 1 }],
    });
    await reg.collectNow('dl');
    const text = await reg.metrics();
    const out = parseSamples(text);
    assert.equal(out.get('dl_value{kind="own",svc="api"}'), '1');
    assert.equal(out.get('dl_last_collect_success{svc="api",kind="default"}'), '1');
    assert.equal((await promtoolCheck(text)).code, 0);
  });

  test('bad descriptions, clashes and duplicates are refused at registration', async () => {
    await using reg = new MetricsRegistry();
    const base: Collector = {
      name: 'c',
      describe: () => [{ name: 'c_value', help: 'v', type: 'gauge' }],
      collect: () => [],
    };
    const bad = (patch: Partial<Collector>) => ({ ...base, ...patch });
    assert.throws(() => reg.registerCollector(bad({ name: 'bad-name' })), {
      code: 'CAP_ERR_RUNTIME_METRICS_INVALID',
    });
    assert.throws(() => reg.registerCollector(bad({ intervalMs: 0 })), {
      code: 'CAP_ERR_RUNTIME_METRICS_INVALID',
    });
    assert.throws(
      () => reg.registerCollector(bad({ describe: () => [{ name: '1x', help: 'h', type: 'gauge' }] })),
      {
        code: 'CAP_ERR_RUNTIME_METRICS_INVALID',
      },
    );
    assert.throws(
      () => reg.registerCollector(bad({ describe: () => [{ name: 'c_value', help: '', type: 'gauge' }] })),
      { code: 'CAP_ERR_RUNTIME_METRICS_INVALID' },
    );
    assert.throws(
      () =>
        reg.registerCollector(
          bad({ describe: () => [{ name: 'c_size', help: 'h', type: 'gauge', unit: 'bytes' }] }),
        ),
      { code: 'CAP_ERR_RUNTIME_METRICS_INVALID' },
    );
    assert.throws(
      () =>
        reg.registerCollector(
          bad({
            describe: () => [
              { name: 'c_value', help: 'h', type: 'gauge' },
              { name: 'c_value', help: 'h', type: 'gauge' },
            ],
          }),
        ),
      { code: 'CAP_ERR_RUNTIME_METRICS_DUPLICATE' },
    );
    new Counter({ name: 'taken_total', help: 't', registers: [reg] });
    assert.throws(
      () =>
        reg.registerCollector(bad({ describe: () => [{ name: 'taken_total', help: 'h', type: 'counter' }] })),
      { code: 'CAP_ERR_RUNTIME_METRICS_DUPLICATE' },
    );
    const unregister = reg.registerCollector(base);
    assert.throws(() => reg.registerCollector(base), { code: 'CAP_ERR_RUNTIME_METRICS_DUPLICATE' });
    assert.throws(() => new Counter({ name: 'c_value', help: 'h', registers: [reg] }), {
      code: 'CAP_ERR_RUNTIME_METRICS_DUPLICATE',
    });
    unregister();
    assert.equal(parseSamples(await reg.metrics()).has('c_last_collect_success'), false);
    reg.registerCollector(base); // the name is free again
  });

  test('close() aborts a collection in progress and refuses new collectors', async () => {
    const reg = new MetricsRegistry();
    let seen: AbortSignal | undefined;
    reg.registerCollector({
      name: 'busy',
      describe: () => [{ name: 'busy_value', help: 'v', type: 'gauge' }],
      collect: (signal) => {
        seen = signal;
        return new Promise<Sample[]>((_, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason)),
        );
      },
    });
    await until(() => seen !== undefined, 'collect to start');
    await reg.close();
    assert.equal(seen!.aborted, true);
    assert.equal((seen!.reason as MetricsError).code, 'CAP_ERR_RUNTIME_METRICS_CLOSED');
    assert.throws(
      () => reg.registerCollector({ name: 'late', describe: () => [], collect: () => [] }),
      (e: unknown) => e instanceof MetricsError && e.code === 'CAP_ERR_RUNTIME_METRICS_CLOSED',
    );
    assert.deepEqual(reg.collectorStatus(), []);
  });
});
