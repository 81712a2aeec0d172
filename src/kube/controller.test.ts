// The controller runtime against a real kube-apiserver, etcd and kube-controller-manager (one control plane
// for the file, one namespace per test): a ConfigMap "mirror" controller that owns a derived ConfigMap.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { MetricsRegistry } from '../runtime/index.ts';
import { type ControlPlane, eventually as eventuallyWithin, startControlPlane } from '../testing/index.ts';
import { Action } from './action.ts';
import { ConfigMap, Deployment, Event, Namespace } from './builtin.ts';
import { KubeClient } from './client.ts';
import { findCondition, setCondition } from './conditions.ts';
import { controller } from './controller.ts';
import { customResource } from './crd/define.ts';
import { crdYaml } from './crd/manifest.ts';
import { statusConditions } from './crd/schema.ts';
import { KubeError, KubeErrorCode, TerminalError } from './errors.ts';
import { predicates } from './predicates.ts';
import type { Reconciler } from './reconcile.ts';
import type { WatcherNotice } from './watcher.ts';

const eventually = <T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
) => eventuallyWithin(what, probe, { timeoutMs, intervalMs: 100 });

const FINALIZER = 'test.capstan.dev/mirror-cleanup';
/** Reconciles that found `managedFields` in the cache (controllers strip them by default). */
let cachedManagedFields = 0;

let cp: ControlPlane;
let client: KubeClient;

before(async () => {
  cp = await startControlPlane({ controllerManager: true });
  client = await KubeClient.fromKubeconfig({ path: cp.kubeconfigPath });
});

after(async () => {
  await client?.close();
  await cp?.stop();
});

async function namespace(name: string): Promise<string> {
  await client.resource(Namespace).create({ metadata: { name } });
  return name;
}

interface Mirror {
  /** Reconciles per key. */
  calls: Map<string, number>;
  cleanups: Map<string, number>;
  registry: MetricsRegistry;
  notices: WatcherNotice[];
  stop: AbortController;
  done: Promise<void>;
}

/** Start the mirror controller in `ns`: every ConfigMap labelled mirror=yes gets `<name>-derived`. */
function startMirror(ns: string, options: { backoffMs?: number } = {}): Mirror {
  const calls = new Map<string, number>();
  const cleanups = new Map<string, number>();
  const registry = new MetricsRegistry();
  const notices: WatcherNotice[] = [];
  const stop = new AbortController();
  const reconcile: Reconciler<ConfigMap> = async (request, ctx) => {
    const key = `${request.namespace}/${request.name}`;
    calls.set(key, (calls.get(key) ?? 0) + 1);
    // The state comes from the cache, never from the event that woke us.
    const source = ctx.get();
    if (!source) return Action.awaitChange();
    if (source.metadata?.managedFields !== undefined) cachedManagedFields++;
    return ctx.finalize(FINALIZER, async (event) => {
      if (event.type === 'cleanup') {
        cleanups.set(key, (cleanups.get(key) ?? 0) + 1);
        await ctx.event({ reason: 'CleanedUp', action: 'Cleanup' });
        return Action.awaitChange();
      }
      const mode = source.data?.['fail'];
      if (mode === 'terminal') throw new TerminalError(`${key}: asks for the impossible`);
      if (mode === 'yes') throw new Error(`${key}: flaky`);
      await ctx.apply(ConfigMap, {
        metadata: { name: `${request.name}-derived`, labels: { derived: 'yes' } },
        data: { ...source.data, from: request.name },
      });
      await ctx.event({ reason: 'Mirrored', action: 'Apply', note: `into ${request.name}-derived` });
      return Action.requeueAfter(10 * 60_000);
    });
  };
  const done = controller(ConfigMap)
    .named('mirror')
    .inNamespace(ns)
    .withLabelSelector({ mirror: 'yes' })
    .owns(ConfigMap)
    .withTuning({ concurrency: 2, backoff: { initialMs: options.backoffMs ?? 100, maxMs: 2_000 } })
    .run(reconcile, undefined, {
      client,
      metrics: registry,
      signal: stop.signal,
      drainTimeoutMs: 5_000,
      onNotice: (notice) => notices.push(notice),
    });
  return { calls, cleanups, registry, notices, stop, done };
}

