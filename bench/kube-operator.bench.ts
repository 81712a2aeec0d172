// An operator of 1,000 custom resources, Capstan vs controller-runtime, and the cache memory of 10,000
// watched ConfigMaps, Capstan's reflector Store vs client-go's informer (issue 10). One control plane
// (etcd + kube-apiserver from capstan/testing); every subject runs in its own process, one after the
// other, in its own namespace, and what it made is deleted before the next. The Capstan side is
// bench/kube-operator-worker.ts; the Go side is bench/peers/controller_runtime, built with `go build`.
//
// Operator: each Widget gets an owned ConfigMap (server-side apply), then status Ready=True (server-side
// apply on /status); both read their caches and write only what differs, 4 reconciles at a time. The wall
// time is seen by an independent watcher here, in the driver: from the first create until every Widget
// shows Ready=True. Two scenarios: widgets created while the operator runs, and an operator started on a
// backlog of widgets (its start-up, list and sync included).
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  ConfigMap,
  crdYaml,
  findCondition,
  type KubeClient,
  Namespace,
  type ResourceClient,
  watcher,
} from '../src/kube/index.ts';
import { bundleEntry } from '../src/peers/index.ts';
import { startControlPlane } from '../src/testing/index.ts';
import {
  type Benchmark,
  type BenchResult,
  buildGoPeer,
  goModuleVersion,
  percentile,
  summarize,
} from './harness.ts';
import { Widget, type WidgetObject } from './kube-operator-widget.ts';

const here = dirname(fileURLToPath(import.meta.url));
const goDir = join(here, 'peers', 'controller_runtime');
const worker = join(here, 'kube-operator-worker.ts');
/**
 * What the Capstan subject runs: the worker bundled with esbuild, as `capstanImageSpec` ships an operator
 * to a cluster (one ES module, no TypeScript to strip at start); `CAPSTAN_BENCH_FROM_SOURCE=1` runs the
 * TypeScript sources instead.
 */
let capstanEntry = worker;

/** Reconciles at a time, the same for both operators (controller-runtime's and Capstan's default is 1). */
const CONCURRENCY = 4;
/** Creates in flight from the driver. */
const CREATE_PARALLEL = 16;

type OperatorSubject = 'capstan' | 'controller-runtime';
type CacheSubject = 'capstan' | 'client-go';

/** What an operator process prints when it stops. */
interface OperatorStats {
  reconciles: number;
  ms: number[];
  peakRssKb: number;
}

/** What an informer process prints once synced. */
interface InformerStats {
  objects: number;
  syncMs: number;
  heapBefore: number;
  heapAfter: number;
  rssBeforeKb: number;
  rssAfterKb: number;
  peakRssKb: number;
}

/** A subject's process: its JSON lines as they come, and its exit. */
class SubjectProcess {
  readonly child: ChildProcess;
  readonly lines: unknown[] = [];
  readonly exited: Promise<number | null>;
  #stderr = '';
  #waiters: Array<() => void> = [];

