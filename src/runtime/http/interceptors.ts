import { type Dispatcher, interceptors } from 'undici';
import { linkedController, sleep } from '../abort.ts';
import { type BackoffOptions, backoffDelay } from '../stream/backoff.ts';
import { HttpError, HttpErrorCode } from './errors.ts';
import { CONNECTION_ERROR_CODES } from './failures.ts';

/** Dispatch options as they travel through Capstan's interceptors (undici's, plus a per-request deadline). */
export type HttpDispatchOptions = Dispatcher.DispatchOptions & {
  signal?: AbortSignal | null;
  /** Whole-exchange limit for this request in ms (0: none); overrides the transport's. */
  deadlineMs?: number;
};

type Handler = Dispatcher.DispatchHandler;
type Controller = Dispatcher.DispatchController;
type Interceptor = Dispatcher.DispatcherComposeInterceptor;

function checkMs(name: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isFinite(value) && value >= 0 && value <= 2 ** 31 - 1)) {
    throw new HttpError(HttpErrorCode.invalid, `${name} must be 0..2147483647 ms, got ${value}`);
  }
}

/** `origin + path`, without credentials or query string (tokens ride there: pre-signed URLs, `?token=`). */
export function describeTarget(origin: string | URL | undefined, path: string): string {
  let base = '';
  if (origin !== undefined) {
    try {
      base = new URL(String(origin)).origin;
    } catch {
      base = '<invalid origin>';
    }
  }
  const q = path.indexOf('?');
  return q === -1 ? `${base}${path}` : `${base}${path.slice(0, q)}?…`;
}

// ---------------------------------------------------------------------------------------------- timeout

/** Time limits of a request. 0 disables one. */
export interface HttpTimeouts {
  /** From sending to the complete response headers (undici's `headersTimeout`). */
  headersMs?: number;
  /** Longest silence while the body streams (undici's `bodyTimeout`). */
  bodyMs?: number;
  /** The whole exchange, retries and body included; fails with `CAP_ERR_RUNTIME_HTTP_TIMEOUT`. */
  deadlineMs?: number;
}

/** Forwards every event to `next`; subclasses hook the ones they need. */
class ForwardingHandler implements Handler {
  protected readonly next: Handler;
  constructor(next: Handler) {
    this.next = next;
  }
  onRequestStart(controller: Controller, context: unknown): void {
    this.next.onRequestStart?.(controller, context);
  }
  onRequestUpgrade(
    controller: Controller,
    statusCode: number,
    headers: Parameters<NonNullable<Handler['onRequestUpgrade']>>[2],
    socket: Parameters<NonNullable<Handler['onRequestUpgrade']>>[3],
  ): void {
    this.next.onRequestUpgrade?.(controller, statusCode, headers, socket);
  }
  onResponseStart(
    controller: Controller,
    statusCode: number,
    headers: Parameters<NonNullable<Handler['onResponseStart']>>[2],
    statusMessage?: string,
  ): void {
    this.next.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }
  onResponseData(controller: Controller, chunk: Buffer): void {
    this.next.onResponseData?.(controller, chunk);
  }
  onResponseEnd(
    controller: Controller,
    trailers: Parameters<NonNullable<Handler['onResponseEnd']>>[1],
  ): void {
    this.next.onResponseEnd?.(controller, trailers);
  }
  onResponseError(controller: Controller, error: Error): void {
    this.next.onResponseError?.(controller, error);
  }
}

/** Aborts the exchange when its deadline passes, whatever stage it is in (queued, waiting to retry, streaming). */
class DeadlineHandler extends ForwardingHandler {
  #controller: Controller | undefined;
  #expired: HttpError | undefined;
  readonly #timer: NodeJS.Timeout;

