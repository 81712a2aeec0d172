// The watcher and the store against a real etcd + kube-apiserver (one control plane for the whole file),
// with a TCP proxy in between to cut, stall or refuse connections on purpose.
//
// ConfigMaps are served without the apiserver's watch cache (`--watch-cache-sizes=configmaps#0`): their
// watches go to etcd, so compacting etcd makes an old resourceVersion really too old (410 Gone). Secrets keep
// the watch cache (and its bookmarks): the resume tests run on both paths.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  ConfigMap,
  type ConfigMap as ConfigMapObject,
  KubeClient,
  KubeError,
  type KubeObject,
  type PartialObjectMetadata,
  type ResourceClient,
  type ResourceType,
  reflector,
  Secret,
  Store,
  stripManagedFields,
  type WatcherEvent,
  type WatcherNotice,
  type WatcherOptions,
  watcher,
} from 'capstan/kube';
import { createHttpTransport, httpJson, sleep } from 'capstan/runtime';
import { type ControlPlane, startControlPlane } from 'capstan/testing';
import { startTcpProxy, type TcpProxy } from './testdata/tcp-proxy.ts';

let cp: ControlPlane;
let kube: KubeClient;
let proxy: TcpProxy;
/** A client whose every connection goes through {@link proxy}. */
let proxied: KubeClient;

before(async () => {
  cp = await startControlPlane({ apiServerFlags: ['--watch-cache-sizes=configmaps#0'] });
  kube = new KubeClient(cp.clientConfig);
  proxy = await startTcpProxy(cp.server);
  proxied = new KubeClient({ ...cp.clientConfig, server: proxy.url });
});
after(async () => {
  await proxied?.close();
  await proxy?.close();
  await kube?.close();
  await cp?.stop();
});

async function namespace(name: string): Promise<string> {
  await kube.json({ method: 'POST', path: '/api/v1/namespaces', json: { metadata: { name } } });
  return name;
}

/** Poll until `check` holds, or fail after `timeoutMs` with `what` and the state it last saw. */
async function until(what: string, check: () => boolean, state: () => unknown, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline)
      assert.fail(`${what}: not within ${timeoutMs} ms; state: ${JSON.stringify(state())}`);
    await sleep(25);
  }
}

/** A watcher + store running in the background, recording events and notices. */
function watch<T extends PartialObjectMetadata>(
  resource: ResourceClient<T>,
  options: WatcherOptions<T> = {},
) {
  const stop = new AbortController();
  const store = new Store<T>();
  const events: WatcherEvent<T>[] = [];
  const notices: WatcherNotice[] = [];
  let error: unknown;
  const done = (async () => {
    try {
      for await (const e of reflector(
        store,
        watcher(resource, {
          backoff: { initialMs: 50, maxMs: 500 },
          ...options,
          signal: stop.signal,
          onNotice: (n) => notices.push(n),
        }),
      )) {
        events.push(e);
      }
    } catch (err) {
      error = err;
    }
  })();
  return {
    store,
    events,
    notices,
    get error() {
      return error;
    },
    /** Every `apply` since `from` (index into events), as `name=value of data.n`. */
    applied(from = 0) {
      return events
        .slice(from)
        .filter((e) => e.type === 'apply')
        .map((e) => {
          const o = (e as { object: T }).object as unknown as KubeObject & { data?: Record<string, string> };
          return `${o.metadata?.name}=${o.data?.n ?? ''}`;
        });
    },
    types: () => events.map((e) => e.type),
    /** The first full list was delivered (the store has it, and so has `events`). */
    async synced() {
      await until(
        'the first full list',
        () => events.some((e) => e.type === 'initDone'),
        () => events.length,
      );
    },
    async stop() {
      stop.abort();
      await done;
    },
    done,
  };
}

const noticeTypes = (notices: WatcherNotice[]) => notices.map((n) => n.type);

/** The etcd revision now: the resourceVersion of a fresh list. */
async function currentRevision(): Promise<string> {
  return (await kube.resource(ConfigMap).list({ limit: 1 })).metadata.resourceVersion ?? '';
}

/** Compact etcd's history up to `revision` (v3 API over etcd's gRPC gateway). */
async function compactEtcd(revision: string): Promise<void> {
  await using http = createHttpTransport({ origin: cp.etcd.url, retry: false });
  await httpJson(http, {
    method: 'POST',
    path: '/v3/kv/compaction',
    json: { revision, physical: true },
    timeouts: { deadlineMs: 30_000 },
  });
}