  constructor(command: string, args: string[], env: NodeJS.ProcessEnv) {
    this.child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      try {
        this.lines.push(JSON.parse(line));
      } catch {
        return; // not ours (a library printing to stdout)
      }
      for (const w of this.#waiters.splice(0)) w();
    });
    this.child.stderr!.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-4000);
    });
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code) => {
        for (const w of this.#waiters.splice(0)) w();
        resolve(code);
      });
    });
  }

  get stderrTail(): string {
    return this.#stderr;
  }

  /** The first line matching `pick`, or a rejection when the process exits first or time runs out. */
  async line<T>(pick: (line: Record<string, unknown>) => boolean, timeoutMs: number): Promise<T> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find((l) => pick(l as Record<string, unknown>));
      if (found) return found as T;
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`subject exited (${this.child.exitCode ?? this.child.signalCode}): ${this.#stderr}`);
      }
      if (Date.now() > until) throw new Error(`no answer within ${timeoutMs} ms: ${this.#stderr}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1_000);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    await this.exited;
  }
}

function startSubject(
  subject: OperatorSubject | CacheSubject,
  goBin: string,
  kubeconfig: string,
  mode: 'operator' | 'informer',
  namespace: string,
): SubjectProcess {
  const env = { ...process.env, KUBECONFIG: kubeconfig };
  if (subject === 'capstan') {
    // CAPSTAN_BENCH_CPU_PROF=<dir>: a V8 CPU profile of each Capstan process (to find the hot path).
    const prof = process.env['CAPSTAN_BENCH_CPU_PROF'];
    return new SubjectProcess(
      process.execPath,
      [
        '--conditions=capstan-source',
        '--expose-gc',
        ...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []),
        capstanEntry,
        mode,
        namespace,
        String(CONCURRENCY),
      ],
      env,
    );
  }
  return new SubjectProcess(
    goBin,
    ['-mode', mode, '-namespace', namespace, '-concurrency', String(CONCURRENCY)],
    env,
  );
}

/** Run `fn` over 0..n-1 with `parallel` calls in flight. */
async function pool(n: number, parallel: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, parallel) }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

async function createWidgets(widgets: ResourceClient<WidgetObject>, n: number): Promise<void> {
  await pool(n, CREATE_PARALLEL, (i) =>
    widgets.create({
      apiVersion: 'bench.capstan.dev/v1',
      kind: 'Widget',
      metadata: { name: `w-${String(i).padStart(5, '0')}` },
      spec: { size: i, data: `widget ${i}: ${'settings '.repeat(20)}` },
    }),
  );
}

/**
 * Watch the widgets of a namespace (independently of the operator) until `n` show Ready=True; `synced`
 * resolves once the watch holds its first list, `done` with the time the n-th turned Ready.
 */
function watchReady(
  widgets: ResourceClient<WidgetObject>,
  n: number,
  signal: AbortSignal,
): { synced: Promise<void>; done: Promise<number> } {
  let onSynced!: () => void;
  const synced = new Promise<void>((resolve) => {
    onSynced = resolve;
  });
  const done = (async () => {
    const ready = new Set<string>();
    for await (const event of watcher(widgets, { signal })) {
      if (event.type === 'initDone') onSynced();
      if (event.type !== 'apply' && event.type !== 'initApply') continue;
      if (findCondition(event.object.status?.conditions, 'Ready')?.status === 'True') {
        ready.add(event.object.metadata.name!);
        if (ready.size >= n) return performance.now();
      }
    }
    throw new Error(`watch ended with ${ready.size} of ${n} ready`);
  })();
  done.catch(() => onSynced());
  return { synced, done };
}

async function withTimeout<T>(what: string, promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not within ${ms / 1000} s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

interface OperatorRun {
  wallS: number;
  /** From spawn until the operator said its caches synced. */
  readyS: number;
  /** Its RSS then: what the program needs before any reconcile. */
  readyRssMb: number;
  stats: OperatorStats;
}

async function runOperator(
  client: KubeClient,
  kubeconfig: string,
  goBin: string,
  subject: OperatorSubject,
  scenario: 'create' | 'backlog',
  namespace: string,
  n: number,
): Promise<OperatorRun> {
  await client.resource(Namespace).create({ metadata: { name: namespace } });
  const widgets = client.resource(Widget, namespace);
  const configMaps = client.resource(ConfigMap, namespace);
  if (scenario === 'backlog') await createWidgets(widgets, n);
  const stopWatch = new AbortController();
  const watch = watchReady(widgets, n, stopWatch.signal);
  let operator: SubjectProcess | undefined;
  try {
    await watch.synced;
    const spawned = performance.now();
    let t0 = spawned;
    operator = startSubject(subject, goBin, kubeconfig, 'operator', namespace);
    const ready = operator
      .line<{ rssKb: number }>((l) => l['ready'] === true, 120_000)
      .then((l) => ({
        readyS: (performance.now() - spawned) / 1000,
        readyRssMb: l.rssKb / 1024,
      }));
    if (scenario === 'create') {
      await ready;
      t0 = performance.now();
      await createWidgets(widgets, n);
    }
    const t1 = await withTimeout(`${subject}: ${n} widgets Ready`, watch.done, 300_000);
    const { readyS, readyRssMb } = await ready;
    await operator.stop();
    const stats = await operator.line<OperatorStats>((l) => Array.isArray(l['ms']), 10_000);
    // A benchmark of a broken operator is worth nothing: exactly one owned child per widget.
    const children = (await configMaps.listAll()).items.filter((c) =>
      c.metadata?.ownerReferences?.some((o) => o.kind === 'Widget' && o.controller),
    );
    if (children.length !== n) throw new Error(`${subject}: ${children.length} children for ${n} widgets`);
    return { wallS: (t1 - t0) / 1000, readyS, readyRssMb, stats };
  } finally {
    stopWatch.abort();
    await watch.done.catch(() => {});
    await operator?.stop();
    // Clean for the next subject (no kube-controller-manager here: children are deleted by hand).
    await widgets.deleteCollection();
    await configMaps.deleteCollection();
  }
}

async function createConfigMaps(client: KubeClient, namespace: string, n: number): Promise<void> {
  await client.resource(Namespace).create({ metadata: { name: namespace } });
  const configMaps = client.resource(ConfigMap, namespace);
  // About what a service's configuration looks like: recommended labels, an annotation, a small file.
  await pool(n, 32, (i) =>
    configMaps.create({
      metadata: {
        name: `config-${String(i).padStart(5, '0')}`,
        labels: {
          'app.kubernetes.io/name': 'shop',
          'app.kubernetes.io/component': `service-${i % 50}`,
          'app.kubernetes.io/managed-by': 'capstan-bench',
        },
        annotations: { 'bench.capstan.dev/revision': String(i) },
      },
      data: {
        'application.yaml': [
          `server:\n  port: ${8000 + (i % 100)}\n  name: service-${i}\n`,
          `database:\n  url: postgres://db-${i % 10}.shop.svc:5432/shop\n  pool: ${5 + (i % 20)}\n`,
          `features:\n  checkout: true\n  recommendations: ${i % 2 === 0}\n`,
          `logging:\n  level: info\n  format: json\n`,
        ].join(''),
        LOG_LEVEL: 'info',
      },
    }),
  );
}

