// A Capstan service: one HTTP server with health, metrics, JSON logs and graceful shutdown wired
// together, so every later area (webhooks, proxy, exporters, control planes) starts from the same base.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createSecureServer as createHttp2SecureServer, type Http2SecureServer } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { Health } from '../health/health.ts';
import type { HealthOptions } from '../health/types.ts';
import { Lifecycle, type LifecycleOptions, type ShutdownReport } from '../lifecycle/lifecycle.ts';
import { createLogger, flushLogs, type Logger } from '../log/logger.ts';
import {
  collectDefaultMetrics,
  instrumentHttpServer,
  MetricsRegistry,
  metricsHandler,
} from '../metrics/index.ts';
import type { CertificateHolder } from '../tls/certificate-holder.ts';
import { ServiceError, ServiceErrorCode } from './errors.ts';
import { http1ServerOptions, limitHttp2Server, resolveServerLimits, type ServerLimits } from './limits.ts';

/** A request handler for the service's own routes. Throwing (or rejecting) answers 500. */
export type ServiceHandler = (req: IncomingMessage, res: ServerResponse, ctx: RequestContext) => unknown;

/** Per-request context handed to route handlers. */
export interface RequestContext {
  /** From `X-Request-Id` when the client sent a sane one, else generated; echoed on the response. */
  requestId: string;
  /** The service logger bound to this request's id. */
  log: Logger;
  /** Aborted when the client goes away or the service starts stopping. */
  signal: AbortSignal;
}

/** Options of {@link createService}. */
export interface ServiceOptions {
  /** Service name: logged as `name`, used as the default metrics prefix. */
  name: string;
  /**
   * Listen port; default 8080. 0 picks a free port. The factory reads no environment: read `PORT` at the
   * edge with `loadConfig(listenConfig)` and pass it in.
   */
  port?: number;
  /** Listen address; default all interfaces (read `HOST` at the edge, like `port`). */
  host?: string;
  /** Default: `createLogger({ name })` at level info; pass your own to honour `LOG_LEVEL` (see `logConfig`). */
  logger?: Logger;
  /** Registry served on `/metrics`. Default: a new {@link MetricsRegistry} with process metrics. */
  metrics?: MetricsRegistry;
  /** Collect Node's default process/runtime metrics into the registry. Default true. */
  defaultMetrics?: boolean;
  /** A health registry of your own; default a new {@link Health} from `healthOptions` and `exposeCheckErrors`. */
  health?: Health;
  /** Options of the service's own {@link Health} (ignored with `health`). */
  healthOptions?: HealthOptions;
  /**
   * Show checks' raw failure messages on `/readyz?verbose` and the other health endpoints. Default false:
   * `reason withheld`, since a check's error may quote a connection string or a token. Either way the service
   * logs each check's change of state with its reason (redacted). Ignored with `health`.
   */
  exposeCheckErrors?: boolean;
  /**
   * A shared {@link Lifecycle} (several services in one process stop together), or options for a
   * service-owned one.
   */
  lifecycle?: Lifecycle | LifecycleOptions;
  /** Routes of the service itself; unmatched paths get 404. */
  routes?: Record<string, ServiceHandler>;
  /** Fallback for paths not in `routes` (default: 404 JSON). */
  handler?: ServiceHandler;
  /**
   * Answer `/livez`, `/readyz`, `/healthz` and `/metrics` on this server. Default true. A proxy turns it off
   * so every path reaches its handler, and serves `health` and `metrics` from a second service.
   */
  builtinRoutes?: boolean;
  /**
   * Header, request and keep-alive timeouts and the connection cap; each unset one takes its value from
   * `defaultServerLimits` (headers 10 s, request 60 s, idle 5 s, 10 000 connections).
   */
  limits?: Partial<ServerLimits>;
  /**
   * Serve HTTPS instead of HTTP, with the holder's certificate: a rotation (`holder.update`) reaches new
   * connections without a restart. The holder's `caPem`, when set, is the CA client certificates are checked
   * against (see {@link ServiceTlsOptions.requestCert}).
   */
  tls?: ServiceTlsOptions;
}

