// The controller's work queue, after client-go's workqueue (dedup, dirty/processing sets, delaying and
// rate-limited adds) with the fixes its users needed: one FIFO for everything, so keys from the initial list
// are never starved by hot keys (controller-runtime 3496, 3157 were a priority queue doing exactly that),
// and a worker pool owned by the queue, so "never the same key twice at once" holds by construction.
import {
  backoffDelay,
  Counter,
  Gauge,
  Histogram,
  type Jitter,
  type MetricsRegistry,
} from '../runtime/index.ts';
import { Action } from './action.ts';
import { type Clock, type ClockTimer, systemClock } from './clock.ts';
import { KubeError, KubeErrorCode } from './errors.ts';

/** Per-key exponential backoff after failures: `initialMs · 2^(failures−1)`, capped, then jittered. */
export interface QueueBackoffOptions {
  /** Delay after the first failure, before jitter (ms). Default 5. */
  initialMs?: number;
  /** Cap (ms). Default 300 000 (5 min): longer makes a fixed problem look like a broken operator. */
  maxMs?: number;
  /** Default `equal` (between half and all of the planned delay, so it still grows). */
  jitter?: Jitter;
}

/** A token bucket: `perSecond` tokens a second, at most `burst` saved up. */
export interface RateLimit {
  perSecond: number;
  burst: number;
}

/** Options of a {@link WorkQueue}. */
export interface WorkQueueOptions {
  /** The `name` label of the queue's metrics (the controller's name). */
  name: string;
  /** Keys handled at once (different keys; one key is never handled twice at once). Default 4. */
  concurrency?: number;
  backoff?: QueueBackoffOptions;
  /**
   * Overall limit on retries after failures, shared by all keys (client-go's default: 10/s, burst 100): a
   * failure storm over many keys cannot hammer the apiserver however small each key's backoff still is.
   * New and changed keys are not limited. `false` turns it off.
   */
  retryRateLimit?: RateLimit | false;
  /** Registry for the `workqueue_*` metrics. */
  metrics?: MetricsRegistry;
  /** Default {@link systemClock}. */
  clock?: Clock;
  /** A number in [0, 1) for backoff jitter; inject to make delays exact in tests. Default `Math.random`. */
  random?: () => number;
  /** A handler threw (the key is retried with backoff). Default: ignored (the handler should log). */
  onError?: (key: string, error: unknown) => void;
}

/** Handles one key; returns what to do with it next (nothing = {@link Action.awaitChange}). */
// biome-ignore lint/suspicious/noConfusingVoidType: so a plain `async (key) => { ... }` is a handler.
export type WorkHandler = (key: string, signal: AbortSignal) => Promise<Action | undefined | void>;

/** A snapshot of a queue, for tests and debugging. */
export interface WorkQueueStats {
  /** Keys waiting for a worker. */
  depth: number;
  /** Keys being handled. */
  processing: number;
  /** Keys with a timer (requeueAfter, backoff). */
  waiting: number;
  /** Adds that queued a key (adds of a key already queued are not counted). */
  adds: number;
  /** Retries scheduled after failures. */
  retries: number;
}

/**
 * A token bucket on an injectable clock. `reserve()` takes a token and returns how long to wait before
 * using it (0 when one was there), like Go's `rate.Limiter.Reserve`: callers schedule instead of blocking.
 */
export class TokenBucket {
  readonly #perMs: number;
  readonly #burst: number;
  readonly #clock: Clock;
  #tokens: number;
  #last: number;

  constructor(limit: RateLimit, clock: Clock = systemClock) {
    if (!(limit.perSecond > 0) || !(limit.burst >= 1) || !Number.isFinite(limit.perSecond)) {
      throw new KubeError(
        KubeErrorCode.usage,
        `rate limit wants perSecond > 0 and burst >= 1, got ${limit.perSecond}/s burst ${limit.burst}`,
      );
    }
    this.#perMs = limit.perSecond / 1000;
    this.#burst = limit.burst;
    this.#clock = clock;
    this.#tokens = limit.burst;
    this.#last = clock.now();
  }