async function metric(
  registry: MetricsRegistry,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const values = (await m.get()).values;
  const hit = values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
  return hit?.value ?? 0;
}

const derivedOf = (ns: string, name: string) => client.resource(ConfigMap, ns).getOptional(`${name}-derived`);

test('create → the owned object is applied with an owner reference; delete it → recreated; update → converges', async () => {
  const ns = await namespace('mirror-basic');
  const mirror = startMirror(ns);
  try {
    const sources = client.resource(ConfigMap, ns);
    const source = await sources.create({
      metadata: { name: 'site', labels: { mirror: 'yes' } },
      data: { color: 'blue', size: 'L' },
    });
    const derived = await eventually('derived created', () => derivedOf(ns, 'site'));
    assert.deepEqual(derived.data, { color: 'blue', size: 'L', from: 'site' });
    assert.deepEqual(
      derived.metadata?.ownerReferences?.map((r) => [r.kind, r.name, r.uid, r.controller]),
      [['ConfigMap', 'site', source.metadata?.uid, true]],
    );
    assert.ok(
      derived.metadata?.managedFields?.some(
        (f) =>
          (f as { manager?: string; operation?: string }).manager === 'capstan-mirror' &&
          (f as { operation?: string }).operation === 'Apply',
      ),
      'written by server-side apply as the controller',
    );

    // A child deleted by hand comes back: the owns watch wakes its owner.
    await sources.delete('site-derived');
    const recreated = await eventually('derived recreated', async () => {
      const d = await derivedOf(ns, 'site');
      return d && d.metadata?.uid !== derived.metadata?.uid ? d : undefined;
    });
    assert.equal(recreated.data?.['color'], 'blue');

    // A spec change converges, and a field dropped from the source is dropped from the child (SSA ownership).
    await sources.patch('site', { data: { color: 'green', size: null } });
    await eventually('derived converged', async () => {
      const d = await derivedOf(ns, 'site');
      return d?.data?.['color'] === 'green' && !('size' in (d.data ?? {})) ? d : undefined;
    });

    // Events: recorded about the source, a repeat counted in a series.
    const events = await eventually('Mirrored event', async () => {
      const list = (await client.resource(Event, ns).list()).items.filter(
        (e) => e.reason === 'Mirrored' && e.regarding?.name === 'site',
      );
      return list.length > 0 ? list : undefined;
    });
    assert.equal(events[0]?.reportingController, 'mirror');
    assert.equal(events[0]?.regarding?.kind, 'ConfigMap');
    assert.equal(events[0]?.regarding?.uid, source.metadata?.uid);
    assert.ok(
      events.length === 1 && (events[0]?.series?.count ?? 1) >= 2,
      `one event with a series, got ${events.length} (${JSON.stringify(events.map((e) => e.series))})`,
    );
    assert.ok(
      (await metric(mirror.registry, 'controller_runtime_reconcile_total', { result: 'requeue_after' })) >= 3,
    );
    assert.ok((await metric(mirror.registry, 'capstan_kube_cache_objects', { kind: 'ConfigMap' })) >= 2);
    assert.equal(cachedManagedFields, 0, 'the cache keeps objects without managedFields');
  } finally {
    mirror.stop.abort();
    await mirror.done;
  }
});

