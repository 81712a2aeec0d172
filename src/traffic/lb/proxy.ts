// Forwarding one request: pick a backend, stream the request body to it and its response back, and on a
// failure before any byte of the answer reached the client, retry an idempotent request elsewhere.
// The response is written from undici's dispatch callbacks straight into the client's response, with
// backpressure both ways (a slow client pauses the backend's socket).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Dispatcher } from 'undici';
import type { Backend } from './backend.ts';
import type { BackendSet } from './backend-set.ts';
import { type ForwardContext, forwardHeaders, responseHeaders, type TrustedProxies } from './headers.ts';
import type { AttemptOutcome } from './outlier.ts';
import type { PickContext, Picker } from './pickers.ts';
import type { RetryBudget } from './retry-budget.ts';

/** A client request, HTTP/1.1 or HTTP/2 (compatibility API). */
export type ClientRequest = IncomingMessage | Http2ServerRequest;
/** A client response, HTTP/1.1 or HTTP/2 (compatibility API). */
export type ClientResponse = ServerResponse | Http2ServerResponse;

/** Time limits of forwarding, ms. */
export interface ProxyTimeouts {
  /** Connecting to a backend (TCP and TLS). Default 5 000. */
  connectMs?: number;
  /** From sending the request to the backend's response headers. Default 30 000. */
  headersMs?: number;
  /** Longest silence while a response body (or an upgraded connection) streams. Default 60 000. */
  idleMs?: number;
}

/** Retry settings. */
export interface RetryOptions {
  /** Retries after the first attempt, each on a backend not tried yet. Default 2; 0 turns retries off. */
  retries?: number;
  /** Statuses that send an idempotent request to another backend (the answer is dropped). Default none. */
  statusCodes?: readonly number[];
  /** Methods retried. Default GET, HEAD, OPTIONS, PUT, DELETE (RFC 9110 §9.2.2). */
  methods?: readonly string[];
  /** Retries allowed as a percentage of recent requests. Default 20. */
  budgetPercent?: number;
  /** Retries allowed in any 10 s window whatever the traffic. Default 10. */
  budgetMinRetries?: number;
}

/** What a retry, a failure or an answer tells the outside (events, metrics). */
export interface ProxyObserver {
  attemptEnded(
    backend: Backend,
    outcome: AttemptOutcome,
    status: number | 'error',
    kind: string | undefined,
    seconds: number,
  ): void;
  retried(backend: Backend, reason: string): void;
  budgetExhausted(backend: Backend, reason: string): void;
  noBackend(): void;
}

/** The live pieces one request reads; the load balancer swaps them on reload. */
export interface ProxyState {
  set: BackendSet;
  picker: Picker;
  hashHeader: string | undefined;
  budget: RetryBudget;
  retry: Required<Pick<RetryOptions, 'retries' | 'statusCodes'>> & { methods: ReadonlySet<string> };
  timeouts: Required<ProxyTimeouts>;
  trusted: TrustedProxies;
  observer: ProxyObserver;
  record(backend: Backend, outcome: AttemptOutcome): void;
}

type Controller = Dispatcher.DispatchController;

const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);

/** How a failed attempt is counted and answered. */
export function classifyError(err: unknown): {
  kind: 'connect' | 'timeout' | 'reset' | 'other';
  status: number;
} {
  const code = (err as { code?: string } | null)?.code ?? '';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT')
    return { kind: 'timeout', status: 504 };
  if (
    code === 'ECONNREFUSED' ||
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'EHOSTUNREACH' ||
    code === 'ENOTFOUND'
  )
    return { kind: 'connect', status: 502 };
  if (CONNECT_ERRORS.has(code)) return { kind: 'reset', status: 502 };
  return { kind: 'other', status: 502 };
}

