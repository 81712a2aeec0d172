import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  Backoff,
  backoffDelay,
  type Connection,
  MergeSet,
  mergeAsync,
  ndjson,
  OverlapDedupe,
  resumable,
  resumeFromLast,
  retry,
  StreamError,
  type StreamNotice,
  unbatch,
} from 'capstan/runtime';

/** An item of a fake source: a position (like a timestamp) and a text. */
interface Item {
  at: bigint;
  text: string;
}

const item = (at: number, text = `t${at}`): Item => ({ at: BigInt(at), text });
const texts = (items: Item[]) => items.map((i) => i.text);

async function collect<T>(source: AsyncIterable<T[]>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of unbatch(source)) out.push(x);
  return out;
}

class Transient extends Error {}
class Permanent extends Error {}

/** Timers alive in this process: a stopped stream must leave none of its own behind. */
const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('resumable', () => {
  test('each connection starts at the resume point, and the replayed overlap is dropped exactly', async () => {
    const froms: Array<bigint | undefined> = [];
    const notices: StreamNotice[] = [];
    const tracker = new OverlapDedupe<Item>({ overlap: 10n, position: (i) => i.at, key: (i) => i.text });
    const got = await collect(
      resumable<Item, bigint>({
        async *connect(from, { index }) {
          froms.push(from);
          if (index === 0) {
            yield [item(100), item(105), item(105, 'twin')];
            throw new Transient('cut');
          }
          // The source resumes inclusively from 95: it replays 100 and 105 (and one item it had not sent).
          yield [item(100), item(105), item(103, 'late')];
          yield [item(105, 'twin'), item(120)];
        },
        tracker,
        backoff: { initialMs: 0 },
        onNotice: (n) => notices.push(n),
      }),
    );
    assert.deepEqual(froms, [undefined, 95n]);
    assert.deepEqual(texts(got), ['t100', 't105', 'twin', 'late', 't120']);
    assert.deepEqual(
      notices.map((n) => n.type),
      ['retrying', 'resumed'],
    );
    const [retrying, resumed] = notices;
    assert.ok(retrying?.type === 'retrying' && retrying.attempt === 1 && retrying.error instanceof Transient);
    // Reported with the first new item: by then the two replayed items before it were dropped.
    assert.ok(resumed?.type === 'resumed' && resumed.duplicatesDropped === 2);
    assert.equal(tracker.dropped, 3);
  });

  test('items without a position pass the dedupe and do not move the resume point', async () => {
    const froms: Array<bigint | undefined> = [];
    const made = item(9_999, 'made up locally');
    const tracker = new OverlapDedupe<Item>({
      overlap: 0n,
      position: (i) => (i === made ? undefined : i.at),
      key: (i) => i.text,
    });
    const got = await collect(
      resumable<Item, bigint>({
        async *connect(from, { index }) {
          froms.push(from);
          if (index === 0) {
            yield [item(10)];
            throw new Transient('cut');
          }
          yield [made, item(10), item(11)];
        },
        tracker,
        backoff: { initialMs: 0 },
      }),
    );
    assert.deepEqual(froms, [undefined, 10n]);
    assert.deepEqual(texts(got), ['t10', 'made up locally', 't11']);
    assert.equal(tracker.latest, 11n);
  });

  test('resumeFromLast hands the last position to the next connection, dropping nothing', async () => {
    const froms: Array<string | undefined> = [];
    const got = await collect(
      resumable<{ rv: string }, string>({
        async *connect(from, { index }) {
          froms.push(from);
          if (index === 0) {
            yield [{ rv: '7' }, { rv: '8' }];
            throw new Transient('watch closed');
          }
          yield [{ rv: '9' }];
        },
        tracker: resumeFromLast((x) => x.rv),
        backoff: { initialMs: 0 },
      }),
    );
    assert.deepEqual(froms, [undefined, '8']);
    assert.deepEqual(
      got.map((x) => x.rv),
      ['7', '8', '9'],
    );
  });

  test('a permanent error ends the stream with that error, without a retry', async () => {
    let connects = 0;
    const notices: StreamNotice[] = [];
    const stream = resumable<Item, bigint>({
      // biome-ignore lint/correctness/useYield: a connection that fails before its first item
      async *connect() {
        connects++;
        throw new Permanent('bad request');
      },
      isPermanent: (err) => err instanceof Permanent,
      backoff: { initialMs: 0 },
      onNotice: (n) => notices.push(n),
    });
    await assert.rejects(collect(stream), Permanent);
    assert.equal(connects, 1);
    assert.deepEqual(notices, []);
  });

  test('failures grow the backoff until data flows again, which resets it', async () => {
    const attempts: number[] = [];
    let connects = 0;
    await collect(
      resumable<Item, bigint>({
        async *connect() {
          connects++;
          // Three failures, then one item and a failure, then two failures, then a clean end.
          if (connects === 4) yield [item(1)];
          if (connects < 7) throw new Transient(`fail ${connects}`);
        },
        backoff: { initialMs: 0 },
        onNotice: (n) => {
          if (n.type === 'retrying') attempts.push(n.attempt);
        },
      }),
    );
    assert.deepEqual(attempts, [1, 2, 3, 1, 2, 3]);
  });

  test('afterEnd decides to reconnect after a clean end, and its calls retry with the stream backoff', async () => {
    const notices: StreamNotice[] = [];
    let checks = 0;
    const froms: Array<string | undefined> = [];
    const got = await collect(
      resumable<{ index: string }, string>({
        // A blocking query: each answer is one response; the next asks from its index.
        async *connect(from, { index }) {
          froms.push(from);
          yield [{ index: String(index + 1) }];
        },
        tracker: resumeFromLast((x) => x.index),
        backoff: { initialMs: 0 },
        async afterEnd(end) {
          assert.equal(end.failed, false);
          // The decision needs a call that fails once first.
          return end.retry(async () => {
            checks++;
            if (checks === 2) throw new Transient('lookup failed');
            return froms.length < 3;
          });
        },
        onNotice: (n) => notices.push(n),
      }),
    );
    assert.deepEqual(
      got.map((x) => x.index),
      ['1', '2', '3'],
    );
    assert.deepEqual(froms, [undefined, '1', '2']);
    assert.deepEqual(
      notices.map((n) => n.type),
      ['retrying', 'resumed'],
    );
  });

  test('skipBackoff: a failure that calls for a decision, not a wait, goes straight to afterEnd', async () => {
    const notices: StreamNotice[] = [];
    const ends: unknown[] = [];
    await collect(
      resumable<Item, bigint>({
        // biome-ignore lint/correctness/useYield: the source is gone before anything comes
        async *connect() {
          throw new Permanent('gone');
        },
        skipBackoff: (err) => err instanceof Permanent,
        afterEnd: (end) => {
          ends.push(end.error);
          return false;
        },
        onNotice: (n) => notices.push(n),
      }),
    );
    assert.equal(ends.length, 1);
    assert.ok(ends[0] instanceof Permanent);
    assert.deepEqual(notices, []);
  });

  test('an abort during a backoff wait ends the stream cleanly and leaves no timer behind', async () => {
    const controller = new AbortController();
    const before = timers();
    const stream = resumable<Item, bigint>({
      // biome-ignore lint/correctness/useYield: always failing
      async *connect() {
        throw new Transient('down');
      },
      // A minute: the test only finishes if the abort cuts the wait short.
      backoff: { initialMs: 60_000, jitter: 'none' },
      signal: controller.signal,
      onNotice: (n) => {
        if (n.type === 'retrying') queueMicrotask(() => controller.abort());
      },
    });
    assert.deepEqual(await stream.next(), { done: true, value: undefined });
    assert.equal(timers(), before);
  });

  test('an abort while connected ends the stream cleanly, also when the connection throws on it', async () => {
    const controller = new AbortController();
    const got: Item[] = [];
    for await (const batch of resumable<Item, bigint>({
      async *connect(_from, { signal }: Connection) {
        yield [item(1)];
        await new Promise((_, reject) => {
          if (signal?.aborted) reject(signal.reason);
          signal?.addEventListener('abort', () => reject(signal.reason));
        });
      },
      signal: controller.signal,
    })) {
      got.push(...batch);
      controller.abort();
    }
    assert.deepEqual(texts(got), ['t1']);
  });

  test('a consumer that stops early closes the connection', async () => {
    let closed = false;
    for await (const _ of resumable<Item, bigint>({
      async *connect() {
        try {
          for (let i = 0; ; i++) yield [item(i)];
        } finally {
          closed = true;
        }
      },
    })) {
      break;
    }
    assert.equal(closed, true);
  });
});

