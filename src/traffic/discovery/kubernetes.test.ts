import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EndpointSlice, KubeClient, loadKubeconfig } from 'capstan/kube';
import { useSharedCluster } from 'capstan/testing';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import { createDiscoveryDispatcher } from './client-balancer.ts';
import { endpointSliceSource, endpointsOfSlice } from './kubernetes.ts';
import type { DiscoveryEvent } from './source.ts';
import { readEvents, summary } from './testdata/events.ts';

type SliceEndpoint = NonNullable<EndpointSlice['endpoints']>[number];

function slice(name: string, service: string, endpoints: SliceEndpoint[]): EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name,
      labels: {
        'kubernetes.io/service-name': service,
        // Not the EndpointSlice controller's: it leaves slices managed by others alone.
        'endpointslice.kubernetes.io/managed-by': 'capstan-test',
      },
    },
    addressType: 'IPv4',
    ports: [
      { name: 'http', port: 8080, protocol: 'TCP' },
      { name: 'metrics', port: 9090, protocol: 'TCP' },
    ],
    endpoints,
  };
}

const ep = (address: string, conditions: SliceEndpoint['conditions'], pod = address): SliceEndpoint => ({
  addresses: [address],
  conditions,
  zone: 'zone-a',
  nodeName: 'node-1',
  targetRef: { kind: 'Pod', name: `pod-${pod}` },
});

test('EndpointSlices of a Service against the real apiserver: ready, terminating, added and deleted slices', async (t) => {
  const cluster = await useSharedCluster(t);
  await using kube = await KubeClient.fromKubeconfig({ path: cluster.kubeconfigPath });
  const slices = kube.resource(EndpointSlice, cluster.namespace);
  await slices.create(
    slice('web-a', 'web', [
      ep('10.1.0.1', { ready: true, serving: true, terminating: false }),
      ep('10.1.0.2', { ready: true }),
      ep('10.1.0.3', { ready: false, serving: false, terminating: false }),
    ]),
  );
  // Another Service's slice in the same namespace: never seen.
  await slices.create(slice('other-a', 'other', [ep('10.9.0.1', { ready: true })]));

  const events = readEvents(
    endpointSliceSource({ client: kube, namespace: cluster.namespace, service: 'web', port: 'http' }),
  );
  const metrics = readEvents(
    endpointSliceSource({ client: kube, namespace: cluster.namespace, service: 'web', port: 9090 }),
  );
  try {
    const first = await events.next();
    assert.deepEqual(summary(first), [
      '10.1.0.1:8080/1/healthy',
      '10.1.0.2:8080/1/healthy',
      '10.1.0.3:8080/1/unhealthy',
    ]);
    assert.ok(first.type === 'snapshot');
    assert.deepEqual(first.endpoints[0]!.metadata, {
      'k8s.node': 'node-1',
      'k8s.pod': 'pod-10.1.0.1',
      'k8s.slice': 'web-a',
      'k8s.zone': 'zone-a',
    });
    assert.deepEqual(first.endpoints[0]!.tags, ['zone=zone-a']);
    assert.deepEqual(summary(await metrics.next()), [
      '10.1.0.1:9090/1/healthy',
      '10.1.0.2:9090/1/healthy',
      '10.1.0.3:9090/1/unhealthy',
    ]);

    // A pod shutting down: not ready, still serving, terminating.
    const current = await slices.get('web-a');
    current.endpoints![1]!.conditions = { ready: false, serving: true, terminating: true };
    await slices.replace(current);
    assert.deepEqual(summary(await events.next()), [
      '10.1.0.1:8080/1/healthy',
      '10.1.0.2:8080/1/draining',
      '10.1.0.3:8080/1/unhealthy',
    ]);

    await slices.create(slice('web-b', 'web', [ep('10.1.1.1', { ready: true })]));
    assert.deepEqual(summary(await events.next()), [
      '10.1.0.1:8080/1/healthy',
      '10.1.0.2:8080/1/draining',
      '10.1.0.3:8080/1/unhealthy',
      '10.1.1.1:8080/1/healthy',
    ]);

    await slices.delete('web-a');
    assert.deepEqual(summary(await events.next()), ['10.1.1.1:8080/1/healthy']);
  } finally {
    await events.stop();
    await metrics.stop();
  }
});

