// The ADS protocol with a raw client of ours: incremental (delta) xDS, which @grpc/grpc-js-xds does not
// speak, and the details of the state-of-the-world variant a real client does not show on demand.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';
import { createLogger } from '../../runtime/index.ts';
import { TrafficErrorCode } from '../errors.ts';
import type { XdsEvent } from './ads.ts';
import { type ControlPlane, createControlPlane } from './control-plane.ts';
import type { Mesh } from './mesh.ts';
import { TYPE_URLS } from './resources.ts';
import { waitForEvent } from './testdata/harness.ts';
import { deltaNames, RawAdsStream, sotwNames } from './testdata/raw-ads.ts';

const logger = createLogger({ name: 'ads-test', level: 'silent' });
const mesh: Mesh = {
  services: {
    api: {
      versions: {
        v1: { endpoints: [{ address: '10.0.0.1', port: 8080 }] },
        v2: { endpoints: [{ address: '10.0.0.2', port: 8080 }] },
      },
      routes: [{ weights: { v1: 90, v2: 10 } }],
    },
    web: { versions: { main: { endpoints: [{ address: '10.0.1.1', port: 80 }] } } },
  },
};
const node = { id: 'raw-1', locality: {} };

let cp: ControlPlane;
let events: XdsEvent[];
const streams: RawAdsStream[] = [];

function open(mode: 'sotw' | 'delta'): RawAdsStream {
  const s = new RawAdsStream(cp.address, mode);
  streams.push(s);
  return s;
}

beforeEach(async () => {
  events = [];
  cp = createControlPlane({ port: 0, mesh, logger, lifecycle: { drainDelayMs: 0, idleGraceMs: 0 } });
  cp.onEvent((e) => events.push(e));
  await cp.start();
});

afterEach(async () => {
  for (const s of streams.splice(0)) s.close();
  await cp.stop();
});

test('delta: wildcard clusters, named load assignments, ACK, a change pushes only what changed', async () => {
  const s = open('delta');
  s.send({ node, type_url: TYPE_URLS.cluster, resource_names_subscribe: [] });
  const clusters = await s.next();
  assert.equal(clusters['type_url'], TYPE_URLS.cluster);
  assert.deepEqual(deltaNames(clusters), ['api/v1', 'api/v2', 'web/main']);
  assert.deepEqual(clusters['removed_resources'] ?? [], []);
  const acked = waitForEvent(cp, (e) => e.type === 'ack' && e.kind === 'cluster');
  s.send({ type_url: TYPE_URLS.cluster, response_nonce: clusters['nonce'] });
  const ack = await acked;
  assert.equal(ack.type === 'ack' && ack.mode, 'delta');

  s.send({ type_url: TYPE_URLS.endpoint, resource_names_subscribe: ['api/v1'] });
  const eds = await s.next();
  assert.deepEqual(deltaNames(eds), ['api/v1']);
  const assignment = (eds['resources'] as Array<{ resource: Record<string, unknown>; version: string }>)[0]!;
  assert.equal(assignment.resource['cluster_name'], 'api/v1');
  s.send({ type_url: TYPE_URLS.endpoint, response_nonce: eds['nonce'] });

  // v2's endpoints change: not subscribed here, nothing comes; then v1's: only api/v1 comes, clusters stay.
  cp.setEndpoints('api', 'v2', [{ address: '10.0.0.3', port: 8080 }]);
  cp.setEndpoints('api', 'v1', [{ address: '10.0.0.4', port: 8080 }]);
  const update = await s.next();
  assert.equal(update['type_url'], TYPE_URLS.endpoint);
  assert.deepEqual(deltaNames(update), ['api/v1']);
  const resource = (update['resources'] as Array<{ resource: Record<string, unknown>; version: string }>)[0]!;
  assert.notEqual(resource.version, assignment.version);
  assert.match(JSON.stringify(resource.resource), /10\.0\.0\.4/);
  assert.equal(s.queued, 0);
});

