// The control plane against the real proxyless client, @grpc/grpc-js-xds, in a child process: weighted
// routing between two versions of a real gRPC service, a rejected (NACKed) configuration, recovery.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import { createLogger } from '../../runtime/index.ts';
import { TrafficErrorCode } from '../errors.ts';
import type { XdsEvent } from './ads.ts';
import { type ControlPlane, createControlPlane } from './control-plane.ts';
import type { Mesh } from './mesh.ts';
import { clusterName, meshSnapshot } from './mesh.ts';
import { routeConfiguration } from './resources.ts';
import { Snapshot } from './snapshot.ts';
import { waitForEvent, withinBinomial, XdsClientProcess } from './testdata/harness.ts';
import { startWho } from './testdata/who.ts';

const servers: grpc.Server[] = [];
let cp: ControlPlane;
let client: XdsClientProcess;
let mesh: Mesh;
const events: XdsEvent[] = [];

before(async () => {
  const v1 = await startWho('v1');
  const v2 = await startWho('v2');
  servers.push(v1.server, v2.server);
  mesh = {
    services: {
      api: {
        versions: {
          v1: { endpoints: [{ address: '127.0.0.1', port: v1.port }] },
          v2: { endpoints: [{ address: '127.0.0.1', port: v2.port }] },
        },
      },
    },
  };
  cp = createControlPlane({
    port: 0,
    mesh,
    lifecycle: { drainDelayMs: 0 },
    logger: createLogger({ name: 'xds-test', level: 'silent' }),
  });
  cp.onEvent((e) => events.push(e));
  await cp.start();
  client = new XdsClientProcess(cp.bootstrap('client-1'), 'xds:///api');
});

after(async () => {
  await client?.close();
  await cp?.stop();
  for (const s of servers) s.forceShutdown();
});

/** Set the weights and wait until the client ACKs the route version that carries them. */
async function applyWeights(weights: Record<string, number>): Promise<void> {
  const version = cp.setWeights('api', weights).version('route');
  await waitForEvent(cp, (e) => e.type === 'ack' && e.kind === 'route' && e.version === version);
}

test('with no route given, every call goes to the first version', async () => {
  const result = await client.call(200);
  assert.deepEqual(result.errors, {});
  assert.deepEqual(result.counts, { v1: 200 });
  // The client is the state-of-the-world variant: grpc-js-xds 1.14 speaks only StreamAggregatedResources.
  const streams = cp.streams();
  assert.equal(streams.length, 1);
  assert.equal(streams[0]!.mode, 'sotw');
  assert.equal(streams[0]!.node, 'client-1');
  for (const kind of ['listener', 'route', 'cluster', 'endpoint'] as const) {
    assert.ok(streams[0]!.kinds[kind]?.acked, `${kind} acked`);
  }
  // Both clusters are subscribed by name (grpc clients do not use the CDS wildcard), weight 0 or not.
  assert.deepEqual([...(streams[0]!.kinds.cluster?.subscribed ?? [])].sort(), [
    clusterName('api', 'v1'),
    clusterName('api', 'v2'),
  ]);
});

test('50/50 and 90/10 over 2,000 calls each, within 5 sigma of the binomial', async (t) => {
  const n = 2_000;
  await applyWeights({ v1: 50, v2: 50 });
  const half = await client.call(n);
  assert.deepEqual(half.errors, {});
  assert.equal((half.counts['v1'] ?? 0) + (half.counts['v2'] ?? 0), n);
  assert.ok(withinBinomial(half.counts['v1'] ?? 0, n, 0.5), `50/50 split: ${JSON.stringify(half.counts)}`);
  t.diagnostic(`50/50: ${JSON.stringify(half.counts)}`);

  await applyWeights({ v1: 90, v2: 10 });
  const ninety = await client.call(n);
  assert.deepEqual(ninety.errors, {});
  assert.ok(
    withinBinomial(ninety.counts['v1'] ?? 0, n, 0.9),
    `90/10 split: ${JSON.stringify(ninety.counts)}`,
  );
  t.diagnostic(`90/10: ${JSON.stringify(ninety.counts)}`);
});

test('a configuration the client rejects is reported, and traffic keeps flowing on the previous one', async () => {
  // A route whose weights add up to 0: grpc-js-xds refuses it. Built by hand (the mesh API refuses it too).
  const good = meshSnapshot(cp.mesh!);
  const bad = routeConfiguration('api', [
    {
      target: {
        weights: [
          { cluster: clusterName('api', 'v1'), weight: 0 },
          { cluster: clusterName('api', 'v2'), weight: 0 },
        ],
      },
    },
  ]);
  const snapshot = Snapshot.create({
    listeners: [...good.resources('listener').values()].map((r) => r.resource),
    routes: [bad],
    clusters: [...good.resources('cluster').values()].map((r) => r.resource),
    endpoints: [...good.resources('endpoint').values()].map((r) => r.resource),
  });
  const nacked = waitForEvent(cp, (e): e is Extract<XdsEvent, { type: 'nack' }> => e.type === 'nack');
  cp.cache.setDefaultSnapshot(snapshot);
  const nack = await nacked;
  assert.equal(nack.kind, 'route');
  assert.equal(nack.version, snapshot.version('route'));
  assert.deepEqual(nack.resources, ['api']);
  assert.match(nack.detail.message, /sum of weights is 0/);
  assert.equal(nack.error.code, TrafficErrorCode.xdsNack);
  const status = cp.streams()[0]!.kinds.route!;
  assert.equal(status.nacked, snapshot.version('route'));
  assert.notEqual(status.acked, snapshot.version('route'));

  // Still 90/10: the client kept the configuration it had.
  const n = 1_000;
  const during = await client.call(n);
  assert.deepEqual(during.errors, {});
  assert.ok(
    withinBinomial(during.counts['v1'] ?? 0, n, 0.9),
    `after the NACK: ${JSON.stringify(during.counts)}`,
  );
  // The rejected version is not pushed again while nothing changes.
  const pushes = events.filter((e) => e.type === 'sent' && e.kind === 'route' && e.version === nack.version);
  assert.equal(pushes.length, 1);

  const metrics = await (await fetch(`${cp.adminUrl}/metrics`)).text();
  assert.match(metrics, /capstan_xds_nacks_total\{kind="route",mode="sotw"\} 1/);
  assert.match(metrics, /capstan_xds_streams\{mode="sotw"\} 1/);

  // A good configuration again: accepted, and routing follows it.
  await applyWeights({ v2: 100 });
  const after = await client.call(200);
  assert.deepEqual(after.counts, { v2: 200 });
});

test('health endpoints of the admin service', async () => {
  const ready = await fetch(`${cp.adminUrl}/readyz?verbose`);
  assert.equal(ready.status, 200);
  assert.equal((await fetch(`${cp.adminUrl}/livez`)).status, 200);
});