test('a Service without slices is an empty set; a forbidden watch is reported, not thrown', async (t) => {
  const cluster = await useSharedCluster(t);
  await using kube = await KubeClient.fromKubeconfig({ path: cluster.kubeconfigPath });
  const events = readEvents(
    endpointSliceSource({ client: kube, namespace: cluster.namespace, service: 'none' }),
  );
  try {
    assert.deepEqual(summary(await events.next()), []);
  } finally {
    await events.stop();
  }
  // The namespace's default ServiceAccount may not list EndpointSlices: an error event, and the source goes on.
  const token = JSON.parse(
    (
      await cluster.request(`/api/v1/namespaces/${cluster.namespace}/serviceaccounts/default/token`, {
        method: 'POST',
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: {} },
      })
    ).body,
  ) as { status: { token: string } };
  const admin = await loadKubeconfig({ path: cluster.kubeconfigPath });
  await using weak = new KubeClient({
    server: admin.server,
    caPem: admin.caPem,
    token: token.status.token,
    namespace: cluster.namespace,
  });
  const denied = readEvents(
    endpointSliceSource({
      client: weak,
      namespace: cluster.namespace,
      service: 'web',
      backoff: { initialMs: 20, maxMs: 50 },
    }),
  );
  try {
    const e = await denied.next();
    assert.equal(e.type, 'error');
    assert.ok(e.type === 'error');
    assert.equal(e.error.code, TrafficErrorCode.discovery);
    assert.match(e.error.message, /forbidden/i);
    assert.equal((await denied.next()).type, 'error');
  } finally {
    await denied.stop();
  }
});

test('conditions map to health the way the API defines them; ports by name or number', () => {
  const s = slice('s', 'svc', [
    { addresses: ['10.0.0.1'] },
    { addresses: ['10.0.0.2'], conditions: { ready: false } },
    { addresses: ['10.0.0.3'], conditions: { ready: false, serving: true, terminating: true } },
    { addresses: ['10.0.0.4'], conditions: { ready: false, serving: false, terminating: true } },
    { addresses: ['10.0.0.5'], conditions: { serving: true } },
  ]);
  assert.deepEqual(
    endpointsOfSlice(s, undefined).map((e) => `${e.address}:${e.port}/${e.health}`),
    [
      '10.0.0.1:8080/healthy',
      '10.0.0.2:8080/unhealthy',
      '10.0.0.3:8080/draining',
      '10.0.0.4:8080/unhealthy',
      '10.0.0.5:8080/healthy',
    ],
  );
  assert.equal(endpointsOfSlice(s, 'metrics')[0]!.port, 9090);
  assert.deepEqual(endpointsOfSlice(s, 'nope'), []);
  assert.deepEqual(endpointsOfSlice({ ...s, ports: null as unknown as undefined }, undefined), []);
  assert.throws(
    () => endpointSliceSource({ client: {} as KubeClient, namespace: 'Bad_NS', service: 'web' }),
    (e: unknown) => e instanceof TrafficError && e.code === TrafficErrorCode.invalid,
  );
});

test('the client balancer on EndpointSlices: a terminating pod leaves the rotation, a draining one is used only when nothing is ready', async (t) => {
  // The apiserver refuses loopback addresses in slices and we send no traffic off this machine: the
  // addresses are TEST-NET-1 and the assertions read which endpoints the balancer would pick from.
  const cluster = await useSharedCluster(t);
  await using kube = await KubeClient.fromKubeconfig({ path: cluster.kubeconfigPath });
  const slices = kube.resource(EndpointSlice, cluster.namespace);
  await slices.create(
    slice('api-a', 'api', [
      ep('192.0.2.1', { ready: true }),
      ep('192.0.2.2', { ready: true }),
      ep('192.0.2.3', { ready: true }),
    ]),
  );
  const events: DiscoveryEvent[] = [];
  let wake: (() => void) | undefined;
  await using d = createDiscoveryDispatcher({
    source: endpointSliceSource({ client: kube, namespace: cluster.namespace, service: 'api', port: 'http' }),
    onDiscoveryEvent: (e) => {
      events.push(e);
      wake?.();
    },
  });
  const snapshots = () => events.filter((e) => e.type === 'snapshot').length;
  const change = async (endpoints: SliceEndpoint[]) => {
    const n = snapshots();
    await slices.replace({ ...(await slices.get('api-a')), endpoints });
    while (snapshots() === n) await new Promise<void>((r) => (wake = r));
  };
  await d.ready();
  assert.deepEqual(d.available, ['http://192.0.2.1:8080', 'http://192.0.2.2:8080', 'http://192.0.2.3:8080']);

  await change([
    ep('192.0.2.1', { ready: true }),
    ep('192.0.2.2', { ready: false, serving: true, terminating: true }),
    ep('192.0.2.3', { ready: true }),
  ]);
  assert.deepEqual(d.available, ['http://192.0.2.1:8080', 'http://192.0.2.3:8080']);

  await change([
    ep('192.0.2.1', { ready: false, serving: false, terminating: false }),
    ep('192.0.2.2', { ready: false, serving: true, terminating: true }),
    ep('192.0.2.3', { ready: false, serving: false, terminating: true }),
  ]);
  assert.deepEqual(d.available, ['http://192.0.2.2:8080']);

  await change([ep('192.0.2.3', { ready: false })]);
  assert.deepEqual(d.available, []);
});
