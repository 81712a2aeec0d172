// MetricsRegistry: a prom-client Registry (so `registers: [registry]` and collectDefaultMetrics work
// unchanged) with Capstan's serializer, background collectors and a cardinality guard.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter as PromCounter, Registry } from 'prom-client';
import { type Collector, CollectorRunner, type CollectorStatus, validateUnit } from './collector.ts';
import { MetricsError } from './errors.ts';
import { type ExpositionFormat, OPENMETRICS_CONTENT_TYPE } from './format.ts';
import { type DropInfo, installSeriesGuard, type OnDrop } from './guard.ts';
import { type MetricsHandlerOptions, serveMetrics } from './http.ts';
import {
  DEFAULT_SLICE_BYTES,
  type PromMetricLike,
  type SerializeInput,
  type SerializeOptions,
  serialize,
} from './serialize.ts';

/** Options of a {@link MetricsRegistry}. */
export interface MetricsRegistryOptions {
  /**
   * Default series (label set) limit for each metric registered here; a metric's own `maxSeries`
   * wins. Writes beyond it are dropped and counted in `capstan_metrics_dropped_series_total`.
   * Default 10000; `Infinity` turns the guard off.
   */
  maxSeriesPerMetric?: number;
  /** Called once per metric, on its first dropped series. */
  onDrop?: OnDrop;
  /** Called when a collector's collection fails. */
  onCollectError?: (err: MetricsError, collector: string) => void;
  /** Longest synchronous serialization stretch before yielding to the event loop (ms, default 5). */
  sliceMs?: number;
  /**
   * Most bytes serialized in one synchronous stretch before yielding (default 256 KiB); a stretch may
   * exceed it by one metric's header and one series' lines. Bounds the event-loop block in work, on a fast
   * or a slow machine.
   */
  sliceBytes?: number;
}

/** Options of {@link MetricsRegistry.expose}. */
export interface ExposeOptions {
  /** `text` (0.0.4, default) or `openmetrics`. */
  format?: ExpositionFormat;
  signal?: AbortSignal;
}

/** Name of the counter the cardinality guard increments, labelled by metric name. */
export const DROPPED_SERIES_METRIC = 'capstan_metrics_dropped_series_total';

interface GuardedMetric extends PromMetricLike {
  maxSeries?: number;
  onDrop?: OnDrop;
}

/**
 * A prom-client compatible registry whose exposition is fast and sliced (it never holds the event
 * loop for more than a few ms, nor for more than `sliceBytes` of output), with OpenMetrics negotiation,
 * background collectors and a per-metric series limit. Pass it in `registers: [registry]` of any prom-client metric.
 */
export class MetricsRegistry extends Registry {
  readonly #maxSeries: number;
  readonly #onDrop: OnDrop | undefined;
  readonly #onCollectError: ((err: MetricsError, collector: string) => void) | undefined;
  readonly #sliceMs: number;
  readonly #sliceBytes: number;
  readonly #collectors = new Map<string, CollectorRunner>();
  readonly #collectorFamilies = new Map<string, string>();
  readonly #warned = new Set<string>();
  readonly #dropped: PromCounter<'metric'>;
  #cacheKey = Symbol('capstan.metrics.labels');
  #altCacheKey = Symbol('capstan.metrics.labels.om');
  #closed = false;

