// The load balancer: a reverse proxy served by the runtime's createService (health endpoints, metrics,
// request ids, limits, graceful drain), forwarding through one undici Pool per backend, with active health
// checks, passive outlier ejection, budgeted retries and reloads that drop nothing.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import {
  bindCounter,
  bindHistogram,
  type CertificateHolder,
  Counter,
  createService,
  Gauge,
  Histogram,
  IDEMPOTENT_METHODS,
  type Lifecycle,
  type LifecycleOptions,
  type Logger,
  type MetricsRegistry,
  type RequestContext,
  type ServerLimits,
  type Service,
} from '../../runtime/index.ts';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import type { Backend, BackendEndpoint } from './backend.ts';
import { BackendSet, type BackendSetChange } from './backend-set.ts';
import { TrustedProxies } from './headers.ts';
import {
  DEFAULT_HEALTH_CHECK,
  HealthChecker,
  type HealthCheckOptions,
  type ResolvedHealthCheckOptions,
} from './health-checks.ts';
import {
  type AttemptOutcome,
  DEFAULT_OUTLIER,
  OutlierDetector,
  type OutlierOptions,
  type ResolvedOutlierOptions,
} from './outlier.ts';
import { createPicker, LB_POLICIES, type LbPolicy } from './pickers.ts';
import { type ProxyState, type ProxyTimeouts, proxyRequest, type RetryOptions } from './proxy.ts';
import { RetryBudget } from './retry-budget.ts';
import { proxyUpgrade } from './upgrade.ts';

/** What can change on a running load balancer ({@link LoadBalancer.update}). */
export interface LoadBalancerSettings {
  /** The backends: URLs or endpoints with weights. */
  backends: ReadonlyArray<string | BackendEndpoint>;
  /** Default `round-robin`. */
  policy?: LbPolicy;
  /** The header whose value is the `consistent-hash` key (required with that policy). */
  hashHeader?: string;
  healthCheck?: HealthCheckOptions;
  outlier?: OutlierOptions;
  retry?: RetryOptions;
  timeouts?: ProxyTimeouts;
  /** Addresses and CIDR ranges whose X-Forwarded-* headers are believed. Default none. */
  trustedProxies?: readonly string[];
}

/** Options of {@link createLoadBalancer}. */
export interface LoadBalancerOptions extends LoadBalancerSettings {
  /** Service name (logs, metrics). Default `capstan-lb`. */
  name?: string;
  /** Listen port; 0 picks a free one. Default 8080. */
  port?: number;
  /** Listen address. Default all interfaces. */
  host?: string;
  /** Serve HTTPS, and HTTP/2 to clients that offer it (ALPN), with this certificate (rotated without a restart). */
  tls?: { certificate: CertificateHolder };
  /**
   * Serve `/livez`, `/readyz`, `/healthz` and `/metrics` here instead of on the proxy's port, so every path
   * of the proxy's port goes to the backends. Default: on the proxy's port (those four paths are not proxied).
   */
  admin?: { port: number; host?: string };
  /** TLS to https backends. */
  backendTls?: { ca?: string | Buffer | Array<string | Buffer>; rejectUnauthorized?: boolean };
  /** Connections per backend. Default unlimited. */
  connectionsPerBackend?: number;
  /** Client-side limits (header, request and idle timeouts, connection cap) of the runtime's service. */
  limits?: Partial<ServerLimits>;
  logger?: Logger;
  metrics?: MetricsRegistry;
  /** A shared lifecycle, or options of the load balancer's own. */
  lifecycle?: Lifecycle | LifecycleOptions;
  /** Test hooks. */
  random?: () => number;
}

/** Something that happened to the backends, for logs, tests and callers. */
export type LoadBalancerEvent =
  | { type: 'health'; backend: string; from: string; to: string; reason: string }
  | { type: 'ejected'; backend: string; durationMs: number; reason: string }
  | { type: 'restored'; backend: string }
  | { type: 'retry'; backend: string; reason: string }
  | { type: 'budget-exhausted'; backend: string; reason: string }
  | { type: 'updated'; change: BackendSetChange; policy: LbPolicy };