/** TLS for {@link createService}. */
export interface ServiceTlsOptions {
  /** The serving certificate (and the client CA in its `caPem`). */
  certificate: CertificateHolder;
  /**
   * Ask clients for a certificate. The handshake never fails for a missing or untrusted one: the request
   * arrives and a handler decides (`req.socket.authorized`, `authorizationError`, `getPeerCertificate()`),
   * so a client gets a 401 with a reason instead of a reset. Default false.
   */
  requestCert?: boolean;
  /**
   * Serve HTTP/2 to clients that offer it (ALPN `h2`), HTTP/1.1 to the others (`allowHTTP1`). HTTP/2 requests
   * reach handlers through Node's compatibility API (`Http2ServerRequest`/`Http2ServerResponse`, which share
   * the methods handlers use), and get `limits` through `limitHttp2Server`. Default false.
   */
  http2?: boolean;
}

/** A running (or ready to run) service. */
export interface Service {
  readonly name: string;
  readonly logger: Logger;
  readonly metrics: MetricsRegistry;
  readonly health: Health;
  readonly lifecycle: Lifecycle;
  /** The listener: an `http2.Http2SecureServer` with `tls.http2`. */
  readonly server: Server | Http2SecureServer;
  /** `http://host:port` (`https://` with `tls`) once listening. */
  readonly url: string;
  /** Listen, mark ready, and return the URL. */
  start(): Promise<string>;
  /** Stop on SIGTERM/SIGINT with the full drain sequence, then exit. */
  handleSignals(): void;
  /** Drain and stop without exiting the process. */
  stop(reason?: string): Promise<ShutdownReport>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The conventional container port, also `listenConfig`'s default for `PORT`. */
const DEFAULT_PORT = 8080;
const REQUEST_ID = /^[\w.:-]{1,128}$/;
const BUILTIN = new Set(['/livez', '/readyz', '/healthz', '/metrics']);

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** What {@link serveRequest} reads: fixed for the life of a service. */
interface RequestPath {
  routes: ReadonlyMap<string, ServiceHandler>;
  fallback: ServiceHandler | undefined;
  logger: Logger;
  lifecycle: Lifecycle;
}

function clientGone(): ServiceError {
  return new ServiceError(ServiceErrorCode.clientGone, 'response closed');
}

/** Whether a response (HTTP/1.1, or HTTP/2 through the compatibility API) has closed already. */
function responseClosed(res: ServerResponse): boolean {
  const stream = (res as unknown as { stream?: { closed: boolean; destroyed: boolean } }).stream;
  if (stream) return stream.closed || stream.destroyed;
  return (res as ServerResponse & { closed?: boolean }).closed === true;
}

/**
 * A request's context. A class, not an object literal with closures: under load, per-request closures
 * sharing one context with `req` and `res` made V8 promote whole requests to the old generation (20-80 ms
 * scavenges and a heap swinging 20-110 MB at a few thousand requests a second). The logger and the signal
 * are made on first use: a child logger and a combined signal cost more than many handlers do, and most
 * requests never use them.
 */
class ServiceRequestContext implements RequestContext {
  readonly requestId: string;
  readonly #res: ServerResponse;
  readonly #path: RequestPath;
  #log: Logger | undefined;
  #signal: AbortSignal | undefined;

  constructor(requestId: string, res: ServerResponse, path: RequestPath) {
    this.requestId = requestId;
    this.#res = res;
    this.#path = path;
  }

  get log(): Logger {
    this.#log ??= this.#path.logger.child({ requestId: this.requestId });
    return this.#log;
  }

