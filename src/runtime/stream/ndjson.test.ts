import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ndjson, StreamError } from 'capstan/runtime';

const MAX = 64 * 1024;
const CHUNK = 4096;

/** Yields `total` bytes of `head` then `fill` repeated, in chunks; `pulled` counts what was read. */
function source(head: string, fill: string, total: number) {
  const state = { pulled: 0 };
  const iterable = (async function* () {
    const body = Buffer.from(head + (fill ? fill.repeat(Math.ceil(total / fill.length)) : '')).subarray(
      0,
      total,
    );
    for (let at = 0; at < body.length; at += CHUNK) {
      state.pulled += Math.min(CHUNK, body.length - at);
      yield body.subarray(at, at + CHUNK);
    }
  })();
  return { iterable, state };
}

describe('ndjson: maxValueBytes', () => {
  test('an object that never ends raises CAP_ERR_RUNTIME_STREAM_TOO_LARGE once past the cap, not at the end', async () => {
    const { iterable, state } = source('{"a":"', 'x', 10 * MAX);
    await assert.rejects(
      (async () => {
        for await (const _ of ndjson(iterable, { maxValueBytes: MAX })) {
        }
      })(),
      (e: unknown) => e instanceof StreamError && e.code === 'CAP_ERR_RUNTIME_STREAM_TOO_LARGE',
    );
    // It stopped reading right after the cap: what it held never grew past it by more than one chunk.
    assert.ok(state.pulled <= MAX + CHUNK, `read ${state.pulled} bytes`);
  });

  test('values glued without newlines are counted one by one; values up to the cap pass', async () => {
    const glued = source('', '{"b":1}', 10 * MAX - ((10 * MAX) % 7));
    let n = 0;
    for await (const v of ndjson<{ b: number }>(glued.iterable, { maxValueBytes: MAX })) n += v.b;
    assert.equal(n, Math.floor((10 * MAX) / 7));
    const big = `{"c":"${'y'.repeat(MAX - 10)}"}\n{"c":"z"}\n`;
    const got: string[] = [];
    for await (const v of ndjson<{ c: string }>(source(big, '', big.length).iterable, {
      maxValueBytes: MAX,
    })) {
      got.push(v.c.slice(0, 1));
    }
    assert.deepEqual(got, ['y', 'z']);
  });
});