const DEFAULT_TIMEOUTS: Required<ProxyTimeouts> = Object.freeze({
  connectMs: 5_000,
  headersMs: 30_000,
  idleMs: 60_000,
});

function checkMs(name: string, value: number, allowZero = false): void {
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1) || value > 2_147_483_647) {
    throw new TrafficError(
      TrafficErrorCode.invalid,
      `${name} must be a whole number of ms from ${allowZero ? 0 : 1}, got ${value}`,
    );
  }
}

function checkCount(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new TrafficError(
      TrafficErrorCode.invalid,
      `${name} must be an integer ${min}..${max}, got ${value}`,
    );
  }
}

interface Resolved {
  endpoints: BackendEndpoint[];
  policy: LbPolicy;
  hashHeader: string | undefined;
  health: ResolvedHealthCheckOptions;
  outlier: ResolvedOutlierOptions;
  retry: ProxyState['retry'] & { budgetPercent: number; budgetMinRetries: number };
  timeouts: Required<ProxyTimeouts>;
  trusted: TrustedProxies;
}

/** Check settings and fill defaults; throws {@link TrafficErrorCode.invalid} naming the first problem. */
function resolveSettings(s: LoadBalancerSettings): Resolved {
  const endpoints = s.backends.map((b) => (typeof b === 'string' ? { url: b } : { ...b }));
  const policy = s.policy ?? 'round-robin';
  if (!LB_POLICIES.includes(policy)) {
    throw new TrafficError(
      TrafficErrorCode.invalid,
      `unknown policy ${JSON.stringify(policy)}; one of ${LB_POLICIES.join(', ')}`,
    );
  }
  const hashHeader = s.hashHeader?.toLowerCase();
  if (policy === 'consistent-hash' && !hashHeader) {
    throw new TrafficError(TrafficErrorCode.invalid, 'the consistent-hash policy needs hashHeader');
  }
  const health = { ...DEFAULT_HEALTH_CHECK, ...s.healthCheck };
  checkMs('healthCheck.intervalMs', health.intervalMs);
  checkMs('healthCheck.timeoutMs', health.timeoutMs);
  checkCount('healthCheck.rise', health.rise, 1, 100);
  checkCount('healthCheck.fall', health.fall, 1, 100);
  if (!health.path.startsWith('/')) {
    throw new TrafficError(
      TrafficErrorCode.invalid,
      `healthCheck.path must start with /, got ${health.path}`,
    );
  }
  const outlier = { ...DEFAULT_OUTLIER, ...s.outlier };
  checkCount('outlier.consecutive5xx', outlier.consecutive5xx, 1, 1_000_000);
  checkCount('outlier.consecutiveGatewayErrors', outlier.consecutiveGatewayErrors, 1, 1_000_000);
  checkMs('outlier.baseEjectionMs', outlier.baseEjectionMs);
  checkMs('outlier.maxEjectionMs', outlier.maxEjectionMs);
  checkCount('outlier.maxEjectionPercent', outlier.maxEjectionPercent, 0, 100);
  const r = s.retry ?? {};
  const retry = {
    retries: r.retries ?? 2,
    statusCodes: [...(r.statusCodes ?? [])],
    methods: new Set((r.methods ?? IDEMPOTENT_METHODS).map((m) => m.toUpperCase())),
    budgetPercent: r.budgetPercent ?? 20,
    budgetMinRetries: r.budgetMinRetries ?? 10,
  };
  checkCount('retry.retries', retry.retries, 0, 10);
  for (const code of retry.statusCodes) checkCount('retry.statusCodes[]', code, 100, 599);
  checkCount('retry.budgetPercent', retry.budgetPercent, 0, 100);
  checkCount('retry.budgetMinRetries', retry.budgetMinRetries, 0, 1_000_000);
  const timeouts = { ...DEFAULT_TIMEOUTS, ...s.timeouts };
  checkMs('timeouts.connectMs', timeouts.connectMs);
  checkMs('timeouts.headersMs', timeouts.headersMs, true);
  checkMs('timeouts.idleMs', timeouts.idleMs, true);
  return {
    endpoints,
    policy,
    hashHeader,
    health,
    outlier,
    retry,
    timeouts,
    trusted: new TrustedProxies(s.trustedProxies ?? []),
  };
}

