import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { KubeError, type KubeObject, labelIndexer, reflector, Store, type WatcherEvent } from 'capstan/kube';

const cm = (name: string, rv: string, labels?: Record<string, string>, namespace = 'ns'): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace, resourceVersion: rv, ...(labels ? { labels } : {}) },
});

const names = (objects: KubeObject[]) => objects.map((o) => o.metadata?.name).sort();

async function* from<T>(events: WatcherEvent<T>[]): AsyncGenerator<WatcherEvent<T>> {
  for (const e of events) yield e;
}

describe('Store', () => {
  test('a relist is swapped in at initDone: readers never see it half done, deleted objects go', () => {
    const store = new Store<KubeObject>();
    store.apply({ type: 'init' });
    store.apply({ type: 'initApply', object: cm('a', '1') });
    store.apply({ type: 'initApply', object: cm('b', '2') });
    assert.equal(store.hasSynced, false);
    assert.equal(store.size, 0, 'nothing visible before initDone');
    store.apply({ type: 'initDone', resourceVersion: '2' });
    assert.equal(store.hasSynced, true);
    assert.deepEqual(names(store.list()), ['a', 'b']);
    assert.equal(store.get('ns/a')?.metadata?.resourceVersion, '1');
    assert.equal(store.getObject('b', 'ns')?.metadata?.resourceVersion, '2');

    // A relist after 410: b was deleted while the watch was down, c created; the old view stays until done.
    store.apply({ type: 'init' });
    store.apply({ type: 'initApply', object: cm('a', '5') });
    assert.deepEqual(names(store.list()), ['a', 'b']);
    store.apply({ type: 'initApply', object: cm('c', '6') });
    store.apply({ type: 'initDone', resourceVersion: '6' });
    assert.deepEqual(names(store.list()), ['a', 'c']);
    assert.equal(store.get('ns/a')?.metadata?.resourceVersion, '5');
  });

  test('apply and delete change one key; cluster-scoped objects are keyed by name', () => {
    const store = new Store<KubeObject>();
    store.apply({ type: 'apply', object: cm('a', '1') });
    store.apply({ type: 'apply', object: cm('a', '2') });
    store.apply({ type: 'apply', object: { kind: 'Namespace', metadata: { name: 'n1' } } });
    assert.deepEqual(store.keys().sort(), ['n1', 'ns/a']);
    assert.equal(store.get('ns/a')?.metadata?.resourceVersion, '2');
    store.apply({ type: 'delete', object: cm('a', '3') });
    store.apply({ type: 'delete', object: cm('never-there', '4') });
    assert.deepEqual(store.keys(), ['n1']);
  });

  test('indexes follow changes, relists and deletes', () => {
    const store = new Store<KubeObject>();
    store.apply({ type: 'apply', object: cm('a', '1', { app: 'web' }) });
    store.addIndex('app', labelIndexer('app'));
    store.apply({ type: 'apply', object: cm('b', '2', { app: 'web' }) });
    store.apply({ type: 'apply', object: cm('c', '3', { app: 'db' }) });
    store.apply({ type: 'apply', object: cm('d', '4') });
    assert.deepEqual(names(store.byIndex('app', 'web')), ['a', 'b']);
    store.apply({ type: 'apply', object: cm('b', '5', { app: 'db' }) });
    assert.deepEqual(names(store.byIndex('app', 'web')), ['a']);
    assert.deepEqual(names(store.byIndex('app', 'db')), ['b', 'c']);
    store.apply({ type: 'delete', object: cm('c', '6') });
    assert.deepEqual(names(store.byIndex('app', 'db')), ['b']);
    store.apply({ type: 'init' });
    store.apply({ type: 'initApply', object: cm('e', '7', { app: 'web' }) });
    store.apply({ type: 'initDone', resourceVersion: '7' });
    assert.deepEqual(names(store.byIndex('app', 'web')), ['e']);
    assert.deepEqual(store.byIndex('app', 'db'), []);
    assert.throws(() => store.byIndex('nope', 'x'), { code: 'CAP_ERR_KUBE_USAGE' });
    assert.throws(() => store.addIndex('app', labelIndexer('app')), KubeError);
  });

  test('ready() resolves at the first initDone; an aborted wait rejects', async () => {
    const store = new Store<KubeObject>();
    const aborted = new AbortController();
    const early = store.ready({ signal: aborted.signal });
    aborted.abort(new Error('gave up'));
    await assert.rejects(early, /gave up/);
    let ready = false;
    const waiting = store.ready().then(() => {
      ready = true;
    });
    const seen: string[] = [];
    for await (const e of reflector(
      store,
      from<KubeObject>([
        { type: 'init' },
        { type: 'initApply', object: cm('a', '1') },
        { type: 'initDone', resourceVersion: '1' },
      ]),
    )) {
      seen.push(e.type);
      // The reflector writes before the consumer sees the event.
      if (e.type === 'initDone') assert.equal(store.size, 1);
    }
    await waiting;
    assert.equal(ready, true);
    assert.deepEqual(seen, ['init', 'initApply', 'initDone']);
  });

  test('waitFor: read-your-own-writes resolves when the cache shows the write, times out otherwise', async () => {
    const store = new Store<KubeObject>();
    const created = store.waitFor('ns/a', (o) => o?.metadata?.resourceVersion === '2');
    store.apply({ type: 'apply', object: cm('a', '1') });
    store.apply({ type: 'apply', object: cm('a', '2') });
    await created;
    const gone = store.waitFor('ns/a', (o) => o === undefined);
    store.apply({ type: 'delete', object: cm('a', '3') });
    await gone;
    await store.waitFor('ns/a', (o) => o === undefined);
    await assert.rejects(
      store.waitFor('ns/z', (o) => o !== undefined, { timeoutMs: 20 }),
      (e: unknown) => e instanceof KubeError && e.code === 'CAP_ERR_KUBE_TIMEOUT',
    );
  });
});