function sendError(res: ClientResponse, status: number, error: string, reason: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify({ error, reason });
  (res as ServerResponse).writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** True when the request carries a body to stream (HTTP/1.1: a length or chunked; HTTP/2: no END_STREAM yet). */
function hasBody(req: ClientRequest): boolean {
  if ('stream' in req && req.stream) return !req.stream.endAfterHeaders;
  const length = req.headers['content-length'];
  if (length !== undefined) return length !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}

const kExchange = Symbol('capstan.lb.exchange');

function onClientClose(this: ClientResponse & { [kExchange]?: Exchange }): void {
  const x = this[kExchange];
  this[kExchange] = undefined;
  if (!x || this.writableFinished) return;
  x.clientGone = true;
  x.controller?.abort(new Error('client went away'));
}

/** One client request on its way through the proxy, over one or more attempts. */
class Exchange {
  readonly state: ProxyState;
  readonly req: ClientRequest;
  readonly res: ClientResponse;
  readonly headers: string[];
  readonly body: boolean;
  readonly idempotent: boolean;
  readonly tried = new Set<Backend>();
  readonly pick: PickContext;
  attempts = 0;
  controller: Controller | undefined;
  clientGone = false;

  constructor(state: ProxyState, req: ClientRequest, res: ClientResponse, headers: string[]) {
    this.state = state;
    this.req = req;
    this.res = res;
    this.headers = headers;
    this.body = hasBody(req);
    this.idempotent = state.retry.methods.has(req.method ?? '');
    const key = state.hashHeader !== undefined ? req.headers[state.hashHeader] : undefined;
    this.pick = { hashKey: Array.isArray(key) ? key[0] : key, exclude: this.tried };
    (res as ClientResponse & { [kExchange]?: Exchange })[kExchange] = this;
    // One listener shared by every response, not a closure per request: per-request closures over the
    // exchange made V8 promote requests wholesale (6-7 MB between scavenges at 15k req/s, 5-9 ms each).
    res.once('close', onClientClose);
  }

  /** Send to a backend (`backend` chosen by a retry, else picked now). */
  send(backend?: Backend): void {
    const { set, picker } = this.state;
    const target = backend ?? picker.pick(set.available, set.version, this.pick);
    if (!target) {
      this.state.observer.noBackend();
      sendError(this.res, 503, 'no backend', 'no backend available');
      return;
    }
    this.attempts++;
    this.tried.add(target);
    target.inflight++;
    const { timeouts } = this.state;
    target.pool.dispatch(
      {
        method: (this.req.method ?? 'GET') as Dispatcher.HttpMethod,
        path: this.req.url ?? '/',
        headers: this.headers,
        body: this.body ? (this.req as IncomingMessage) : null,
        headersTimeout: timeouts.headersMs,
        bodyTimeout: timeouts.idleMs,
      },
      new AttemptHandler(this, target),
    );
  }

  /**
   * After a failed attempt: another backend, when this request may be retried and the budget allows. An
   * idempotent request without a body may be sent again after any failure before its answer began. Any
   * request may after a connect failure, when not a byte of its body has been read: the backend never saw
   * it (HAProxy's `retry-on conn-failure`), so a POST caught by a dead backend is not lost either.
   */
  retryTarget(failed: Backend, reason: string, connectFailure = false): Backend | undefined {
    const replayable = connectFailure
      ? !(this.req as { readableDidRead?: boolean }).readableDidRead
      : this.idempotent && !this.body;
    if (!replayable || this.clientGone || this.res.headersSent || this.attempts > this.state.retry.retries) {
      return undefined;
    }
    const { set, picker } = this.state;
    const next = picker.pick(set.available, set.version, this.pick);
    if (!next) return undefined;
    if (!this.state.budget.tryRetry()) {
      this.state.observer.budgetExhausted(failed, reason);
      return undefined;
    }
    this.state.observer.retried(failed, reason);
    return next;
  }
}

/** The callbacks of one attempt on one backend. */
class AttemptHandler implements Dispatcher.DispatchHandler {
  readonly #x: Exchange;
  readonly #backend: Backend;
  readonly #start = performance.now();
  #status = 0;
  /** Set when the answer is a retryable status: it is read and dropped, and the request goes here. */
  #retryTo: Backend | undefined;
  #done = false;

  constructor(exchange: Exchange, backend: Backend) {
    this.#x = exchange;
    this.#backend = backend;
  }

  #finish(outcome: AttemptOutcome, status: number | 'error', kind?: string): void {
    if (this.#done) return;
    this.#done = true;
    this.#backend.inflight--;
    this.#x.state.record(this.#backend, outcome);
    this.#x.state.observer.attemptEnded(
      this.#backend,
      outcome,
      status,
      kind,
      (performance.now() - this.#start) / 1000,
    );
  }

  onRequestStart(controller: Controller): void {
    this.#x.controller = controller;
    if (this.#x.clientGone) controller.abort(new Error('client went away'));
  }

  onResponseStart(
    _controller: Controller,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void {
    const x = this.#x;
    this.#status = statusCode;
    if (x.state.retry.statusCodes.includes(statusCode)) {
      // Decided now, so a request that cannot go elsewhere gets this answer as it is. The dropped body is
      // read to its end to keep the connection.
      this.#retryTo = x.retryTarget(this.#backend, `status ${statusCode}`);
      if (this.#retryTo) return;
    }
    const res = x.res as ServerResponse;
    if (res.headersSent) return;
    const out = responseHeaders(headers);
    if ('stream' in x.req || !statusMessage) res.writeHead(statusCode, out);
    else res.writeHead(statusCode, statusMessage, out);
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.#retryTo) return;
    const res = this.#x.res;
    if (!(res as ServerResponse).write(chunk)) {
      controller.pause();
      res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(_controller: Controller, trailers: Record<string, string | string[] | undefined>): void {
    const x = this.#x;
    const outcome: AttemptOutcome = this.#status >= 500 ? '5xx' : 'success';
    this.#finish(outcome, this.#status, this.#status >= 500 ? '5xx' : undefined);
    if (this.#retryTo) {
      x.send(this.#retryTo);
      return;
    }
    const names = Object.keys(trailers);
    if (names.length > 0) (x.res as ServerResponse).addTrailers(trailers as Record<string, string>);
    x.res.end();
  }

  onResponseError(_controller: Controller, error: Error): void {
    const x = this.#x;
    const { kind, status } = classifyError(error);
    this.#finish(x.clientGone ? 'success' : 'gateway', 'error', x.clientGone ? 'client' : kind);
    if (x.clientGone) return;
    if (!x.res.headersSent) {
      const reason = (error as { code?: string }).code ?? error.message;
      const next = this.#retryTo ?? x.retryTarget(this.#backend, reason, kind === 'connect');
      if (next) {
        x.send(next);
        return;
      }
      sendError(x.res, status, status === 504 ? 'gateway timeout' : 'bad gateway', reason);
      return;
    }
    // Part of the answer is out: cut the client's connection (or stream) so it sees a broken response.
    x.res.destroy(error);
  }
}

/** Forward one request through the live `state`; never throws (every failure is an answer). */
export function proxyRequest(
  state: ProxyState,
  req: ClientRequest,
  res: ClientResponse,
  forward: Omit<ForwardContext, 'trusted'>,
  requestId: string | undefined,
): void {
  state.budget.recordRequest();
  const headers = forwardHeaders(req.rawHeaders, req.headers, { ...forward, trusted: state.trusted });
  if (requestId !== undefined && req.headers['x-request-id'] === undefined)
    headers.push('x-request-id', requestId);
  new Exchange(state, req, res, headers).send();
}