test('finalizer: added on the first reconcile; on delete the cleanup runs once, then the object and (GC) its child go', async () => {
  const ns = await namespace('mirror-finalizer');
  const mirror = startMirror(ns);
  try {
    const sources = client.resource(ConfigMap, ns);
    await sources.create({ metadata: { name: 'app', labels: { mirror: 'yes' } }, data: { a: '1' } });
    await eventually('derived created', () => derivedOf(ns, 'app'));
    const withFinalizer = await sources.get('app');
    assert.deepEqual(withFinalizer.metadata?.finalizers, [FINALIZER]);

    await sources.delete('app');
    await eventually('source gone', async () => ((await sources.getOptional('app')) ? undefined : true));
    // The garbage collector of kube-controller-manager follows the owner reference.
    await eventually(
      'derived collected',
      async () => ((await derivedOf(ns, 'app')) ? undefined : true),
      60_000,
    );
    await sleep(500);
    assert.equal(mirror.cleanups.get(`${ns}/app`), 1, 'cleanup ran exactly once');
    const cleaned = (await client.resource(Event, ns).list()).items.filter((e) => e.reason === 'CleanedUp');
    assert.equal(cleaned.length, 1);
  } finally {
    mirror.stop.abort();
    await mirror.done;
  }
});

test('errors back off and retry (visible in metrics) until fixed; a TerminalError is not retried', async () => {
  const ns = await namespace('mirror-errors');
  const mirror = startMirror(ns, { backoffMs: 100 });
  try {
    const sources = client.resource(ConfigMap, ns);
    await sources.create({ metadata: { name: 'flaky', labels: { mirror: 'yes' } }, data: { fail: 'yes' } });
    await sources.create({
      metadata: { name: 'doomed', labels: { mirror: 'yes' } },
      data: { fail: 'terminal' },
    });
    await eventually('retries counted', async () =>
      (await metric(mirror.registry, 'workqueue_retries_total', { name: 'mirror' })) >= 4 ? true : undefined,
    );
    const errors = await metric(mirror.registry, 'controller_runtime_reconcile_errors_total', {
      controller: 'mirror',
    });
    assert.ok(errors >= 5, `errors ${errors}`);
    // Backoff, not a hot loop: 100 ms doubling (jittered down to half) gives a handful in a few seconds.
    const flakyCalls = mirror.calls.get(`${ns}/flaky`) ?? 0;
    assert.ok(flakyCalls < 40, `flaky reconciled ${flakyCalls} times`);

    await sleep(2_000);
    // The first reconcile adds the finalizer and fails; the finalizer's own event wakes it once more.
    const doomedCalls = mirror.calls.get(`${ns}/doomed`) ?? 0;
    assert.ok(doomedCalls >= 1 && doomedCalls <= 2, `doomed reconciled ${doomedCalls} times`);
    assert.equal(
      await metric(mirror.registry, 'controller_runtime_terminal_reconcile_errors_total', {
        controller: 'mirror',
      }),
      doomedCalls,
    );
    assert.equal(await derivedOf(ns, 'doomed'), undefined);

    // Fixed: both converge (a change wakes the terminal one too).
    await sources.patch('flaky', { data: { fail: 'no' } });
    await sources.patch('doomed', { data: { fail: 'no' } });
    await eventually('flaky converged', () => derivedOf(ns, 'flaky'));
    await eventually('doomed converged', () => derivedOf(ns, 'doomed'));
  } finally {
    mirror.stop.abort();
    await mirror.done;
  }
});

test('a watch the apiserver refuses for good (RBAC) ends the controller with its error, not silently', async () => {
  const ns = await namespace('mirror-forbidden');
  const nobody = new KubeClient({ ...cp.clientConfig, impersonateUser: 'nobody' });
  try {
    const run = controller(ConfigMap)
      .inNamespace(ns)
      .run(async () => Action.awaitChange(), undefined, { client: nobody, drainTimeoutMs: 1_000 });
    await assert.rejects(run, (e: unknown) => e instanceof KubeError && e.code === KubeErrorCode.forbidden);
  } finally {
    await nobody.close();
  }
});

