// The controller: watches (primary kind, owned kinds, mapped kinds) fill caches and turn changes into keys; a
// work queue hands keys to the reconciler; Actions decide what happens next. The builder only records plain
// data (controller-runtime's builder and Pepr's bindings): `controller(Website).owns(Deployment)` is a spec a
// Manager runs, inspectable in a test without a cluster.
import {
  Counter,
  Gauge,
  Histogram,
  type Logger,
  linkedController,
  type MetricsRegistry,
} from '../runtime/index.ts';
import type { Action } from './action.ts';
import type { KubeClient } from './client.ts';
import type { Clock } from './clock.ts';
import { systemClock } from './clock.ts';
import { isTerminalError, KubeError, KubeErrorCode } from './errors.ts';
import { EventRecorder } from './events.ts';
import { type FinalizerEvent, finalizer } from './finalizer.ts';
import type { ObjectMeta, PartialObjectMetadata } from './objects.ts';
import { objectKey } from './objects.ts';
import { controllerOf, type HasMetadata, ownerReference } from './owner.ts';
import type { Predicate, WatchChange } from './predicates.ts';
import {
  defaultErrorPolicy,
  type ErrorPolicy,
  type ReconcileContext,
  type ReconcileRequest,
  type Reconciler,
  requestKey,
  requestOf,
} from './reconcile.ts';
import type { ResourceClient, Selector } from './resource-client.ts';
import { apiVersionOf, type ResourceType } from './resource-type.ts';
import { Store } from './store.ts';
import { stripManagedFields, type WatcherNotice, type WatcherOptions, watcher } from './watcher.ts';
import { type QueueBackoffOptions, type RateLimit, WorkQueue } from './work-queue.ts';

/** Maps a changed object of a watched kind to the primary objects to reconcile. */
export type Mapper<U> = (object: U) => readonly ReconcileRequest[];

/** One watch of a controller, as recorded by the builder. */
export interface WatchSpec {
  readonly type: ResourceType;
  /** `for`: the primary kind; `owns`: children found by their controlling owner; `watches`: by `mapper`. */
  readonly relation: 'for' | 'owns' | 'watches';
  readonly mapper?: Mapper<unknown>;
  readonly predicates: ReadonlyArray<Predicate<unknown>>;
  /** Watch and cache only metadata (`PartialObjectMetadata`): far less memory for many children. */
  readonly metadataOnly?: boolean;
}

/** Options of {@link ControllerBuilder.owns} and {@link ControllerBuilder.watches}. */
export interface ControllerWatchOptions<U> {
  /** Filters on this kind's changes (all must keep a change). */
  predicates?: Array<Predicate<U>>;
  /**
   * Watch and cache only metadata (names, labels, owners, versions; no spec or status), as kube-rs's
   * metadata watcher and controller-runtime's `OnlyMetadata`: enough to map a child to its owner, for a
   * fraction of the memory. Its cache is read with `ctx.metadataCache(type)`; predicates and mappers get
   * the metadata-only object.
   */
  metadataOnly?: boolean;
}

/** Tuning of a controller (all optional). */
export interface ControllerTuning {
  /** Keys reconciled at once. Default 1 (controller-runtime's MaxConcurrentReconciles). */
  concurrency?: number;
  /**
   * Reconcile every object this often even without changes (ms), to catch drift no event reports. Default
   * 10 h (controller-runtime's SyncPeriod); 0 turns it off.
   */
  resyncMs?: number;
  backoff?: QueueBackoffOptions;
  retryRateLimit?: RateLimit | false;
}

/** What a builder records: plain data, no client, nothing running. */
export interface ControllerSpec<T> {
  /** The metrics label and default field manager suffix. Default: the kind in lower case. */
  readonly name: string;
  readonly for: ResourceType<T>;
  /** Watch only this namespace (all namespaces when unset). */
  readonly namespace: string | undefined;
  /** Watch only primary objects with these labels (the apiserver filters). */
  readonly labelSelector: Selector | undefined;
  /** Every watch, the primary one first. */
  readonly watches: readonly WatchSpec[];
  readonly tuning: ControllerTuning;
}

