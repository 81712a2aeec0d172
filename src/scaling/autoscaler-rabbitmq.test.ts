// The autoscaler on RabbitMQ queue depth against the real broker and the real apiserver: messages
// published → `spec.replicas` changes through the Scale subresource of a Deployment and of a Capstan CRD;
// the stabilization window holds a scale-down until a (manual) clock passes it; the broker stopped →
// replicas held, never zero, with the condition and the metrics saying why.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import amqp from 'amqplib';
import { installCustomResources, KubeClient, ManualClock } from 'capstan/kube';
import { MetricsRegistry } from 'capstan/runtime';
import { type RabbitMQPeer, type SharedCluster, startRabbitMQ, useSharedCluster } from 'capstan/testing';
import {
  Autoscaler,
  createAutoscalerService,
  rabbitmqQueueSource,
  type ScalingDecision,
  ScalingErrorCode,
} from './index.ts';
import { WorkerPool } from './testdata/crds.ts';
import { deployment } from './testdata/deployment.ts';

let broker: RabbitMQPeer;
before(async () => {
  broker = await startRabbitMQ({ statisticsIntervalMs: 200 });
});
after(async () => {
  await broker?.stop();
});

async function publish(queue: string, n: number): Promise<void> {
  const conn = await amqp.connect(broker.amqpUrl);
  try {
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue(queue, { durable: true });
    for (let i = 0; i < n; i++) ch.sendToQueue(queue, Buffer.from(`job-${i}`), { persistent: true });
    await ch.waitForConfirms();
  } finally {
    await conn.close();
  }
}

async function purge(queue: string): Promise<void> {
  const conn = await amqp.connect(broker.amqpUrl);
  try {
    const ch = await conn.createChannel();
    await ch.purgeQueue(queue);
  } finally {
    await conn.close();
  }
}

async function specReplicas(cluster: SharedCluster, path: string): Promise<number> {
  const r = await cluster.request(path);
  assert.equal(r.status, 200, r.body);
  return (JSON.parse(r.body) as { spec: { replicas: number } }).spec.replicas;
}

/** Evaluate until the decision reads `metric` (the management API's counts lag the broker ~5 s), bounded. */
async function evaluateUntilMetric(
  scaler: Autoscaler,
  metric: number,
  tries = 300,
): Promise<ScalingDecision> {
  let d = await scaler.evaluate();
  for (let i = 0; i < tries && d.metric !== metric; i++) {
    await sleep(100);
    d = await scaler.evaluate();
  }
  assert.equal(d.metric, metric, `the source never read ${metric}: ${d.message}`);
  return d;
}

