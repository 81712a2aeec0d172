import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MetricsRegistry } from '../runtime/index.ts';
import { Action } from './action.ts';
import { ManualClock } from './clock.ts';
import { KubeErrorCode } from './errors.ts';
import { TokenBucket, WorkQueue, type WorkQueueOptions } from './work-queue.ts';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function queue(clock: ManualClock, options: Partial<WorkQueueOptions> = {}): WorkQueue {
  return new WorkQueue({ name: 'test', clock, random: () => 0, retryRateLimit: false, ...options });
}

async function metricValue(registry: MetricsRegistry, name: string): Promise<number> {
  const metric = registry.getSingleMetric(name);
  assert.ok(metric, `${name} registered`);
  const data = await metric.get();
  const sample = data.values.find((v) => v.labels['name'] === 'test' && !('le' in v.labels));
  return sample?.value ?? Number.NaN;
}

test('a key added many times while queued is handled once', async () => {
  const clock = new ManualClock();
  const q = queue(clock);
  const seen: string[] = [];
  for (const key of ['a', 'b', 'a', 'a', 'c', 'b']) q.add(key);
  assert.equal(q.stats().depth, 3);
  q.start(async (key) => {
    seen.push(key);
  });
  await q.idle();
  assert.deepEqual(seen, ['a', 'b', 'c']);
  assert.equal(q.stats().adds, 3);
  await q.close();
});

test('a key is never handled twice at once; one re-added while handled runs once more afterwards', async () => {
  const clock = new ManualClock();
  const q = queue(clock, { concurrency: 4 });
  const running = new Map<string, number>();
  let maxSameKey = 0;
  let runsOfA = 0;
  const gate = deferred();
  q.start(async (key) => {
    running.set(key, (running.get(key) ?? 0) + 1);
    maxSameKey = Math.max(maxSameKey, running.get(key)!);
    if (key === 'a') {
      runsOfA++;
      if (runsOfA === 1) await gate.promise;
    }
    running.set(key, running.get(key)! - 1);
  });
  q.add('a');
  await clock.flush();
  assert.equal(q.stats().processing, 1);
  // Three events for 'a' while a worker has it, with three idle workers: none may take 'a'.
  q.add('a');
  q.add('a');
  q.add('b');
  q.add('a');
  await clock.flush();
  assert.equal(runsOfA, 1);
  assert.equal(q.stats().processing, 1, 'only the first a is running; b is done');
  gate.resolve();
  await q.idle();
  assert.equal(runsOfA, 2, 'the adds during processing collapse into one more run');
  assert.equal(maxSameKey, 1);
  await q.close();
});

test('concurrency bounds the keys handled at once', async () => {
  const clock = new ManualClock();
  const q = queue(clock, { concurrency: 3 });
  const gate = deferred();
  let active = 0;
  let maxActive = 0;
  q.start(async () => {
    active++;
    maxActive = Math.max(maxActive, active);
    await gate.promise;
    active--;
  });
  for (let i = 0; i < 10; i++) q.add(`k${i}`);
  await clock.flush();
  assert.deepEqual({ processing: q.stats().processing, depth: q.stats().depth }, { processing: 3, depth: 7 });
  gate.resolve();
  await q.idle();
  assert.equal(maxActive, 3);
  await q.close();
});

test('failures back off exponentially per key, and a success resets the key', async () => {
  const clock = new ManualClock();
  const q = queue(clock, { backoff: { initialMs: 5, maxMs: 40, jitter: 'none' } });
  const runs: number[] = [];
  let failing = true;
  q.start(async () => {
    runs.push(clock.now());
    if (failing) throw new Error('boom');
  });
  q.add('a');
  await clock.advance(200);
  // 0, then +5, +10, +20, +40, +40 (capped), +40...
  assert.deepEqual(runs.slice(0, 7), [0, 5, 15, 35, 75, 115, 155]);
  const failuresBefore = q.failures('a');
  assert.ok(failuresBefore >= 6);
  failing = false;
  await clock.advance(40);
  assert.equal(q.failures('a'), 0, 'a success forgets the failures');
  failing = true;
  runs.length = 0;
  const start = clock.now();
  q.add('a');
  await clock.advance(6);
  assert.deepEqual(
    runs.map((t) => t - start),
    [0, 5],
    'the next failure starts again from the first delay',
  );
  await q.close();
});

test('backoff jitter stays between half and all of the planned delay', async () => {
  for (const [random, expected] of [
    [0, 50],
    [0.999_999, 100],
  ] as const) {
    const clock = new ManualClock();
    const q = new WorkQueue({
      name: 'jitter',
      clock,
      random: () => random,
      retryRateLimit: false,
      backoff: { initialMs: 100 },
    });
    assert.ok(Math.abs(q.addRateLimited('a') - expected) < 0.01);
    await q.close();
  }
});