/** A spec with its reconciler: what {@link Manager.add} and {@link Controller} take. */
export interface ControllerDefinition<T> {
  readonly spec: ControllerSpec<T>;
  readonly reconcile: Reconciler<T>;
  readonly errorPolicy: ErrorPolicy<T>;
}

/**
 * Records a controller fluently; each call returns a new builder (the old one is unchanged).
 *
 * ```ts
 * const website = controller(Website)
 *   .owns(Deployment)
 *   .watches(ConfigMap, (cm) => [{ namespace: cm.metadata?.namespace, name: cm.metadata?.labels?.site ?? '' }])
 *   .withPredicates(predicates.generationChanged())
 *   .build(reconcile, errorPolicy);
 * manager.add(website);
 * ```
 */
export class ControllerBuilder<T> {
  /** What was recorded so far. */
  readonly spec: ControllerSpec<T>;

  constructor(spec: ControllerSpec<T>) {
    this.spec = spec;
  }

  /** Name the controller (metrics label, field manager `capstan-<name>`, event reporter). */
  named(name: string): ControllerBuilder<T> {
    return new ControllerBuilder({ ...this.spec, name });
  }

  /** Watch and reconcile only objects in `namespace`. */
  inNamespace(namespace: string): ControllerBuilder<T> {
    return new ControllerBuilder({ ...this.spec, namespace });
  }

  /** Watch only primary objects whose labels match (filtered by the apiserver). */
  withLabelSelector(selector: Selector): ControllerBuilder<T> {
    return new ControllerBuilder({ ...this.spec, labelSelector: selector });
  }

  /** Filters on changes of the primary kind (all must keep a change). */
  withPredicates(...list: Array<Predicate<T>>): ControllerBuilder<T> {
    const [primary, ...rest] = this.spec.watches;
    const updated: WatchSpec = {
      ...primary!,
      predicates: [...primary!.predicates, ...(list as Array<Predicate<unknown>>)],
    };
    return new ControllerBuilder({ ...this.spec, watches: [updated, ...rest] });
  }

  /**
   * Reconcile the controlling owner (of the primary kind) when an object of `type` changes or goes: a
   * deleted child is recreated, a changed one put back.
   */
  owns<U>(type: ResourceType<U>, options: ControllerWatchOptions<U> = {}): ControllerBuilder<T> {
    const watch: WatchSpec = {
      type: type as ResourceType,
      relation: 'owns',
      predicates: (options.predicates ?? []) as Array<Predicate<unknown>>,
      ...(options.metadataOnly ? { metadataOnly: true } : {}),
    };
    return new ControllerBuilder({ ...this.spec, watches: [...this.spec.watches, watch] });
  }

  /** Reconcile what `mapper` names when an object of `type` changes or goes (its new and old state). */
  watches<U>(
    type: ResourceType<U>,
    mapper: Mapper<U>,
    options: ControllerWatchOptions<U> = {},
  ): ControllerBuilder<T> {
    const watch: WatchSpec = {
      type: type as ResourceType,
      relation: 'watches',
      mapper: mapper as Mapper<unknown>,
      predicates: (options.predicates ?? []) as Array<Predicate<unknown>>,
      ...(options.metadataOnly ? { metadataOnly: true } : {}),
    };
    return new ControllerBuilder({ ...this.spec, watches: [...this.spec.watches, watch] });
  }

  /** Concurrency, resync period, backoff and retry limit. */
  withTuning(tuning: ControllerTuning): ControllerBuilder<T> {
    return new ControllerBuilder({ ...this.spec, tuning: { ...this.spec.tuning, ...tuning } });
  }

  /** The definition to give a {@link Manager} (or a {@link Controller}). */
  build(reconcile: Reconciler<T>, errorPolicy: ErrorPolicy<T> = defaultErrorPolicy): ControllerDefinition<T> {
    return { spec: this.spec, reconcile, errorPolicy };
  }

