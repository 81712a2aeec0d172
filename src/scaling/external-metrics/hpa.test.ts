// End to end on the real node: a standard HorizontalPodAutoscaler (autoscaling/v2, an External metric with
// an AverageValue target) scales a Deployment of queue workers on RabbitMQ queue depth served by the
// adapter through the apiserver's aggregation layer; kube-controller-manager's HPA controller decides, the
// added replicas run on the node and drain the queue (each names itself on a `done` queue), and the HPA
// holds its replicas while the source fails (the adapter answers 503, never 0), and scales back down once
// the queue is empty and the source answers again (the control plane's 30 s downscale stabilization).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { KubeClient, loadKubeconfig } from 'capstan/kube';
import { capstanImageSpec } from 'capstan/peers';
import { createCertAuthority, createLogger, freePort } from 'capstan/runtime';
import { startRabbitMQ, useSharedCluster } from 'capstan/testing';
import {
  applyExternalMetricsApi,
  createExternalMetricsAdapter,
  defineExternalMetric,
  EXTERNAL_METRICS_API_SERVICE,
  externalMetricsApiManifests,
  issueExternalMetricsServingCertificate,
  rabbitmqQueueDepthMetric,
  ScalingError,
  ScalingErrorCode,
  waitForExternalMetricsApi,
} from '../index.ts';

// Outside CI a non-root developer skips this (a node needs root); in CI it runs, never skips.
const skip = process.getuid?.() === 0 || process.env['CI'] ? false : 'a node needs root';
const consumerEntry = fileURLToPath(new URL('./testdata/queue-consumer.ts', import.meta.url));
const MESSAGES = 60;
const WORK_MS = 1000;

/** Poll `read` every 500 ms until it returns a value, or fail naming `what` and the last state seen. */
async function until<T>(
  what: string,
  timeoutMs: number,
  read: () => Promise<T | undefined>,
  state: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      assert.fail(`${what}: not within ${timeoutMs / 1000} s; last seen: ${state()}`);
    await sleep(500);
  }
}