  /** Take a token; the ms to wait before it is really there. */
  reserve(): number {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) * this.#perMs);
    this.#last = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : -this.#tokens / this.#perMs;
  }
}

/** A FIFO of strings with O(1) push and shift (an array's shift is O(n): 10,000 keys would be O(n²)). */
class Fifo {
  #items: Array<string | undefined> = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(key: string): void {
    this.#items.push(key);
  }

  shift(): string | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const key = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return key;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}

interface QueueMetrics {
  readonly adds: Counter<'name'>;
  readonly retries: Counter<'name'>;
  readonly queueDuration: Histogram<'name'>;
  readonly workDuration: Histogram<'name'>;
  readonly live: Set<WorkQueue>;
}

const metricsByRegistry = new WeakMap<MetricsRegistry, QueueMetrics>();
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

// client-go's workqueue metric names and `name` label, so controller-runtime dashboards and alerts work as is.
function queueMetrics(registry: MetricsRegistry): QueueMetrics {
  const known = metricsByRegistry.get(registry);
  if (known) return known;
  const live = new Set<WorkQueue>();
  const gauge = (name: string, help: string, read: (q: WorkQueue, now: number) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['name'],
      registers: [registry],
      collect(this: Gauge<'name'>) {
        this.reset();
        for (const q of live) this.set({ name: q.name }, read(q, q.clock.now()));
      },
    });
  gauge('workqueue_depth', 'Keys waiting for a worker.', (q) => q.stats().depth);
  gauge('workqueue_unfinished_work_seconds', 'Seconds of work in progress, summed over keys.', (q, now) =>
    q.runningSince().reduce((sum, t) => sum + (now - t) / 1000, 0),
  );
  gauge('workqueue_longest_running_processor_seconds', 'Seconds the longest running key has run.', (q, now) =>
    Math.max(0, ...q.runningSince().map((t) => (now - t) / 1000)),
  );
  const made: QueueMetrics = {
    adds: new Counter({
      name: 'workqueue_adds_total',
      help: 'Keys queued.',
      labelNames: ['name'],
      registers: [registry],
    }),
    retries: new Counter({
      name: 'workqueue_retries_total',
      help: 'Retries scheduled after failures.',
      labelNames: ['name'],
      registers: [registry],
    }),
    queueDuration: new Histogram({
      name: 'workqueue_queue_duration_seconds',
      help: 'Seconds a key waited in the queue before a worker took it.',
      labelNames: ['name'],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    }),
    workDuration: new Histogram({
      name: 'workqueue_work_duration_seconds',
      help: 'Seconds a worker spent on a key.',
      labelNames: ['name'],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    }),
    live,
  };
  metricsByRegistry.set(registry, made);
  return made;
}

/**
 * A work queue of keys (`namespace/name`) with its own workers:
 *
 * - **dedup**: a key added while queued is queued once;
 * - **one at a time per key**: a key added while a worker has it runs again once that worker is done;
 * - **FIFO**: keys are taken in the order they became ready (after a delay, at the back), so however hot
 *   some keys are, every queued key is taken within one pass over the keys ahead of it;
 * - **per-key exponential backoff** with jitter after failures, reset by a success, plus an overall token
 *   bucket on retries;
 * - **timers**: `addAfter` (requeueAfter); an immediate add replaces a key's pending timer;
 * - **bounded concurrency**, and a shutdown that drains work in progress (or aborts it on a signal).
 *
 * Keys are opaque strings to the queue. Nothing is persisted: after a restart the initial list refills it.
 */