describe('watch against a real apiserver', () => {
  test('a raw watch delivers every change in order, with growing resourceVersions', async () => {
    const cms = kube.resource(ConfigMap, await namespace('order'));
    const from = (await cms.list()).metadata.resourceVersion;
    const stop = new AbortController();
    const seen: string[] = [];
    const versions: number[] = [];
    const reading = (async () => {
      try {
        for await (const e of cms.watch({ resourceVersion: from, signal: stop.signal })) {
          if (e.type === 'BOOKMARK') continue;
          seen.push(`${e.type} ${(e.object as KubeObject).metadata?.name}`);
          versions.push(Number((e.object as KubeObject).metadata?.resourceVersion));
        }
      } catch (err) {
        if (!stop.signal.aborted) throw err;
      }
    })();
    await cms.create({ metadata: { name: 'a' } });
    for (let i = 1; i <= 3; i++) await cms.patch('a', { data: { n: String(i) } });
    await cms.delete('a');
    await cms.create({ metadata: { name: 'b' } });
    await until(
      'six events',
      () => seen.length >= 6,
      () => seen,
    );
    stop.abort();
    await reading;
    assert.deepEqual(seen, ['ADDED a', 'MODIFIED a', 'MODIFIED a', 'MODIFIED a', 'DELETED a', 'ADDED b']);
    for (let i = 1; i < versions.length; i++) assert.ok(versions[i]! > versions[i - 1]!, String(versions));
  });

  test('the watcher lists in pages, then mirrors every change into the store', async () => {
    const ns = await namespace('mirror');
    const secrets = kube.resource(Secret, ns);
    for (let i = 0; i < 5; i++) await secrets.create({ metadata: { name: `s${i}` }, stringData: { v: '0' } });
    const w = watch(secrets, { pageSize: 2 });
    await w.synced();
    assert.deepEqual(w.types(), [
      'init',
      'initApply',
      'initApply',
      'initApply',
      'initApply',
      'initApply',
      'initDone',
    ]);
    assert.equal(w.store.size, 5);
    // Listed objects look like watched ones.
    assert.equal(w.store.get(`${ns}/s0`)?.kind, 'Secret');
    await secrets.patch('s1', { stringData: { v: '1' } });
    await secrets.delete('s2');
    const s5 = await secrets.create({ metadata: { name: 's5' } });
    // Read-your-own-writes: wait until the cache shows the object just created.
    await w.store.waitFor(`${ns}/s5`, (o) => o?.metadata?.uid === s5.metadata?.uid, { timeoutMs: 30_000 });
    await until(
      'store mirrors the apiserver',
      () => w.store.size === 5 && w.store.get(`${ns}/s5`) !== undefined && !w.store.get(`${ns}/s2`),
      () => w.store.keys(),
    );
    await until(
      's1 changed',
      () => Buffer.from(w.store.get(`${ns}/s1`)?.data?.v ?? '', 'base64').toString() === '1',
      () => w.store.get(`${ns}/s1`)?.data,
    );
    const truth = (await secrets.list()).items.map(
      (s) => `${s.metadata?.name}@${s.metadata?.resourceVersion}`,
    );
    const cached = w.store.list().map((s) => `${s.metadata?.name}@${s.metadata?.resourceVersion}`);
    assert.deepEqual(cached.sort(), truth.sort());
    await w.stop();
    assert.equal(w.error, undefined);
  });

  for (const [kind, type] of [
    ['ConfigMaps (watched in etcd)', ConfigMap],
    ['Secrets (watched in the watch cache)', Secret],
  ] as const) {
    test(`${kind}: cut connections resume from the last resourceVersion, no gap and no duplicate`, async () => {
      const ns = await namespace(`resume-${type.plural}`);
      const writer = kube.resource(type as ResourceType<KubeObject>, ns);
      await writer.create({ metadata: { name: 'counter' }, ...(type === Secret ? { type: 'Opaque' } : {}) });
      const w = watch(proxied.resource(type as ResourceType<KubeObject>, ns));
      await w.synced();
      const start = w.events.length;
      const accepted = proxy.accepted;
      const expected: string[] = [];
      for (let n = 1; n <= 30; n++) {
        // stringData would be base64'd into data; write data directly so the value reads back the same.
        const value = type === Secret ? Buffer.from(String(n)).toString('base64') : String(n);
        await writer.patch('counter', { data: { n: value } });
        expected.push(`counter=${value}`);
        if (n === 10 || n === 20) proxy.cut();
        if (n === 15) {
          // A cut while the next writes land: the watcher is reconnecting while they happen.
          proxy.cut();
          await sleep(100);
        }
      }
      await until(
        'all 30 changes',
        () => w.applied(start).length >= 30,
        () => w.applied(start),
      );
      await sleep(300);
      assert.deepEqual(w.applied(start), expected);
      assert.equal(w.types().filter((t) => t === 'init').length, 1, 'no relist');
      assert.ok(noticeTypes(w.notices).includes('reconnecting'), JSON.stringify(noticeTypes(w.notices)));
      assert.ok(proxy.accepted > accepted, 'it reconnected through the proxy');
      await w.stop();
      assert.equal(w.error, undefined);
    });
  }

  test('410 Gone after etcd compaction: the watcher relists and the cache drops what was deleted meanwhile', async () => {
    const ns = await namespace('gone');
    const writer = kube.resource(ConfigMap, ns);
    for (const name of ['a', 'b', 'c']) await writer.create({ metadata: { name }, data: { n: '0' } });
    const w = watch(proxied.resource(ConfigMap, ns));
    await w.synced();
    assert.deepEqual(w.store.keys().sort(), [`${ns}/a`, `${ns}/b`, `${ns}/c`]);

    // The apiserver becomes unreachable; meanwhile b goes, d comes, a changes, and etcd forgets the history.
    proxy.setDown(true);
    proxy.cut();
    await writer.delete('b');
    await writer.create({ metadata: { name: 'd' }, data: { n: '0' } });
    await writer.patch('a', { data: { n: '1' } });
    await compactEtcd(await currentRevision());
    await until(
      'a reconnect attempt failed',
      () => noticeTypes(w.notices).includes('reconnecting'),
      () => w.notices,
    );
    proxy.setDown(false);

    await until(
      'the cache shows the state after the outage',
      () =>
        w.store.keys().sort().join() === [`${ns}/a`, `${ns}/c`, `${ns}/d`].join() &&
        w.store.get(`${ns}/a`)?.data?.n === '1',
      () => ({ keys: w.store.keys(), notices: noticeTypes(w.notices) }),
    );
    const relists = w.notices.filter((n) => n.type === 'relist').map((n) => n.reason);
    assert.deepEqual(relists, ['initial', 'gone']);
    assert.equal(w.types().filter((t) => t === 'init').length, 2);
    const gone = w.notices.find(
      (n) =>
        n.type === 'reconnecting' && n.error instanceof KubeError && n.error.code === 'CAP_ERR_KUBE_GONE',
    );
    assert.equal(gone, undefined, 'a 410 is not waited out: it relists at once');
    // And it goes on watching after the relist.
    await writer.patch('c', { data: { n: '2' } });
    await until(
      'c changed after the relist',
      () => w.store.get(`${ns}/c`)?.data?.n === '2',
      () => w.store.list(),
    );
    await w.stop();
    assert.equal(w.error, undefined);
  });

  test('a continue token that expires between pages: listPages fails with GONE, the watcher lists again from the start', async () => {
    const ns = await namespace('continue-expired');
    const writer = kube.resource(ConfigMap, ns);
    for (let i = 0; i < 6; i++) await writer.create({ metadata: { name: `cm-${i}` }, data: { n: '0' } });
    const forget = async () => {
      await writer.create({ metadata: { name: `late-${Date.now()}` } });
      await compactEtcd(await currentRevision());
    };

    // The client alone: the next page after the compaction is refused, with the reason.
    const pages = writer.listPages({ limit: 2 })[Symbol.asyncIterator]();
    assert.equal((await pages.next()).value?.items.length, 2);
    await forget();
    await assert.rejects(pages.next(), (e: unknown) => {
      assert.ok(e instanceof KubeError, String(e));
      assert.equal(e.code, 'CAP_ERR_KUBE_GONE', e.message);
      return true;
    });

    // The watcher, pulled by hand so the compaction falls between its pages: it starts the list over.
    const stop = new AbortController();
    const notices: WatcherNotice[] = [];
    const events = watcher(kube.resource(ConfigMap, ns), {
      pageSize: 2,
      backoff: { initialMs: 50, maxMs: 500 },
      signal: stop.signal,
      onNotice: (n) => notices.push(n),
    })[Symbol.asyncIterator]();
    const seen: WatcherEvent<ConfigMapObject>[] = [];
    const pull = async (what: string, done: () => boolean) => {
      for (let i = 0; i < 100 && !done(); i++) {
        const next = await events.next();
        assert.ok(!next.done, `the watcher ended before ${what}`);
        seen.push(next.value);
      }
      assert.ok(done(), what);
    };
    await pull('the first page', () => seen.filter((e) => e.type === 'initApply').length >= 2);
    await forget();
    await pull('the list done', () => seen.some((e) => e.type === 'initDone'));
    stop.abort();
    await events.return?.(undefined);

    assert.deepEqual(
      notices.filter((n) => n.type === 'relist').map((n) => n.reason),
      ['initial', 'gone'],
    );
    const lastInit = seen.map((e) => e.type).lastIndexOf('init');
    assert.ok(lastInit > 0, 'a second init: the partial list is thrown away');
    const listed = seen
      .slice(lastInit)
      .filter((e) => e.type === 'initApply')
      .map((e) => (e as { object: ConfigMapObject }).object.metadata?.name ?? '');
    const expected = (await writer.list()).items.map((c) => c.metadata?.name ?? '');
    assert.deepEqual(listed.sort(), expected.sort());
    assert.equal(expected.length, 8);
  });

  test('the watchdog reconnects a stream that went silent, and nothing written meanwhile is lost', async () => {
    const ns = await namespace('stall');
    const writer = kube.resource(Secret, ns);
    const w = watch(proxied.resource(Secret, ns), { stallTimeoutMs: 1500 });
    await w.synced();
    const start = w.events.length;
    proxy.stall();
    for (const name of ['s1', 's2', 's3']) await writer.create({ metadata: { name } });
    await until(
      'stall noticed',
      () => noticeTypes(w.notices).includes('stalled'),
      () => w.notices,
    );
    await until(
      'all three arrived',
      () => w.store.size === 3,
      () => w.store.keys(),
    );
    await sleep(300);
    assert.deepEqual(
      w.events.slice(start).map((e) => `${e.type} ${(e as { object?: KubeObject }).object?.metadata?.name}`),
      ['apply s1', 'apply s2', 'apply s3'],
    );
    assert.equal(w.types().filter((t) => t === 'init').length, 1, 'resumed, not relisted');
    await w.stop();
  });

  test('initialList stream: the state comes through the watch (WatchList), then the changes', async () => {
    const ns = await namespace('streamed');
    const secrets = kube.resource(Secret, ns);
    for (let i = 0; i < 3; i++) await secrets.create({ metadata: { name: `s${i}` } });
    const w = watch(secrets, { initialList: 'stream' });
    await w.synced();
    assert.deepEqual(w.types(), ['init', 'initApply', 'initApply', 'initApply', 'initDone']);
    const done = w.events.at(-1) as { resourceVersion: string };
    assert.match(done.resourceVersion, /^\d+$/);
    await secrets.delete('s0');
    await secrets.create({ metadata: { name: 's3' } });
    await until(
      'changes after the streamed state',
      () => w.store.size === 3 && !!w.store.get(`${ns}/s3`),
      () => w.store.keys(),
    );
    // Which way it went: streamed when the apiserver serves WatchList, else listed after one refusal.
    const vias = w.notices.filter((n) => n.type === 'relist').map((n) => n.via);
    assert.ok(vias.join() === 'stream' || vias.join() === 'stream,list', vias.join());
    console.log(`initialList stream: the apiserver ${vias.length === 1 ? 'streamed' : 'refused; listed'}`);
    await w.stop();
    assert.equal(w.error, undefined);
  });

  test('a watch the apiserver ends at its timeout goes on from the last version; transform strips managedFields', async () => {
    const ns = await namespace('timeout');
    const cms = kube.resource(ConfigMap, ns);
    await cms.apply({ metadata: { name: 'a' }, data: { n: '0' } });
    const w = watch(cms, { watchTimeoutSeconds: 2, transform: stripManagedFields });
    await w.synced();
    assert.equal(w.store.get(`${ns}/a`)?.metadata?.managedFields, undefined);
    await until(
      'the apiserver ended a watch',
      () => noticeTypes(w.notices).includes('watchEnded'),
      () => w.notices,
    );
    await cms.apply({ metadata: { name: 'a' }, data: { n: '1' } });
    await until(
      'the change after the end',
      () => w.store.get(`${ns}/a`)?.data?.n === '1',
      () => w.store.list(),
    );
    assert.equal(w.store.get(`${ns}/a`)?.metadata?.managedFields, undefined);
    assert.equal(w.types().filter((t) => t === 'init').length, 1, 'resumed, not relisted');
    assert.ok(!noticeTypes(w.notices).includes('reconnecting'), 'a clean end is not a failure');
    await w.stop();
  });

  test('permanent errors end the watcher with the error: a kind not served, RBAC forbidding the list', async () => {
    const missing: ResourceType<KubeObject> = {
      group: 'nothing.capstan.dev',
      version: 'v1',
      kind: 'Nothing',
      plural: 'nothings',
      namespaced: true,
    };
    const w = watch(kube.resource(missing, 'default'));
    await w.done;
    assert.ok(w.error instanceof KubeError && w.error.code === 'CAP_ERR_KUBE_NOT_FOUND', String(w.error));
    await using nobody = new KubeClient({ ...cp.clientConfig, impersonateUser: 'nobody@capstan.dev' });
    const denied = watch(nobody.resource(ConfigMap, 'default'));
    await denied.done;
    assert.ok(
      denied.error instanceof KubeError && denied.error.code === 'CAP_ERR_KUBE_FORBIDDEN',
      String(denied.error),
    );
  });

  test('metadata-only, label-selected, across namespaces; closing the client ends the watcher cleanly', async () => {
    const [one, two] = [await namespace('meta-one'), await namespace('meta-two')];
    await using own = new KubeClient(cp.clientConfig);
    const w = watch(own.resource(ConfigMap).metadataOnly(), { labelSelector: { pick: 'yes' } });
    await w.synced();
    await kube
      .resource(ConfigMap, one)
      .create({ metadata: { name: 'x', labels: { pick: 'yes' } }, data: { big: 'y' } });
    await kube.resource(ConfigMap, two).create({ metadata: { name: 'y', labels: { pick: 'yes' } } });
    await kube.resource(ConfigMap, two).create({ metadata: { name: 'z', labels: { pick: 'no' } } });
    await until(
      'both selected objects',
      () => w.store.size === 2,
      () => w.store.keys(),
    );
    assert.deepEqual(w.store.keys().sort(), [`${one}/x`, `${two}/y`]);
    const x = w.store.get(`${one}/x`) as KubeObject;
    assert.equal(x.kind, 'PartialObjectMetadata');
    assert.equal(x.data, undefined);
    await own.close();
    await w.done;
    assert.equal(w.error, undefined);
  });
  // Last: it restarts the apiserver the other tests share.
  test('the apiserver restarts: watches resume (etcd path without a relist), caches end equal to the apiserver', async () => {
    const ns = await namespace('restart');
    const cms = kube.resource(ConfigMap, ns);
    const secrets = kube.resource(Secret, ns);
    await cms.create({ metadata: { name: 'counter' } });
    await secrets.create({ metadata: { name: 'counter' } });
    const watchCm = watch(cms);
    const watchSecret = watch(secrets);
    await watchCm.synced();
    await watchSecret.synced();
    const start = watchCm.events.length;
    const expected: string[] = [];
    const write = async (n: number) => {
      await cms.patch('counter', { data: { n: String(n) } });
      await secrets.patch('counter', { data: { n: Buffer.from(String(n)).toString('base64') } });
      expected.push(`counter=${n}`);
    };
    for (let n = 1; n <= 10; n++) await write(n);
    await cp.restartApiServer();
    for (let n = 11; n <= 20; n++) await write(n);
    await until(
      'the config map watcher saw all 20',
      () => watchCm.applied(start).length >= 20,
      () => watchCm.applied(start),
    );
    await sleep(300);
    assert.deepEqual(watchCm.applied(start), expected);
    assert.equal(watchCm.types().filter((t) => t === 'init').length, 1, 'resumed from its resourceVersion');
    assert.ok(noticeTypes(watchCm.notices).includes('reconnecting'), 'the restart was reported');
    // The watch cache starts afresh after a restart: a secret watcher may have to relist (410) instead.
    const truth = (await secrets.get('counter')).metadata?.resourceVersion;
    await until(
      'the secret cache caught up',
      () => watchSecret.store.get(`${ns}/counter`)?.metadata?.resourceVersion === truth,
      () => watchSecret.notices,
    );
    assert.ok(noticeTypes(watchSecret.notices).includes('reconnecting'));
    await watchCm.stop();
    await watchSecret.stop();
    assert.equal(watchCm.error, undefined);
    assert.equal(watchSecret.error, undefined);
    console.log(
      `after the restart the secret watcher ${watchSecret.types().filter((t) => t === 'init').length > 1 ? 'relisted' : 'resumed'}`,
    );
  });
});
