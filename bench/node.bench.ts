// A control plane with a real node (`startControlPlane({ node: true })`): time until the node is Ready and
// the default ServiceAccount exists (goal: under 15 s), then pod start latency (created → Running) for
// busybox pods, one after another. Root only (the node needs it).
import { setTimeout as sleep } from 'node:timers/promises';
import { startControlPlane } from '../src/peers/index.ts';
import { type Benchmark, type BenchResult, summarize } from './harness.ts';

const bench: Benchmark = {
  name: 'node',
  description: 'startControlPlane({ node: true }) until the node is Ready; pod created → Running',
  async run({ quick, log }) {
    if (process.getuid?.() !== 0) throw new Error('the node benchmark needs root');
    const runs = quick ? 1 : 3;
    const starts: number[] = [];
    const pods: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const cp = await startControlPlane({ node: true });
      const ms = performance.now() - t0;
      starts.push(ms / 1000);
      log(`start #${i + 1}: ${(ms / 1000).toFixed(2)} s`);
      try {
        for (let j = 0; j < (quick ? 2 : 5); j++) {
          const name = `bench-${i}-${j}`;
          const p0 = performance.now();
          const created = await cp.request('/api/v1/namespaces/default/pods', {
            method: 'POST',
            body: {
              apiVersion: 'v1',
              kind: 'Pod',
              metadata: { name },
              spec: {
                containers: [
                  {
                    name: 'c',
                    image: cp.node!.images.busybox,
                    imagePullPolicy: 'Never',
                    command: ['sleep', '3600'],
                  },
                ],
              },
            },
          });
          if (created.status !== 201) throw new Error(`pod create: HTTP ${created.status} ${created.body}`);
          for (;;) {
            const res = await cp.request(`/api/v1/namespaces/default/pods/${name}`);
            if ((JSON.parse(res.body) as { status?: { phase?: string } }).status?.phase === 'Running') break;
            if (performance.now() - p0 > 120_000) throw new Error(`pod ${name} not Running in 120 s`);
            await sleep(50);
          }
          const podMs = performance.now() - p0;
          pods.push(podMs / 1000);
          log(`  pod ${name}: ${(podMs / 1000).toFixed(2)} s`);
        }
      } finally {
        await cp.stop();
      }
    }
    const results: BenchResult[] = [
      {
        subject: 'capstan',
        metric: 'node-start-until-ready',
        unit: 's',
        ...summarize(starts),
        goal: { op: '<', value: 15, why: 'issue #9' },
        notes: 'etcd, apiserver, controller manager, containerd, scheduler, kubelet; node Ready + default SA',
      },
      {
        subject: 'capstan',
        metric: 'pod-created-to-running',
        unit: 's',
        ...summarize(pods),
        notes: 'busybox, imagePullPolicy Never, polled every 50 ms',
      },
    ];
    return results;
  },
};

export default bench;
