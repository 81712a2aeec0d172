// Collectors in the style of client_golang's Describe/Collect: the source is read in the background
// on an interval and scrapes serve the cached result with its age. A scrape never waits on a source.
import { MetricsError } from './errors.ts';
import { isValidLabelName, isValidMetricName, renderLabelPairs } from './format.ts';
import type { CachedFamily, CachedSample } from './serialize.ts';

/** The metric types a collector may describe. */
export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

/** Static description of one metric family a collector produces (client_golang's `Desc`). */
export interface MetricDesc {
  /** Family name; counters conventionally end in `_total`. */
  name: string;
  help: string;
  type: MetricType;
  /** OpenMetrics unit (`seconds`, `bytes`); the name must end with `_<unit>`. */
  unit?: string;
  /** If given, samples may only use these label names (plus `le` / `quantile` where the type needs them). */
  labelNames?: readonly string[];
}

/**
 * One sample a collector reports. `name` is the family name, or for histograms and summaries the
 * family name plus `_bucket` (with an `le` label), `_sum` or `_count`.
 */
export interface Sample {
  name: string;
  labels?: Readonly<Record<string, string | number>>;
  value: number;
}

/** A metrics source read in the background; see {@link MetricsRegistry.registerCollector}. */
export interface Collector {
  /** Prefix of the collector's health metrics (`<name>_last_collect_age_seconds`, ...). */
  name: string;
  /** The families `collect` may return samples for. Called once, at registration. */
  describe(): readonly MetricDesc[];
  /** Read the source. `signal` aborts on timeout and when the registry closes. */
  collect(signal: AbortSignal): Promise<readonly Sample[]> | readonly Sample[];
  /** Pause between the end of one collection and the start of the next (ms, default 15000). */
  intervalMs?: number;
  /** A collection slower than this fails and keeps the previous values (ms, default `intervalMs`). */
  timeoutMs?: number;
}

/** Where a collector stands; what its health gauges expose. */
export interface CollectorStatus {
  name: string;
  /** Seconds since the last successful collection; `Infinity` before the first one. */
  ageSeconds: number;
  /** Whether the most recent collection succeeded. */
  lastSuccess: boolean;
  /** Successful collections so far. */
  collections: number;
  /** Failed collections so far (errors, invalid samples, timeouts). */
  errors: number;
  lastError?: MetricsError;
  /** True while the source is being read. */
  collecting: boolean;
}

interface SampleTarget {
  desc: MetricDesc;
  suffix: string;
}

/** Runs one collector: background loop, timeout, validation, cache. Internal to the registry. */
export class CollectorRunner {
  readonly name: string;
  readonly #collector: Collector;
  readonly #descs: readonly MetricDesc[];
  readonly #targets = new Map<string, SampleTarget>();
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #abort = new AbortController();
  readonly #onError: ((err: MetricsError, name: string) => void) | undefined;
  #cache: CachedFamily[] = [];
  #lastSuccessAt: number | undefined;
  #lastOk = false;
  #collections = 0;
  #errors = 0;
  #lastError: MetricsError | undefined;
  #source: Promise<unknown> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(collector: Collector, onError?: (err: MetricsError, name: string) => void) {
    if (!isValidMetricName(collector.name)) {
      throw new MetricsError('CAP_ERR_RUNTIME_METRICS_INVALID', `invalid collector name "${collector.name}"`);
    }
    this.name = collector.name;
    this.#collector = collector;
    this.#onError = onError;
    this.#intervalMs = collector.intervalMs ?? 15_000;
    this.#timeoutMs = collector.timeoutMs ?? this.#intervalMs;
    if (!(this.#intervalMs > 0) || !(this.#timeoutMs > 0)) {
      throw new MetricsError(
        'CAP_ERR_RUNTIME_METRICS_INVALID',
        `collector "${this.name}": intervalMs and timeoutMs must be > 0`,
      );
    }
    this.#descs = collector.describe().map((d) => ({ ...d }));
    const seen = new Set<string>();
    for (const d of this.#descs) {
      validateDesc(d, this.name);
      if (seen.has(d.name)) {
        throw new MetricsError(
          'CAP_ERR_RUNTIME_METRICS_DUPLICATE',
          `collector "${this.name}" describes "${d.name}" twice`,
        );
      }
      seen.add(d.name);
      const suffixes =
        d.type === 'histogram'
          ? ['_bucket', '_sum', '_count']
          : d.type === 'summary'
            ? ['', '_sum', '_count']
            : [''];
      for (const suffix of suffixes) this.#targets.set(`${d.name}${suffix}`, { desc: d, suffix });
    }
  }

