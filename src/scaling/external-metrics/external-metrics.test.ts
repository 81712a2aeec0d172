// The adapter behind the real kube-apiserver's aggregation layer: registered by its own manifests (the
// APIService, a Service with an EndpointSlice to this process, delegated-auth RBAC), running as its own
// ServiceAccount, and read the way an HPA controller and a person read it (kubectl get --raw), including
// refusals: an unknown metric, a bad selector, a user without RBAC.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KubeClient, loadKubeconfig } from 'capstan/kube';
import { createCertAuthority, createLogger } from 'capstan/runtime';
import { useSharedCluster } from 'capstan/testing';
import {
  applyExternalMetricsApi,
  createExternalMetricsAdapter,
  defineExternalMetric,
  EXTERNAL_METRICS_API_SERVICE,
  externalMetricsApiManifests,
  issueExternalMetricsServingCertificate,
  ScalingErrorCode,
  waitForExternalMetricsApi,
} from '../index.ts';

test('External Metrics API through the aggregation layer: discovery, values, refusals', async (t) => {
  const cluster = await useSharedCluster(t);
  const ns = cluster.namespace;
  const admin = new KubeClient(await loadKubeconfig({ path: cluster.kubeconfigPath }));
  t.after(() => admin.destroy());

  // Registered first, so that the adapter can run as its ServiceAccount with only what the manifests grant.
  const ca = await createCertAuthority('external-metrics-test-ca');
  const serving = await issueExternalMetricsServingCertificate(ca, { namespace: ns });
  const { freePort } = await import('capstan/runtime');
  const port = await freePort();
  // No node here: the apiserver (on loopback) reaches this process on loopback.
  const objects = externalMetricsApiManifests({
    namespace: ns,
    caPem: ca.certPem,
    port,
    endpoint: '127.0.0.1',
  });
  assert.deepEqual(
    objects.map((o) => o.kind),
    ['ServiceAccount', 'Service', 'EndpointSlice', 'APIService', 'ClusterRoleBinding', 'RoleBinding'],
  );
  // Deleted before the adapter stops: an APIService that stays unavailable breaks discovery cluster-wide
  // (the namespace and garbage collectors need it).
  t.after(async () => {
    await cluster.request(`/apis/apiregistration.k8s.io/v1/apiservices/${EXTERNAL_METRICS_API_SERVICE}`, {
      method: 'DELETE',
    });
    for (const o of objects.filter((x) => x.kind.endsWith('Binding'))) {
      const base =
        o.kind === 'RoleBinding'
          ? `/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/rolebindings`
          : '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings';
      await cluster.request(`${base}/${encodeURIComponent(o.metadata.name)}`, { method: 'DELETE' });
    }
  });
  await applyExternalMetricsApi(admin, objects);

  // The adapter's identity: a token of its ServiceAccount, as the kubelet would mount it.
  const tokenAnswer = await cluster.request(
    `/api/v1/namespaces/${ns}/serviceaccounts/capstan-external-metrics/token`,
    {
      method: 'POST',
      body: {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { expirationSeconds: 3600 },
      },
    },
  );
  assert.equal(tokenAnswer.status, 201, tokenAnswer.body);
  const token = (JSON.parse(tokenAnswer.body) as { status: { token: string } }).status.token;
  const adminConfig = await loadKubeconfig({ path: cluster.kubeconfigPath });
  const asAdapter = new KubeClient({
    server: adminConfig.server,
    caPem: adminConfig.caPem ?? '',
    token,
    namespace: ns,
  });
  t.after(() => asAdapter.destroy());

  const depths = new Map<string, number>([
    ['work', 12],
    ['fractional', 2.5],
  ]);
  const adapter = createExternalMetricsAdapter({
    kube: asAdapter,
    serving,
    port,
    host: '127.0.0.1',
    logger: createLogger({ name: 'adapter', level: 'warn' }),
    lifecycle: { drainDelayMs: 0 },
    metrics: [
      defineExternalMetric('queue_depth', async ({ selector }) => {
        const queue = selector.exactValue('queue');
        const depth = queue === undefined ? undefined : depths.get(queue);
        return depth === undefined ? [] : [{ value: depth, labels: { queue: queue ?? '' } }];
      }),
    ],
  });
  await adapter.start();
  t.after(() => adapter.stop());
  await waitForExternalMetricsApi(admin, { timeoutMs: 60_000 });

  // Discovery, through the apiserver.
  const resources = JSON.parse(
    (await cluster.kubectlAsync(['get', '--raw', '/apis/external.metrics.k8s.io/v1beta1'])).stdout,
  ) as {
    groupVersion: string;
    resources: Array<{ name: string; kind: string }>;
  };
  assert.equal(resources.groupVersion, 'external.metrics.k8s.io/v1beta1');
  assert.deepEqual(
    resources.resources.map((r) => [r.name, r.kind]),
    [['queue_depth', 'ExternalMetricValueList']],
  );
  const groups = JSON.parse((await cluster.kubectlAsync(['get', '--raw', '/apis'])).stdout) as {
    groups: Array<{ name: string }>;
  };
  assert.ok(groups.groups.some((g) => g.name === 'external.metrics.k8s.io'));

  // Values, as the HPA controller reads them.
  const path = `/apis/external.metrics.k8s.io/v1beta1/namespaces/${ns}/queue_depth`;
  const work = JSON.parse(
    (await cluster.kubectlAsync(['get', '--raw', `${path}?labelSelector=queue%3Dwork`])).stdout,
  ) as {
    kind: string;
    items: Array<{ metricName: string; metricLabels: Record<string, string>; value: string }>;
  };
  assert.equal(work.kind, 'ExternalMetricValueList');
  assert.deepEqual(
    work.items.map((i) => [i.metricName, i.metricLabels, i.value]),
    [['queue_depth', { queue: 'work' }, '12']],
  );
  depths.set('work', 40);
  const after = JSON.parse(
    (await cluster.kubectlAsync(['get', '--raw', `${path}?labelSelector=queue%3Dwork`])).stdout,
  ) as {
    items: Array<{ value: string }>;
  };
  assert.equal(after.items[0]?.value, '40');
  const fractional = JSON.parse((await cluster.request(`${path}?labelSelector=queue%3Dfractional`)).body) as {
    items: Array<{ value: string }>;
  };
  assert.equal(fractional.items[0]?.value, '2500m');

  // Refusals carry the adapter's reason through the apiserver.
  const unknown = await cluster.request(
    `/apis/external.metrics.k8s.io/v1beta1/namespaces/${ns}/no_such_metric`,
  );
  assert.equal(unknown.status, 404, unknown.body);
  assert.match(unknown.body, /external metric \\?"no_such_metric\\?" not found/);
  const badSelector = await cluster.request(`${path}?labelSelector=${encodeURIComponent('queue in work')}`);
  assert.equal(badSelector.status, 400, badSelector.body);
  assert.match(badSelector.body, /invalid label selector/);
  const refusedByKubectl = await cluster.kubectlAsync(
    ['get', '--raw', `${path}?labelSelector=queue%3D%3D%3Dwork`],
    { allowFailure: true },
  );
  assert.notEqual(refusedByKubectl.code, 0);
  assert.match(refusedByKubectl.stderr, /BadRequest|invalid label selector/);

  // A user without RBAC on external metrics is refused; bound to a Role that allows it, the same user reads.
  const asNobody = { headers: { 'Impersonate-User': 'nobody@capstan.dev' } };
  const denied = await cluster.request(`${path}?labelSelector=queue%3Dwork`, asNobody);
  assert.equal(denied.status, 403, denied.body);
  const rbac = (kind: string, body: unknown) =>
    cluster.request(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/${kind}`, { method: 'POST', body });
  assert.equal(
    (
      await rbac('roles', {
        metadata: { name: 'metrics-reader' },
        rules: [{ apiGroups: ['external.metrics.k8s.io'], resources: ['queue_depth'], verbs: ['list'] }],
      })
    ).status,
    201,
  );
  assert.equal(
    (
      await rbac('rolebindings', {
        metadata: { name: 'nobody-reads-metrics' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'metrics-reader' },
        subjects: [{ kind: 'User', name: 'nobody@capstan.dev', apiGroup: 'rbac.authorization.k8s.io' }],
      })
    ).status,
    201,
  );
  let allowed = { status: 0, body: '' };
  for (let i = 0; i < 100 && allowed.status !== 200; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 200));
    allowed = await cluster.request(`${path}?labelSelector=queue%3Dwork`, asNobody);
  }
  assert.equal(allowed.status, 200, allowed.body);
});

test('waitForExternalMetricsApi names the condition when the adapter cannot be reached', async (t) => {
  const cluster = await useSharedCluster(t);
  const ns = cluster.namespace;
  const admin = new KubeClient(await loadKubeconfig({ path: cluster.kubeconfigPath }));
  t.after(() => admin.destroy());
  const ca = await createCertAuthority('unreachable-ca');
  const { freePort } = await import('capstan/runtime');
  // Nothing listens on that port.
  const objects = externalMetricsApiManifests({
    namespace: ns,
    caPem: ca.certPem,
    port: await freePort(),
    endpoint: '127.0.0.1',
  });
  t.after(async () => {
    await cluster.request(`/apis/apiregistration.k8s.io/v1/apiservices/${EXTERNAL_METRICS_API_SERVICE}`, {
      method: 'DELETE',
    });
  });
  await applyExternalMetricsApi(
    admin,
    objects.filter((o) => !o.kind.endsWith('Binding')),
  );
  await assert.rejects(waitForExternalMetricsApi(admin, { timeoutMs: 15_000 }), (err: unknown) => {
    assert.equal((err as { code?: string }).code, ScalingErrorCode.apiService);
    assert.match((err as Error).message, /not Available: False FailedDiscoveryCheck: .*connection refused/);
    return true;
  });
  const raw = await cluster.request(`/apis/external.metrics.k8s.io/v1beta1/namespaces/${ns}/queue_depth`);
  assert.equal(raw.status, 503, raw.body);
});

test('an apiserver without an aggregation layer: the adapter refuses to start, naming the flags', async () => {
  const { startControlPlane } = await import('capstan/testing');
  // The requestheader CA emptied: the apiserver runs, but proxies to no aggregated server.
  await using cp = await startControlPlane({ apiServerFlags: ['--requestheader-client-ca-file='] });
  const ca = await createCertAuthority('no-aggregation-ca');
  const adapter = createExternalMetricsAdapter({
    kube: cp.client,
    serving: await issueExternalMetricsServingCertificate(ca, { namespace: 'x' }),
    port: 0,
    host: '127.0.0.1',
    metrics: [],
    logger: createLogger({ name: 'adapter', level: 'silent' }),
  });
  await assert.rejects(adapter.start(), (err: unknown) => {
    assert.equal((err as { code?: string }).code, ScalingErrorCode.config);
    assert.match((err as Error).message, /no aggregation layer: .*--requestheader-client-ca-file/);
    return true;
  });
  await adapter.stop();
});