/** Per-backend metrics, the children cached so a request does not hash label sets. */
class LbMetrics {
  readonly requests: Counter<'backend' | 'code'>;
  readonly errors: Counter<'backend' | 'kind'>;
  readonly duration: Histogram<'backend'>;
  readonly healthy: Gauge<'backend'>;
  readonly ejected: Gauge<'backend'>;
  readonly ejections: Counter<'backend'>;
  readonly retries: Counter<'backend'>;
  readonly budgetExhausted: Counter;
  readonly noBackend: Counter;

  constructor(registry: MetricsRegistry) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'capstan_lb_backend_requests_total',
      help: 'Attempts sent to each backend, by status class (2xx..5xx) or "error" when no answer came.',
      labelNames: ['backend', 'code'],
      registers,
    });
    this.errors = new Counter({
      name: 'capstan_lb_backend_errors_total',
      help: 'Failed attempts per backend: connect, reset, timeout, 5xx.',
      labelNames: ['backend', 'kind'],
      registers,
    });
    this.duration = new Histogram({
      name: 'capstan_lb_backend_request_duration_seconds',
      help: 'Time from sending an attempt to the end of its response, per backend.',
      labelNames: ['backend'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      unit: 'seconds',
      registers,
    });
    this.healthy = new Gauge({
      name: 'capstan_lb_backend_healthy',
      help: 'Active health of each backend: 1 healthy, 0 unhealthy, -1 not checked yet.',
      labelNames: ['backend'],
      registers,
    });
    this.ejected = new Gauge({
      name: 'capstan_lb_backend_ejected',
      help: 'Whether outlier detection has ejected the backend (1) or not (0).',
      labelNames: ['backend'],
      registers,
    });
    this.ejections = new Counter({
      name: 'capstan_lb_backend_ejections_total',
      help: 'Ejections of each backend by outlier detection.',
      labelNames: ['backend'],
      registers,
    });
    this.retries = new Counter({
      name: 'capstan_lb_retries_total',
      help: 'Requests sent to another backend after an attempt on this one failed.',
      labelNames: ['backend'],
      registers,
    });
    this.budgetExhausted = new Counter({
      name: 'capstan_lb_retry_budget_exhausted_total',
      help: 'Retries not made because the retry budget was spent.',
      registers,
    });
    this.noBackend = new Counter({
      name: 'capstan_lb_no_backend_total',
      help: 'Requests answered 503 because no backend was available.',
      registers,
    });
  }

  setBackend(backend: Backend, now: number): void {
    this.healthy.set(
      { backend: backend.id },
      backend.health === 'healthy' ? 1 : backend.health === 'unhealthy' ? 0 : -1,
    );
    this.ejected.set({ backend: backend.id }, backend.isEjected(now) ? 1 : 0);
  }

  removeBackend(id: string): void {
    this.healthy.remove({ backend: id });
    this.ejected.remove({ backend: id });
    this.#children.delete(id);
  }

  /** Per backend, the series already bound: prom-client validates and hashes a label set on every call otherwise. */
  readonly #children = new Map<
    string,
    {
      requests: Map<string, { inc(): void }>;
      errors: Map<string, { inc(): void }>;
      duration: { observe(v: number): void };
    }
  >();

  /** Count one attempt: its status class (or `error`), its failure kind if any, its duration. */
  attempt(backend: string, code: string, kind: string | undefined, seconds: number): void {
    let c = this.#children.get(backend);
    if (!c) {
      c = { requests: new Map(), errors: new Map(), duration: bindHistogram(this.duration, { backend }) };
      this.#children.set(backend, c);
    }
    let requests = c.requests.get(code);
    if (!requests) {
      requests = bindCounter(this.requests, { backend, code });
      c.requests.set(code, requests);
    }
    requests.inc();
    if (kind !== undefined && kind !== 'client') {
      let errors = c.errors.get(kind);
      if (!errors) {
        errors = bindCounter(this.errors, { backend, kind });
        c.errors.set(kind, errors);
      }
      errors.inc();
    }
    c.duration.observe(seconds);
  }
}