  /** Names of every family this collector exposes, health gauges included. */
  familyNames(): string[] {
    return [...this.#healthNames(), ...this.#descs.map((d) => d.name)];
  }

  /** Start the background loop: a first collection now, then one every `intervalMs`. */
  start(): void {
    this.#tick();
  }

  /** Collect now (after any collection in progress) and resolve when done; rejects with its error. */
  async collectNow(options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#closed)
      throw new MetricsError('CAP_ERR_RUNTIME_METRICS_CLOSED', `collector "${this.name}" is closed`);
    const waitFor = async <T>(p: Promise<T>): Promise<T> => {
      const signal = options.signal;
      if (!signal) return p;
      signal.throwIfAborted();
      return new Promise<T>((resolve, reject) => {
        const onAbort = () =>
          reject(
            new MetricsError('CAP_ERR_RUNTIME_METRICS_ABORTED', 'collectNow aborted', {
              cause: signal.reason,
            }),
          );
        signal.addEventListener('abort', onAbort, { once: true });
        p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
      });
    };
    if (this.#source) await waitFor(this.#source.catch(() => {}));
    await waitFor(this.#collectOnce());
  }

  /** Current state of the collector. */
  status(): CollectorStatus {
    return {
      name: this.name,
      ageSeconds: this.#ageSeconds(),
      lastSuccess: this.#lastOk,
      collections: this.#collections,
      errors: this.#errors,
      ...(this.#lastError ? { lastError: this.#lastError } : {}),
      collecting: this.#source !== undefined,
    };
  }

  /** Health gauges (computed now) followed by the cached families. Never waits on the source. */
  families(): CachedFamily[] {
    const [age, success, errors] = this.#healthNames();
    return [
      {
        name: age!,
        help: `Seconds since collector ${this.name} last collected successfully (+Inf before the first success).`,
        type: 'gauge',
        unit: 'seconds',
        samples: [{ suffix: '', labels: '', value: this.#ageSeconds() }],
      },
      {
        name: success!,
        help: `Whether the last collection of collector ${this.name} succeeded (1) or failed (0).`,
        type: 'gauge',
        samples: [{ suffix: '', labels: '', value: this.#lastOk ? 1 : 0 }],
      },
      {
        name: errors!,
        help: `Failed collections (errors, invalid samples, timeouts) of collector ${this.name}.`,
        type: 'counter',
        samples: [{ suffix: '', labels: '', value: this.#errors }],
      },
      ...this.#cache,
    ];
  }

  /** Stop the loop and abort a collection in progress. */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#abort.abort(new MetricsError('CAP_ERR_RUNTIME_METRICS_CLOSED', `collector "${this.name}" closed`));
  }

  #healthNames(): string[] {
    return [
      `${this.name}_last_collect_age_seconds`,
      `${this.name}_last_collect_success`,
      `${this.name}_collect_errors_total`,
    ];
  }

  #ageSeconds(): number {
    return this.#lastSuccessAt === undefined
      ? Number.POSITIVE_INFINITY
      : (performance.now() - this.#lastSuccessAt) / 1000;
  }

  #tick(): void {
    if (this.#closed) return;
    // A source that ignores its abort signal may still be running after a timeout: never stack a
    // second read on top of it, just look again next interval.
    const run = this.#source ? Promise.resolve() : this.#collectOnce().catch(() => {});
    run.finally(() => {
      if (this.#closed) return;
      this.#timer = setTimeout(() => this.#tick(), this.#intervalMs);
      this.#timer.unref();
    });
  }

  async #collectOnce(): Promise<void> {
    const signal = AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.#timeoutMs)]);
    const source = Promise.resolve().then(() => this.#collector.collect(signal));
    this.#source = source;
    source.then(
      () => this.#clearSource(source),
      () => this.#clearSource(source),
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new MetricsError(
              'CAP_ERR_RUNTIME_METRICS_COLLECT_TIMEOUT',
              `collector "${this.name}" did not finish within ${this.#timeoutMs} ms`,
            ),
          ),
        this.#timeoutMs,
      );
      timer.unref();
    });
    try {
      const samples = await Promise.race([source, timeout]);
      // A source that honours its signal may still return something after the abort: too late.
      if (signal.aborted) {
        throw this.#abort.signal.aborted
          ? new MetricsError('CAP_ERR_RUNTIME_METRICS_CLOSED', `collector "${this.name}" closed`)
          : new MetricsError(
              'CAP_ERR_RUNTIME_METRICS_COLLECT_TIMEOUT',
              `collector "${this.name}" did not finish within ${this.#timeoutMs} ms`,
            );
      }
      this.#cache = this.#render(samples);
      this.#lastSuccessAt = performance.now();
      this.#lastOk = true;
      this.#collections++;
    } catch (err) {
      const error =
        err instanceof MetricsError
          ? err
          : new MetricsError(
              'CAP_ERR_RUNTIME_METRICS_COLLECT',
              `collector "${this.name}" failed: ${describeError(err)}`,
              {
                cause: err,
              },
            );
      this.#errors++;
      this.#lastOk = false;
      this.#lastError = error;
      this.#onError?.(error, this.name);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  #clearSource(p: Promise<unknown>): void {
    if (this.#source === p) this.#source = undefined;
  }

  #render(samples: readonly Sample[]): CachedFamily[] {
    if (!Array.isArray(samples)) {
      throw new MetricsError(
        'CAP_ERR_RUNTIME_METRICS_INVALID',
        `collector "${this.name}" returned no sample array`,
      );
    }
    const byFamily = new Map<string, CachedSample[]>(this.#descs.map((d) => [d.name, []]));
    for (const s of samples) {
      const target = this.#targets.get(s?.name);
      if (!target) {
        throw new MetricsError(
          'CAP_ERR_RUNTIME_METRICS_INVALID',
          `collector "${this.name}" returned sample "${s?.name}" it did not describe`,
        );
      }
      if (typeof s.value !== 'number') {
        throw new MetricsError(
          'CAP_ERR_RUNTIME_METRICS_INVALID',
          `collector "${this.name}": sample "${s.name}" value is not a number`,
        );
      }
      const { desc, suffix } = target;
      const labels = s.labels ?? {};
      for (const k of Object.keys(labels)) {
        const special =
          (k === 'le' && suffix === '_bucket') ||
          (k === 'quantile' && desc.type === 'summary' && suffix === '');
        if (special) continue;
        if (!isValidLabelName(k) || (desc.labelNames && !desc.labelNames.includes(k))) {
          throw new MetricsError(
            'CAP_ERR_RUNTIME_METRICS_INVALID',
            `collector "${this.name}": sample "${s.name}" has bad label "${k}"`,
          );
        }
      }
      if (suffix === '_bucket' && labels.le === undefined) {
        throw new MetricsError(
          'CAP_ERR_RUNTIME_METRICS_INVALID',
          `collector "${this.name}": bucket sample without "le"`,
        );
      }
      byFamily
        .get(desc.name)!
        .push({ suffix, labels: renderLabelPairs(labels), value: s.value, raw: labels });
    }
    return this.#descs.map((d) => ({
      name: d.name,
      help: d.help,
      type: d.type,
      ...(d.unit ? { unit: d.unit } : {}),
      samples: byFamily.get(d.name)!,
    }));
  }
}

/** Check a family description: name, help, type, unit suffix, label names. */
export function validateDesc(d: MetricDesc, owner: string): void {
  const bad = (why: string) =>
    new MetricsError('CAP_ERR_RUNTIME_METRICS_INVALID', `${owner}: metric "${d?.name}" ${why}`);
  if (!d || typeof d.name !== 'string' || !isValidMetricName(d.name)) throw bad('has an invalid name');
  if (typeof d.help !== 'string' || d.help === '') throw bad('needs a help text');
  if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(d.type))
    throw bad(`has unknown type "${d.type}"`);
  if (d.unit !== undefined) validateUnit(d.name, d.unit, d.type);
  for (const l of d.labelNames ?? []) {
    if (!isValidLabelName(l)) throw bad(`has invalid label name "${l}"`);
  }
}

/** OpenMetrics requires the family name to end with `_<unit>` (before a counter's `_total`). */
export function validateUnit(name: string, unit: unknown, type: string): void {
  const family = type === 'counter' ? name.replace(/_total$/, '') : name;
  if (typeof unit !== 'string' || !/^[a-zA-Z0-9_]+$/.test(unit) || !family.endsWith(`_${unit}`)) {
    throw new MetricsError(
      'CAP_ERR_RUNTIME_METRICS_INVALID',
      `metric "${name}": unit "${String(unit)}" must be a suffix of the name (OpenMetrics rule)`,
    );
  }
}

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