test('the apiserver restarts while 200 objects reconcile: the controller reconnects (reported) and all converge, one child each', async () => {
  const ns = await namespace('mirror-restart');
  const mirror = startMirror(ns);
  const derivedList = async () =>
    (await client.resource(ConfigMap, ns).list({ labelSelector: { derived: 'yes' } })).items;
  try {
    const sources = client.resource(ConfigMap, ns);
    const uids = new Map<string, string>();
    const names = Array.from({ length: 200 }, (_, i) => `s${i}`);
    for (let i = 0; i < names.length; i += 20) {
      await Promise.all(
        names.slice(i, i + 20).map(async (name) => {
          const created = await sources.create({
            metadata: { name, labels: { mirror: 'yes' } },
            data: { v: '1' },
          });
          uids.set(name, created.metadata?.uid ?? '');
        }),
      );
    }
    const before = (await derivedList()).length;
    await cp.restartApiServer({ whileDown: () => sleep(2_000) });
    console.log(`apiserver restarted with ${before} of 200 children made`);
    // Changes after the restart reach the controller through its resumed (or relisted) watches.
    for (let i = 0; i < 20; i++) await sources.patch(`s${i}`, { data: { v: '2' } });
    await sources.create({ metadata: { name: 'late', labels: { mirror: 'yes' } }, data: { v: '2' } });
    const converged = await eventually(
      'all converged after the restart',
      async () => {
        const list = await derivedList();
        const ok =
          list.length === 201 &&
          list.every((d) => {
            const from = d.data?.['from'] ?? '';
            const want = from === 'late' || Number(from.slice(1)) < 20 ? '2' : '1';
            return d.data?.['v'] === want;
          });
        return ok ? list : undefined;
      },
      120_000,
    );
    const kinds = new Set(mirror.notices.map((n) => n.type));
    assert.ok(kinds.has('reconnecting'), `notices: ${[...kinds].join(', ')}`);
    // No duplicate children: one per source, owned by that source (by uid).
    assert.equal(new Set(converged.map((d) => d.metadata?.name)).size, 201);
    for (const d of converged) {
      const refs = d.metadata?.ownerReferences ?? [];
      assert.equal(refs.length, 1, d.metadata?.name);
      const from = d.data?.['from'] ?? '';
      if (from !== 'late') assert.equal(refs[0]?.uid, uids.get(from), d.metadata?.name);
    }
  } finally {
    mirror.stop.abort();
    await mirror.done;
  }
});

/** A custom resource with a status subresource, defined with capstan/kube's CRD builder. */
const Widget = customResource('Widget')
  .inGroup('test.capstan.dev')
  .version('v1', {
    spec: z.object({ replicas: z.int32().min(0).default(1), image: z.string() }),
    status: z.object({ replicas: z.int32().optional(), conditions: statusConditions().optional() }),
  })
  .storedAs('v1');