  constructor(options: MetricsRegistryOptions = {}) {
    super();
    const limit = options.maxSeriesPerMetric ?? 10_000;
    if (!(limit > 0)) {
      throw new MetricsError(
        'CAP_ERR_RUNTIME_METRICS_INVALID',
        `maxSeriesPerMetric must be > 0, got ${limit}`,
      );
    }
    this.#maxSeries = limit;
    this.#onDrop = options.onDrop;
    this.#onCollectError = options.onCollectError;
    this.#sliceMs = options.sliceMs ?? 5;
    this.#sliceBytes = options.sliceBytes ?? DEFAULT_SLICE_BYTES;
    if (!(this.#sliceBytes >= 1)) {
      throw new MetricsError(
        'CAP_ERR_RUNTIME_METRICS_INVALID',
        `sliceBytes must be >= 1, got ${this.#sliceBytes}`,
      );
    }
    this.#dropped = new PromCounter({
      name: DROPPED_SERIES_METRIC,
      help: 'Series dropped by the cardinality guard because their metric reached its series limit.',
      labelNames: ['metric'],
      registers: [this],
      // One series per metric name: bounded by the registry itself, so no guard of its own.
      maxSeries: Number.POSITIVE_INFINITY,
    } as ConstructorParameters<typeof PromCounter<'metric'>>[0]);
  }

  /** Register a prom-client metric (called by prom-client's constructors via `registers`). */
  override registerMetric(metric: Parameters<Registry['registerMetric']>[0]): void {
    const m = metric as unknown as GuardedMetric;
    if (this.#closed) throw new MetricsError('CAP_ERR_RUNTIME_METRICS_CLOSED', 'registry is closed');
    const owner = this.#collectorFamilies.get(m.name);
    if (owner) {
      throw new MetricsError(
        'CAP_ERR_RUNTIME_METRICS_DUPLICATE',
        `metric "${m.name}" is already exposed by collector "${owner}"`,
      );
    }
    if (m.unit !== undefined) validateUnit(m.name, m.unit, m.type);
    const existing = this.getSingleMetric(m.name);
    if (existing && existing !== metric) {
      throw new MetricsError(
        'CAP_ERR_RUNTIME_METRICS_DUPLICATE',
        `A metric with the name ${m.name} has already been registered.`,
      );
    }
    super.registerMetric(metric);
    const limit = m.maxSeries ?? this.#maxSeries;
    if (m.maxSeries !== undefined && !(m.maxSeries > 0)) {
      throw new MetricsError('CAP_ERR_RUNTIME_METRICS_INVALID', `metric "${m.name}": maxSeries must be > 0`);
    }
    // Exemplar-enabled counters read back the series they just wrote; a dropped write would make
    // prom-client throw, so those metrics are left unguarded. Without a limit the guard still keeps
    // the series index the serializer reads.
    if (!m.enableExemplars && m.hashMap && typeof m.hashMap === 'object') {
      let told = false;
      installSeriesGuard(m, limit, (labels) =>
        this.#reportDrop(m, { metric: m.name, labels, limit }, () => {
          if (told) return false;
          told = true;
          return true;
        }),
      );
    }
  }

  /** prom-client's default labels; also invalidates the label blocks cached on series. */
  override setDefaultLabels(labels: object): void {
    super.setDefaultLabels(labels);
    this.#cacheKey = Symbol('capstan.metrics.labels');
    this.#altCacheKey = Symbol('capstan.metrics.labels.om');
  }

  /** prom-client's `metrics()`: the whole exposition as one string, built in slices. */
  override async metrics(): Promise<string> {
    const format: ExpositionFormat =
      (this.contentType as string) === OPENMETRICS_CONTENT_TYPE ? 'openmetrics' : 'text';
    return this.metricsString({ format });
  }

  /** The whole exposition as one string in the given format. */
  async metricsString(options: ExposeOptions = {}): Promise<string> {
    // Bytes, decoded once at the end: one 7 MB decode is cheaper than a string per chunk and a join.
    const chunks: Buffer[] = [];
    for await (const chunk of serialize(this.#input(), this.#serializeOptions(options))) chunks.push(chunk);
    return Buffer.concat(chunks).toString('utf8');
  }

  /**
   * The exposition as a stream of UTF-8 chunks (64 KiB target), yielding to the event loop between
   * slices. Collector families are served from their caches.
   */
  expose(options: ExposeOptions = {}): AsyncIterable<Buffer> {
    return serialize(this.#input(), this.#serializeOptions(options));
  }

  #input(): SerializeInput {
    return {
      metrics: this.getMetricsAsArray() as unknown as PromMetricLike[],
      families: () => [...this.#collectors.values()].flatMap((c) => c.families()),
      defaultLabels: (this as unknown as { _defaultLabels?: Record<string, unknown> })._defaultLabels,
      cacheKey: this.#cacheKey,
      altCacheKey: this.#altCacheKey,
    };
  }

  #serializeOptions(options: ExposeOptions): SerializeOptions {
    return {
      format: options.format ?? 'text',
      sliceMs: this.#sliceMs,
      sliceBytes: this.#sliceBytes,
      ...(options.signal ? { signal: options.signal } : {}),
    };
  }

  /**
   * Register a background collector. Its first collection starts now; scrapes serve the cached
   * samples plus `<name>_last_collect_age_seconds`, `<name>_last_collect_success` and
   * `<name>_collect_errors_total`. Returns a function that unregisters it.
   */
  registerCollector(collector: Collector): () => void {
    if (this.#closed) throw new MetricsError('CAP_ERR_RUNTIME_METRICS_CLOSED', 'registry is closed');
    if (this.#collectors.has(collector.name)) {
      throw new MetricsError(
        'CAP_ERR_RUNTIME_METRICS_DUPLICATE',
        `collector "${collector.name}" is already registered`,
      );
    }
    const runner = new CollectorRunner(collector, (err, name) => this.#onCollectError?.(err, name));
    const names = runner.familyNames();
    for (const n of names) {
      const clash = this.getSingleMetric(n) ? 'a registered metric' : this.#collectorFamilies.get(n);
      if (clash) {
        throw new MetricsError(
          'CAP_ERR_RUNTIME_METRICS_DUPLICATE',
          `collector "${runner.name}": "${n}" is already exposed by ${clash}`,
        );
      }
    }
    for (const n of names) this.#collectorFamilies.set(n, runner.name);
    this.#collectors.set(runner.name, runner);
    runner.start();
    return () => this.unregisterCollector(runner.name);
  }

  /** Stop and remove a collector; its families disappear from the next scrape. */
  unregisterCollector(name: string): boolean {
    const runner = this.#collectors.get(name);
    if (!runner) return false;
    runner.close();
    this.#collectors.delete(name);
    for (const [family, owner] of this.#collectorFamilies)
      if (owner === name) this.#collectorFamilies.delete(family);
    return true;
  }

  /** Run one collector (or all) now and wait for it; rejects with the collection's error. */
  async collectNow(name?: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    const runners = name === undefined ? [...this.#collectors.values()] : [this.#collectors.get(name)];
    if (runners.some((r) => r === undefined)) {
      throw new MetricsError('CAP_ERR_RUNTIME_METRICS_INVALID', `no collector named "${name}"`);
    }
    await Promise.all(runners.map((r) => r!.collectNow(options)));
  }

  /** Status of every registered collector. */
  collectorStatus(): CollectorStatus[] {
    return [...this.#collectors.values()].map((c) => c.status());
  }

  /**
   * Serve `GET /metrics` (or `options.path`) and return true; return false for any other path so
   * the caller can route it elsewhere.
   */
  handle(
    req: IncomingMessage,
    res: ServerResponse,
    options: MetricsHandlerOptions & { path?: string } = {},
  ): boolean {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== (options.path ?? '/metrics')) return false;
    serveMetrics(this, req, res, options);
    return true;
  }

  /** Stop every collector. Metrics stay readable; new collectors are refused. */
  close(): Promise<void> {
    this.#closed = true;
    for (const name of [...this.#collectors.keys()]) this.unregisterCollector(name);
    return Promise.resolve();
  }

  /** Same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #reportDrop(metric: GuardedMetric, info: DropInfo, first: () => boolean): void {
    this.#dropped.inc({ metric: info.metric });
    if (!first()) return;
    // "Logged once": one callback per metric, not one per dropped write.
    if (!this.#warned.has(info.metric)) {
      this.#warned.add(info.metric);
      this.#onDrop?.(info);
    }
    metric.onDrop?.(info);
  }
}