export class WorkQueue {
  /** The metrics label. */
  readonly name: string;
  /** The clock its delays run on. */
  readonly clock: Clock;
  readonly #concurrency: number;
  readonly #backoff: Required<QueueBackoffOptions>;
  readonly #random: () => number;
  readonly #bucket: TokenBucket | undefined;
  readonly #metrics: QueueMetrics | undefined;
  readonly #onError: ((key: string, error: unknown) => void) | undefined;

  readonly #queue = new Fifo();
  /** Keys that need handling: queued, or re-added while being handled. With when they were added. */
  readonly #dirty = new Map<string, number>();
  /** Keys a worker has, with when it took them. */
  readonly #processing = new Map<string, number>();
  readonly #waiting = new Map<string, { at: number; timer: ClockTimer }>();
  readonly #failures = new Map<string, number>();
  readonly #abort = new AbortController();
  #handler: WorkHandler | undefined;
  #stopping = false;
  #adds = 0;
  #retries = 0;
  #idleWaiters: Array<() => void> = [];

  constructor(options: WorkQueueOptions) {
    const concurrency = options.concurrency ?? 4;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new KubeError(KubeErrorCode.usage, `concurrency must be an integer >= 1, got ${concurrency}`);
    }
    this.name = options.name;
    this.clock = options.clock ?? systemClock;
    this.#concurrency = concurrency;
    this.#backoff = {
      initialMs: options.backoff?.initialMs ?? 5,
      maxMs: options.backoff?.maxMs ?? 300_000,
      jitter: options.backoff?.jitter ?? 'equal',
    };
    this.#random = options.random ?? Math.random;
    // Fail at construction, not on the first failure.
    backoffDelay(0, { ...this.#backoff, random: this.#random });
    const limit = options.retryRateLimit ?? { perSecond: 10, burst: 100 };
    this.#bucket = limit === false ? undefined : new TokenBucket(limit, this.clock);
    this.#onError = options.onError;
    if (options.metrics) {
      this.#metrics = queueMetrics(options.metrics);
      this.#metrics.live.add(this);
    }
  }

  /** Queue `key` now (a no-op if it is already queued, or once the queue is shut down). */
  add(key: string): void {
    if (this.#stopping) return;
    const waiting = this.#waiting.get(key);
    if (waiting) {
      this.clock.clearTimeout(waiting.timer);
      this.#waiting.delete(key);
    }
    if (this.#dirty.has(key)) return;
    this.#dirty.set(key, this.clock.now());
    this.#adds++;
    this.#metrics?.adds.inc({ name: this.name });
    if (!this.#processing.has(key)) this.#queue.push(key);
    this.#pump();
  }

  /**
   * Queue `key` after `ms`. If it is queued already, or due sooner, nothing changes; if it is due later,
   * the sooner time replaces that.
   */
  addAfter(key: string, ms: number): void {
    if (this.#stopping) return;
    if (!(ms > 0)) {
      this.add(key);
      return;
    }
    if (this.#dirty.has(key)) return;
    const at = this.clock.now() + ms;
    const existing = this.#waiting.get(key);
    if (existing) {
      if (existing.at <= at) return;
      this.clock.clearTimeout(existing.timer);
    }
    const timer = this.clock.setTimeout(() => {
      this.#waiting.delete(key);
      this.add(key);
    }, ms);
    this.#waiting.set(key, { at, timer });
  }

  /**
   * Count a failure of `key` and queue it after its backoff (or the retry rate limit, if later).
   * Returns the delay (ms).
   */
  addRateLimited(key: string): number {
    if (this.#stopping) return 0;
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    const own = backoffDelay(failures, { ...this.#backoff, random: this.#random });
    const delay = Math.max(own, this.#bucket?.reserve() ?? 0);
    this.#retries++;
    this.#metrics?.retries.inc({ name: this.name });
    this.addAfter(key, delay);
    return delay;
  }

  /** `key` succeeded: its next failure backs off from the first delay again. */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  /** Failures of `key` in a row. */
  failures(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** A snapshot of counts. */
  stats(): WorkQueueStats {
    return {
      depth: this.#queue.length,
      processing: this.#processing.size,
      waiting: this.#waiting.size,
      adds: this.#adds,
      retries: this.#retries,
    };
  }

  /** When each key being handled was taken (clock ms); for the running-time metrics. */
  runningSince(): number[] {
    return [...this.#processing.values()];
  }

  /** True once {@link shutdown} has begun. */
  get stopping(): boolean {
    return this.#stopping;
  }

  /**
   * Start the workers: up to `concurrency` keys at once go to `handler`, whose result (or a throw, which
   * counts as a failure) decides what happens to the key next. Only one handler per queue.
   */
  start(handler: WorkHandler): void {
    if (this.#handler) throw new KubeError(KubeErrorCode.usage, `work queue ${this.name} is already started`);
    this.#handler = handler;
    this.#pump();
  }

  /** Resolves when no key is queued or being handled (keys may still wait on timers). */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Stop: no more keys are taken, queued keys and timers are dropped (a restart relists them), and keys
   * being handled finish. If `signal` aborts first, their handlers' signal is aborted and this returns
   * without waiting for them.
   */
  async shutdown(options: { signal?: AbortSignal } = {}): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = true;
      for (const { timer } of this.#waiting.values()) this.clock.clearTimeout(timer);
      this.#waiting.clear();
      this.#queue.clear();
      for (const key of this.#dirty.keys()) if (!this.#processing.has(key)) this.#dirty.delete(key);
    }
    const drained = this.idle();
    const signal = options.signal;
    if (signal && this.#processing.size > 0) {
      await new Promise<void>((resolve) => {
        const onAbort = () => {
          this.#abort.abort(signal.reason);
          resolve();
        };
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
        void drained.then(() => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        });
      });
    } else {
      await drained;
    }
    this.#metrics?.live.delete(this);
  }

  /** {@link shutdown}, waiting for work in progress. */
  close(): Promise<void> {
    return this.shutdown();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #isIdle(): boolean {
    return this.#processing.size === 0 && (this.#queue.length === 0 || this.#handler === undefined);
  }

  #pump(): void {
    const handler = this.#handler;
    if (!handler) return;
    while (!this.#stopping && this.#processing.size < this.#concurrency) {
      const key = this.#queue.shift();
      if (key === undefined) break;
      const now = this.clock.now();
      const addedAt = this.#dirty.get(key) ?? now;
      this.#dirty.delete(key);
      this.#processing.set(key, now);
      this.#metrics?.queueDuration.observe({ name: this.name }, (now - addedAt) / 1000);
      // Promise.resolve().then: a handler that throws synchronously is a failure like any other.
      Promise.resolve()
        .then(() => handler(key, this.#abort.signal))
        .then(
          (action) => this.#finish(key, now, action ?? Action.awaitChange(), undefined),
          (err: unknown) => this.#finish(key, now, Action.backoff(), err),
        );
    }
    this.#wakeIdle();
  }

  #finish(key: string, startedAt: number, action: Action, error: unknown): void {
    this.#processing.delete(key);
    this.#metrics?.workDuration.observe({ name: this.name }, (this.clock.now() - startedAt) / 1000);
    if (error !== undefined) {
      try {
        this.#onError?.(key, error);
      } catch {
        // A failing error hook must not lose the key.
      }
    }
    if (!this.#stopping) {
      if (action.kind === 'backoff') {
        this.addRateLimited(key);
      } else {
        this.forget(key);
        if (action.kind === 'requeueAfter') this.addAfter(key, action.afterMs);
      }
      // Re-added while it was being handled: back in line now that no worker has it.
      if (this.#dirty.has(key)) this.#queue.push(key);
    } else {
      this.#dirty.delete(key);
    }
    this.#pump();
  }

  #wakeIdle(): void {
    if (!this.#isIdle() || this.#idleWaiters.length === 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const wake of waiters) wake();
  }
}
