// Child process of bench/kube-operator.bench.ts: the Capstan side, one subject per process so its peak RSS
// and heap are its own. Reads KUBECONFIG. Usage (with --expose-gc):
//   node --conditions=capstan-source --expose-gc bench/kube-operator-worker.ts operator <namespace> <concurrency>
//     the operator: prints {"ready":true} once its caches synced; on SIGTERM stops and prints its stats
//   node --conditions=capstan-source --expose-gc bench/kube-operator-worker.ts informer <namespace>
//     a reflector Store of the namespace's ConfigMaps: prints live heap and RSS before and after the sync
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Action,
  ConfigMap,
  Controller,
  controller,
  findCondition,
  KubeClient,
  predicates,
  type Reconciler,
  reflector,
  Store,
  setCondition,
  watcher,
} from '../src/kube/index.ts';
import { childData, Widget, type WidgetObject } from './kube-operator-widget.ts';

const [mode, namespace = 'default', concurrency = '1'] = process.argv.slice(2);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

function statusKb(field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(m?.[1] ?? Number.NaN);
}

/** Live heap after full collections: V8's heap plus memory outside it (buffers), garbage excluded. */
async function liveHeap(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc!();
    await sleep(10); // lets weak callbacks and finalizers run between collections
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

function sameData(have: Record<string, string> | undefined, want: Record<string, string>): boolean {
  if (!have || Object.keys(have).length !== Object.keys(want).length) return false;
  return Object.entries(want).every(([k, v]) => have[k] === v);
}

async function runOperator(): Promise<void> {
  const client = await KubeClient.fromKubeconfig();
  const durations: number[] = [];
  // What the controller-runtime peer does, step for step: read the cache, write only what differs.
  const reconcile: Reconciler<WidgetObject> = async (request, ctx) => {
    const started = performance.now();
    try {
      const widget = ctx.get();
      if (!widget) return Action.awaitChange();
      const want = childData(widget.spec);
      const child = ctx.cache(ConfigMap).getObject(`${request.name}-data`, request.namespace);
      if (!child || !sameData(child.data, want)) {
        await ctx.apply(ConfigMap, { metadata: { name: `${request.name}-data` }, data: want });
      }
      const generation = widget.metadata.generation;
      const ready = findCondition(widget.status?.conditions, 'Ready');
      if (ready?.status !== 'True' || ready.observedGeneration !== generation) {
        await ctx.applyStatus({
          conditions: setCondition(
            widget.status?.conditions,
            {
              type: 'Ready',
              status: 'True',
              reason: 'Applied',
              message: 'config map applied',
              observedGeneration: generation,
            },
            ctx.now(),
          ),
        });
      }
      return Action.awaitChange();
    } finally {
      durations.push(performance.now() - started);
    }
  };
  const definition = controller(Widget)
    .inNamespace(namespace)
    .withPredicates(predicates.generationChanged())
    .owns(ConfigMap)
    .withTuning({ concurrency: Number(concurrency), resyncMs: 0 })
    .build(reconcile);
  const operator = new Controller(definition, { client, fieldManager: 'bench-operator' });
  const stop = new AbortController();
  process.once('SIGTERM', () => stop.abort());
  process.once('SIGINT', () => stop.abort());
  const running = operator.run(stop.signal);
  const ready = setInterval(() => {
    if (!operator.synced) return;
    clearInterval(ready);
    process.stdout.write(`${JSON.stringify({ ready: true, rssKb: statusKb('VmRSS') })}\n`);
  }, 5);
  try {
    await running;
  } finally {
    clearInterval(ready);
    await client.close();
  }
  process.stdout.write(
    `${JSON.stringify({ reconciles: durations.length, ms: durations, peakRssKb: statusKb('VmHWM') })}\n`,
  );
}

async function runInformer(): Promise<void> {
  const client = await KubeClient.fromKubeconfig();
  const configMaps = client.resource(ConfigMap, namespace);
  const heapBefore = await liveHeap();
  const rssBeforeKb = statusKb('VmRSS');
  const started = performance.now();
  const stop = new AbortController();
  const store = new Store<ConfigMap>();
  // The reflector keeps watching while we measure, as client-go's informer does.
  const watching = (async () => {
    for await (const _ of reflector(store, watcher(configMaps, { signal: stop.signal }))) {
      // the store is the point; events are not needed
    }
  })();
  await store.ready();
  const syncMs = performance.now() - started;
  const heapAfter = await liveHeap();
  const rssAfterKb = statusKb('VmRSS');
  process.stdout.write(
    `${JSON.stringify({
      objects: store.size,
      syncMs,
      heapBefore,
      heapAfter,
      rssBeforeKb,
      rssAfterKb,
      peakRssKb: statusKb('VmHWM'),
    })}\n`,
  );
  stop.abort();
  await watching.catch(() => {});
  await client.close();
}

if (mode === 'operator') await runOperator();
else if (mode === 'informer') await runInformer();
else throw new Error(`unknown mode ${mode}: operator | informer`);