test('a CRD controller: owns a Deployment, watches ConfigMaps through a mapper, reports conditions; status writes do not wake it', async () => {
  await cp.installCrds([crdYaml(Widget)]);
  const ns = await namespace('widgets');
  let reconciles = 0;
  const stop = new AbortController();
  const done = controller(Widget)
    .inNamespace(ns)
    .withPredicates(predicates.generationChanged())
    .owns(Deployment, { predicates: [predicates.generationChanged()] })
    .watches(ConfigMap, (cm) => {
      const widget = cm.metadata?.labels?.['widget'];
      return widget ? [{ namespace: cm.metadata?.namespace, name: widget }] : [];
    })
    .withTuning({ resyncMs: 0 })
    .run(
      async (request, ctx) => {
        reconciles++;
        const widget = ctx.get();
        if (!widget) return Action.awaitChange();
        const config = ctx.cache(ConfigMap).getObject(`${request.name}-config`, request.namespace);
        const greeting = config?.data?.['greeting'] ?? 'none';
        const labels = { widget: request.name };
        await ctx.apply(Deployment, {
          metadata: { name: request.name },
          spec: {
            replicas: widget.spec.replicas,
            selector: { matchLabels: labels },
            template: {
              metadata: { labels },
              spec: {
                containers: [
                  { name: 'app', image: widget.spec.image, env: [{ name: 'GREETING', value: greeting }] },
                ],
              },
            },
          },
        });
        const running = widget.spec.replicas > 0;
        await ctx.applyStatus({
          replicas: widget.spec.replicas,
          conditions: setCondition(
            widget.status?.conditions,
            {
              type: 'Ready',
              status: running ? 'True' : 'False',
              reason: running ? 'Running' : 'ScaledToZero',
              message: `greeting ${greeting}`,
              observedGeneration: widget.metadata?.generation,
            },
            ctx.now(),
          ),
        });
        return Action.awaitChange();
      },
      undefined,
      { client, signal: stop.signal, drainTimeoutMs: 5_000 },
    );
  try {
    const widgets = client.resource(Widget, ns);
    await widgets.create({ metadata: { name: 'w' }, spec: { replicas: 2, image: 'nginx:1.27' } } as never);
    const deployment = await eventually('deployment', () => client.resource(Deployment, ns).getOptional('w'));
    assert.equal(deployment.spec?.replicas, 2);
    assert.equal(deployment.metadata?.ownerReferences?.[0]?.kind, 'Widget');
    const ready1 = await eventually('Ready', async () => {
      const c = findCondition((await widgets.get('w')).status?.conditions, 'Ready');
      return c?.status === 'True' ? c : undefined;
    });
    assert.equal(ready1.observedGeneration, 1);
    assert.equal(ready1.message, 'greeting none');

    // A ConfigMap mapped to the widget wakes it; the condition's message changes, its transition time not.
    await sleep(1_100); // so a moved transition time would show (second precision)
    await client.resource(ConfigMap, ns).create({
      metadata: { name: 'w-config', labels: { widget: 'w' } },
      data: { greeting: 'hello' },
    });
    await eventually('greeting applied', async () => {
      const d = await client.resource(Deployment, ns).get('w');
      return d.spec?.template?.spec?.containers?.[0]?.env?.[0]?.value === 'hello' ? true : undefined;
    });
    const ready2 = await eventually('condition message', async () => {
      const c = findCondition((await widgets.get('w')).status?.conditions, 'Ready');
      return c?.message === 'greeting hello' ? c : undefined;
    });
    assert.equal(ready2.lastTransitionTime, ready1.lastTransitionTime, 'same status: transition time kept');

    // A spec change (generation 2) converges: replicas, and a new status with a new transition time.
    await widgets.patch('w', { spec: { replicas: 0 } });
    await eventually('scaled to zero', async () =>
      (await client.resource(Deployment, ns).get('w')).spec?.replicas === 0 ? true : undefined,
    );
    const ready3 = await eventually('not ready', async () => {
      const c = findCondition((await widgets.get('w')).status?.conditions, 'Ready');
      return c?.status === 'False' ? c : undefined;
    });
    assert.equal(ready3.observedGeneration, 2);
    assert.notEqual(ready3.lastTransitionTime, ready1.lastTransitionTime);

    // Status writes (ours, another manager's, the Deployment controller's) do not move a generation: no wake.
    await sleep(1_500);
    const before = reconciles;
    await widgets.patchStatus('w', { status: { replicas: 7 } });
    await sleep(1_500);
    assert.equal(reconciles, before, 'a status write woke the controller');
  } finally {
    stop.abort();
    await done;
  }
});

test('periodic resync reconciles unchanged objects', async () => {
  const ns = await namespace('resync');
  await client.resource(ConfigMap, ns).create({ metadata: { name: 'quiet' } });
  const runs: number[] = [];
  const stop = new AbortController();
  const done = controller(ConfigMap)
    .inNamespace(ns)
    .withTuning({ resyncMs: 700 })
    .run(
      async (request) => {
        if (request.name === 'quiet') runs.push(Date.now());
        return Action.awaitChange();
      },
      undefined,
      { client, signal: stop.signal },
    );
  try {
    await eventually('three resyncs', () => (runs.length >= 4 ? true : undefined), 20_000);
  } finally {
    stop.abort();
    await done;
  }
});