  get signal(): AbortSignal {
    if (!this.#signal) {
      const abort = new AbortController();
      if (responseClosed(this.#res)) abort.abort(clientGone());
      else this.#res.once('close', () => abort.abort(clientGone()));
      this.#signal = AbortSignal.any([abort.signal, this.#path.lifecycle.signal]);
    }
    return this.#signal;
  }
}

/** A handler threw or rejected: log it, answer 500 if nothing was sent, else cut the response. */
function failRequest(
  err: unknown,
  req: IncomingMessage,
  res: ServerResponse,
  ctx: RequestContext,
  path: string,
): void {
  ctx.log.error({ err, method: req.method, path }, 'request failed');
  if (!res.headersSent) sendJson(res, 500, { error: 'internal error', requestId: ctx.requestId });
  else res.destroy();
}

/** A request for the service's routes or its fallback handler: request id, context, 404, 500 on a throw. */
function serveRequest(p: RequestPath, req: IncomingMessage, res: ServerResponse, path: string): void {
  const incoming = req.headers['x-request-id'];
  const requestId = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
  res.setHeader('x-request-id', requestId);
  const handler = p.routes.get(path) ?? p.fallback;
  if (!handler) {
    sendJson(res, 404, { error: 'not found', path });
    return;
  }
  const ctx = new ServiceRequestContext(requestId, res, p);
  try {
    const result = handler(req, res, ctx);
    if (result instanceof Promise) result.catch((err: unknown) => failRequest(err, req, res, ctx, path));
  } catch (err) {
    failRequest(err, req, res, ctx, path);
  }
}

/**
 * Create a service: an HTTP server serving `/livez`, `/readyz`, `/healthz` and `/metrics` next to your
 * routes, with request ids, HTTP metrics, JSON logs, 400s with reasons for malformed requests, and a
 * shutdown that flips readiness, drains in-flight requests and flushes logs.
 *
 * Options are values: the environment (`PORT`, `HOST`, `LOG_LEVEL`) is read by the caller, once, at its edge.
 *
 * ```ts
 * const service = createService({
 *   name: 'exporter',
 *   ...loadConfigOrExit(listenConfig), // PORT, HOST
 *   routes: { '/': (req, res) => res.end('hi') },
 * });
 * service.metrics.registerCollector(myCollector);
 * await service.start();
 * service.handleSignals();
 * ```
 */
export function createService(options: ServiceOptions): Service {
  if (!options.name) throw new ServiceError(ServiceErrorCode.invalid, 'createService needs a name');
  const limits = resolveServerLimits(options.limits);
  const port = options.port ?? DEFAULT_PORT;
  const host = options.host;
  const logger = options.logger ?? createLogger({ name: options.name });
  const metrics = options.metrics ?? new MetricsRegistry();
  if (!options.metrics && options.defaultMetrics !== false) collectDefaultMetrics({ register: metrics });
  const health =
    options.health ??
    new Health({
      ...options.healthOptions,
      ...(options.exposeCheckErrors !== undefined && { exposeCheckErrors: options.exposeCheckErrors }),
    });
  // The raw reason a probe endpoint withholds goes to the logs, once per change of state, not once per run.
  const healthLog = logger.child({ component: 'health' });
  health.onChange((change) => {
    if (change.type !== 'check') return;
    const { name, from, to, state } = change;
    if (to === 'failing') {
      healthLog[state.critical ? 'warn' : 'info'](
        { check: name, critical: state.critical, code: state.lastErrorCode, reason: state.lastError },
        'health check failing',
      );
    } else if (to === 'ok' && from === 'failing') {
      healthLog.info({ check: name }, 'health check recovered');
    }
  });
  const ownsLifecycle = !(options.lifecycle instanceof Lifecycle);
  const lifecycle =
    options.lifecycle instanceof Lifecycle
      ? options.lifecycle
      : new Lifecycle({
          ...options.lifecycle,
          log: (level, msg, fields) => logger[level](fields ?? {}, msg),
        });
  const routes = new Map(Object.entries(options.routes ?? {}));
  const serveMetrics = metricsHandler(metrics);

  let server: Server;
  let detachCertificate: (() => void) | undefined;
  if (options.tls?.http2) {
    const h2 = createHttp2SecureServer({
      ...options.tls.certificate.serverOptions(),
      allowHTTP1: true,
      requestCert: options.tls.requestCert ?? false,
      rejectUnauthorized: false,
    });
    limitHttp2Server(h2, limits);
    detachCertificate = options.tls.certificate.attach(h2);
    // The compatibility API gives HTTP/1.1 and HTTP/2 requests the same 'request' event and methods.
    server = h2 as unknown as Server;
  } else if (options.tls) {
    const https = createHttpsServer({
      ...http1ServerOptions(limits),
      ...options.tls.certificate.serverOptions(),
      requestCert: options.tls.requestCert ?? false,
      rejectUnauthorized: false,
    });
    detachCertificate = options.tls.certificate.attach(https);
    server = https;
  } else {
    server = createServer(http1ServerOptions(limits));
  }
  server.maxConnections = limits.maxConnections;
  instrumentHttpServer(server, metrics);
  const builtin = options.builtinRoutes ?? true;

  const requests: RequestPath = { routes, fallback: options.handler, logger, lifecycle };
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (builtin && health.handle(req, res)) return;
    if (builtin && path === '/metrics') return serveMetrics(req, res);
    serveRequest(requests, req, res, path);
  });
  // Malformed HTTP never reaches 'request': answer 400 with the parser's reason instead of a reset.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // A response already begun on this socket (a request timeout while its body still arrives) cannot
    // be followed by a 400/408: cut the connection instead.
    const current = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (!socket.writable || err.code === 'ECONNRESET' || current?.headersSent) {
      socket.destroy();
      return;
    }
    const status =
      err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const reason = `${err.code ?? 'HPE_INVALID'}: ${err.message}`;
    const text = JSON.stringify({ error: 'bad request', reason });
    socket.end(
      `HTTP/1.1 ${status} ${status === 400 ? 'Bad Request' : status === 431 ? 'Request Header Fields Too Large' : 'Request Timeout'}\r\n` +
        `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
    );
  });

  lifecycle.addServer(server, { name: options.name });
  lifecycle.onPhase(({ phase, report }) => {
    if (phase === 'stopping') health.markStopping();
    if (phase === 'stopped' && report && ownsLifecycle) {
      logger.info(
        { exitCode: report.exitCode, servers: report.servers, errors: report.errors.map((e) => e.code) },
        'stopped',
      );
    }
  });
  // Hooks run in reverse order: logs are flushed last.
  if (ownsLifecycle) lifecycle.onShutdown('flush logs', () => flushLogs());
  lifecycle.onShutdown(`${options.name} metrics`, () => metrics.close());
  lifecycle.onShutdown(`${options.name} health`, () => health.close());
  if (detachCertificate) lifecycle.onShutdown(`${options.name} certificate`, () => detachCertificate());

  let url = '';
  const service: Service = {
    name: options.name,
    logger,
    metrics,
    health,
    lifecycle,
    server,
    get url() {
      return url;
    },
    async start() {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const address = server.address() as AddressInfo;
      const shownHost =
        address.family === 'IPv6'
          ? address.address === '::'
            ? 'localhost'
            : `[${address.address}]`
          : address.address;
      url = `${options.tls ? 'https' : 'http'}://${shownHost === '0.0.0.0' ? 'localhost' : shownHost}:${address.port}`;
      health.markReady();
      logger.info({ url, builtin: builtin ? [...BUILTIN] : [] }, 'listening');
      return url;
    },
    handleSignals() {
      lifecycle.handleSignals();
    },
    stop(reason = 'stop') {
      return lifecycle.shutdown(reason);
    },
    async [Symbol.asyncDispose]() {
      await lifecycle.shutdown('dispose');
    },
  };
  return service;
}