  /**
   * Build and run it alone (no leader election) until `options.signal` aborts: the shortcut for scripts and
   * tests. Resolves once its queue drained and its watches stopped; rejects if a watch fails for good.
   */
  run(
    reconcile: Reconciler<T>,
    errorPolicy: ErrorPolicy<T> | undefined,
    options: ControllerOptions & { signal?: AbortSignal },
  ): Promise<void> {
    return new Controller(this.build(reconcile, errorPolicy), options).run(options.signal);
  }
}

/** Start recording a controller of the primary kind `type`. */
export function controller<T>(type: ResourceType<T>): ControllerBuilder<T> {
  return new ControllerBuilder<T>({
    name: type.kind.toLowerCase(),
    for: type,
    namespace: undefined,
    labelSelector: undefined,
    watches: [{ type: type as ResourceType, relation: 'for', predicates: [] }],
    tuning: {},
  });
}

/** What a running controller needs besides its definition. */
export interface ControllerOptions {
  client: KubeClient;
  /** Registry for `controller_runtime_*`, `workqueue_*` and `capstan_kube_cache_objects`. */
  metrics?: MetricsRegistry;
  logger?: Logger;
  /** Field manager of its writes. Default `capstan-<name>`. */
  fieldManager?: string;
  /** Default: one reporting as the controller's name. */
  events?: EventRecorder;
  /** How long shutdown waits for reconciles in progress before aborting them (ms). Default 30 000. */
  drainTimeoutMs?: number;
  /**
   * Watch tuning for every watch of the controller (stall timeout, page size, backoff, initial list). The
   * caches keep objects without `metadata.managedFields` ({@link stripManagedFields}: often the largest part
   * of an object, and a controller writes by apply or patch) unless `transform` says otherwise.
   */
  watcher?: Pick<
    WatcherOptions<unknown>,
    'stallTimeoutMs' | 'pageSize' | 'backoff' | 'watchTimeoutSeconds' | 'initialList' | 'transform'
  >;
  /** Watch notices (reconnects, relists, stalls); default: logged at info. */
  onNotice?: (notice: WatcherNotice, type: ResourceType) => void;
  clock?: Clock;
  random?: () => number;
}

interface ControllerMetrics {
  readonly total: Counter<'controller' | 'result'>;
  readonly errors: Counter<'controller'>;
  readonly terminal: Counter<'controller'>;
  readonly time: Histogram<'controller'>;
  readonly live: Set<Controller<unknown>>;
}

const metricsByRegistry = new WeakMap<MetricsRegistry, ControllerMetrics>();

// controller-runtime's metric names and labels, so its dashboards and alerts work unchanged.
function controllerMetrics(registry: MetricsRegistry): ControllerMetrics {
  const known = metricsByRegistry.get(registry);
  if (known) return known;
  const live = new Set<Controller<unknown>>();
  new Gauge({
    name: 'capstan_kube_cache_objects',
    help: 'Objects in a controller cache, by controller and kind.',
    labelNames: ['controller', 'kind'],
    registers: [registry],
    collect(this: Gauge<'controller' | 'kind'>) {
      this.reset();
      for (const c of live) {
        for (const [kind, size] of c.cacheSizes()) this.set({ controller: c.name, kind }, size);
      }
    },
  });
  const made: ControllerMetrics = {
    total: new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Reconciles by controller and result (success, error, requeue_after).',
      labelNames: ['controller', 'result'],
      registers: [registry],
    }),
    errors: new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Reconciles that threw, by controller.',
      labelNames: ['controller'],
      registers: [registry],
    }),
    terminal: new Counter({
      name: 'controller_runtime_terminal_reconcile_errors_total',
      help: 'Reconciles that threw a TerminalError (not retried), by controller.',
      labelNames: ['controller'],
      registers: [registry],
    }),
    time: new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Seconds per reconcile, by controller.',
      labelNames: ['controller'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    live,
  };
  metricsByRegistry.set(registry, made);
  return made;
}