test('a metadata-only owns watch: children map to owners and come back, and their cache holds no data', async () => {
  const ns = await namespace('metadata-only');
  const seen: Array<{ hasChild: boolean; childHasData: boolean }> = [];
  const stop = new AbortController();
  const done = controller(ConfigMap)
    .inNamespace(ns)
    .withLabelSelector({ parent: 'yes' })
    .owns(ConfigMap, { metadataOnly: true })
    .run(
      async (request, ctx) => {
        const parent = ctx.get();
        if (!parent) return Action.awaitChange();
        const child = ctx.metadataCache(ConfigMap).getObject(`${request.name}-child`, request.namespace);
        seen.push({ hasChild: child !== undefined, childHasData: child !== undefined && 'data' in child });
        await ctx.apply(ConfigMap, {
          metadata: { name: `${request.name}-child` },
          data: { big: 'x'.repeat(1000) },
        });
        return Action.awaitChange();
      },
      undefined,
      { client, signal: stop.signal },
    );
  try {
    const configMaps = client.resource(ConfigMap, ns);
    await configMaps.create({ metadata: { name: 'p', labels: { parent: 'yes' } } });
    const child = await eventually('child', () => configMaps.getOptional('p-child'));
    await configMaps.delete('p-child');
    await eventually('child recreated', async () => {
      const again = await configMaps.getOptional('p-child');
      return again && again.metadata?.uid !== child.metadata?.uid ? true : undefined;
    });
    await eventually('a reconcile saw the child in the metadata cache', () =>
      seen.some((s) => s.hasChild) ? true : undefined,
    );
    assert.ok(
      seen.every((s) => !s.childHasData),
      'metadata-only: no data in the cache',
    );
  } finally {
    stop.abort();
    await done;
  }
});

test('read-your-own-writes: after ctx.apply the cache shows the write, in this reconcile and the next', async () => {
  const ns = await namespace('own-writes');
  // Per reconcile: did the cache hold the child applied just before, at the version the apiserver returned?
  const sawOwnWrite: boolean[] = [];
  const stop = new AbortController();
  const done = controller(ConfigMap)
    .inNamespace(ns)
    .withLabelSelector({ parent: 'yes' })
    .owns(ConfigMap)
    .run(
      async (request, ctx) => {
        const parent = ctx.get();
        if (!parent) return Action.awaitChange();
        const applied = await ctx.apply(ConfigMap, {
          metadata: { name: `${request.name}-child` },
          data: { generation: parent.data?.['generation'] ?? '0' },
        });
        const cached = ctx.cache(ConfigMap).getObject(`${request.name}-child`, request.namespace);
        sawOwnWrite.push(cached?.metadata?.resourceVersion === applied.metadata?.resourceVersion);
        return Action.awaitChange();
      },
      undefined,
      { client, signal: stop.signal },
    );
  try {
    const configMaps = client.resource(ConfigMap, ns);
    await configMaps.create({
      metadata: { name: 'p', labels: { parent: 'yes' } },
      data: { generation: '1' },
    });
    // Each update changes the child, so each reconcile writes a new version the cache has not seen yet.
    for (let generation = 2; generation <= 6; generation++) {
      await eventually(`reconcile of generation ${generation - 1}`, async () => {
        const child = await configMaps.getOptional('p-child');
        return child?.data?.['generation'] === String(generation - 1) ? true : undefined;
      });
      await configMaps.patch('p', { data: { generation: String(generation) } });
    }
    await eventually('the last generation applied, and its reconcile done', async () => {
      const child = await configMaps.getOptional('p-child');
      return child?.data?.['generation'] === '6' && sawOwnWrite.length >= 6 ? true : undefined;
    });
    assert.deepEqual(
      sawOwnWrite.filter((saw) => !saw),
      [],
      'every reconcile read its own write back from the cache',
    );
  } finally {
    stop.abort();
    await done;
  }
});
