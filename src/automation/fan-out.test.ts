import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AutomationError, AutomationErrorCode, fanOut } from './index.ts';

test('never more than `concurrency` tasks at once, and the bound is reached; outcomes in input order', async () => {
  let running = 0;
  let peak = 0;
  const items = Array.from({ length: 40 }, (_, i) => i);
  const report = await fanOut(
    items,
    async (n) => {
      running++;
      peak = Math.max(peak, running);
      await sleep(n % 3 === 0 ? 15 : 2);
      running--;
      return n * 2;
    },
    { concurrency: 7 },
  );
  assert.equal(peak, 7);
  assert.equal(report.ok, 40);
  assert.deepEqual(
    report.outcomes.map((o) => (o.status === 'ok' ? o.value : undefined)),
    items.map((n) => n * 2),
  );
  assert.ok(report.outcomes.every((o, i) => o.index === i && o.item === i && o.attempts === 1));
});

test('a failing item does not stop the others; retries run with a fresh attempt number until one succeeds', async () => {
  const attempts = new Map<string, number[]>();
  const report = await fanOut(
    ['steady', 'flaky', 'broken'],
    (name, { attempt }) => {
      attempts.set(name, [...(attempts.get(name) ?? []), attempt]);
      if (name === 'broken' || (name === 'flaky' && attempt < 3)) throw new Error(`${name} failed`);
      return name;
    },
    { retries: 2, backoff: { initialMs: 1, maxMs: 1 } },
  );
  assert.deepEqual(Object.fromEntries(attempts), { steady: [1], flaky: [1, 2, 3], broken: [1, 2, 3] });
  assert.deepEqual(
    report.outcomes.map((o) => [o.status, o.attempts]),
    [
      ['ok', 1],
      ['ok', 3],
      ['failed', 3],
    ],
  );
  assert.equal(report.failed, 1);
  assert.equal(report.retried, 2);
  const broken = report.outcomes[2]!;
  assert.ok(broken.status === 'failed' && broken.error instanceof Error);
  assert.match((broken.error as Error).message, /broken failed/);
});

test('retryIf: a failure it rejects ends the item at once', async () => {
  let calls = 0;
  const report = await fanOut(
    [1],
    () => {
      calls++;
      throw new RangeError('permanent');
    },
    { retries: 5, retryIf: (err) => !(err instanceof RangeError), backoff: { initialMs: 1 } },
  );
  assert.equal(calls, 1);
  assert.equal(report.failed, 1);
});

test('a timeout aborts the attempt’s signal and fails it; one that ignores its signal does not hold the run', async () => {
  const aborted: unknown[] = [];
  const report = await fanOut(
    ['polite', 'deaf'],
    (name, { signal }) =>
      name === 'polite'
        ? new Promise((_, reject) =>
            signal.addEventListener('abort', () => {
              aborted.push(signal.reason);
              reject(signal.reason);
            }),
          )
        : new Promise(() => {}), // never settles, never listens
    { timeoutMs: 50 },
  );
  assert.equal(report.failed, 2);
  for (const o of report.outcomes) {
    assert.ok(o.status === 'failed');
    assert.ok(o.error instanceof AutomationError);
    assert.equal(o.error.code, AutomationErrorCode.timeout);
  }
  assert.equal(aborted.length, 1);
});

test('cancelling: in-flight tasks see their signal abort, items not started never start', async () => {
  const controller = new AbortController();
  const started: number[] = [];
  let sawAbort = 0;
  const run = fanOut(
    Array.from({ length: 10 }, (_, i) => i),
    (n, { signal }) => {
      started.push(n);
      if (started.length === 3) queueMicrotask(() => controller.abort(new Error('Ctrl-C')));
      return new Promise((_, reject) =>
        signal.addEventListener('abort', () => {
          sawAbort++;
          reject(signal.reason);
        }),
      );
    },
    { concurrency: 3, signal: controller.signal },
  );
  const report = await run;
  assert.deepEqual(started, [0, 1, 2]);
  assert.equal(sawAbort, 3);
  assert.equal(report.cancelled, 10);
  assert.equal(report.outcomes.length, 10);
  assert.deepEqual(
    report.outcomes.map((o) => o.attempts),
    [1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
  );
  const first = report.outcomes[0]!;
  assert.ok(first.status === 'cancelled' && first.error instanceof AutomationError);
  assert.equal(first.error.code, AutomationErrorCode.cancelled);
});

test('an async source is read only as slots free up, and closed when the run is cancelled', async () => {
  let produced = 0;
  let closed = false;
  const controller = new AbortController();
  async function* source() {
    try {
      for (let i = 0; i < 1_000; i++) {
        produced++;
        yield i;
      }
    } finally {
      closed = true;
    }
  }
  let done = 0;
  const report = await fanOut(
    source(),
    async () => {
      await sleep(1);
      // At most `concurrency` items are ever read ahead of the finished ones.
      assert.ok(produced <= done + 4, `read ${produced} with ${done} done`);
      if (++done === 20) setImmediate(() => controller.abort());
    },
    { concurrency: 4, signal: controller.signal },
  );
  assert.ok(closed, 'the generator was closed');
  assert.ok(produced < 30, `read ${produced} of 1000`);
  assert.ok(report.ok >= 20, `${report.ok} ok`);
  assert.equal(report.ok + report.cancelled, report.outcomes.length, 'every item read has an outcome');
});

test('bad options are refused, every problem at once', async () => {
  await assert.rejects(
    fanOut([1], () => 1, { concurrency: 0, retries: -1, timeoutMs: 0 }),
    (err: unknown) => {
      assert.ok(err instanceof AutomationError);
      assert.equal(err.code, AutomationErrorCode.invalid);
      assert.match(err.message, /concurrency.*retries.*timeoutMs/);
      return true;
    },
  );
});