const MiB = 2 ** 20;

const bench: Benchmark = {
  name: 'kube-operator',
  description:
    'capstan/kube vs controller-runtime v0.22 / client-go v0.34 against one kube-apiserver: 1,000 Widgets ' +
    'created → all Ready (owned ConfigMap by server-side apply, then status Ready), peak RSS and reconcile ' +
    'latency; cache memory of 10,000 watched ConfigMaps (reflector Store vs shared informer).',
  ratios: [
    {
      label: 'create 1,000 → all Ready, wall: Capstan / controller-runtime',
      numerator: { subject: 'capstan', metric: 'create_all_ready' },
      denominator: { subject: 'controller-runtime', metric: 'create_all_ready' },
      goal: { op: '<=', value: 1.2, why: 'issue 10' },
    },
    {
      label: 'start on 1,000 existing → all Ready, wall: Capstan / controller-runtime',
      numerator: { subject: 'capstan', metric: 'backlog_all_ready' },
      denominator: { subject: 'controller-runtime', metric: 'backlog_all_ready' },
    },
    {
      label: 'operator peak RSS: Capstan / controller-runtime',
      numerator: { subject: 'capstan', metric: 'operator_peak_rss' },
      denominator: { subject: 'controller-runtime', metric: 'operator_peak_rss' },
    },
    {
      label: 'operator RSS once synced (before any reconcile): Capstan / controller-runtime',
      numerator: { subject: 'capstan', metric: 'operator_ready_rss' },
      denominator: { subject: 'controller-runtime', metric: 'operator_ready_rss' },
    },
    {
      label: 'reconcile p50: Capstan / controller-runtime',
      numerator: { subject: 'capstan', metric: 'reconcile' },
      denominator: { subject: 'controller-runtime', metric: 'reconcile' },
    },
    {
      label: 'cache of 10,000 ConfigMaps, live heap: Capstan / client-go',
      numerator: { subject: 'capstan', metric: 'cache_heap' },
      denominator: { subject: 'client-go', metric: 'cache_heap' },
      goal: { op: '<=', value: 1.5, why: 'issue 10' },
    },
    {
      label: 'cache of 10,000 ConfigMaps, RSS growth: Capstan / client-go',
      numerator: { subject: 'capstan', metric: 'cache_rss' },
      denominator: { subject: 'client-go', metric: 'cache_rss' },
    },
  ],
  async run({ quick, log }) {
    const widgetsN = quick ? 200 : 1000;
    const configMapsN = quick ? 2000 : 10_000;
    const rounds = quick ? 1 : 3;
    const goBin = buildGoPeer(goDir, log);
    capstanEntry = process.env['CAPSTAN_BENCH_FROM_SOURCE'] ? worker : await bundleEntry(worker);
    log(`capstan subject: ${capstanEntry}`);
    const crVersion = goModuleVersion(goDir, 'sigs.k8s.io/controller-runtime');
    const cgVersion = goModuleVersion(goDir, 'k8s.io/client-go');
    await using cp = await startControlPlane({ crds: [crdYaml(Widget)] });
    const client = cp.client;
    const results: BenchResult[] = [];

    // The machine's load drifts over minutes: alternate the subjects, first one then the other first.
    const operatorSubjects: OperatorSubject[] = ['controller-runtime', 'capstan'];
    // Warm-up, not measured: the apiserver's first writes of a kind (and the page cache) are slower.
    for (const subject of operatorSubjects) {
      await runOperator(client, cp.kubeconfigPath, goBin, subject, 'create', `warmup-${subject}`, 50);
    }
    for (const scenario of ['create', 'backlog'] as const) {
      const runs = new Map<OperatorSubject, OperatorRun[]>(operatorSubjects.map((s) => [s, []]));
      for (let round = 0; round < rounds; round++) {
        const order = round % 2 === 0 ? operatorSubjects : [...operatorSubjects].reverse();
        for (const subject of order) {
          const ns = `${scenario}-${subject === 'capstan' ? 'capstan' : 'go'}-${round}`;
          const run = await runOperator(client, cp.kubeconfigPath, goBin, subject, scenario, ns, widgetsN);
          log(
            `${scenario} ${subject} #${round + 1}: ${run.wallS.toFixed(2)} s, ${run.stats.reconciles} reconciles, ` +
              `ready after ${run.readyS.toFixed(2)} s at ${run.readyRssMb.toFixed(0)} MiB RSS, ` +
              `peak RSS ${(run.stats.peakRssKb / 1024).toFixed(0)} MiB`,
          );
          runs.get(subject)!.push(run);
        }
      }
      for (const subject of operatorSubjects) {
        const r = runs.get(subject)!;
        const peakMb = r.map((x) => x.stats.peakRssKb / 1024);
        const version = subject === 'capstan' ? 'capstan/kube' : `controller-runtime ${crVersion}`;
        results.push({
          subject,
          metric: scenario === 'create' ? 'create_all_ready' : 'backlog_all_ready',
          unit: 's',
          ...summarize(r.map((x) => x.wallS)),
          peakRssMb: Math.max(...peakMb),
          notes:
            scenario === 'create'
              ? `${widgetsN} Widgets created (${CREATE_PARALLEL} in flight) while ${version} runs, until all Ready (independent watcher); ${CONCURRENCY} reconciles at a time`
              : `${version} started on ${widgetsN} existing Widgets: from spawn until all Ready (start-up, list and sync included)`,
        });
        if (scenario === 'backlog') {
          results.push({
            subject,
            metric: 'backlog_ready',
            unit: 's',
            ...summarize(r.map((x) => x.readyS)),
            notes: `from spawn until caches synced (${widgetsN} Widgets listed), part of backlog_all_ready`,
          });
        }
        if (scenario === 'create') {
          const ms = r.flatMap((x) => x.stats.ms);
          results.push(
            {
              subject,
              metric: 'operator_peak_rss',
              unit: 'MiB',
              ...summarize(peakMb),
              notes: `VmHWM of the operator process, median of ${r.length} runs of ${widgetsN} Widgets`,
            },
            {
              subject,
              metric: 'operator_ready_rss',
              unit: 'MiB',
              ...summarize(r.map((x) => x.readyRssMb)),
              notes: 'VmRSS once its caches synced, before the first Widget: the program itself',
            },
            {
              subject,
              metric: 'reconcile',
              unit: 'ms',
              value: percentile(ms, 50),
              p50: percentile(ms, 50),
              p99: percentile(ms, 99),
              samples: ms.length,
              notes: 'one reconcile, measured inside the reconciler (cache reads plus up to two applies)',
            },
          );
        }
      }
    }

    log(`creating ${configMapsN} ConfigMaps`);
    const cacheNs = 'cache';
    await createConfigMaps(client, cacheNs, configMapsN);
    const cacheSubjects: CacheSubject[] = ['client-go', 'capstan'];
    const informed = new Map<CacheSubject, InformerStats[]>(cacheSubjects.map((s) => [s, []]));
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? cacheSubjects : [...cacheSubjects].reverse();
      for (const subject of order) {
        const p = startSubject(subject, goBin, cp.kubeconfigPath, 'informer', cacheNs);
        const stats = await p.line<InformerStats>((l) => typeof l['objects'] === 'number', 300_000);
        await p.stop();
        if (stats.objects !== configMapsN) {
          throw new Error(`${subject}: cached ${stats.objects} of ${configMapsN} ConfigMaps`);
        }
        log(
          `cache ${subject} #${round + 1}: heap +${((stats.heapAfter - stats.heapBefore) / MiB).toFixed(1)} MiB, ` +
            `RSS +${((stats.rssAfterKb - stats.rssBeforeKb) / 1024).toFixed(1)} MiB, sync ${stats.syncMs.toFixed(0)} ms`,
        );
        informed.get(subject)!.push(stats);
      }
    }
    for (const subject of cacheSubjects) {
      const s = informed.get(subject)!;
      const heap = s.map((x) => (x.heapAfter - x.heapBefore) / MiB);
      const peak = Math.max(...s.map((x) => x.peakRssKb / 1024));
      const what =
        subject === 'capstan'
          ? 'reflector(Store, watcher) of capstan/kube'
          : `client-go ${cgVersion} SharedInformerFactory ConfigMap informer`;
      const perObject = (percentile(heap, 50) * MiB) / configMapsN;
      results.push(
        {
          subject,
          metric: 'cache_heap',
          unit: 'MiB',
          ...summarize(heap),
          peakRssMb: peak,
          notes: `${configMapsN} ConfigMaps (~650 B of data, managedFields kept by both); live heap after full GC, synced minus before (${perObject.toFixed(0)} B per object); ${what}`,
        },
        {
          subject,
          metric: 'cache_rss',
          unit: 'MiB',
          ...summarize(s.map((x) => (x.rssAfterKb - x.rssBeforeKb) / 1024)),
          notes: 'VmRSS after sync and a full GC minus before; includes freed memory the runtime keeps',
        },
        {
          subject,
          metric: 'cache_sync',
          unit: 'ms',
          ...summarize(s.map((x) => x.syncMs)),
          notes: `list (pages of 500) until the cache holds all ${configMapsN}`,
        },
      );
    }
    return results;
  },
};

export default bench;