describe('backoff', () => {
  test('grows by the factor up to the cap; jitter stays within its range', () => {
    const none = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 'none' });
    assert.deepEqual(
      Array.from({ length: 7 }, () => none.next()),
      [100, 200, 400, 800, 1000, 1000, 1000],
    );
    assert.equal(none.attempt, 7);
    none.reset();
    assert.equal(none.next(), 100);

    const full = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 'full', random: () => 0.5 });
    assert.deepEqual(
      Array.from({ length: 6 }, () => full.next()),
      [50, 100, 200, 400, 500, 500],
    );
    const equal = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 'equal', random: () => 0 });
    assert.deepEqual(
      Array.from({ length: 6 }, () => equal.next()),
      [50, 100, 200, 400, 500, 500],
    );
    // The extremes of the random source stay inside [0, d] and [d/2, d]; a number is the random share.
    assert.equal(backoffDelay(3, { initialMs: 100, jitter: 'full', random: () => 0 }), 0);
    const top = backoffDelay(3, { initialMs: 100, jitter: 'equal', random: () => 0.999_999 });
    assert.ok(top > 799 && top <= 800);
    assert.equal(backoffDelay(3, { initialMs: 100, jitter: 0.25, random: () => 0 }), 600);
  });

  test('a long outage stays at the cap (no overflow), and bad options are refused', () => {
    assert.equal(backoffDelay(5000, { initialMs: 100, maxMs: 2000, jitter: 'none' }), 2000);
    assert.equal(backoffDelay(5000, { initialMs: 0, jitter: 'none' }), 0);
    for (const bad of [{ initialMs: -1 }, { maxMs: 2 ** 31 }, { factor: 0.5 }, { initialMs: Number.NaN }]) {
      assert.throws(
        () => new Backoff(bad),
        (e: unknown) => e instanceof StreamError && e.code === 'CAP_ERR_RUNTIME_STREAM_INVALID',
      );
    }
  });
});

