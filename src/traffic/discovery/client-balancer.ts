// Client-side balancing: an undici Dispatcher that sends each request straight to one endpoint of a
// discovery source, skipping the extra hop of a proxy. It is the load balancer's machinery without the
// server: a BackendSet (a Pool per endpoint, kept across updates, closed after its requests end), the same
// pickers, the same passive outlier ejection, and connect-error retries of idempotent requests on another
// endpoint. Use it with anything that takes a dispatcher: `request(url, { dispatcher })`, `fetch`, a Client.
import { DecoratorHandler, Dispatcher } from 'undici';
import { IDEMPOTENT_METHODS, type Logger, raceAbort } from '../../runtime/index.ts';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import type { Backend } from '../lb/backend.ts';
import { BackendSet, type BackendSetChange } from '../lb/backend-set.ts';
import { type AttemptOutcome, DEFAULT_OUTLIER, OutlierDetector, type OutlierOptions } from '../lb/outlier.ts';
import { createPicker, LB_POLICIES, type LbPolicy, type Picker } from '../lb/pickers.ts';
import { classifyError } from '../lb/proxy.ts';
import { type Endpoint, toBackendEndpoints } from './endpoint.ts';
import { type DiscoveryEvent, type DiscoverySource, type Following, followSource } from './source.ts';

/** Options of {@link createDiscoveryDispatcher}. */
export interface DiscoveryDispatcherOptions {
  /** Where the endpoints come from. */
  source: DiscoverySource;
  /** Default `round-robin`. */
  policy?: LbPolicy;
  /** The request header whose value is the `consistent-hash` key (required with that policy). */
  hashHeader?: string;
  /** Scheme of the endpoints. Default `http`. */
  scheme?: 'http' | 'https';
  /** Connections per endpoint. Default unlimited. */
  connectionsPerEndpoint?: number;
  /** Connect timeout, ms. Default 5 000. */
  connectTimeoutMs?: number;
  /** TLS to https endpoints. */
  tls?: { ca?: string | Buffer | Array<string | Buffer>; rejectUnauthorized?: boolean };
  /** Tries on other endpoints after a connect error or reset before any answer (idempotent requests). Default 2. */
  retries?: number;
  /** Passive ejection of endpoints that fail in a row (the load balancer's defaults), or `false`. */
  outlier?: OutlierOptions | false;
  /**
   * How long a request made before the first snapshot waits for it before failing with
   * `CAP_ERR_TRAFFIC_NO_BACKEND`, ms. Default 10 000.
   */
  readyTimeoutMs?: number;
  /** Stops following the source (as `close()` does). */
  signal?: AbortSignal;
  /** Source failures (the last set stays in use), endpoint changes and ejections are logged here. */
  logger?: Logger;
  /** Each event of the source, for callers that count or log them. */
  onDiscoveryEvent?: (event: DiscoveryEvent) => void;
  /** Test hook for least-request's choices. */
  random?: () => number;
}

type Handler = Dispatcher.DispatchHandler;
type Controller = Dispatcher.DispatchController;

/** One request over its attempts: the controller the caller's handler holds stays the same across retries. */
class BalancedRequest implements Controller {
  readonly handler: Handler;
  readonly tried = new Set<Backend>();
  current: Controller | undefined;
  #reason: Error | null = null;
  #paused = false;
  /** The response (or upgrade) began: from here a failure is the caller's, never retried. */
  started = false;
  /** The caller's handler got `onRequestStart` (once, whatever the attempts). */
  notified = false;

  constructor(handler: Handler) {
    this.handler = handler;
  }
  get aborted(): boolean {
    return this.#reason !== null;
  }
  get paused(): boolean {
    return this.#paused;
  }
  get reason(): Error | null {
    return this.#reason;
  }
  abort(reason: Error): void {
    this.#reason ??= reason;
    this.current?.abort(reason);
  }
  pause(): void {
    this.#paused = true;
    this.current?.pause();
  }
  resume(): void {
    this.#paused = false;
    this.current?.resume();
  }
}

/**
 * An undici Dispatcher over a discovery source. The origin of each request is ignored: the path, method,
 * headers and body go to the endpoint the policy picks (its Host header is the endpoint's, unless the
 * request sets one).
 */
export class DiscoveryDispatcher extends Dispatcher {
  readonly #set: BackendSet;
  readonly #picker: Picker;
  readonly #hashHeader: string | undefined;
  readonly #retries: number;
  readonly #outlier: OutlierDetector | undefined;
  readonly #following: Following;
  readonly #readyTimeoutMs: number;
  readonly #scheme: 'http' | 'https';
  readonly #log: Logger | undefined;
  readonly #onEvent: ((event: DiscoveryEvent) => void) | undefined;
  #waiting: Array<() => void> = [];
  #ready = false;
  #closed = false;

