// examples/external-metrics-adapter.ts as users deploy it: an image (capstanImageSpec) running as a pod on
// the node, as the ServiceAccount `externalMetricsApiManifests` creates, with its serving certificate from a
// Secret, behind its Service; the apiserver's aggregation layer calls it there, and it reads RabbitMQ over
// AMQP at the node's bridge address.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { KubeClient, loadKubeconfig } from 'capstan/kube';
import { capstanImageSpec } from 'capstan/peers';
import { createCertAuthority } from 'capstan/runtime';
import {
  applyExternalMetricsApi,
  EXTERNAL_METRICS_API_SERVICE,
  externalMetricsApiManifests,
  issueExternalMetricsServingCertificate,
  waitForExternalMetricsApi,
} from 'capstan/scaling';
import { startRabbitMQ, useSharedCluster } from 'capstan/testing';

// Outside CI a non-root developer skips this (a node needs root); in CI it runs, never skips.
const skip = process.getuid?.() === 0 || process.env['CI'] ? false : 'a node needs root';
const entry = fileURLToPath(new URL('../examples/external-metrics-adapter.ts', import.meta.url));

test('the example adapter as a pod behind its Service serves queue depth to the aggregation layer', {
  skip,
}, async (t) => {
  const cluster = await useSharedCluster(t, { node: true });
  const node = cluster.node;
  assert.ok(node);
  const ns = cluster.namespace;
  const spec = await capstanImageSpec({ entry, conditions: ['capstan-source'] });
  cluster.loadImage(spec);

  const broker = await startRabbitMQ({ management: false, listenAddresses: [node.ip] });
  const admin = new KubeClient(await loadKubeconfig({ path: cluster.kubeconfigPath }));
  const ca = await createCertAuthority('in-cluster-adapter-ca');
  const serving = await issueExternalMetricsServingCertificate(ca, { namespace: ns });
  const objects = externalMetricsApiManifests({
    namespace: ns,
    caPem: ca.certPem,
    port: 6443,
    selector: { app: 'adapter' },
  });
  t.after(async () => {
    // The APIService first: one left unavailable breaks discovery for the whole cluster.
    await cluster.request(`/apis/apiregistration.k8s.io/v1/apiservices/${EXTERNAL_METRICS_API_SERVICE}`, {
      method: 'DELETE',
    });
    for (const o of objects.filter((x) => x.kind.endsWith('Binding'))) {
      const base =
        o.kind === 'RoleBinding'
          ? '/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/rolebindings'
          : '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings';
      await cluster.request(`${base}/${encodeURIComponent(o.metadata.name)}`, { method: 'DELETE' });
    }
    await admin.destroy();
    await broker.stop();
  });

  const conn = await amqp.connect(broker.amqpUrl);
  const ch = await conn.createConfirmChannel();
  await ch.assertQueue('orders', { durable: false });
  for (let i = 0; i < 7; i++) ch.sendToQueue('orders', Buffer.from(`order-${i}`));
  await ch.waitForConfirms();
  await conn.close();

  const post = async (path: string, body: unknown) => {
    const r = await cluster.request(path, { method: 'POST', body });
    assert.equal(r.status, 201, r.body);
  };
  await post(`/api/v1/namespaces/${ns}/secrets`, {
    metadata: { name: 'adapter-tls' },
    type: 'kubernetes.io/tls',
    stringData: { 'tls.crt': serving.certPem, 'tls.key': serving.keyPem },
  });
  await post(`/api/v1/namespaces/${ns}/secrets`, {
    metadata: { name: 'rabbitmq' },
    stringData: { url: broker.amqpUrl.replace('@127.0.0.1:', `@${node.ip}:`) },
  });
  await applyExternalMetricsApi(admin, objects);
  await post(`/apis/apps/v1/namespaces/${ns}/deployments`, {
    metadata: { name: 'adapter' },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'adapter' } },
      template: {
        metadata: { labels: { app: 'adapter' } },
        spec: {
          serviceAccountName: 'capstan-external-metrics',
          containers: [
            {
              name: 'adapter',
              image: spec.name,
              imagePullPolicy: 'Never',
              ports: [{ containerPort: 6443, name: 'https' }],
              env: [{ name: 'RABBITMQ_URL', valueFrom: { secretKeyRef: { name: 'rabbitmq', key: 'url' } } }],
              readinessProbe: { httpGet: { path: '/readyz', port: 6443, scheme: 'HTTPS' }, periodSeconds: 2 },
              volumeMounts: [{ name: 'tls', mountPath: '/tls', readOnly: true }],
            },
          ],
          volumes: [{ name: 'tls', secret: { secretName: 'adapter-tls' } }],
        },
      },
    },
  });

  try {
    await waitForExternalMetricsApi(admin, { timeoutMs: 180_000 });
  } catch (err) {
    const pods = cluster.kubectl(['get', 'pods', '-o', 'wide']);
    const logs = await cluster.request(`/api/v1/namespaces/${ns}/pods?labelSelector=app%3Dadapter`);
    throw new Error(`${(err as Error).message}\n${pods}\n${logs.body.slice(0, 2000)}`);
  }
  const path = `/apis/external.metrics.k8s.io/v1beta1/namespaces/${ns}/queue_depth`;
  let answer = { status: 0, body: '' };
  for (let i = 0; i < 60 && answer.status !== 200; i++) {
    if (i > 0) await sleep(500);
    answer = await cluster.request(`${path}?labelSelector=queue%3Dorders`);
  }
  assert.equal(answer.status, 200, answer.body);
  const list = JSON.parse(answer.body) as {
    items: Array<{ metricLabels: Record<string, string>; value: string }>;
  };
  assert.deepEqual(
    list.items.map((i) => [i.metricLabels, i.value]),
    [[{ queue: 'orders' }, '7']],
  );
  // Through the same path, a queue the broker does not have is the source's failure, not a zero.
  const missing = await cluster.request(`${path}?labelSelector=queue%3Dabsent`);
  assert.equal(missing.status, 503, missing.body);
  assert.match(missing.body, /unable to read external metric/);
  const logs = cluster.kubectl(['logs', 'deployment/adapter']);
  assert.match(logs, /"msg":"listening"/);
});
