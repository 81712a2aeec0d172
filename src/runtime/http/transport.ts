import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { Agent, type Dispatcher, Pool } from 'undici';
import { HttpError, HttpErrorCode } from './errors.ts';
import { toHttpError } from './failures.ts';
import {
  describeTarget,
  type HttpDispatchOptions,
  type HttpLogSink,
  type HttpRetryOptions,
  type HttpTimeouts,
  loggingInterceptor,
  retryInterceptor,
  timeoutInterceptor,
} from './interceptors.ts';

/** TLS settings of a transport (what `tls.connect` takes). */
export interface HttpTlsOptions {
  /** CA certificate(s) to trust instead of the system's. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Client certificate and key, for mutual TLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Verify the server certificate. Default true. */
  rejectUnauthorized?: boolean;
  /** Name to verify the certificate against, when not the origin's host. */
  servername?: string;
}

/** Options of {@link createHttpTransport}. */
export interface HttpTransportOptions {
  /**
   * `http(s)://host:port` every request goes to (a Pool), or `http://localhost` with `socketPath`.
   * Without it the transport is an Agent and each request names its `origin`.
   */
  origin?: string | URL;
  /** Unix socket to connect to instead of TCP. */
  socketPath?: string;
  tls?: HttpTlsOptions;
  /** Connections per origin. Default: unlimited (undici's). */
  connections?: number;
  /** Idle keep-alive socket lifetime, ms (undici's default 4 s). */
  keepAliveTimeoutMs?: number;
  /** Cap on a server's keep-alive hint, ms (undici's default 600 s). */
  keepAliveMaxTimeoutMs?: number;
  /** Connect timeout, ms (undici's default 10 s). */
  connectTimeoutMs?: number;
  /** Default time limits; a request's own win. Default: headers and body 300 s each (undici's), no deadline. */
  timeouts?: HttpTimeouts;
  /** Retry policy for idempotent requests, or `false` for none. Default: 3 retries, 100 ms doubling to 2 s. */
  retry?: HttpRetryOptions | false;
  /** Where one line per attempt goes (method, URL without query, status, timings); none by default. */
  log?: HttpLogSink;
  /** More interceptors, composed outside Capstan's (they see each request once, before the deadline). */
  interceptors?: Dispatcher.DispatcherComposeInterceptor[];
}

/** A request through {@link httpRequest}. */
export interface HttpRequestOptions {
  /** Default `GET`. */
  method?: Dispatcher.HttpMethod;
  /** Path with its leading `/`; may carry a query string. */
  path: string;
  /** Target of an Agent transport (ignored by one bound to an origin). */
  origin?: string | URL;
  /** Query parameters to append; `undefined` values are skipped. */
  query?: Record<string, string | number | boolean | undefined>;
  headers?: Record<string, string>;
  /** Raw request body. A stream or iterable is sent once: it is never retried. */
  body?: string | Buffer | Uint8Array | Readable | AsyncIterable<Uint8Array>;
  /** A value sent as JSON (`content-type: application/json` unless `headers` has one); wins over `body`. */
  json?: unknown;
  signal?: AbortSignal;
  /** Mark a POST/PATCH safe to retry, or a GET not to be. Default: by method. */
  idempotent?: boolean;
  /** Long-lived response (logs, events, watches): no headers or body timeout, no deadline. */
  stream?: boolean;
  /** This request's time limits (over the transport's). */
  timeouts?: HttpTimeouts;
}

/** The body of a response: read it once (text, json, bytes, or iterate the chunks) or `dump()` it. */
export type HttpResponseBody = Dispatcher.ResponseData['body'];

/** An answer: any status, the body still to read. */
export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: HttpResponseBody;
}

/**
 * The one HTTP client transport: an undici Pool (one origin, TCP or unix socket, TLS) or Agent, composed
 * with Capstan's interceptors: logging per attempt (innermost), retry of idempotent requests, time limits
 * (outermost, so a deadline covers all attempts). Failures come out as {@link HttpError}s carrying the
 * original error as `cause`; an abort rejects with the signal's reason.
 */