describe('autoscaler on RabbitMQ queue depth (real broker, real apiserver)', () => {
  test('a Deployment: depth 23 at 5 per replica → 5 replicas; the down window holds until it has passed; then min', async (t) => {
    const cluster = await useSharedCluster(t);
    const ns = cluster.namespace;
    await using kube = await KubeClient.fromKubeconfig({ path: cluster.kubeconfigPath });
    const created = await cluster.request(`/apis/apps/v1/namespaces/${ns}/deployments`, {
      method: 'POST',
      body: deployment('worker', 1),
    });
    assert.equal(created.status, 201, created.body);
    const path = `/apis/apps/v1/namespaces/${ns}/deployments/worker`;
    const queue = `jobs-${ns}`;
    await publish(queue, 0);

    const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
    const metrics = new MetricsRegistry();
    const source = rabbitmqQueueSource({
      queue,
      managementUrl: broker.managementUrl!,
      user: broker.user,
      password: broker.password,
    });
    await using scaler = new Autoscaler(
      {
        name: 'worker',
        scaleTargetRef: 'deployment/worker',
        namespace: ns,
        minReplicas: 1,
        maxReplicas: 10,
        metric: { source, target: 5 },
      },
      { kube, clock, metrics },
    );

    // Empty queue, 1 replica at the minimum: nothing to do.
    const idle = await evaluateUntilMetric(scaler, 0);
    assert.equal(idle.action, 'unchanged');
    assert.equal(await specReplicas(cluster, path), 1);

    await publish(queue, 23);
    const up = await evaluateUntilMetric(scaler, 23);
    assert.equal(up.action, 'scaled', up.message);
    assert.equal(up.currentReplicas, 1);
    assert.equal(up.desiredReplicas, 5); // ceil(23 / 5)
    assert.equal(await specReplicas(cluster, path), 5);
    assert.deepEqual(
      scaler.status().conditions.map((c) => [c.type, c.status, c.reason]),
      [
        ['ScalingActive', 'True', 'ValidMetricFound'],
        ['ScalingLimited', 'False', 'DesiredWithinRange'],
        ['AbleToScale', 'True', 'SucceededRescale'],
      ],
    );

    // Above max: bounded, and ScalingLimited says so.
    await publish(queue, 77); // 100 in all → 20 proposed, max 10
    await clock.advance(15_000); // t = 15 s
    const capped = await evaluateUntilMetric(scaler, 100);
    assert.equal(capped.desiredReplicas, 10);
    assert.equal(capped.proposal, 20);
    assert.equal(await specReplicas(cluster, path), 10);
    assert.equal(
      scaler.status().conditions.find((c) => c.type === 'ScalingLimited')?.reason,
      'TooManyReplicas',
    );

    // The queue drains. Wait for the statistics to show it first, so no stale reading enters the window.
    await purge(queue);
    let depth = await source.read();
    for (let i = 0; i < 300 && depth !== 0; i++) {
      await sleep(100);
      depth = await source.read();
    }
    assert.equal(depth, 0);
    // The 5-minute window keeps the 10 proposed at t = 15 s until t = 315 s on the (manual) clock.
    await clock.advance(60_000); // t = 75 s
    const held = await scaler.evaluate();
    assert.equal(held.action, 'unchanged');
    assert.equal(held.reason, 'ScaleDownStabilized');
    assert.equal(held.desiredReplicas, 10);
    assert.equal(await specReplicas(cluster, path), 10);
    await clock.advance(239_000); // t = 314 s
    assert.equal((await scaler.evaluate()).reason, 'ScaleDownStabilized');
    await clock.advance(1_000); // t = 315 s: the 10 has left the window
    const down = await scaler.evaluate();
    assert.equal(down.action, 'scaled', down.message);
    assert.equal(down.desiredReplicas, 1); // proposal 0, held at minReplicas
    assert.equal(await specReplicas(cluster, path), 1);

    const text = await metrics.metrics();
    assert.match(text, /capstan_autoscaler_desired_replicas\{scaler="worker"\} 1\n/);
    assert.match(text, /capstan_autoscaler_current_replicas\{scaler="worker"\} 1\n/);
    assert.match(text, /capstan_autoscaler_scale_changes_total\{scaler="worker",direction="up"\} 2\n/);
    assert.match(text, /capstan_autoscaler_scale_changes_total\{scaler="worker",direction="down"\} 1\n/);
    assert.match(text, /capstan_autoscaler_source_up\{scaler="worker"\} 1\n/);
  });

  test('a Capstan CRD with a scale subresource, on the running loop (AMQP passive declare as the source)', async (t) => {
    const cluster = await useSharedCluster(t);
    const ns = cluster.namespace;
    await using kube = await KubeClient.fromKubeconfig({ path: cluster.kubeconfigPath });
    await installCustomResources(kube, [WorkerPool]);
    const base = `/apis/scaling-test.capstan.dev/v1/namespaces/${ns}/workerpools`;
    const created = await cluster.request(base, {
      method: 'POST',
      body: {
        apiVersion: 'scaling-test.capstan.dev/v1',
        kind: 'WorkerPool',
        metadata: { name: 'pool' },
        spec: { replicas: 1, image: 'worker:1' },
      },
    });
    assert.equal(created.status, 201, created.body);
    const queue = `pool-${ns}`;
    await publish(queue, 0);

    const scaler = new Autoscaler(
      {
        name: 'pool',
        scaleTargetRef: 'wpool/pool',
        namespace: ns,
        maxReplicas: 20,
        pollingIntervalMs: 100,
        metric: { source: rabbitmqQueueSource({ queue, amqpUrl: broker.amqpUrl }), target: 4 },
      },
      { kube },
    );
    const stop = new AbortController();
    const running = scaler.run(stop.signal);
    try {
      await publish(queue, 30); // ceil(30 / 4) = 8
      let replicas = 0;
      for (let i = 0; i < 200 && replicas !== 8; i++) {
        await sleep(100);
        replicas = await specReplicas(cluster, `${base}/pool`);
      }
      assert.equal(replicas, 8, JSON.stringify(scaler.status()));
      assert.equal(scaler.status().target, `workerpools.scaling-test.capstan.dev/pool in namespace ${ns}`);
    } finally {
      stop.abort();
      await running; // resolves on abort: stopping is not an error
      await scaler.close();
    }
  });

  test('a missing queue holds and says why; a config error lists every problem', async (t) => {
    const cluster = await useSharedCluster(t);
    const ns = cluster.namespace;
    await using kube = await KubeClient.fromKubeconfig({ path: cluster.kubeconfigPath });
    const created = await cluster.request(`/apis/apps/v1/namespaces/${ns}/deployments`, {
      method: 'POST',
      body: deployment('w', 3),
    });
    assert.equal(created.status, 201, created.body);
    for (const source of [
      rabbitmqQueueSource({ queue: 'no-such-queue', amqpUrl: broker.amqpUrl }),
      rabbitmqQueueSource({
        queue: 'no-such-queue',
        managementUrl: broker.managementUrl!,
        user: broker.user,
        password: broker.password,
      }),
    ]) {
      await assert.rejects(source.read(), { code: ScalingErrorCode.source, message: /no-such-queue/ });
      await using scaler = new Autoscaler(
        {
          name: 'w',
          scaleTargetRef: 'deployment/w',
          namespace: ns,
          minReplicas: 0,
          maxReplicas: 5,
          metric: { source, target: 1 },
        },
        { kube },
      );
      const d = await scaler.evaluate();
      assert.equal(d.action, 'held');
      assert.equal(d.reason, 'FailedGetExternalMetric');
      assert.equal(d.currentReplicas, 3);
      assert.equal(d.desiredReplicas, 3);
    }
    assert.equal(await specReplicas(cluster, `/apis/apps/v1/namespaces/${ns}/deployments/w`), 3);

    // Wrong password: refused, held, not zero.
    const refused = rabbitmqQueueSource({
      queue: 'q',
      managementUrl: broker.managementUrl!,
      user: broker.user,
      password: 'wrong',
    });
    await assert.rejects(refused.read(), { code: ScalingErrorCode.source, message: /401/ });
    await refused.close();

    assert.throws(
      () =>
        new Autoscaler(
          {
            name: 'Bad Name',
            scaleTargetRef: 'deployment',
            minReplicas: 5,
            maxReplicas: 2,
            metric: { source: rabbitmqQueueSource({ queue: 'q', amqpUrl: broker.amqpUrl }), target: 0 },
            tolerance: 2,
            behavior: { scaleDown: { stabilizationWindowSeconds: -1 } },
          },
          { kube },
        ),
      (err: unknown) => {
        assert.equal((err as { code: string }).code, ScalingErrorCode.config);
        const problems = (err as { problems: string[] }).problems;
        assert.equal(problems.length, 6, problems.join('\n'));
        for (const field of [
          'name',
          'scaleTargetRef',
          'minReplicas (5) is above maxReplicas (2)',
          'metric.target',
          'tolerance',
          'behavior.scaleDown',
        ]) {
          assert.ok(
            problems.some((p) => p.startsWith(field)),
            `${field} in ${problems.join('; ')}`,
          );
        }
        return true;
      },
    );
  });

  // Last: it stops the broker.
  test('the broker stopped: replicas held (never zero, even with minReplicas 0), the condition and metrics say why', async (t) => {
    const cluster = await useSharedCluster(t);
    const ns = cluster.namespace;
    await using kube = await KubeClient.fromKubeconfig({ path: cluster.kubeconfigPath });
    const created = await cluster.request(`/apis/apps/v1/namespaces/${ns}/deployments`, {
      method: 'POST',
      body: deployment('worker', 1),
    });
    assert.equal(created.status, 201, created.body);
    const path = `/apis/apps/v1/namespaces/${ns}/deployments/worker`;
    const queue = `held-${ns}`;
    await publish(queue, 12);

    // The service, as `capstan autoscale` runs it: /status and /metrics over HTTP.
    const app = createAutoscalerService(
      [
        {
          name: 'worker',
          scaleTargetRef: 'deployment/worker',
          namespace: ns,
          minReplicas: 0,
          maxReplicas: 10,
          pollingIntervalMs: 100,
          behavior: { scaleDown: { stabilizationWindowSeconds: 0 } },
          metric: { source: rabbitmqQueueSource({ queue, amqpUrl: broker.amqpUrl }), target: 3 },
        },
      ],
      { kube, port: 0, host: '127.0.0.1' },
    );
    const url = await app.start();
    try {
      let replicas = 0;
      for (let i = 0; i < 200 && replicas !== 4; i++) {
        await sleep(100);
        replicas = await specReplicas(cluster, path);
      }
      assert.equal(replicas, 4); // ceil(12 / 3)

      await broker.stop();
      // Wait (bounded) until the loop has seen the broker gone, then a few evaluations more.
      const status = async () =>
        (
          (await (await fetch(`${url}/status`)).json()) as {
            autoscalers: Array<{
              conditions: Array<{ type: string; status: string; reason: string; message: string }>;
              desiredReplicas: number;
              lastDecision: ScalingDecision;
            }>;
          }
        ).autoscalers[0]!;
      let s = await status();
      for (let i = 0; i < 200 && s.lastDecision.reason !== 'FailedGetExternalMetric'; i++) {
        await sleep(100);
        s = await status();
      }
      assert.equal(s.lastDecision.action, 'held');
      const active = s.conditions.find((c) => c.type === 'ScalingActive')!;
      assert.equal(active.status, 'False');
      assert.equal(active.reason, 'FailedGetExternalMetric');
      assert.match(active.message, /holding deployments\.apps\/worker .* at 4 replicas/);
      assert.equal(s.desiredReplicas, 4);
      await sleep(500); // several more failed polls
      assert.equal(await specReplicas(cluster, path), 4);

      const text = await (await fetch(`${url}/metrics`)).text();
      assert.match(text, /capstan_autoscaler_source_up\{scaler="worker"\} 0\n/);
      assert.match(text, /capstan_autoscaler_desired_replicas\{scaler="worker"\} 4\n/);
      const errors = Number(
        /capstan_autoscaler_source_errors_total\{scaler="worker"\} (\d+)/.exec(text)?.[1],
      );
      assert.ok(errors >= 2, `source errors counted: ${errors}`);
    } finally {
      await app.service.stop('test over');
    }
  });
});
