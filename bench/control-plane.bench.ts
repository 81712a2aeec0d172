// Start-up of a local control plane with startControlPlane(): etcd + kube-apiserver until /readyz is ok
// (and until a CRD is Established and served), and the peak memory of the programs. For reference,
// controller-runtime's envtest documents about 7 s for the same job on a developer laptop.
import { readFileSync } from 'node:fs';
import { peerCatalogue, startControlPlane } from '../src/peers/index.ts';
import { type Benchmark, type BenchResult, summarize } from './harness.ts';

const crd = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'widgets.bench.capstan.dev' },
  spec: {
    group: 'bench.capstan.dev',
    scope: 'Namespaced',
    names: { plural: 'widgets', kind: 'Widget' },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: { spec: { type: 'object', properties: { size: { type: 'integer' } } } },
          },
        },
      },
    ],
  },
};

/** Peak resident memory of a live process in MiB, from the kernel's high-water mark. */
function peakRssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  return kb / 1024;
}

const bench: Benchmark = {
  name: 'control-plane',
  description: 'startControlPlane(): etcd + kube-apiserver ready (and a CRD served), time and peak RSS',
  async run({ quick, log }) {
    const runs = quick ? 1 : 3;
    // Warm-up: the first start pays for page-cache misses on two ~100 MB binaries.
    await (await startControlPlane()).stop();
    const results: BenchResult[] = [];
    for (const withCrd of [false, true]) {
      const times: number[] = [];
      const rss: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        const cp = await startControlPlane(withCrd ? { crds: [crd] } : {});
        const ms = performance.now() - t0;
        times.push(ms);
        const byName = Object.fromEntries(cp.processes.map((p) => [p.name, peakRssOf(p.pid)]));
        rss.push(Object.values(byName).reduce((a, b) => a + b, 0));
        log(
          `start${withCrd ? ' + CRD' : ''} #${i + 1}: ${(ms / 1000).toFixed(2)} s, peak RSS ${JSON.stringify(byName)}`,
        );
        await cp.stop();
      }
      const s = summarize(times.map((t) => t / 1000));
      results.push({
        subject: 'capstan',
        metric: withCrd ? 'start-until-crd-served' : 'start-until-ready',
        unit: 's',
        ...s,
        peakRssMb: Math.max(...rss),
        notes: `etcd + kube-apiserver ${peerCatalogue().peers.kube?.version}; peakRssMb = sum of both programs`,
      });
    }
    return results;
  },
};

export default bench;