test('delta: a NACK is reported with the client error detail; unsubscribe; an unknown name is reported removed', async () => {
  const s = open('delta');
  s.send({ node, type_url: TYPE_URLS.endpoint, resource_names_subscribe: ['api/v1', 'nope'] });
  const first = await s.next();
  assert.deepEqual(deltaNames(first), ['api/v1']);
  assert.deepEqual(first['removed_resources'], ['nope']);
  const nacked = waitForEvent(cp, (e): e is Extract<XdsEvent, { type: 'nack' }> => e.type === 'nack');
  s.send({
    type_url: TYPE_URLS.endpoint,
    response_nonce: first['nonce'],
    error_detail: { code: 3, message: 'endpoint 10.0.0.1 is not allowed here' },
  });
  const nack = await nacked;
  assert.equal(nack.mode, 'delta');
  assert.equal(nack.kind, 'endpoint');
  assert.deepEqual(nack.resources, ['api/v1']);
  assert.deepEqual(nack.detail, { code: 3, message: 'endpoint 10.0.0.1 is not allowed here' });
  assert.equal(nack.error.code, TrafficErrorCode.xdsNack);
  assert.match(nack.error.message, /not allowed here/);
  assert.equal(cp.streams()[0]!.kinds.endpoint!.nacked, nack.version);

  // Unsubscribe from api/v1 and subscribe to api/v2: only api/v2 comes. Then v1 changes (not sent) and a
  // subscription to web/main brings web/main alone.
  s.send({
    type_url: TYPE_URLS.endpoint,
    resource_names_unsubscribe: ['api/v1'],
    resource_names_subscribe: ['api/v2'],
  });
  const next = await s.next();
  assert.deepEqual(deltaNames(next), ['api/v2']);
  assert.deepEqual(next['removed_resources'] ?? [], []);
  assert.deepEqual([...cp.streams()[0]!.kinds.endpoint!.subscribed].sort(), ['api/v2', 'nope']);
  cp.setEndpoints('api', 'v1', [{ address: '10.0.0.9', port: 8080 }]);
  s.send({ type_url: TYPE_URLS.endpoint, resource_names_subscribe: ['web/main'] });
  const web = await s.next();
  assert.deepEqual(deltaNames(web), ['web/main']);
  assert.deepEqual(web['removed_resources'] ?? [], []);
});

test('delta: a reconnect with initial_resource_versions gets only what differs, and removals', async () => {
  const s = open('delta');
  s.send({ node, type_url: TYPE_URLS.cluster });
  const all = await s.next();
  const versions = Object.fromEntries(
    (all['resources'] as Array<{ name: string; version: string }>).map((r) => [r.name, r.version]),
  );
  s.close();

  const again = open('delta');
  again.send({
    node,
    type_url: TYPE_URLS.cluster,
    initial_resource_versions: { 'api/v1': versions['api/v1'], 'api/v2': 'stale', 'gone/x': 'v0' },
  });
  const diff = await again.next();
  assert.deepEqual(deltaNames(diff), ['api/v2', 'web/main']);
  assert.deepEqual(diff['removed_resources'], ['gone/x']);

  // A version leaves the mesh: the wildcard subscriber is told it is gone.
  again.send({ type_url: TYPE_URLS.cluster, response_nonce: diff['nonce'] });
  cp.setMesh({
    services: { ...mesh.services, api: { versions: { v1: mesh.services['api']!.versions['v1']! } } },
  });
  const removal = await again.next();
  assert.equal(removal['type_url'], TYPE_URLS.cluster);
  assert.deepEqual(deltaNames(removal), []);
  assert.deepEqual(removal['removed_resources'], ['api/v2']);
});

test('sotw: stale nonces are ignored, a change of resource names is answered, a NACK is not answered again', async () => {
  const s = open('sotw');
  s.send({ node, type_url: TYPE_URLS.route, resource_names: ['api'] });
  const first = await s.next();
  assert.deepEqual(sotwNames(first), ['api']);
  // An answer to a nonce that is not the last one is stale: no ACK recorded, no response.
  s.send({ type_url: TYPE_URLS.route, resource_names: ['api'], response_nonce: 'old', version_info: 'x' });
  const acked = waitForEvent(cp, (e) => e.type === 'ack' && e.kind === 'route');
  // The ACK also asks for a second route configuration (go-control-plane#399: must not be missed).
  s.send({
    type_url: TYPE_URLS.route,
    resource_names: ['api', 'web'],
    response_nonce: first['nonce'],
    version_info: first['version_info'],
  });
  const ack = await acked;
  assert.equal(ack.type === 'ack' && ack.nonce, first['nonce']);
  assert.equal(events.filter((e) => e.type === 'ack').length, 1);
  const both = await s.next();
  assert.deepEqual(sotwNames(both), ['api', 'web']);
  assert.equal(both['version_info'], first['version_info']);

  // New weights: a new route version; the client rejects it; nothing is re-sent until something changes.
  const version = cp.setWeights('api', { v1: 50, v2: 50 }).version('route');
  const pushed = await s.next();
  assert.equal(pushed['version_info'], version);
  const nacked = waitForEvent(cp, (e) => e.type === 'nack');
  s.send({
    type_url: TYPE_URLS.route,
    resource_names: ['api', 'web'],
    response_nonce: pushed['nonce'],
    version_info: first['version_info'],
    error_detail: { code: 14, message: 'no thanks' },
  });
  const nack = await nacked;
  assert.equal(nack.type === 'nack' && nack.version, version);
  assert.equal(nack.type === 'nack' && nack.detail.message, 'no thanks');
  const after = cp.setWeights('api', { v1: 40, v2: 60 }).version('route');
  const fixed = await s.next();
  assert.equal(fixed['version_info'], after);
  assert.equal(events.filter((e) => e.type === 'sent' && e.version === version).length, 1);
});