interface Source {
  readonly spec: WatchSpec;
  readonly store: Store<unknown>;
  readonly resource: ResourceClient<unknown>;
}

function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** True when a signal was aborted because the leader lease was lost (reconciles stop at once then). */
function isLeaseLost(reason: unknown): boolean {
  return reason instanceof KubeError && reason.code === KubeErrorCode.leaseLost;
}

/**
 * A running controller: one watch and cache per kind of its spec, one {@link WorkQueue}, its reconciler.
 * Reconciling starts once every cache holds its first full list. Runs once: a new leadership term (the
 * Manager) makes a new one.
 */
export class Controller<T> {
  /** The controller's name. */
  readonly name: string;
  /** Its work queue (for metrics and tests). */
  readonly queue: WorkQueue;
  readonly #definition: ControllerDefinition<T>;
  readonly #client: KubeClient;
  readonly #logger: Logger | undefined;
  readonly #fieldManager: string;
  readonly #events: EventRecorder;
  readonly #drainMs: number;
  readonly #clock: Clock;
  readonly #metrics: ControllerMetrics | undefined;
  readonly #sources: Source[];
  readonly #primary: Source;
  readonly #watcherOptions: ControllerOptions['watcher'];
  readonly #onNotice: (notice: WatcherNotice, type: ResourceType) => void;
  #started = false;