  constructor(next: Handler, ms: number, stopRetries: AbortController, what: string) {
    super(next);
    this.#timer = setTimeout(() => {
      this.#expired = new HttpError(HttpErrorCode.timeout, `${what}: no complete answer within ${ms} ms`);
      // The signal stops a retry that is waiting; the controller stops the attempt in flight.
      stopRetries.abort(this.#expired);
      this.#controller?.abort(this.#expired);
    }, ms);
  }

  override onRequestStart(controller: Controller, context: unknown): void {
    this.#controller = controller;
    if (this.#expired) {
      controller.abort(this.#expired);
      return;
    }
    super.onRequestStart(controller, context);
  }
  override onResponseEnd(
    controller: Controller,
    trailers: Parameters<Handler['onResponseEnd'] & {}>[1],
  ): void {
    clearTimeout(this.#timer);
    super.onResponseEnd(controller, trailers);
  }
  override onResponseError(controller: Controller, error: Error): void {
    clearTimeout(this.#timer);
    super.onResponseError(controller, this.#expired ?? error);
  }
  override onRequestUpgrade(...args: Parameters<ForwardingHandler['onRequestUpgrade']>): void {
    clearTimeout(this.#timer);
    super.onRequestUpgrade(...args);
  }
}

/**
 * Time limits for every request: undici's own headers and body timeouts as defaults (a request's
 * `headersTimeout`/`bodyTimeout` win), and an optional deadline over the whole exchange, retries included,
 * which undici lacks. Compose it outside the retry interceptor so the deadline bounds all attempts.
 */
export function timeoutInterceptor(defaults: HttpTimeouts = {}): Interceptor {
  checkMs('headersMs', defaults.headersMs);
  checkMs('bodyMs', defaults.bodyMs);
  checkMs('deadlineMs', defaults.deadlineMs);
  return (dispatch) => (opts, handler) => {
    const o = opts as HttpDispatchOptions;
    const next: HttpDispatchOptions = {
      ...o,
      headersTimeout: o.headersTimeout ?? defaults.headersMs ?? null,
      bodyTimeout: o.bodyTimeout ?? defaults.bodyMs ?? null,
    };
    const deadline = o.deadlineMs ?? defaults.deadlineMs ?? 0;
    checkMs('deadlineMs', deadline);
    if (deadline === 0) return dispatch(next, handler);
    const stopRetries = linkedController(o.signal ?? undefined);
    next.signal = stopRetries.signal;
    const what = `${o.method} ${describeTarget(o.origin ?? undefined, o.path)}`;
    return dispatch(next, new DeadlineHandler(handler, deadline, stopRetries, what));
  };
}

// ------------------------------------------------------------------------------------------------ retry

/** Methods retried by default: the idempotent ones (RFC 9110 §9.2.2). POST and PATCH only when marked. */
export const IDEMPOTENT_METHODS: readonly string[] = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'];

/** Retry policy of {@link retryInterceptor}. */
export interface HttpRetryOptions extends Partial<BackoffOptions> {
  /** Retries after the first attempt. Default 3. */
  retries?: number;
  /** Statuses worth another try. Default 502, 503, 504. */
  statusCodes?: readonly number[];
  /** Methods retried without being marked `idempotent`. Default {@link IDEMPOTENT_METHODS}. */
  methods?: readonly string[];
  /** Test hook for the jitter. */
  random?: () => number;
}

/** Default backoff of the retry interceptor: 100 ms doubling to at most 2 s. */
const DEFAULT_BACKOFF = { initialMs: 100, maxMs: 2_000, factor: 2, jitter: 0.5 } satisfies BackoffOptions;

/**
 * Retries of idempotent requests on connection errors and 502/503/504, with backoff, jitter and a cap.
 * Built on undici's `interceptors.retry` (which replays the body, refuses to replay a stream, and resumes a
 * broken download with Range), with our own decision function: undici's retries 500/429 too, has no
 * jitter, and keeps waiting after an abort, where here an aborted signal (the caller's, or the deadline's)
 * ends the wait at once with its reason. Requests that are not idempotent bypass it entirely: a POST or
 * PATCH is sent once unless marked with undici's `idempotent: true` (and `idempotent: false` opts a GET
 * out). When the last retry still gets a retryable status, the request fails with undici's
 * `RequestRetryError` (code `UND_ERR_REQ_RETRY`, `statusCode`), which `httpRequest` turns into
 * `CAP_ERR_RUNTIME_HTTP_STATUS`.
 */
export function retryInterceptor(options: HttpRetryOptions = {}): Interceptor {
  const retries = options.retries ?? 3;
  if (!Number.isInteger(retries) || retries < 0) {
    throw new HttpError(HttpErrorCode.invalid, `retries must be a whole number >= 0, got ${retries}`);
  }
  const backoff = {
    initialMs: options.initialMs ?? DEFAULT_BACKOFF.initialMs,
    maxMs: options.maxMs ?? DEFAULT_BACKOFF.maxMs,
    factor: options.factor ?? DEFAULT_BACKOFF.factor,
    jitter: options.jitter ?? DEFAULT_BACKOFF.jitter,
  } satisfies BackoffOptions;
  checkMs('initialMs', backoff.initialMs);
  checkMs('maxMs', backoff.maxMs);
  // Any other bad setting (a factor below 1) fails here, not at the first retry.
  backoffDelay(0, backoff);
  const statusCodes = [...(options.statusCodes ?? [502, 503, 504])];
  const methods = new Set(options.methods ?? IDEMPOTENT_METHODS);
  const random = options.random ?? Math.random;

  // Called by undici's RetryHandler after a failed attempt; callback(null) retries, callback(err) gives up.
  const decide = (
    err: Error & {
      statusCode?: number;
      code?: string;
      headers?: Record<string, string | string[] | undefined>;
    },
    context: { state: { counter: number }; opts: HttpDispatchOptions },
    callback: (err?: Error | null) => void,
  ): void => {
    const signal = context.opts.signal ?? undefined;
    const worthIt =
      err.code === 'UND_ERR_REQ_RETRY'
        ? err.statusCode !== undefined && statusCodes.includes(err.statusCode)
        : CONNECTION_ERROR_CODES.has(err.code ?? '');
    if (!worthIt || context.state.counter > retries) {
      callback(err);
      return;
    }
    if (signal?.aborted) {
      callback(signal.reason ?? err);
      return;
    }
    let delay = backoffDelay(context.state.counter - 1, { ...backoff, random });
    const after = retryAfterMs(err.headers?.['retry-after']);
    if (after !== undefined) {
      // Retry-After is the server's earliest time, and it tells every client the same one: a random spread
      // after it keeps the crowd a throttled server turned away from coming back at the same instant.
      delay = Math.min(Math.max(after + random() * after * 0.5, delay), backoff.maxMs);
    }
    void sleep(delay, signal).then((waited) => callback(waited ? null : (signal?.reason ?? err)));
  };

  const undiciRetry = interceptors.retry({
    maxRetries: retries,
    statusCodes,
    retry: decide as unknown as NonNullable<Parameters<typeof interceptors.retry>[0]>['retry'],
  });
  return (dispatch) => {
    const retrying = undiciRetry(dispatch);
    return (opts, handler) => {
      const idempotent = (opts as HttpDispatchOptions).idempotent ?? methods.has(opts.method);
      return idempotent ? retrying(opts, handler) : dispatch(opts, handler);
    };
  };
}

/** `Retry-After` in ms (seconds or an HTTP date), or undefined. */
function retryAfterMs(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  const seconds = Number(v);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

// ---------------------------------------------------------------------------------------------- logging

/** One line about one attempt: no headers, no body, no query string, no credentials. */
export interface HttpLogEntry {
  method: string;
  /** Origin and path, the query string replaced by `?…`. */
  url: string;
  /** Response status, 0 when none came. */
  status: number;
  /** Time to the response headers, ms (undefined when none came). */
  headersMs?: number;
  /** Time to the end of the body (or the failure), ms. */
  durationMs: number;
  /** The error's code (or name) when the attempt failed. */
  error?: string;
}

/** Receives {@link HttpLogEntry}s, e.g. `(e) => logger.debug(e, 'http')`. A throwing sink is ignored. */
export type HttpLogSink = (entry: HttpLogEntry) => void;

class LoggingHandler extends ForwardingHandler {
  readonly #start = performance.now();
  #status = 0;
  #headersMs: number | undefined;
  #logged = false;
  readonly #method: string;
  readonly #url: string;
  readonly #sink: HttpLogSink;

  constructor(next: Handler, method: string, url: string, sink: HttpLogSink) {
    super(next);
    this.#method = method;
    this.#url = url;
    this.#sink = sink;
  }

  #emit(error?: Error): void {
    // undici's retry handler may fail an attempt after its end (a retryable status): one line per attempt.
    if (this.#logged) return;
    this.#logged = true;
    const entry: HttpLogEntry = {
      method: this.#method,
      url: this.#url,
      status: this.#status,
      durationMs: Math.round((performance.now() - this.#start) * 10) / 10,
    };
    if (this.#headersMs !== undefined) entry.headersMs = this.#headersMs;
    if (error) {
      const code = (error as { code?: unknown }).code;
      entry.error = typeof code === 'string' ? code : error.name;
    }
    try {
      this.#sink(entry);
    } catch {}
  }

  override onResponseStart(...args: Parameters<ForwardingHandler['onResponseStart']>): void {
    this.#status = args[1];
    this.#headersMs = Math.round((performance.now() - this.#start) * 10) / 10;
    super.onResponseStart(...args);
  }
  override onRequestUpgrade(...args: Parameters<ForwardingHandler['onRequestUpgrade']>): void {
    this.#status = args[1];
    this.#emit();
    super.onRequestUpgrade(...args);
  }
  override onResponseEnd(...args: Parameters<ForwardingHandler['onResponseEnd']>): void {
    this.#emit();
    super.onResponseEnd(...args);
  }
  override onResponseError(controller: Controller, error: Error): void {
    this.#emit(error);
    super.onResponseError(controller, error);
  }
}

/**
 * One {@link HttpLogEntry} per attempt (compose it inside the retry interceptor to see each retry):
 * method, origin and path, status, timings. Headers are never looked at, so `Authorization`, cookies and
 * `X-Registry-Auth` cannot leak; the query string is dropped. `origin` names the target for dispatchers
 * bound to one (a Pool); an Agent's requests carry their own.
 */
export function loggingInterceptor(sink: HttpLogSink, origin?: string | URL): Interceptor {
  return (dispatch) => (opts, handler) =>
    dispatch(
      opts,
      new LoggingHandler(handler, opts.method, describeTarget(opts.origin ?? origin, opts.path), sink),
    );
}