test('failures of other keys are not slowed by one key; keys are independent', async () => {
  const clock = new ManualClock();
  const q = queue(clock, { backoff: { initialMs: 100, jitter: 'none' } });
  for (let i = 0; i < 5; i++) q.addRateLimited('hot');
  assert.equal(q.failures('hot'), 5);
  assert.equal(q.addRateLimited('cold'), 100);
  await q.close();
});

test('the retry rate limit spaces out a failure storm over many keys', async () => {
  const clock = new ManualClock();
  const q = queue(clock, {
    backoff: { initialMs: 1, jitter: 'none' },
    retryRateLimit: { perSecond: 2, burst: 2 },
  });
  const delays = ['a', 'b', 'c', 'd', 'e'].map((key) => q.addRateLimited(key));
  assert.deepEqual(delays, [1, 1, 500, 1000, 1500]);
  await clock.advance(10_000);
  // Refilled: a burst again.
  assert.equal(q.addRateLimited('f'), 1);
  await q.close();
});

test('TokenBucket refills at its rate up to the burst', () => {
  const clock = new ManualClock();
  const bucket = new TokenBucket({ perSecond: 10, burst: 3 }, clock);
  assert.deepEqual([bucket.reserve(), bucket.reserve(), bucket.reserve()], [0, 0, 0]);
  assert.equal(bucket.reserve(), 100);
  assert.throws(
    () => new TokenBucket({ perSecond: 0, burst: 1 }, clock),
    (e: unknown) => (e as { code?: string }).code === KubeErrorCode.usage,
  );
});

test('requeueAfter runs the key again after the delay, not before; an immediate add replaces the timer', async () => {
  const clock = new ManualClock();
  const q = queue(clock);
  const runs: number[] = [];
  q.start(async () => {
    runs.push(clock.now());
    return Action.requeueAfter(1000);
  });
  q.add('a');
  await clock.advance(999);
  assert.deepEqual(runs, [0]);
  await clock.advance(1);
  assert.deepEqual(runs, [0, 1000]);
  await clock.advance(300);
  q.add('a');
  await clock.flush();
  assert.deepEqual(runs, [0, 1000, 1300]);
  assert.equal(q.stats().waiting, 1, 'one timer: the one the last run set');
  await clock.advance(999);
  assert.deepEqual(runs, [0, 1000, 1300]);
  await clock.advance(1);
  assert.deepEqual(runs, [0, 1000, 1300, 2300]);
  await q.close();
});

test('addAfter keeps the sooner of two due times, and does nothing for a queued key', async () => {
  const clock = new ManualClock();
  const q = queue(clock);
  const runs: number[] = [];
  q.start(async () => {
    runs.push(clock.now());
  });
  q.addAfter('a', 500);
  q.addAfter('a', 2000);
  q.addAfter('a', 300);
  await clock.advance(3000);
  assert.deepEqual(runs, [300]);
  await q.close();
});

test('FIFO: a hot key re-added on every event cannot starve the keys of the initial list', async () => {
  const clock = new ManualClock();
  const q = queue(clock, { concurrency: 2 });
  const initial = Array.from({ length: 1000 }, (_, i) => `ns/item-${i}`);
  for (const key of initial) q.add(key);
  const handled = new Map<string, number>();
  let calls = 0;
  let lastInitialAt = 0;
  let initialDone = 0;
  q.start(async (key) => {
    calls++;
    handled.set(key, (handled.get(key) ?? 0) + 1);
    if (key.startsWith('ns/item-')) {
      lastInitialAt = calls;
      initialDone++;
    }
    // Every reconcile touches two hot objects, whose events come back at once (a status write storm),
    // while the initial list lasts (after that the hot keys would feed each other forever).
    if (initialDone < initial.length) {
      q.add('ns/hot-1');
      q.add('ns/hot-2');
    }
  });
  await q.idle();
  for (const key of initial) assert.equal(handled.get(key), 1, key);
  // Each hot key runs at most once per pass over the queue ahead of it: here one pass.
  assert.ok((handled.get('ns/hot-1') ?? 0) <= 3, `hot-1 ran ${handled.get('ns/hot-1')} times`);
  assert.ok(lastInitialAt <= 1000 + 4, `the last initial key came at call ${lastInitialAt}`);
  await q.shutdown();
});

