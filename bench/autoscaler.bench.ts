// The autoscaler's reaction time: from a queue-depth step (messages published and confirmed by RabbitMQ)
// to the new replica count on the apiserver (a Deployment's spec.replicas, read independently), on a real
// broker and a real etcd + kube-apiserver. Each step starts at a random phase of the polling loop, so the
// median is about half the polling interval plus one read and one write. Reported beside KEDA's documented
// polling model, which is a model, not a measurement: KEDA checks activation (0 → 1) every pollingInterval
// (default 30 s) and leaves 1 → N to the HPA, which asks KEDA's metrics server every 15 s (its sync period).
import { setTimeout as sleep } from 'node:timers/promises';
import amqp from 'amqplib';
import { KubeClient } from '../src/kube/index.ts';
import { startControlPlane } from '../src/peers/index.ts';
import { Autoscaler, type MetricSource, rabbitmqQueueSource } from '../src/scaling/index.ts';
import { startRabbitMQ } from '../src/testing/index.ts';
import { type Benchmark, type BenchResult, summarize } from './harness.ts';

const NS = 'default';
const PER_REPLICA = 5;

const bench: Benchmark = {
  name: 'autoscaler',
  description:
    'autoscaler: queue-depth step (RabbitMQ) → new spec.replicas on the apiserver; KEDA polling model beside it',
  async run({ quick, log }) {
    await using cp = await startControlPlane();
    await using broker = await startRabbitMQ({ statisticsIntervalMs: 500 });
    await using kube = new KubeClient(cp.clientConfig);
    const conn = await amqp.connect(broker.amqpUrl);
    const channel = await conn.createConfirmChannel();
    const results: BenchResult[] = [];
    try {
      const cases: Array<{ label: string; pollMs: number; steps: number; source: () => MetricSource }> = [
        {
          label: 'poll 1 s, AMQP passive declare',
          pollMs: 1000,
          steps: quick ? 4 : 12,
          source: () => rabbitmqQueueSource({ queue: 'bench-amqp', amqpUrl: broker.amqpUrl }),
        },
        {
          label: 'poll 1 s, management API (statistics every 0.5 s)',
          pollMs: 1000,
          steps: quick ? 4 : 12,
          source: () =>
            rabbitmqQueueSource({
              queue: 'bench-mgmt',
              managementUrl: broker.managementUrl!,
              user: broker.user,
              password: broker.password,
            }),
        },
        ...(quick
          ? []
          : [
              {
                label: 'poll 15 s (default), AMQP passive declare',
                pollMs: 15_000,
                steps: 4,
                source: () => rabbitmqQueueSource({ queue: 'bench-amqp', amqpUrl: broker.amqpUrl }),
              },
            ]),
      ];
      for (const c of cases) {
        const source = c.source();
        const queue = c.label.includes('management') ? 'bench-mgmt' : 'bench-amqp';
        await channel.assertQueue(queue);
        await channel.purgeQueue(queue);
        const name = `worker-${c.pollMs}-${queue}`;
        await kube.json({
          method: 'POST',
          path: `/apis/apps/v1/namespaces/${NS}/deployments`,
          json: {
            apiVersion: 'apps/v1',
            kind: 'Deployment',
            metadata: { name },
            spec: {
              replicas: 1,
              selector: { matchLabels: { app: name } },
              template: {
                metadata: { labels: { app: name } },
                spec: { containers: [{ name: 'main', image: 'registry.invalid/none:1' }] },
              },
            },
          },
        });
        const replicas = async () =>
          (
            await kube.json<{ spec: { replicas: number } }>({
              path: `/apis/apps/v1/namespaces/${NS}/deployments/${name}`,
            })
          ).spec.replicas;
        const waitFor = async (want: number, limitMs: number): Promise<boolean> => {
          const end = performance.now() + limitMs;
          while (performance.now() < end) {
            if ((await replicas()) === want) return true;
            await sleep(20);
          }
          return false;
        };
        const scaler = new Autoscaler(
          {
            name,
            scaleTargetRef: `deployment/${name}`,
            namespace: NS,
            minReplicas: 1,
            maxReplicas: 50,
            pollingIntervalMs: c.pollMs,
            // Down at once, so each step starts from 1 replica; up has no window (the HPA's default).
            behavior: { scaleDown: { stabilizationWindowSeconds: 0 } },
            metric: { source, target: PER_REPLICA },
          },
          { kube },
        );
        const stop = new AbortController();
        const running = scaler.run(stop.signal);
        const times: number[] = [];
        try {
          for (let i = 0; i < c.steps; i++) {
            const want = 2 + (i % 4); // 2..5 replicas: depth = want × per-replica
            // A random phase of the polling loop, so the samples cover it evenly.
            await sleep(Math.random() * c.pollMs);
            const t0 = performance.now();
            for (let m = 0; m < want * PER_REPLICA; m++) channel.sendToQueue(queue, Buffer.from('job'));
            await channel.waitForConfirms();
            if (!(await waitFor(want, c.pollMs * 3 + 30_000)))
              throw new Error(`${c.label}: step ${i} never reached ${want}`);
            const ms = performance.now() - t0;
            times.push(ms / 1000);
            log(`${c.label}: step to ${want} replicas in ${(ms / 1000).toFixed(2)} s`);
            await channel.purgeQueue(queue);
            if (!(await waitFor(1, c.pollMs * 3 + 30_000)))
              throw new Error(`${c.label}: never back to 1 replica`);
          }
        } finally {
          stop.abort();
          await running;
          await scaler.close();
        }
        results.push({
          subject: 'capstan',
          metric: `step → replicas (${c.label})`,
          unit: 's',
          ...summarize(times),
          notes: c.label.includes('management')
            ? 'the management API lags the broker: its queue counts moved ~4-5 s after the publish here'
            : 'expected ≈ poll/2 + one read and one write; max ≈ poll + those',
        });
      }
      // KEDA's documented model (keda.sh: ScaledObject spec, pollingInterval default 30 s; HPA sync period
      // 15 s): the expected (mean) and worst case of a step at a random phase, before any read or write time.
      results.push(
        {
          subject: 'keda (documented model)',
          metric: 'activation 0 → 1, pollingInterval 30 s',
          unit: 's',
          value: 15,
          p50: 15,
          p99: 30,
          notes: 'model, not measured: mean pollingInterval/2, worst pollingInterval',
        },
        {
          subject: 'keda (documented model)',
          metric: '1 → N through the HPA (15 s sync period)',
          unit: 's',
          value: 7.5,
          p50: 7.5,
          p99: 15,
          notes: 'model, not measured: mean sync/2, worst sync; plus the scaler read per HPA query',
        },
      );
    } finally {
      await conn.close().catch(() => {});
    }
    return results;
  },
};

export default bench;