const STATUS_CLASS: Record<number, string> = { 1: '1xx', 2: '2xx', 3: '3xx', 4: '4xx', 5: '5xx' };

/**
 * A load-balancing reverse proxy. Create it with {@link createLoadBalancer}, `start()` it, `update()` it
 * with new backends or policy while it runs, `stop()` it (drain) when done.
 */
export class LoadBalancer {
  /** The proxy's service (its port, health, metrics, lifecycle). */
  readonly service: Service;
  /** The admin service, when `admin` is set: health and metrics on a port of their own. */
  readonly admin: Service | undefined;
  readonly backends: BackendSet;
  readonly #tls: boolean;
  readonly #random: (() => number) | undefined;
  readonly #metrics: LbMetrics;
  readonly #listeners = new Set<(e: LoadBalancerEvent) => void>();
  #checker: HealthChecker;
  readonly #outlier: OutlierDetector;
  #resolved: Resolved;
  /** The settings as given, so {@link setBackends} can change the backends alone. */
  #settings: LoadBalancerSettings;
  #state: ProxyState;
  #log: Logger;

  constructor(options: LoadBalancerOptions) {
    const resolved = resolveSettings(options);
    if (options.connectionsPerBackend !== undefined) {
      checkCount('connectionsPerBackend', options.connectionsPerBackend, 1, 100_000);
    }
    this.#resolved = resolved;
    this.#settings = options;
    this.#random = options.random;
    this.#tls = options.tls !== undefined;
    this.service = createService({
      name: options.name ?? 'capstan-lb',
      ...(options.port !== undefined ? { port: options.port } : {}),
      ...(options.host !== undefined ? { host: options.host } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.metrics ? { metrics: options.metrics } : {}),
      ...(options.lifecycle ? { lifecycle: options.lifecycle } : {}),
      ...(options.limits ? { limits: options.limits } : {}),
      ...(options.tls ? { tls: { certificate: options.tls.certificate, http2: true } } : {}),
      ...(options.admin ? { builtinRoutes: false } : {}),
      handler: (req, res, ctx) => this.#handle(req, res, ctx),
    });
    this.admin = options.admin
      ? createService({
          name: `${options.name ?? 'capstan-lb'}-admin`,
          port: options.admin.port,
          ...(options.admin.host !== undefined ? { host: options.admin.host } : {}),
          logger: this.service.logger,
          metrics: this.service.metrics,
          health: this.service.health,
          lifecycle: this.service.lifecycle,
        })
      : undefined;
    this.#log = this.service.logger.child({ component: 'lb' });
    this.#metrics = new LbMetrics(this.service.metrics);
    this.backends = new BackendSet({
      connectTimeoutMs: resolved.timeouts.connectMs,
      ...(options.connectionsPerBackend !== undefined ? { connections: options.connectionsPerBackend } : {}),
      ...(options.backendTls?.ca !== undefined ? { ca: options.backendTls.ca } : {}),
      ...(options.backendTls?.rejectUnauthorized !== undefined
        ? { rejectUnauthorized: options.backendTls.rejectUnauthorized }
        : {}),
    });
    this.#outlier = new OutlierDetector(this.backends, resolved.outlier, (e) => {
      const now = Date.now();
      this.#metrics.setBackend(e.backend, now);
      if (e.type === 'ejected') {
        this.#metrics.ejections.inc({ backend: e.backend.id });
        this.#log.warn(
          { backend: e.backend.id, durationMs: e.durationMs, reason: e.reason },
          'backend ejected',
        );
        this.#emit({
          type: 'ejected',
          backend: e.backend.id,
          durationMs: e.durationMs ?? 0,
          reason: e.reason ?? '',
        });
      } else {
        this.#log.info({ backend: e.backend.id }, 'backend restored after ejection');
        this.#emit({ type: 'restored', backend: e.backend.id });
      }
    });
    this.#checker = this.#newChecker(resolved.health);
    this.#state = this.#makeState(resolved);
    this.backends.update(resolved.endpoints);
    for (const b of this.backends.all) this.#metrics.setBackend(b, Date.now());
    this.service.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      proxyUpgrade(this.#state, req, socket, head, this.#forwardContext(req)),
    );
    this.service.health.register({
      name: 'backends',
      critical: false,
      intervalMs: 1_000,
      check: async () => {
        const healthy = this.backends.all.filter((b) => b.health !== 'unhealthy').length;
        if (this.backends.all.length === 0) throw new Error('no backends configured');
        if (healthy === 0) throw new Error('no healthy backend');
        return { detail: `${healthy}/${this.backends.all.length} healthy` };
      },
    });
    this.service.lifecycle.onShutdown('load balancer backends', async () => {
      await this.#checker.close();
      this.#outlier.close();
      await this.backends.close();
    });
  }

  #newChecker(options: ResolvedHealthCheckOptions): HealthChecker {
    return new HealthChecker(
      this.backends,
      options,
      (t) => {
        // A check that passes again ends an ejection: the backend has recovered, so why wait out the time.
        if (t.to === 'healthy' && t.from === 'unhealthy') this.#outlier.uneject(t.backend);
        this.#metrics.setBackend(t.backend, Date.now());
        this.#log[t.to === 'unhealthy' ? 'warn' : 'info'](
          { backend: t.backend.id, from: t.from, to: t.to, reason: t.reason },
          'backend health changed',
        );
        this.#emit({ type: 'health', backend: t.backend.id, from: t.from, to: t.to, reason: t.reason });
      },
      this.#random,
    );
  }

  #makeState(r: Resolved): ProxyState {
    const metrics = this.#metrics;
    // One budget across reloads unless its settings change, so a reload does not refill it.
    const budget =
      this.#state?.budget &&
      this.#resolved.retry.budgetPercent === r.retry.budgetPercent &&
      this.#resolved.retry.budgetMinRetries === r.retry.budgetMinRetries
        ? this.#state.budget
        : new RetryBudget({ percent: r.retry.budgetPercent, minRetries: r.retry.budgetMinRetries });
    const picker =
      this.#state?.picker.policy === r.policy
        ? this.#state.picker
        : createPicker(r.policy, this.#random ? { random: this.#random } : {});
    return {
      set: this.backends,
      picker,
      hashHeader: r.hashHeader,
      budget,
      retry: { retries: r.retry.retries, statusCodes: r.retry.statusCodes, methods: r.retry.methods },
      timeouts: r.timeouts,
      trusted: r.trusted,
      record: (backend: Backend, outcome: AttemptOutcome) => this.#outlier.record(backend, outcome),
      observer: {
        attemptEnded(backend, _outcome, status, kind, seconds) {
          metrics.attempt(
            backend.id,
            status === 'error' ? 'error' : (STATUS_CLASS[Math.floor(status / 100)] ?? 'error'),
            kind,
            seconds,
          );
        },
        retried: (backend, reason) => {
          metrics.retries.inc({ backend: backend.id });
          this.#emit({ type: 'retry', backend: backend.id, reason });
        },
        budgetExhausted: (backend, reason) => {
          metrics.budgetExhausted.inc();
          this.#emit({ type: 'budget-exhausted', backend: backend.id, reason });
        },
        noBackend() {
          metrics.noBackend.inc();
        },
      },
    };
  }

  #forwardContext(req: IncomingMessage) {
    const authority = (req.headers as Record<string, string | string[] | undefined>)[':authority'];
    return {
      peer: req.socket.remoteAddress,
      scheme: (this.#tls || (req.socket as TLSSocket).encrypted ? 'https' : 'http') as 'http' | 'https',
      host: req.headers.host ?? (typeof authority === 'string' ? authority : undefined),
    };
  }

  #handle(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): void {
    // A request pipelined behind a refused one was parsed with the same untrusted framing.
    if (refused.has(req.socket)) {
      res.destroy();
      return;
    }
    const url = req.url ?? '';
    if (req.method === 'CONNECT' || url[0] !== '/') {
      rejectRequest(res, 400, 'the load balancer takes origin-form requests only (a path starting with /)');
      return;
    }
    // Node's parser already refuses conflicting Content-Length/Transfer-Encoding, obs-fold and bad chunks
    // (400 from createService). What it lets through that a backend could read differently:
    let hosts = 0;
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      if (req.rawHeaders[i]!.length === 4 && req.rawHeaders[i]!.toLowerCase() === 'host') hosts++;
    }
    if (hosts > 1) {
      rejectRequest(res, 400, 'more than one Host header (RFC 9112 §3.2)');
      return;
    }
    if (req.httpVersion === '1.0' && req.headers['transfer-encoding'] !== undefined) {
      rejectRequest(res, 400, 'Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1)');
      return;
    }
    proxyRequest(this.#state, req, res, this.#forwardContext(req), ctx.requestId);
  }

  #emit(event: LoadBalancerEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {}
    }
  }

  /** Listen for {@link LoadBalancerEvent}s; returns a function that stops listening. */
  onEvent(listener: (event: LoadBalancerEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The URL clients use, once started. */
  get url(): string {
    return this.service.url;
  }

  /** The policy in use. */
  get policy(): LbPolicy {
    return this.#state.picker.policy;
  }

  /**
   * Run the first health check of every backend (each bounded by its timeout), then listen. Returns the URL.
   */
  async start(): Promise<string> {
    await this.#checker.sync();
    if (this.admin) await this.admin.start();
    return this.service.start();
  }

  /**
   * Replace the backends and settings while running: kept backends keep their connections and state, new
   * ones get their first health check before taking traffic (unless none is healthy), removed ones finish
   * their in-flight requests. Requests in flight keep the settings they started with. Every setting is
   * checked before anything changes: a bad update throws and leaves the load balancer as it was.
   */
  async update(settings: LoadBalancerSettings): Promise<BackendSetChange> {
    const resolved = resolveSettings(settings);
    const before = new Set(this.backends.all.map((b) => b.id));
    const change = this.backends.update(resolved.endpoints);
    if (resolved.health.enabled !== this.#resolved.health.enabled) {
      await this.#checker.close();
      // Without checks every backend counts as healthy; with them, each waits for its first check.
      for (const b of this.backends.all) b.health = 'unknown';
      this.backends.refresh();
      this.#checker = this.#newChecker(resolved.health);
    } else {
      this.#checker.reconfigure(resolved.health);
    }
    this.#outlier.reconfigure(resolved.outlier);
    this.#state = this.#makeState(resolved);
    this.#resolved = resolved;
    this.#settings = settings;
    for (const id of change.removed) this.#metrics.removeBackend(id);
    for (const b of this.backends.all) if (!before.has(b.id)) this.#metrics.setBackend(b, Date.now());
    this.#log.info({ ...change, policy: resolved.policy }, 'backends updated');
    this.#emit({ type: 'updated', change, policy: resolved.policy });
    await this.#checker.sync();
    return change;
  }

  /** Replace the backends alone, every other setting kept (what a discovery source feeds; see {@link update}). */
  setBackends(backends: LoadBalancerSettings['backends']): Promise<BackendSetChange> {
    return this.update({ ...this.#settings, backends });
  }

  /** Drain and stop (the service's lifecycle: readiness off, in-flight requests finish, pools close). */
  async stop(reason = 'stop'): Promise<void> {
    await this.service.stop(reason);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop('dispose');
  }
}

/** Connections that carried a refused request: nothing more is read from them. */
const refused = new WeakSet<object>();

/** Answer a request the proxy refuses; the connection closes after it (its framing is not trusted). */
function rejectRequest(res: ServerResponse, status: number, reason: string): void {
  const text = JSON.stringify({ error: 'bad request', reason });
  const h2 = 'stream' in res;
  if (!h2) refused.add(res.socket ?? res);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...(h2 ? {} : { connection: 'close' }),
  });
  res.end(text);
}

/** Create a {@link LoadBalancer}; settings are checked here (a {@link TrafficError} `invalid` names the problem). */
export function createLoadBalancer(options: LoadBalancerOptions): LoadBalancer {
  return new LoadBalancer(options);
}