test('a handler that throws (even synchronously) is retried with backoff and reported', async () => {
  const clock = new ManualClock();
  const errors: string[] = [];
  const q = queue(clock, { backoff: { initialMs: 10, jitter: 'none' }, onError: (k) => errors.push(k) });
  let runs = 0;
  q.start(((key: string) => {
    runs++;
    if (runs === 1) throw new Error(`sync ${key}`);
    return Promise.resolve();
  }) as never);
  q.add('a');
  await clock.advance(9);
  assert.equal(runs, 1);
  await clock.advance(1);
  assert.equal(runs, 2);
  assert.deepEqual(errors, ['a']);
  assert.equal(q.failures('a'), 0);
  await q.close();
});

test('shutdown waits for work in progress, drops queued keys and timers, and ignores later adds', async () => {
  const clock = new ManualClock();
  const q = queue(clock, { concurrency: 1 });
  const gate = deferred();
  const seen: string[] = [];
  q.start(async (key) => {
    seen.push(key);
    if (key === 'a') await gate.promise;
    return Action.requeueAfter(10);
  });
  q.add('a');
  q.add('b');
  q.addAfter('c', 5);
  await clock.flush();
  let finished = false;
  const done = q.shutdown().then(() => {
    finished = true;
  });
  await clock.flush();
  assert.equal(finished, false, 'a is still running');
  q.add('d');
  gate.resolve();
  await done;
  await clock.advance(100);
  assert.deepEqual(seen, ['a']);
  assert.deepEqual(q.stats(), { depth: 0, processing: 0, waiting: 0, adds: 2, retries: 0 });
  assert.equal(clock.pending, 0, 'no timer left behind');
});

test('shutdown with an aborted signal aborts the handlers and returns without them', async () => {
  const clock = new ManualClock();
  const q = queue(clock);
  let handlerSignal: AbortSignal | undefined;
  q.start(
    (_key, signal) =>
      new Promise<void>(() => {
        handlerSignal = signal;
      }),
  );
  q.add('a');
  await clock.flush();
  const ac = new AbortController();
  const done = q.shutdown({ signal: ac.signal });
  ac.abort(new Error('deadline'));
  await done;
  assert.equal(handlerSignal?.aborted, true);
});

test('metrics: adds, retries, depth, durations and the longest running key', async () => {
  const clock = new ManualClock(1_000_000);
  const registry = new MetricsRegistry();
  const q = queue(clock, { metrics: registry, concurrency: 1, backoff: { initialMs: 1000, jitter: 'none' } });
  const gate = deferred();
  let badRuns = 0;
  q.start(async (key) => {
    if (key === 'slow') await gate.promise;
    if (key === 'bad' && ++badRuns < 3) throw new Error('bad');
  });
  q.add('slow');
  q.add('bad');
  q.add('other');
  await clock.advance(3000);
  assert.equal(await metricValue(registry, 'workqueue_depth'), 2);
  assert.equal(await metricValue(registry, 'workqueue_longest_running_processor_seconds'), 3);
  assert.equal(await metricValue(registry, 'workqueue_unfinished_work_seconds'), 3);
  gate.resolve();
  await clock.advance(10_000);
  assert.equal(await metricValue(registry, 'workqueue_adds_total'), 5, '3 keys + 2 retries of bad');
  assert.equal(await metricValue(registry, 'workqueue_retries_total'), 1 + 1);
  assert.equal(await metricValue(registry, 'workqueue_depth'), 0);
  assert.equal(await metricValue(registry, 'workqueue_longest_running_processor_seconds'), 0);
  const work = (await registry.getSingleMetric('workqueue_work_duration_seconds')!.get()).values.find(
    (v) => (v as { metricName?: string }).metricName === 'workqueue_work_duration_seconds_count',
  );
  assert.equal(work?.value, 5);
  const text = await registry.metrics();
  // slow and the two retries were taken at once; bad and other waited 3 s behind slow.
  assert.match(text, /workqueue_queue_duration_seconds_bucket\{name="test",le="2.5"\} 3\n/);
  assert.match(text, /workqueue_queue_duration_seconds_bucket\{name="test",le="5"\} 5\n/);
  await q.close();
  // A second queue on the same registry shares the metrics under its own label.
  const q2 = new WorkQueue({ name: 'second', clock, metrics: registry });
  q2.add('x');
  assert.match(await registry.metrics(), /workqueue_depth\{name="second"\} 1/);
  await q2.close();
});

test('bad options fail at construction with a usage error', () => {
  for (const options of [{ concurrency: 0 }, { concurrency: 1.5 }, { backoff: { initialMs: -1 } }]) {
    assert.throws(
      () => new WorkQueue({ name: 'x', ...options }),
      (e: unknown) => typeof (e as { code?: string }).code === 'string',
    );
  }
  const q = new WorkQueue({ name: 'x' });
  q.start(async () => {});
  assert.throws(
    () => q.start(async () => {}),
    (e: unknown) => (e as { code?: string }).code === KubeErrorCode.usage,
  );
});