test('sotw: listeners by wildcard, a whole response per change; per-node snapshots by node hash', async () => {
  const s = open('sotw');
  s.send({ node, type_url: TYPE_URLS.listener });
  assert.deepEqual(sotwNames(await s.next()), ['api', 'web']);
  // A snapshot of this node's own: only it changes for this node.
  const { meshSnapshot } = await import('./mesh.ts');
  cp.cache.setSnapshot('raw-1', meshSnapshot({ services: { web: mesh.services['web']! } }));
  assert.deepEqual(sotwNames(await s.next()), ['web']);
  const other = open('sotw');
  other.send({ node: { id: 'raw-2' }, type_url: TYPE_URLS.listener });
  assert.deepEqual(sotwNames(await other.next()), ['api', 'web']);
});

test('malformed requests end the stream with INVALID_ARGUMENT and a clear message', async () => {
  for (const mode of ['sotw', 'delta'] as const) {
    const s = open(mode);
    s.send({ node, type_url: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret' });
    const status = await s.status;
    assert.equal(status.code, 3);
    assert.match(status.details, /unknown resource type URL "type\.googleapis\.com\/envoy\..*Secret"/);
    assert.match(status.details, /serves .*Listener/);

    const noNode = open(mode);
    noNode.send({ type_url: TYPE_URLS.listener });
    const s2 = await noNode.status;
    assert.equal(s2.code, 3);
    assert.match(s2.details, /must carry a node with an id/);
  }
  const bad = events.filter((e) => e.type === 'bad-request');
  assert.equal(bad.length, 4);
  assert.ok(bad.every((e) => e.type === 'bad-request' && e.error.code === TrafficErrorCode.xdsRequest));
  const metrics = await (await fetch(`${cp.adminUrl}/metrics`)).text();
  assert.match(metrics, /capstan_xds_bad_requests_total\{mode="delta"\} 2/);
});

test('a stream that goes away is cleaned up; shutdown ends the others cleanly', async () => {
  const gone = open('sotw');
  gone.send({ node, type_url: TYPE_URLS.listener });
  await gone.next();
  const stays = open('delta');
  stays.send({ node, type_url: TYPE_URLS.listener });
  await stays.next();
  assert.equal(cp.cache.watchCount, 2);
  const closed = waitForEvent(cp, (e) => e.type === 'stream-closed');
  gone.cancel();
  const event = await closed;
  assert.equal(event.type === 'stream-closed' && event.node, 'raw-1');
  assert.equal(cp.cache.watchCount, 1);
  assert.equal(cp.streams().length, 1);
  const metrics = await (await fetch(`${cp.adminUrl}/metrics`)).text();
  assert.match(metrics, /capstan_xds_streams\{mode="sotw"\} 0/);
  assert.match(metrics, /capstan_xds_streams\{mode="delta"\} 1/);

  const report = await cp.service.stop('test');
  const status = await stays.status;
  assert.equal(status.code, 0, 'ended with OK: the client reconnects elsewhere');
  assert.equal(report.exitCode, 0);
  assert.equal(report.servers.find((s) => s.kind === 'grpc')?.forced, false);
  assert.equal(cp.cache.watchCount, 0);
});

test('a stream waits for a snapshot; nodes share a snapshot through the node hash', async () => {
  const bare = createControlPlane({
    port: 0,
    logger,
    lifecycle: { drainDelayMs: 0, idleGraceMs: 0 },
    nodeHash: (n) => String(n.cluster ?? 'none'),
  });
  await bare.start();
  try {
    const a = new RawAdsStream(bare.address, 'sotw');
    const b = new RawAdsStream(bare.address, 'delta');
    streams.push(a, b);
    a.send({ node: { id: 'a-1', cluster: 'blue' }, type_url: TYPE_URLS.listener });
    b.send({ node: { id: 'b-1', cluster: 'blue' }, type_url: TYPE_URLS.listener });
    const { meshSnapshot } = await import('./mesh.ts');
    // Both requests arrived (each stream watches its key once it has read its node).
    for (let i = 0; bare.cache.watchCount < 2; i++) {
      assert.ok(i < 500, 'both streams watching');
      await new Promise((r) => setTimeout(r, 20));
    }
    // Nothing to serve yet: the streams wait; a snapshot for key "blue" answers both.
    bare.cache.setSnapshot('blue', meshSnapshot({ services: { web: mesh.services['web']! } }));
    assert.deepEqual(sotwNames(await a.next()), ['web']);
    assert.deepEqual(deltaNames(await b.next()), ['web']);
    assert.equal(a.queued + b.queued, 0);
  } finally {
    await bare.stop();
  }
});