export class HttpTransport {
  /** The origin requests go to, when bound to one. */
  readonly origin: string | undefined;
  /** The composed dispatcher, for undici's own APIs (`request`, `stream`, `fetch` with `dispatcher`). */
  readonly dispatcher: Dispatcher;
  readonly #base: Pool | Agent;

  constructor(options: HttpTransportOptions = {}) {
    let origin: string | undefined;
    if (options.origin !== undefined) {
      try {
        origin = new URL(String(options.origin)).origin;
      } catch (err) {
        throw new HttpError(HttpErrorCode.invalid, 'transport origin is not a URL', { cause: err });
      }
      if (!origin.startsWith('http://') && !origin.startsWith('https://')) {
        throw new HttpError(HttpErrorCode.invalid, `transport origin must be http(s), got ${origin}`);
      }
    }
    this.origin = origin;
    const connect = {
      ...options.tls,
      ...(options.socketPath !== undefined ? { socketPath: options.socketPath } : {}),
      ...(options.connectTimeoutMs !== undefined ? { timeout: options.connectTimeoutMs } : {}),
    };
    const poolOptions = {
      ...(Object.keys(connect).length ? { connect } : {}),
      ...(options.connections !== undefined ? { connections: options.connections } : {}),
      ...(options.keepAliveTimeoutMs !== undefined ? { keepAliveTimeout: options.keepAliveTimeoutMs } : {}),
      ...(options.keepAliveMaxTimeoutMs !== undefined
        ? { keepAliveMaxTimeout: options.keepAliveMaxTimeoutMs }
        : {}),
    };
    this.#base = origin !== undefined ? new Pool(origin, poolOptions) : new Agent(poolOptions);
    // compose() wraps in order: the first listed is innermost.
    const chain: Dispatcher.DispatcherComposeInterceptor[] = [];
    if (options.log) chain.push(loggingInterceptor(options.log, origin));
    if (options.retry !== false) chain.push(retryInterceptor(options.retry));
    chain.push(timeoutInterceptor(options.timeouts), ...(options.interceptors ?? []));
    this.dispatcher = this.#base.compose(chain) as Dispatcher;
  }

  /** Send a request; see {@link httpRequest}. */
  request(options: HttpRequestOptions): Promise<HttpResponse> {
    return httpRequest(this, options);
  }

  /** Let in-flight requests finish, then close the connections. */
  async close(): Promise<void> {
    if (!this.#base.closed && !this.#base.destroyed) await this.#base.close();
  }

  /** Close every connection now; in-flight requests and streams fail. */
  async destroy(): Promise<void> {
    if (!this.#base.destroyed) await this.#base.destroy();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Create an {@link HttpTransport}. */
export function createHttpTransport(options: HttpTransportOptions = {}): HttpTransport {
  return new HttpTransport(options);
}

function withQuery(path: string, query: HttpRequestOptions['query']): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined) params.set(k, typeof v === 'boolean' ? (v ? '1' : '0') : String(v));
  }
  const qs = params.toString();
  if (!qs) return path;
  return `${path}${path.includes('?') ? '&' : '?'}${qs}`;
}

/**
 * Send one request through `transport` and return the answer whatever its status; the caller reads or
 * dumps the body. Rejects with an {@link HttpError} (`CONNECT`, `TLS`, `TIMEOUT`; `STATUS` when retries of a
 * 502/503/504 ran out), or with the signal's reason when aborted.
 */
export async function httpRequest(
  transport: HttpTransport,
  options: HttpRequestOptions,
): Promise<HttpResponse> {
  const method = options.method ?? 'GET';
  const origin = transport.origin ?? (options.origin !== undefined ? String(options.origin) : undefined);
  if (origin === undefined) {
    throw new HttpError(
      HttpErrorCode.invalid,
      `${method} ${options.path}: no origin (the transport has none)`,
    );
  }
  const path = withQuery(options.path, options.query);
  const headers: Record<string, string> = { ...options.headers };
  let body = options.body;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    // A caller's own type wins (a Kubernetes merge patch is JSON under another name).
    if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) {
      headers['content-type'] = 'application/json';
    }
  }
  const timeouts = options.stream ? { headersMs: 0, bodyMs: 0, deadlineMs: 0 } : (options.timeouts ?? {});
  const request: HttpDispatchOptions & Dispatcher.RequestOptions = {
    origin,
    method,
    path,
    headers,
    body: body as Dispatcher.DispatchOptions['body'],
    signal: options.signal ?? null,
    ...(options.idempotent !== undefined ? { idempotent: options.idempotent } : {}),
    ...(timeouts.headersMs !== undefined ? { headersTimeout: timeouts.headersMs } : {}),
    ...(timeouts.bodyMs !== undefined ? { bodyTimeout: timeouts.bodyMs } : {}),
    ...(timeouts.deadlineMs !== undefined ? { deadlineMs: timeouts.deadlineMs } : {}),
  };
  try {
    const res = await transport.dispatcher.request(request);
    return { status: res.statusCode, headers: res.headers, body: res.body };
  } catch (err) {
    if (options.signal?.aborted) throw options.signal.reason ?? err;
    const what = `${method} ${describeTarget(origin, path)}`;
    const e = err as { code?: string; statusCode?: number };
    if (e.code === 'UND_ERR_REQ_RETRY' && typeof e.statusCode === 'number') {
      throw new HttpError(HttpErrorCode.status, `${what}: ${e.statusCode} after retries`, {
        cause: err,
        status: e.statusCode,
      });
    }
    throw toHttpError(err, what);
  }
}

