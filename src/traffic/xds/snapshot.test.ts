// Snapshots: resources encoded once and checked against their Envoy types, content-hash versions per type,
// consistency problems; the cache's default snapshot and watches.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import { meshSnapshot } from './mesh.ts';
import { apiListener, edsCluster, loadAssignment, routeConfiguration } from './resources.ts';
import { Snapshot, SnapshotCache } from './snapshot.ts';

const route = routeConfiguration('api', [{ target: { cluster: 'api/v1' } }]);

test('versions are content hashes per type: equal content, equal version; explicit versions win', () => {
  const a = Snapshot.create({ listeners: [apiListener('api', 'api')], routes: [route] });
  const b = Snapshot.create({ routes: [route], listeners: [apiListener('api', 'api')] });
  assert.deepEqual(a.versions, b.versions);
  const c = Snapshot.create({
    listeners: [apiListener('api', 'api')],
    routes: [routeConfiguration('api', [])],
  });
  assert.equal(c.version('listener'), a.version('listener'));
  assert.notEqual(c.version('route'), a.version('route'));
  const d = Snapshot.create({ routes: [route], versions: { route: 'r-7' } });
  assert.equal(d.version('route'), 'r-7');
  assert.equal(
    d.resources('route').get('api')?.any.type_url,
    'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  );
});

test('a resource that does not fit its type, without a name, or twice, is refused naming it', () => {
  const refused = (input: Parameters<typeof Snapshot.create>[0], pattern: RegExp) =>
    assert.throws(
      () => Snapshot.create(input),
      (err: unknown) =>
        err instanceof TrafficError && err.code === TrafficErrorCode.invalid && pattern.test(err.message),
    );
  refused(
    { clusters: [{ name: 'c', eds_cluster_config: 'eds please' }] },
    /cluster "c" is not a valid envoy\.config\.cluster\.v3\.Cluster: .*eds_cluster_config: object expected/,
  );
  refused({ endpoints: [{ endpoints: [] }] }, /needs a cluster_name/);
  refused({ routes: [route, route] }, /route "api" is listed twice/);
});

test('problems: what a client would miss', () => {
  const s = Snapshot.create({
    listeners: [apiListener('api', 'api'), apiListener('web', 'web-routes')],
    routes: [
      routeConfiguration('api', [
        {
          target: {
            weights: [
              { cluster: 'api/v1', weight: 1 },
              { cluster: 'api/v2', weight: 1 },
            ],
          },
        },
      ]),
    ],
    clusters: [edsCluster('api/v1'), edsCluster('api/v2')],
    endpoints: [loadAssignment('api/v1', [{ address: '10.0.0.1', port: 80 }])],
  });
  assert.deepEqual(s.problems(), [
    'listener web: route configuration web-routes is missing',
    'cluster api/v2: load assignment api/v2 is missing',
  ]);
  const mesh = meshSnapshot({ services: { api: { versions: { v1: { endpoints: [] } } } } });
  assert.deepEqual(mesh.problems(), []);
});

/** A few turns of the event loop: the cache wakes watchers over turns, about 1 ms of them per turn. */
async function woken(turns = 10): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

test('the cache: own snapshots win over the default; watches fire for the keys concerned', async () => {
  const cache = new SnapshotCache();
  const seen: string[] = [];
  const offA = cache.watch('a', () => seen.push('a'));
  cache.watch('b', () => seen.push('b'));
  const one = Snapshot.create({ routes: [route] });
  const two = Snapshot.create({});
  cache.setDefaultSnapshot(one);
  assert.deepEqual(seen, ['a'], 'the first watcher is woken at once');
  await woken();
  assert.deepEqual(seen.splice(0), ['a', 'b']);
  cache.setSnapshot('a', two);
  await woken();
  assert.deepEqual(seen.splice(0), ['a']);
  assert.equal(cache.get('a'), two);
  assert.equal(cache.get('b'), one);
  cache.setDefaultSnapshot(two);
  await woken();
  assert.deepEqual(seen.splice(0), ['b'], 'a has its own snapshot: the default does not concern it');
  cache.clearSnapshot('a');
  await woken();
  assert.deepEqual(seen.splice(0), ['a']);
  offA();
  assert.equal(cache.watchCount, 1);
});

test('the cache wakes watchers over turns, each once, not after unsubscribe, past one that throws', async () => {
  const cache = new SnapshotCache();
  const calls = new Map<string, number>();
  const offs: Array<() => void> = [];
  for (let i = 0; i < 200; i++) {
    const key = `node-${i}`;
    offs.push(
      cache.watch(key, () => {
        calls.set(key, (calls.get(key) ?? 0) + 1);
        if (i === 1) throw new Error('watcher 1 fails');
        // Slow watchers: more than one turn's worth.
        const end = performance.now() + 0.05;
        while (performance.now() < end);
      }),
    );
  }
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  try {
    cache.setDefaultSnapshot(Snapshot.create({ routes: [route] }));
    assert.equal(calls.size, 1, 'one watcher in the turn that set the snapshot');
    cache.setDefaultSnapshot(Snapshot.create({}));
    offs[199]!();
    // 200 × 0.05 ms of watchers: about ten turns; wait for them, bounded.
    const until = performance.now() + 10_000;
    while (calls.size < 199 && performance.now() < until) await woken(1);
    await woken();
    assert.equal(calls.size, 199, 'every watcher but the unsubscribed one');
    assert.deepEqual(
      [...calls.entries()].filter(([, n]) => n !== 1).map(([k]) => k),
      ['node-0'],
      'node-0 was woken for each change (the first at once), the others once for both',
    );
    assert.equal(calls.get('node-0'), 2);
    assert.match(warnings.map((w) => w.message).join(), /watcher 1 fails/);
  } finally {
    process.off('warning', onWarning);
  }
});
