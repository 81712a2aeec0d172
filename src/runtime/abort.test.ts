import assert from 'node:assert/strict';
import { test } from 'node:test';
import { abortReason, deadline, linkedController, raceAbort, sleep, within } from 'capstan/runtime';

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

test('sleep resolves true when the time passed, false on abort, and leaves no timer behind', async () => {
  assert.equal(await sleep(1), true);
  const controller = new AbortController();
  const before = timers();
  const waiting = sleep(60_000, controller.signal);
  controller.abort();
  assert.equal(await waiting, false);
  assert.equal(timers(), before);
  assert.equal(await sleep(60_000, controller.signal), false);
});

test('linkedController aborts with any parent, with its reason, and can be aborted alone', () => {
  const a = new AbortController();
  const b = new AbortController();
  const linked = linkedController(a.signal, undefined, b.signal);
  assert.equal(linked.signal.aborted, false);
  b.abort('b went');
  assert.equal(linked.signal.aborted, true);
  assert.equal(linked.signal.reason, 'b went');

  const alone = linkedController(a.signal);
  alone.abort();
  assert.equal(a.signal.aborted, false);
  assert.equal(linkedController(b.signal).signal.reason, 'b went');
});

test('abortReason keeps an Error reason and wraps another with the given error', () => {
  const c = new AbortController();
  c.abort('why');
  assert.equal(abortReason(c.signal).name, 'AbortError');
  class Mine extends Error {}
  assert.ok(abortReason(c.signal, () => new Mine()) instanceof Mine);
  const e = new Error('own');
  const d = new AbortController();
  d.abort(e);
  assert.equal(abortReason(d.signal), e);
});

test('raceAbort settles with the promise, or rejects at the abort while the promise runs on', async () => {
  const c = new AbortController();
  assert.equal(await raceAbort(Promise.resolve(1), c.signal), 1);
  const never = new Promise<number>(() => {});
  const raced = raceAbort(never, c.signal);
  c.abort(new Error('stop'));
  await assert.rejects(raced, /stop/);
  await assert.rejects(raceAbort(Promise.resolve(2), c.signal), /stop/);
});

test('deadline: hurry reaches it at once; clear leaves no timer; within tells which came first', async () => {
  const hurry = new AbortController();
  const before = timers();
  const d = deadline(60_000, { hurry: hurry.signal });
  hurry.abort();
  await d.reached;
  assert.equal(d.signal.aborted, true);
  assert.equal((d.signal.reason as Error).name, 'TimeoutError');
  d.clear();
  const cleared = deadline(60_000);
  cleared.clear();
  assert.equal(timers(), before);
  assert.equal(await within(60_000, Promise.resolve()), true);
  assert.equal(await within(0, new Promise(() => {})), false);
  assert.equal(timers(), before);
});