describe('retry', () => {
  test('retries until it works, throws a permanent error at once, and stops on abort', async () => {
    let calls = 0;
    const seen: number[] = [];
    const value = await retry(
      async () => {
        if (++calls < 3) throw new Transient('not yet');
        return 'ok';
      },
      { backoff: { initialMs: 0 }, onRetry: (r) => seen.push(r.attempt) },
    );
    assert.equal(value, 'ok');
    assert.deepEqual(seen, [1, 2]);

    await assert.rejects(
      retry(
        async () => {
          throw new Permanent('no');
        },
        { isPermanent: (e) => e instanceof Permanent },
      ),
      Permanent,
    );

    const controller = new AbortController();
    const before = timers();
    await assert.rejects(
      retry(
        async () => {
          throw new Transient('down');
        },
        {
          backoff: { initialMs: 60_000 },
          signal: controller.signal,
          onRetry: () => queueMicrotask(() => controller.abort()),
        },
      ),
      (e: unknown) => e instanceof Error && e.name === 'AbortError',
    );
    assert.equal(timers(), before);
  });
});

describe('merge and ndjson', () => {
  test('mergeAsync yields every value of every source and ends when all ended', async () => {
    async function* count(prefix: string, n: number) {
      for (let i = 0; i < n; i++) yield `${prefix}${i}`;
    }
    const out: string[] = [];
    for await (const v of mergeAsync([count('a', 3), count('b', 2)])) out.push(v);
    assert.deepEqual(out.sort(), ['a0', 'a1', 'a2', 'b0', 'b1']);
  });

  test('MergeSet takes sources added while it runs', async () => {
    const set = new MergeSet<number>();
    set.add(
      (async function* () {
        yield 1;
        set.add(
          (async function* () {
            yield 2;
          })(),
        );
      })(),
    );
    const out: number[] = [];
    for await (const v of set) out.push(v);
    assert.deepEqual(out.sort(), [1, 2]);
    assert.equal(
      set.add(
        (async function* () {
          yield 3;
        })(),
      ),
      false,
    );
  });

  test('ndjson parses split and glued values; bad JSON raises CAP_ERR_RUNTIME_STREAM_JSON unless mapped', async () => {
    const source = (parts: string[]) =>
      (async function* () {
        for (const p of parts) yield Buffer.from(p);
      })();
    const out: unknown[] = [];
    for await (const v of ndjson(source(['{"a":1}{"b"', ':2}\n', '{"c":3}']))) out.push(v);
    assert.deepEqual(out, [{ a: 1 }, { b: 2 }, { c: 3 }]);
    const drain = async (it: AsyncIterable<unknown>) => {
      for await (const _ of it);
    };
    await assert.rejects(
      drain(ndjson(source(['{"a":1}\n{"b":']))),
      (e: unknown) => e instanceof StreamError && e.code === 'CAP_ERR_RUNTIME_STREAM_JSON',
    );
    class Mine extends Error {}
    await assert.rejects(drain(ndjson(source(['nope\n']), { badJson: () => new Mine() })), Mine);
  });
});