test('a standard HPA scales a Deployment on RabbitMQ queue depth: up, the queue drained by the added pods, down', {
  skip,
}, async (t) => {
  const cluster = await useSharedCluster(t, { node: true });
  const node = cluster.node;
  assert.ok(node);
  const ns = cluster.namespace;
  let hpaCreatedAt = 0;
  const at = () => `${((Date.now() - hpaCreatedAt) / 1000).toFixed(1)} s`;

  // The worker image, loaded before the adapter runs (loading blocks this process for a moment).
  const spec = await capstanImageSpec({ entry: consumerEntry, conditions: ['capstan-source'] });
  cluster.loadImage(spec);

  // RabbitMQ on this machine, also on the node's bridge address: the pods' way to it.
  const broker = await startRabbitMQ({ listenAddresses: [node.ip] });
  const admin = new KubeClient(await loadKubeconfig({ path: cluster.kubeconfigPath }));
  const ca = await createCertAuthority('hpa-test-ca');
  const serving = await issueExternalMetricsServingCertificate(ca, { namespace: ns });
  // RabbitMQ's depth, behind a switch that makes the source fail as a broker outage would.
  const rabbit = rabbitmqQueueDepthMetric({
    managementUrl: broker.managementUrl ?? '',
    user: broker.user,
    password: broker.password,
  });
  let sourceDown = false;
  const queueDepth = defineExternalMetric('queue_depth', (query) => {
    if (sourceDown)
      return Promise.reject(
        new ScalingError(ScalingErrorCode.source, 'rabbitmq: connection refused (test outage)'),
      );
    return rabbit.read(query);
  });
  // The adapter listens on the bridge address too, which the apiserver (on the same address) reaches.
  const port = await freePort(node.ip);
  const adapter = createExternalMetricsAdapter({
    kube: admin,
    serving,
    port,
    host: node.ip,
    logger: createLogger({ name: 'adapter', level: 'warn' }),
    lifecycle: { drainDelayMs: 0 },
    metrics: [queueDepth],
  });
  const objects = externalMetricsApiManifests({ namespace: ns, caPem: ca.certPem, port, endpoint: node.ip });
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
    await adapter.stop();
    await rabbit.close?.();
    await admin.destroy();
    await broker.stop();
  });

  // The work: MESSAGES messages of WORK_MS each, too many for one worker within the test's patience.
  const conn = await amqp.connect(broker.amqpUrl);
  const ch = await conn.createConfirmChannel();
  await ch.assertQueue('work', { durable: false });
  await ch.assertQueue('done', { durable: false });
  for (let i = 0; i < MESSAGES; i++) ch.sendToQueue('work', Buffer.from(`job-${i}`));
  await ch.waitForConfirms();

  await adapter.start();
  await applyExternalMetricsApi(admin, objects);
  await waitForExternalMetricsApi(admin, { timeoutMs: 60_000 });
  // Through the apiserver, as the HPA controller reads it: 503 until the management API has statistics.
  let depth = { status: 0, body: '' };
  const seen = await until(
    'the depth through the apiserver',
    60_000,
    async () => {
      depth = await cluster.request(
        `/apis/external.metrics.k8s.io/v1beta1/namespaces/${ns}/queue_depth?labelSelector=queue%3Dwork`,
      );
      return depth.status === 200
        ? (JSON.parse(depth.body) as { items: Array<{ value: string }> })
        : undefined;
    },
    () => `${depth.status} ${depth.body}`,
  );
  assert.deepEqual(
    seen.items.map((i) => i.value),
    [String(MESSAGES)],
  );

  const create = async (path: string, body: unknown) => {
    const r = await cluster.request(path, { method: 'POST', body });
    assert.equal(r.status, 201, r.body);
  };
  await create(`/apis/apps/v1/namespaces/${ns}/deployments`, {
    metadata: { name: 'worker' },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'worker' } },
      template: {
        metadata: { labels: { app: 'worker' } },
        spec: {
          terminationGracePeriodSeconds: 5,
          containers: [
            {
              name: 'worker',
              image: spec.name,
              imagePullPolicy: 'Never',
              env: [
                { name: 'AMQP_URL', value: broker.amqpUrl.replace('@127.0.0.1:', `@${node.ip}:`) },
                { name: 'QUEUE', value: 'work' },
                { name: 'WORK_MS', value: String(WORK_MS) },
              ],
            },
          ],
        },
      },
    },
  });
  hpaCreatedAt = Date.now();
  await create(`/apis/autoscaling/v2/namespaces/${ns}/horizontalpodautoscalers`, {
    metadata: { name: 'worker' },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'worker' },
      minReplicas: 1,
      maxReplicas: 4,
      metrics: [
        {
          type: 'External',
          external: {
            metric: { name: 'queue_depth', selector: { matchLabels: { queue: 'work' } } },
            target: { type: 'AverageValue', averageValue: '5' },
          },
        },
      ],
    },
  });

  type Hpa = {
    status?: {
      currentReplicas?: number;
      desiredReplicas?: number;
      currentMetrics?: Array<{ external?: { current?: { averageValue?: string } } }>;
      conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
    };
  };
  type Deploy = { spec: { replicas: number }; status?: { readyReplicas?: number } };
  let hpa: Hpa = {};
  let deploy: Deploy = { spec: { replicas: 0 } };
  const read = async () => {
    hpa = JSON.parse(
      (await cluster.request(`/apis/autoscaling/v2/namespaces/${ns}/horizontalpodautoscalers/worker`)).body,
    ) as Hpa;
    deploy = JSON.parse(
      (await cluster.request(`/apis/apps/v1/namespaces/${ns}/deployments/worker`)).body,
    ) as Deploy;
  };
  const state = () =>
    `deployment replicas ${deploy.spec.replicas} ready ${deploy.status?.readyReplicas ?? 0}; hpa ${JSON.stringify(hpa.status)}`;

  // Up: 60 messages over a target of 5 per replica is 12, capped at 4 (the first sync sees most of them).
  await until(
    'the HPA asks for 4 replicas',
    120_000,
    async () => {
      await read();
      return hpa.status?.desiredReplicas === 4 ? true : undefined;
    },
    state,
  );
  const scaledUpAt = at();
  const active = hpa.status?.conditions?.find((c) => c.type === 'ScalingActive');
  assert.equal(active?.status, 'True', JSON.stringify(active));
  assert.equal(active?.reason, 'ValidMetricFound');
  const seenAverage = hpa.status?.currentMetrics?.[0]?.external?.current?.averageValue;
  await until(
    '4 worker pods ready on the node',
    180_000,
    async () => {
      await read();
      return deploy.status?.readyReplicas === 4 ? true : undefined;
    },
    state,
  );
  const readyAt = at();
  // Independently of Kubernetes: the broker sees four consumers on the queue.
  const consumers = await until(
    '4 consumers on the queue',
    60_000,
    async () => {
      const r = await fetch(`${broker.managementUrl}/api/queues/%2F/work`, {
        headers: { authorization: broker.authorization },
      });
      const q = (await r.json()) as { consumers?: number };
      return (q.consumers ?? 0) >= 4 ? q.consumers : undefined;
    },
    state,
  );
  assert.equal(consumers, 4);

  // Drained: every message done, and not by the first replica alone.
  await until(
    'the queue drained',
    180_000,
    async () => ((await broker.queueDepth('work')) === 0 ? true : undefined),
    state,
  );
  const drainedAt = at();
  const doneBy = new Map<string, number>();
  for (let i = 0; i < MESSAGES * 2; i++) {
    const msg = await ch.get('done', { noAck: true });
    if (!msg) {
      if (doneBy.size > 0 && [...doneBy.values()].reduce((a, b) => a + b, 0) >= MESSAGES) break;
      await sleep(100);
      continue;
    }
    const pod = msg.content.toString();
    doneBy.set(pod, (doneBy.get(pod) ?? 0) + 1);
  }
  const doneTotal = [...doneBy.values()].reduce((a, b) => a + b, 0);
  assert.equal(doneTotal, MESSAGES, JSON.stringify([...doneBy]));
  assert.ok(doneBy.size >= 2, `only ${[...doneBy.keys()].join(', ')} worked: the added replicas did not`);

  // An outage holds: with the source failing, the HPA cannot compute and keeps 4 replicas, past the 30 s
  // window in which an empty queue would have brought it down to 1.
  sourceDown = true;
  const outageAt = Date.now();
  await until(
    'the HPA reports the failing metric',
    60_000,
    async () => {
      await read();
      const c = hpa.status?.conditions?.find((x) => x.type === 'ScalingActive');
      return c?.status === 'False' && c.reason === 'FailedGetExternalMetric' ? c : undefined;
    },
    state,
  );
  while (Date.now() - outageAt < 45_000) {
    await read();
    assert.equal(deploy.spec.replicas, 4, `scaled during the outage: ${state()}`);
    await sleep(1_000);
  }
  sourceDown = false;
  const recoveredAt = at();

  // Down: an empty queue means the minimum, after the downscale stabilization window.
  await until(
    'the HPA scales back to 1',
    180_000,
    async () => {
      await read();
      return hpa.status?.desiredReplicas === 1 && deploy.spec.replicas === 1 ? true : undefined;
    },
    state,
  );
  const downAt = at();
  t.diagnostic(
    `from the HPA's creation: asks for 4 at ${scaledUpAt} (it saw an average of ${seenAverage} per replica), 4 ready at ${readyAt}, drained at ${drainedAt} ` +
      `by ${doneBy.size} pods ${JSON.stringify(Object.fromEntries(doneBy))}, held 4 through a 45 s outage until ${recoveredAt}, back to 1 at ${downAt}`,
  );
  await conn.close();
});