  constructor(definition: ControllerDefinition<T>, options: ControllerOptions) {
    const spec = definition.spec;
    this.name = spec.name;
    this.#definition = definition;
    this.#client = options.client;
    this.#logger = options.logger;
    this.#fieldManager = options.fieldManager ?? `capstan-${spec.name}`;
    this.#events =
      options.events ??
      new EventRecorder({
        client: options.client,
        controller: spec.name,
        onError: (err) => this.#logger?.warn({ err, controller: this.name }, 'event not recorded'),
      });
    this.#drainMs = options.drainTimeoutMs ?? 30_000;
    this.#clock = options.clock ?? systemClock;
    this.#watcherOptions = options.watcher;
    this.#onNotice =
      options.onNotice ??
      ((notice, type) => this.#logger?.info({ controller: this.name, kind: type.kind, notice }, 'watch'));
    this.queue = new WorkQueue({
      name: spec.name,
      concurrency: spec.tuning.concurrency ?? 1,
      clock: this.#clock,
      ...(options.random ? { random: options.random } : {}),
      ...(spec.tuning.backoff ? { backoff: spec.tuning.backoff } : {}),
      ...(spec.tuning.retryRateLimit !== undefined ? { retryRateLimit: spec.tuning.retryRateLimit } : {}),
      ...(options.metrics ? { metrics: options.metrics } : {}),
    });
    // One cache per watch, not per kind: two watches of one kind may differ in selector (the primary one is
    // filtered, an owned one of the same kind is not), and a store takes the complete state of one watch.
    this.#sources = spec.watches.map((watch) => {
      const resource = this.#client.resource(watch.type, spec.namespace);
      return {
        spec: watch,
        store: new Store<unknown>(),
        resource: (watch.metadataOnly ? resource.metadataOnly() : resource) as ResourceClient<unknown>,
      };
    });
    this.#primary = this.#sources[0]!;
    this.#metrics = options.metrics ? controllerMetrics(options.metrics) : undefined;
  }

  /** True once every cache holds its first full list. */
  get synced(): boolean {
    return this.#sources.every((s) => s.store.hasSynced);
  }

  /** The primary kind's cache. */
  get store(): Store<T> {
    return this.#primary.store as Store<T>;
  }

  /** Objects per cached kind. */
  cacheSizes(): Array<[kind: string, size: number]> {
    const sizes = new Map<string, number>();
    for (const s of this.#sources)
      sizes.set(s.spec.type.kind, (sizes.get(s.spec.type.kind) ?? 0) + s.store.size);
    return [...sizes];
  }

  /**
   * Run until `signal` aborts: watch, fill the caches, then reconcile. On abort, no new key is taken, the
   * reconciles in progress get `drainTimeoutMs` to finish (none when the abort reason is a lost lease), and
   * the watches stop. Rejects with the watch's error if one fails for good (RBAC forbids it, the kind is not
   * served).
   */
  async run(signal?: AbortSignal): Promise<void> {
    if (this.#started) throw new KubeError(KubeErrorCode.usage, `controller ${this.name} runs once`);
    this.#started = true;
    const stop = linkedController(signal);
    let failure: unknown;
    const tasks = this.#sources.map((source) =>
      this.#watch(source, stop.signal).catch((err: unknown) => {
        failure ??= err;
        stop.abort(err);
      }),
    );
    this.#metrics?.live.add(this as Controller<unknown>);
    let resync: ReturnType<Clock['setTimeout']> | undefined;
    try {
      const synced = Promise.all(this.#sources.map((s) => s.store.ready({ signal: stop.signal })));
      await Promise.race([synced.catch(() => {}), aborted(stop.signal)]);
      if (!stop.signal.aborted) {
        this.#logger?.info({ controller: this.name, objects: this.store.size }, 'caches synced; reconciling');
        this.queue.start((key, workSignal) => this.#reconcile(key, workSignal));
        const resyncMs = this.#definition.spec.tuning.resyncMs ?? 36_000_000;
        if (resyncMs > 0) {
          const tick = () => {
            this.#enqueueAll();
            resync = this.#clock.setTimeout(tick, resyncMs);
          };
          resync = this.#clock.setTimeout(tick, resyncMs);
        }
        await aborted(stop.signal);
      }
    } finally {
      if (resync) this.#clock.clearTimeout(resync);
      const reason = signal?.reason ?? stop.signal.reason;
      const drain = isLeaseLost(reason) ? AbortSignal.abort(reason) : AbortSignal.timeout(this.#drainMs);
      await this.queue.shutdown({ signal: drain });
      stop.abort();
      await Promise.all(tasks);
      this.#metrics?.live.delete(this as Controller<unknown>);
    }
    if (failure !== undefined) throw failure;
  }

  #enqueueAll(): void {
    for (const key of this.#primary.store.keys()) this.queue.add(key);
  }

  async #watch(source: Source, signal: AbortSignal): Promise<void> {
    const { spec, store } = source;
    const isPrimary = source === this.#primary;
    const selector = isPrimary ? this.#definition.spec.labelSelector : undefined;
    const events = watcher(source.resource, {
      transform: stripManagedFields,
      ...this.#watcherOptions,
      ...(selector !== undefined ? { labelSelector: selector } : {}),
      signal,
      onNotice: (notice) => this.#onNotice(notice, spec.type),
    });
    for await (const event of events) {
      switch (event.type) {
        case 'init':
        case 'initApply':
          store.apply(event);
          break;
        case 'initDone':
          store.apply(event);
          // A (re)list may hide deletes and changes that happened while not watching: reconcile everything
          // (cheap: keys already queued are deduplicated). Before the primary cache syncs this is a no-op.
          this.#enqueueAll();
          break;
        case 'apply':
        case 'delete': {
          const old = store.get(objectKey(event.object as HasMetadata));
          store.apply(event);
          const change: WatchChange<unknown> = { type: event.type, object: event.object, old };
          if (spec.predicates.every((p) => p(change))) this.#enqueueFor(spec, change);
          break;
        }
      }
    }
  }

  #enqueueFor(spec: WatchSpec, change: WatchChange<unknown>): void {
    const states = change.old === undefined ? [change.object] : [change.object, change.old];
    for (const state of states) {
      const object = state as HasMetadata;
      switch (spec.relation) {
        case 'for':
          this.queue.add(objectKey(object));
          break;
        case 'owns': {
          const owner = controllerOf(object, this.#definition.spec.for);
          if (!owner) break;
          const ns = this.#definition.spec.for.namespaced ? object.metadata?.namespace : undefined;
          this.queue.add(requestKey({ ...(ns ? { namespace: ns } : {}), name: owner.name }));
          break;
        }
        case 'watches':
          for (const request of spec.mapper?.(state) ?? []) this.queue.add(requestKey(request));
          break;
      }
    }
  }

  async #reconcile(key: string, signal: AbortSignal): Promise<Action> {
    const request = requestOf(key);
    const ctx = this.#context(request, key, signal);
    const started = this.#clock.now();
    const labels = { controller: this.name };
    let action: Action;
    let result: string;
    try {
      action = await this.#definition.reconcile(request, ctx);
      result = action.kind === 'requeueAfter' ? 'requeue_after' : 'success';
    } catch (err) {
      result = 'error';
      this.#metrics?.errors.inc(labels);
      const terminal = isTerminalError(err);
      if (terminal) this.#metrics?.terminal.inc(labels);
      this.#logger?.[terminal ? 'warn' : 'info'](
        { err, controller: this.name, key, failures: ctx.failures },
        terminal ? 'reconcile failed for good' : 'reconcile failed; will retry',
      );
      action = this.#definition.errorPolicy(err, request, ctx);
    } finally {
      this.#metrics?.time.observe(labels, (this.#clock.now() - started) / 1000);
    }
    this.#metrics?.total.inc({ ...labels, result });
    return action;
  }

  /** The watches this controller keeps of `type`'s kind (the primary, owned and watched ones). */
  #sourcesOf(type: ResourceType): Source[] {
    return this.#sources.filter((s) => s.spec.type.group === type.group && s.spec.type.kind === type.kind);
  }

  /** Whether a watch holds every object of its kind: all do but a label-selected primary. */
  #seesAll(source: Source): boolean {
    return !(source === this.#primary && this.#definition.spec.labelSelector !== undefined);
  }

  #cacheOf(type: ResourceType, metadataOnly: boolean): Store<unknown> {
    const matching = this.#sourcesOf(type).filter((s) => (s.spec.metadataOnly ?? false) === metadataOnly);
    // A kind both reconciled (label-selected) and owned: the owned watch sees every object, the primary's
    // only the selected ones (those are in ctx.store too).
    const source = matching.find((s) => this.#seesAll(s)) ?? matching[0];
    if (!source) {
      throw new KubeError(
        KubeErrorCode.usage,
        `controller ${this.name} has no ${metadataOnly ? 'metadata-only ' : ''}watch of ${type.kind}: ` +
          `add .owns(${type.kind}${metadataOnly ? ', { metadataOnly: true }' : ''}) or .watches(...)` +
          (metadataOnly ? '' : '; a metadata-only watch is read with ctx.metadataCache'),
      );
    }
    return source.store;
  }

  /**
   * Read-your-own-writes: wait until the caches of `type` this controller keeps show `written` (its
   * resourceVersion or a later one), so the rest of this reconcile and the next one never act on the state
   * from before the write (a stale cache is how controllers create a child twice, or mistake their own
   * new child for a recreated one). Bounded: a cache that lags more than 10 s is reported by its own
   * watcher; the write itself succeeded, so the reconcile goes on.
   */
  async #awaitOwnWrite(type: ResourceType, written: HasMetadata, signal: AbortSignal): Promise<void> {
    const version = written.metadata?.resourceVersion;
    if (!version) return;
    const key = objectKey(written);
    const caught = (object: unknown): boolean => {
      const cached = (object as HasMetadata | undefined)?.metadata?.resourceVersion;
      if (cached === undefined) return false;
      if (cached === version) return true;
      // resourceVersions are opaque, but the apiserver's are etcd revisions: a larger one is later.
      return /^\d+$/.test(cached) && /^\d+$/.test(version) && BigInt(cached) > BigInt(version);
    };
    const { namespace } = this.#definition.spec;
    // Only caches that will ever hold the object: its namespace is watched, and no label selector
    // (the primary's only) may leave it out.
    if (namespace !== undefined && type.namespaced && written.metadata?.namespace !== namespace) return;
    const stores = this.#sourcesOf(type)
      .filter((s) => this.#seesAll(s))
      .map((s) => s.store);
    await Promise.all(
      stores.map((store) => store.waitFor(key, caught, { signal, timeoutMs: 10_000 }).catch(() => {})),
    );
  }

  #context(request: ReconcileRequest, key: string, signal: AbortSignal): ReconcileContext<T> {
    const spec = this.#definition.spec;
    const primaryStore = this.#primary.store as Store<T>;
    const resource = this.#primary.resource as ResourceClient<T>;
    const current = () => primaryStore.get(key);
    const fieldManager = this.#fieldManager;
    return {
      signal,
      controller: this.name,
      client: this.#client,
      resource,
      store: primaryStore,
      failures: this.queue.failures(key),
      fieldManager,
      get: current,
      cache: <U>(type: ResourceType<U>): Store<U> => this.#cacheOf(type, false) as Store<U>,
      metadataCache: (type: ResourceType): Store<PartialObjectMetadata> =>
        this.#cacheOf(type, true) as Store<PartialObjectMetadata>,
      apply: async <U>(type: ResourceType<U>, object: U, options: { owned?: boolean } & object = {}) => {
        const { owned = true, ...applyOptions } = options as { owned?: boolean } & Record<string, unknown>;
        const meta: ObjectMeta = { ...((object as HasMetadata).metadata ?? {}) };
        if (type.namespaced && !meta.namespace && request.namespace) meta.namespace = request.namespace;
        if (owned) {
          const owner = current() as HasMetadata | undefined;
          if (!owner) {
            throw new KubeError(
              KubeErrorCode.notFound,
              `${spec.for.kind} ${key} is gone: not applying its child`,
            );
          }
          const ref = ownerReference(spec.for, owner);
          meta.ownerReferences = [...(meta.ownerReferences ?? []).filter((r) => r.uid !== ref.uid), ref];
        }
        const body = { apiVersion: apiVersionOf(type), kind: type.kind, ...object, metadata: meta } as U;
        const applied = await this.#client.resource(type, meta.namespace).apply(body, {
          fieldManager,
          force: true,
          signal,
          ...applyOptions,
        });
        await this.#awaitOwnWrite(type, applied as HasMetadata, signal);
        return applied;
      },
      applyStatus: (status) =>
        resource.inNamespace(request.namespace).applyStatus(
          {
            apiVersion: apiVersionOf(spec.for),
            kind: spec.for.kind,
            metadata: { name: request.name, ...(request.namespace ? { namespace: request.namespace } : {}) },
            status,
          } as T,
          { fieldManager, force: true, signal },
        ),
      finalize: (name, handle) => {
        const object = current();
        if (object === undefined) return Promise.resolve({ kind: 'awaitChange' } as const);
        // T carries metadata (every kind does); the cast only tells the compiler.
        return finalizer(
          resource.inNamespace(request.namespace) as ResourceClient<T & HasMetadata>,
          name,
          object as T & HasMetadata,
          handle as (event: FinalizerEvent<T & HasMetadata>) => Promise<Action>,
          {
            signal,
            // The queue never runs this key twice at once: waiting here means the next run reads the write.
            waitForCache: (predicate) =>
              primaryStore
                .waitFor(key, predicate as (o: T | undefined) => boolean, { signal, timeoutMs: 10_000 })
                .catch(() => {}),
          },
        );
      },
      event: (event) => {
        const object = (current() as HasMetadata | undefined) ?? {
          metadata: { name: request.name, ...(request.namespace ? { namespace: request.namespace } : {}) },
        };
        return this.#events.record(spec.for, object, event);
      },
      now: () => this.#clock.now(),
    };
  }
}