/** Options of {@link httpJson}. */
export interface HttpJsonOptions extends HttpRequestOptions {
  /** Statuses that count as success. Default 2xx. */
  expectStatus?: (status: number) => boolean;
}

/**
 * {@link httpRequest} for JSON APIs: parses the body (undefined for 204/304 or an empty body), and turns any
 * unexpected status into `CAP_ERR_RUNTIME_HTTP_STATUS` carrying the status and the start of the body.
 */
export async function httpJson<T = unknown>(transport: HttpTransport, options: HttpJsonOptions): Promise<T> {
  const res = await httpRequest(transport, {
    ...options,
    headers: { accept: 'application/json', ...options.headers },
  });
  const ok = options.expectStatus ?? ((s: number) => s >= 200 && s < 300);
  const what = `${options.method ?? 'GET'} ${describeTarget(transport.origin ?? options.origin, options.path)}`;
  const text = await res.body.text();
  if (!ok(res.status)) {
    const snippet = text.slice(0, 4096);
    throw new HttpError(
      HttpErrorCode.status,
      `${what}: ${res.status} ${snippet.trim().slice(0, 200)}`.trim(),
      {
        status: res.status,
        responseText: snippet,
      },
    );
  }
  if (text === '') return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new HttpError(HttpErrorCode.body, `${what}: response is not JSON`, {
      cause: err,
      status: res.status,
    });
  }
}

/** Options of {@link fetchOnce}. */
export interface FetchOnceOptions {
  /** TLS of the connection (CA, client certificate). */
  tls?: HttpTlsOptions;
  /** Deadline of the whole exchange. Default 5 s. */
  deadlineMs?: number;
  /** Headers of the request. */
  headers?: Record<string, string>;
}

/**
 * One GET of `url` on a connection of its own (no retry, closed after): the status, headers and the body as
 * text, whatever the status. For probes and one-off reads; a caller that talks to the same server again
 * keeps a transport instead. Rejects like {@link httpRequest}.
 */
export async function fetchOnce(
  url: string | URL,
  options: FetchOnceOptions = {},
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  const target = new URL(url);
  const http = createHttpTransport({
    origin: target.origin,
    retry: false,
    ...(options.tls ? { tls: options.tls } : {}),
  });
  try {
    const res = await httpRequest(http, {
      path: `${target.pathname}${target.search}`,
      ...(options.headers ? { headers: options.headers } : {}),
      timeouts: { deadlineMs: options.deadlineMs ?? 5_000 },
    });
    return { status: res.status, headers: res.headers, body: await res.body.text() };
  } finally {
    await http.destroy();
  }
}
