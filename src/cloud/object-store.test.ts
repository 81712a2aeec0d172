import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CloudErrorCode } from './errors.ts';
import {
  DELETE_BATCH,
  executeGc,
  listAll,
  type ObjectStore,
  planGc,
  type StoredObject,
  usageOf,
} from './object-store.ts';

const DAY = 86_400_000;
const now = new Date('2026-12-01T00:00:00Z');
const object = (key: string, ageDays: number, size = 1): StoredObject => ({
  key,
  size,
  lastModified: new Date(now.getTime() - ageDays * DAY),
});

/** An in-memory store with pages of `pageSize` that records its delete calls and can refuse keys. */
function fakeStore(objects: StoredObject[], pageSize = 3, refuse = new Set<string>()) {
  const batches: string[][] = [];
  const store: ObjectStore = {
    async *listPages(prefix) {
      const matching = objects.filter((o) => !prefix || o.key.startsWith(prefix));
      for (let i = 0; i < matching.length; i += pageSize) yield matching.slice(i, i + pageSize);
    },
    async deleteBatch(keys) {
      batches.push([...keys]);
      return {
        deleted: keys.filter((k) => !refuse.has(k)),
        failed: keys.filter((k) => refuse.has(k)).map((key) => ({ key, message: 'AccessDenied' })),
      };
    },
  };
  return { store, batches };
}

test('listAll reads every page and usageOf sums them', async () => {
  const objects = Array.from({ length: 10 }, (_, i) => object(`k${i}`, i, i + 1));
  const seen: number[] = [];
  const all = await listAll(fakeStore(objects).store, undefined, { onPage: (n) => seen.push(n) });
  assert.equal(all.length, 10);
  assert.deepEqual(seen, [3, 6, 9, 10]);
  assert.deepEqual(usageOf(all), { objects: 10, bytes: 55 });
});

test('planGc keeps only what every criterion selects, oldest first', () => {
  const objects = [object('tmp/a', 10), object('tmp/b.log', 40), object('keep/c', 50), object('tmp/d', 1)];
  assert.deepEqual(
    planGc(objects, { olderThanMs: 7 * DAY, prefix: 'tmp/', now }).map((o) => o.key),
    ['tmp/b.log', 'tmp/a'],
  );
  assert.deepEqual(
    planGc(objects, { pattern: /\.log$/, now }).map((o) => o.key),
    ['tmp/b.log'],
  );
  assert.deepEqual(planGc(objects, { olderThanMs: 100 * DAY, now }), []);
});

test('planGc refuses a rule with no criterion or a negative age', () => {
  assert.throws(() => planGc([object('a', 1)], {}), { code: CloudErrorCode.invalid });
  assert.throws(() => planGc([object('a', 1)], { olderThanMs: -1 }), { code: CloudErrorCode.invalid });
});

test('executeGc deletes in batches of 1,000 and reports refused keys', async () => {
  const objects = Array.from({ length: 2 * DELETE_BATCH + 5 }, (_, i) => object(`k${i}`, 1));
  const { store, batches } = fakeStore(objects);
  assert.deepEqual(await executeGc(store, objects), { deleted: objects.length });
  assert.deepEqual(
    batches.map((b) => b.length),
    [DELETE_BATCH, DELETE_BATCH, 5],
  );

  const refusing = fakeStore(objects, 3, new Set(['k7'])).store;
  await assert.rejects(executeGc(refusing, objects), (error: Error & { code?: string }) => {
    assert.equal(error.code, CloudErrorCode.partialDelete);
    assert.match(error.message, /deleted 2004 of 2005 .*k7: AccessDenied/);
    return true;
  });
});

test('executeGc stops before the next batch once its signal is aborted', async () => {
  const objects = Array.from({ length: DELETE_BATCH + 1 }, (_, i) => object(`k${i}`, 1));
  const { store, batches } = fakeStore(objects);
  const controller = new AbortController();
  await assert.rejects(
    executeGc(store, objects, { signal: controller.signal, onBatch: () => controller.abort() }),
  );
  assert.equal(batches.length, 1);
});