  constructor(options: DiscoveryDispatcherOptions) {
    super();
    const policy = options.policy ?? 'round-robin';
    if (!LB_POLICIES.includes(policy)) {
      throw new TrafficError(
        TrafficErrorCode.invalid,
        `unknown policy ${JSON.stringify(policy)}; one of ${LB_POLICIES.join(', ')}`,
      );
    }
    this.#hashHeader = options.hashHeader?.toLowerCase();
    if (policy === 'consistent-hash' && !this.#hashHeader) {
      throw new TrafficError(TrafficErrorCode.invalid, 'the consistent-hash policy needs hashHeader');
    }
    this.#retries = options.retries ?? 2;
    if (!Number.isInteger(this.#retries) || this.#retries < 0 || this.#retries > 10) {
      throw new TrafficError(TrafficErrorCode.invalid, `retries must be 0..10, got ${this.#retries}`);
    }
    this.#readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
    this.#scheme = options.scheme ?? 'http';
    this.#onEvent = options.onDiscoveryEvent;
    this.#log = options.logger?.child({
      component: 'discovery-dispatcher',
      source: options.source.description,
    });
    this.#picker = createPicker(policy, options.random ? { random: options.random } : {});
    this.#set = new BackendSet({
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      ...(options.connectionsPerEndpoint !== undefined
        ? { connections: options.connectionsPerEndpoint }
        : {}),
      ...(options.tls?.ca !== undefined ? { ca: options.tls.ca } : {}),
      ...(options.tls?.rejectUnauthorized !== undefined
        ? { rejectUnauthorized: options.tls.rejectUnauthorized }
        : {}),
    });
    if (options.outlier !== false) {
      this.#outlier = new OutlierDetector(this.#set, { ...DEFAULT_OUTLIER, ...options.outlier }, (e) => {
        this.#log?.warn(
          { backend: e.backend.id, type: e.type, durationMs: e.durationMs, reason: e.reason },
          `endpoint ${e.type}`,
        );
      });
    }
    this.#following = followSource(
      options.source,
      (endpoints) => {
        this.#update(endpoints);
      },
      {
        ...(options.signal ? { signal: options.signal } : {}),
        onError: (event) => {
          this.#onEvent?.(event);
          this.#log?.warn(
            { err: event.error, retryInMs: event.retryInMs, kept: event.lastGood?.length ?? 0 },
            'discovery failed; keeping the last endpoints',
          );
        },
      },
    );
  }

  #update(endpoints: readonly Endpoint[]): BackendSetChange | undefined {
    if (this.#closed) return undefined;
    this.#onEvent?.({ type: 'snapshot', endpoints });
    const change = this.#set.update(toBackendEndpoints(endpoints, { scheme: this.#scheme }));
    if (change.added.length || change.removed.length || change.reweighted.length) {
      this.#log?.info(change, 'endpoints changed');
    }
    if (!this.#ready) {
      this.#ready = true;
      const waiting = this.#waiting;
      this.#waiting = [];
      for (const go of waiting) go();
    }
    return change;
  }

  /** The endpoints in use (the last snapshot), or undefined before the first. */
  get endpoints(): readonly Endpoint[] | undefined {
    return this.#following.endpoints;
  }

  /** The backends a request may go to now (`http://10.0.0.7:8080`...). */
  get available(): readonly string[] {
    return this.#set.available.map((b) => b.id);
  }

  /** Resolves at the first snapshot of the source. */
  ready(options: { signal?: AbortSignal } = {}): Promise<void> {
    const { signal } = options;
    if (!signal) return this.#following.ready;
    return raceAbort(this.#following.ready, signal);
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Handler): boolean {
    const request = new BalancedRequest(
      handler.onRequestStart ? handler : (new DecoratorHandler(handler) as Handler),
    );
    if (this.#closed) {
      queueMicrotask(() =>
        this.#fail(request, new TrafficError(TrafficErrorCode.closed, 'the discovery dispatcher is closed')),
      );
      return true;
    }
    if (!this.#ready) {
      const timer = setTimeout(() => {
        this.#waiting = this.#waiting.filter((w) => w !== go);
        this.#fail(
          request,
          new TrafficError(
            TrafficErrorCode.noBackend,
            `no endpoints from the source within ${this.#readyTimeoutMs} ms`,
          ),
        );
      }, this.#readyTimeoutMs);
      const go = () => {
        clearTimeout(timer);
        this.#attempt(opts, request);
      };
      this.#waiting.push(go);
      return true;
    }
    this.#attempt(opts, request);
    return true;
  }

  #fail(request: BalancedRequest, err: Error): void {
    request.handler.onResponseError?.(request, err);
  }

  #hashKey(opts: Dispatcher.DispatchOptions): string | undefined {
    const name = this.#hashHeader;
    if (!name) return undefined;
    const h = opts.headers;
    if (!h) return undefined;
    if (Array.isArray(h)) {
      for (let i = 0; i + 1 < h.length; i += 2)
        if (String(h[i]).toLowerCase() === name) return String(h[i + 1]);
      return undefined;
    }
    if (Symbol.iterator in h) {
      for (const [k, v] of h as Iterable<[string, string]>) if (k.toLowerCase() === name) return String(v);
      return undefined;
    }
    for (const [k, v] of Object.entries(h as Record<string, unknown>)) {
      if (k.toLowerCase() === name && v !== undefined) return Array.isArray(v) ? String(v[0]) : String(v);
    }
    return undefined;
  }

  #attempt(opts: Dispatcher.DispatchOptions, request: BalancedRequest): void {
    if (request.aborted) {
      this.#fail(request, request.reason!);
      return;
    }
    if (this.#closed) {
      this.#fail(request, new TrafficError(TrafficErrorCode.closed, 'the discovery dispatcher is closed'));
      return;
    }
    const backend = this.#picker.pick(this.#set.available, this.#set.version, {
      hashKey: this.#hashKey(opts),
      exclude: request.tried,
    });
    if (!backend) {
      this.#fail(
        request,
        new TrafficError(
          TrafficErrorCode.noBackend,
          request.tried.size > 0
            ? `every endpoint tried (${request.tried.size}) failed`
            : 'no endpoint available from the discovery source',
        ),
      );
      return;
    }
    request.tried.add(backend);
    backend.inflight++;
    let settled = false;
    const settle = (outcome: AttemptOutcome | undefined) => {
      if (settled) return;
      settled = true;
      backend.inflight--;
      if (outcome) this.#outlier?.record(backend, outcome);
    };
    const user = request.handler;
    const attempt: Handler = {
      onRequestStart: (controller, context) => {
        request.current = controller;
        if (request.aborted) controller.abort(request.reason!);
        else if (request.paused) controller.pause();
        if (!request.notified) {
          request.notified = true;
          user.onRequestStart?.(request, context);
        }
      },
      onRequestUpgrade: (_c, statusCode, headers, socket) => {
        request.started = true;
        settle('success');
        user.onRequestUpgrade?.(request, statusCode, headers, socket);
      },
      onResponseStart: (_c, statusCode, headers, statusMessage) => {
        request.started = true;
        if (statusCode >= 500) this.#outlier?.record(backend, '5xx');
        else this.#outlier?.record(backend, 'success');
        user.onResponseStart?.(request, statusCode, headers, statusMessage);
      },
      onResponseData: (_c, chunk) => user.onResponseData?.(request, chunk),
      onResponseEnd: (_c, trailers) => {
        settle(undefined);
        user.onResponseEnd?.(request, trailers);
      },
      onResponseError: (_c, err) => {
        const { kind } = classifyError(err);
        const gateway = kind === 'connect' || kind === 'reset' || kind === 'timeout';
        settle(!request.started && gateway ? 'gateway' : undefined);
        if (
          !request.started &&
          !request.aborted &&
          (kind === 'connect' || kind === 'reset') &&
          request.tried.size <= this.#retries &&
          replayable(opts)
        ) {
          request.current = undefined;
          this.#attempt(opts, request);
          return;
        }
        user.onResponseError?.(request, err);
      },
    };
    try {
      backend.pool.dispatch({ ...opts, origin: backend.id }, attempt);
    } catch (err) {
      settle(undefined);
      this.#fail(request, err as Error);
    }
  }

  override async close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    const done = this.#shutdown(false);
    if (callback) {
      void done.then(callback, callback);
      return;
    }
    return done;
  }

  override async destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
    const callback = typeof a === 'function' ? a : b;
    const done = this.#shutdown(true);
    if (callback) {
      void done.then(callback, callback);
      return;
    }
    return done;
  }

  async #shutdown(now: boolean): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      const waiting = this.#waiting;
      this.#waiting = [];
      for (const go of waiting) go();
      this.#outlier?.close();
      await this.#following.stop();
      if (now) await Promise.all(this.#set.all.map((b) => b.pool.destroy().catch(() => {})));
      await this.#set.close();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** A body that can be sent again: none, a string or bytes (a stream is consumed by the first attempt). */
function replayable(opts: Dispatcher.DispatchOptions): boolean {
  const method = (opts.method ?? 'GET').toUpperCase();
  const idempotent = (opts as { idempotent?: boolean }).idempotent ?? IDEMPOTENT_METHODS.includes(method);
  if (!idempotent) return false;
  const body = opts.body;
  return body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array;
}

/** Create a {@link DiscoveryDispatcher}; options are checked here. */
export function createDiscoveryDispatcher(options: DiscoveryDispatcherOptions): DiscoveryDispatcher {
  return new DiscoveryDispatcher(options);
}
