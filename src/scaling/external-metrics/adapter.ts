// The External Metrics API (external.metrics.k8s.io/v1beta1) served over TLS for the apiserver's
// aggregation layer: discovery, and ExternalMetricValueLists read from metric sources, so a standard
// HorizontalPodAutoscaler (an `External` metric) scales on a queue's depth. Every request is authenticated
// (the front proxy's client certificate) and authorized (a SubjectAccessReview) before a source is read.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KubeClient } from '../../kube/index.ts';
import {
  CertificateHolder,
  type CertPair,
  Counter,
  createService,
  Histogram,
  type Lifecycle,
  type LifecycleOptions,
  type Logger,
  type RequestContext,
  raceAbort,
  type Service,
} from '../../runtime/index.ts';
import { ScalingError, ScalingErrorCode } from '../errors.ts';
import {
  authenticateFrontProxy,
  type FrontProxyAuthentication,
  readFrontProxyAuthentication,
  type UserInfo,
} from './authentication.ts';
import {
  type Authorizer,
  EXTERNAL_METRICS_GROUP,
  EXTERNAL_METRICS_VERSION,
  type RequestAttributes,
  subjectAccessReviewAuthorizer,
} from './authorization.ts';
import { type LabelSelector, parseLabelSelector } from './label-selector.ts';
import { toQuantity } from './quantity.ts';

/** One value of a metric: a series, with the labels that tell it apart (`{ queue: 'work' }`). */
export interface ExternalMetricSample {
  /** The value; sent as a Quantity (see `toQuantity`). An HPA sums the samples of a request. */
  value: number;
  labels?: Readonly<Record<string, string>>;
  /** When the value was measured; default the time of the answer. */
  timestamp?: Date;
  /** The window the value was computed over, in seconds, for rates and averages. */
  windowSeconds?: number;
}

/** What an HPA asks a metric for. */
export interface ExternalMetricQuery {
  /** The HPA's namespace. */
  namespace: string;
  /** The HPA's `metric.selector`, parsed (empty: no selector). */
  selector: LabelSelector;
  /** Aborted when the caller goes away or the read overruns the adapter's `readTimeoutMs`. */
  signal: AbortSignal;
}

/**
 * A metric the adapter serves. `read` throws a `ScalingError` with `CAP_ERR_SCALING_USAGE` for a query it
 * cannot answer as asked (the client gets a 400 with the message), anything else when its source fails (a
 * 503: the HPA keeps its replicas and records `FailedGetExternalMetric`).
 */
export interface ExternalMetric {
  /** The name in the URL and in an HPA's `metric.name`: lower case, digits, `-`, `_`, `.`. */
  readonly name: string;
  read(query: ExternalMetricQuery): Promise<readonly ExternalMetricSample[]>;
  /** Release what the metric holds (its sources' connections); the adapter calls it when it stops. */
  close?(): Promise<void>;
}

const METRIC_NAME = /^[a-z0-9]([-a-z0-9_.]{0,251}[a-z0-9])?$/;
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Define a metric; the name is checked now (`CAP_ERR_SCALING_CONFIG`), so a typo fails at start-up. */
export function defineExternalMetric(
  name: string,
  read: (query: ExternalMetricQuery) => Promise<readonly ExternalMetricSample[]>,
): ExternalMetric {
  if (!METRIC_NAME.test(name)) {
    throw new ScalingError(
      ScalingErrorCode.config,
      `invalid external metric name "${name}": lower case letters, digits, '-', '_' and '.', starting and ending with a letter or digit`,
    );
  }
  return { name, read };
}

/** Options of {@link createExternalMetricsAdapter}. */
export interface ExternalMetricsAdapterOptions {
  /** The metrics served, by name. */
  metrics: readonly ExternalMetric[];
  /**
   * The serving certificate: valid for `<service>.<namespace>.svc`, the name the aggregation layer checks,
   * and signed by the CA in the APIService's `caBundle` (see `issueExternalMetricsServingCertificate`).
   */
  serving: CertPair;
  /**
   * A client for delegated authentication and authorization: the front proxy's settings are read from
   * `kube-system/extension-apiserver-authentication` at `start()` and again every
   * `authenticationRefreshMs` (unless `authentication` is given), and decisions are SubjectAccessReviews
   * (unless `authorizer` is given).
   */
  kube?: KubeClient;
  /**
   * The front proxy's settings, instead of reading them with `kube`: fixed, or a loader that `start()` calls and
   * then calls again every `authenticationRefreshMs`.
   */
  authentication?: FrontProxyAuthentication | (() => Promise<FrontProxyAuthentication>);
  /**
   * How often loaded settings are read again, so a rotated requestheader CA or a changed allowed name is
   * followed without a restart (as `k8s.io/apiserver` reloads them). A failed read keeps the settings in use.
   * Default 60 000 ms; 0: never.
   */
  authenticationRefreshMs?: number;
  /** Who may read what, instead of SubjectAccessReviews through `kube`. */
  authorizer?: Authorizer;
  /** Listen port; default 6443. 0 picks a free port. */
  port?: number;
  /** Listen address; default all interfaces. */
  host?: string;
  /** Bound on one metric read; past it the request gets a 503. Default 5 s. */
  readTimeoutMs?: number;
  logger?: Logger;
  lifecycle?: Lifecycle | LifecycleOptions;
}

/** A running (or ready to run) adapter. */
export interface ExternalMetricsAdapter {
  /** The HTTPS service (health on `/livez`, `/readyz`, `/healthz`; `/metrics`). */
  readonly service: Service;
  /** `https://host:port` once listening. */
  readonly url: string;
  /** Read the front proxy's settings (with `kube`), listen, and return the URL. */
  start(): Promise<string>;
  /** Drain and stop. */
  stop(): Promise<void>;
  /** Serve a new certificate to new connections (a rotation); a bad pair throws and the old one stays. */
  updateServingCertificate(serving: CertPair): void;
  /** New front-proxy settings (a rotated requestheader CA), for new connections. */
  updateAuthentication(authentication: FrontProxyAuthentication): void;
  /**
   * Read the front proxy's settings now (with `kube`, or the `authentication` loader) and use them; rejects,
   * keeping the settings in use, when the read fails. The refresh timer calls it too.
   */
  refreshAuthentication(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const PREFIX = `/apis/${EXTERNAL_METRICS_GROUP}/${EXTERNAL_METRICS_VERSION}`;
const GROUP_VERSION = `${EXTERNAL_METRICS_GROUP}/${EXTERNAL_METRICS_VERSION}`;

type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'MethodNotAllowed'
  | 'ServiceUnavailable'
  | 'InternalError';

/** An apiserver-style `Status`: what kubectl and client-go print for a failed request. */
function sendStatus(res: ServerResponse, code: number, reason: StatusReason, message: string): void {
  sendJson(res, code, {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    code,
  });
}

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-cache, private',
  });
  res.end(text);
}

/** RFC 3339 in whole seconds, as metav1.Time writes it. */
function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d+Z$/, 'Z');
}

function discovery(path: string, metrics: ReadonlyMap<string, ExternalMetric>): unknown {
  const version = { groupVersion: GROUP_VERSION, version: EXTERNAL_METRICS_VERSION };
  const group = { name: EXTERNAL_METRICS_GROUP, versions: [version], preferredVersion: version };
  switch (path) {
    case '/apis':
      return { kind: 'APIGroupList', apiVersion: 'v1', groups: [group] };
    case `/apis/${EXTERNAL_METRICS_GROUP}`:
      return { kind: 'APIGroup', apiVersion: 'v1', ...group };
    case PREFIX:
      return {
        kind: 'APIResourceList',
        apiVersion: 'v1',
        groupVersion: GROUP_VERSION,
        resources: [...metrics.keys()].map((name) => ({
          name,
          singularName: '',
          namespaced: true,
          kind: 'ExternalMetricValueList',
          verbs: ['get'],
        })),
      };
    // The aggregator merges every server's OpenAPI; an empty document keeps it from logging a failure.
    case '/openapi/v2':
      return {
        swagger: '2.0',
        info: { title: 'External Metrics', version: EXTERNAL_METRICS_VERSION },
        paths: {},
      };
    case '/openapi/v3':
      return { paths: {} };
    default:
      return undefined;
  }
}

/**
 * Create the adapter: an HTTPS service for the aggregation layer. Register it with
 * `externalMetricsApiManifests` + `applyExternalMetricsApi`; one adapter per cluster serves
 * `external.metrics.k8s.io` (the APIService's name is fixed).
 *
 * ```ts
 * const adapter = createExternalMetricsAdapter({ kube, serving, metrics: [queueDepth] });
 * await adapter.start();
 * ```
 */
export function createExternalMetricsAdapter(options: ExternalMetricsAdapterOptions): ExternalMetricsAdapter {
  const metrics = new Map<string, ExternalMetric>();
  for (const metric of options.metrics) {
    if (metrics.has(metric.name)) {
      throw new ScalingError(ScalingErrorCode.config, `external metric "${metric.name}" is defined twice`);
    }
    metrics.set(metric.name, metric);
  }
  if (!options.authentication && !options.kube) {
    throw new ScalingError(
      ScalingErrorCode.config,
      'the adapter needs `kube` or `authentication` to authenticate the aggregation layer',
    );
  }
  if (!options.authorizer && !options.kube) {
    throw new ScalingError(
      ScalingErrorCode.config,
      'the adapter needs `kube` or an `authorizer` to authorize requests',
    );
  }
  const authorize = options.authorizer ?? subjectAccessReviewAuthorizer(options.kube as KubeClient);
  const readTimeoutMs = options.readTimeoutMs ?? 5_000;
  const loadAuthentication =
    typeof options.authentication === 'function'
      ? options.authentication
      : options.authentication === undefined && options.kube
        ? () => readFrontProxyAuthentication(options.kube as KubeClient)
        : undefined;
  let authentication = typeof options.authentication === 'object' ? options.authentication : undefined;
  const refreshMs = options.authenticationRefreshMs ?? 60_000;
  // Until start() reads the front proxy's CA, no client certificate can verify: every request is a 401.
  const certificate = new CertificateHolder({
    ...options.serving,
    ...(authentication ? { caPem: authentication.clientCaPem } : {}),
  });

  const handle = async (req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> => {
    const url = new URL(req.url ?? '/', 'https://adapter');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const parts = path.startsWith(`${PREFIX}/`) ? path.slice(PREFIX.length + 1).split('/') : [];
    const isValueRequest = parts.length === 3 && parts[0] === 'namespaces';
    // Counted once answered; a metric's own name only for metrics served (a label per typo would grow forever).
    const metricLabel = !isValueRequest ? 'discovery' : metrics.has(parts[2]!) ? parts[2]! : 'unknown';
    res.once('finish', () => counters.requests.inc({ metric: metricLabel, code: String(res.statusCode) }));
    if (req.method !== 'GET') {
      res.setHeader('allow', 'GET');
      return sendStatus(
        res,
        405,
        'MethodNotAllowed',
        `${req.method} is not supported: the External Metrics API is read-only`,
      );
    }
    const authn = authentication ? authenticateFrontProxy(req, authentication) : { reason: 'not started' };
    if (!authn.user) return sendStatus(res, 401, 'Unauthorized', `Unauthorized: ${authn.reason}`);
    const user: UserInfo = authn.user;

    const attributes: RequestAttributes = isValueRequest
      ? { user, verb: 'list', namespace: parts[1]!, resource: parts[2]! }
      : { user, verb: 'get', path };
    const decision = await authorize(attributes, ctx.signal);
    if (!decision.allowed) {
      const what = isValueRequest
        ? `list resource "${parts[2]}" in API group "${EXTERNAL_METRICS_GROUP}" in the namespace "${parts[1]}"`
        : `get path "${path}"`;
      return sendStatus(
        res,
        403,
        'Forbidden',
        `user "${user.name}" cannot ${what}${decision.reason ? `: ${decision.reason}` : ''}`,
      );
    }

    if (!isValueRequest) {
      const body = discovery(path, metrics);
      if (body === undefined)
        return sendStatus(res, 404, 'NotFound', `the server could not find the requested resource (${path})`);
      return sendJson(res, 200, body);
    }
    const [, namespace = '', name = ''] = parts;
    if (!NAMESPACE.test(namespace))
      return sendStatus(res, 400, 'BadRequest', `invalid namespace "${namespace}"`);
    const metric = metrics.get(name);
    if (!metric) {
      return sendStatus(
        res,
        404,
        'NotFound',
        `external metric "${name}" not found: this adapter serves ${[...metrics.keys()].join(', ') || 'no metrics'}`,
      );
    }
    let selector: LabelSelector;
    try {
      selector = parseLabelSelector(url.searchParams.get('labelSelector') ?? '');
    } catch (err) {
      if (err instanceof ScalingError && err.code === ScalingErrorCode.selector)
        return sendStatus(res, 400, 'BadRequest', err.message);
      throw err;
    }
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(readTimeoutMs)]);
    let samples: readonly ExternalMetricSample[];
    try {
      // A source that ignores its signal must not hold the request (and the HPA) past the deadline.
      const stopTimer = counters.reads.startTimer({ metric: name });
      try {
        samples = await raceAbort(metric.read({ namespace, selector, signal }), signal);
      } finally {
        stopTimer();
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (err instanceof ScalingError && err.code === ScalingErrorCode.usage) {
        return sendStatus(res, 400, 'BadRequest', message);
      }
      ctx.log.warn({ err, metric: name, namespace }, 'reading an external metric failed');
      const why = signal.aborted && !ctx.signal.aborted ? `no answer within ${readTimeoutMs} ms` : message;
      return sendStatus(res, 503, 'ServiceUnavailable', `unable to read external metric "${name}": ${why}`);
    }
    const now = new Date();
    let items: unknown[];
    try {
      items = samples.map((s) => ({
        metricName: name,
        metricLabels: { ...(s.labels ?? {}) },
        timestamp: rfc3339(s.timestamp ?? now),
        ...(s.windowSeconds !== undefined ? { window: Math.round(s.windowSeconds) } : {}),
        value: toQuantity(s.value),
      }));
    } catch (err) {
      return sendStatus(
        res,
        503,
        'ServiceUnavailable',
        `unable to read external metric "${name}": ${(err as Error).message}`,
      );
    }
    ctx.log.debug({ metric: name, namespace, user: user.name, items: items.length }, 'external metric read');
    return sendJson(res, 200, {
      kind: 'ExternalMetricValueList',
      apiVersion: GROUP_VERSION,
      metadata: {},
      items,
    });
  };

  const service = createService({
    name: 'external-metrics',
    port: options.port ?? 6443,
    ...(options.host !== undefined ? { host: options.host } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.lifecycle ? { lifecycle: options.lifecycle } : {}),
    tls: { certificate, requestCert: true },
    handler: (req, res, ctx) =>
      handle(req, res, ctx).catch((err: unknown) => {
        ctx.log.error({ err }, 'external metrics request failed');
        if (!res.headersSent)
          sendStatus(res, 500, 'InternalError', `internal error: ${(err as Error).message}`);
      }),
  });

  const counters = {
    requests: new Counter({
      name: 'capstan_external_metrics_requests_total',
      help: 'External Metrics API requests answered, by metric (discovery, unknown, or a served metric) and HTTP status.',
      labelNames: ['metric', 'code'] as const,
      registers: [service.metrics],
    }),
    reads: new Histogram({
      name: 'capstan_external_metrics_read_seconds',
      help: "Seconds a metric's source took to answer (failures and timeouts included), by metric.",
      labelNames: ['metric'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [service.metrics],
    }),
  };
  service.lifecycle.onShutdown('external metric sources', async () => {
    await Promise.allSettled([...metrics.values()].map((m) => m.close?.()));
  });

  const setAuthentication = (next: FrontProxyAuthentication) => {
    certificate.update({ ...certificate.current, caPem: next.clientCaPem });
    authentication = next;
  };
  const refreshAuthentication = async () => {
    if (!loadAuthentication) return;
    setAuthentication(await loadAuthentication());
  };
  let refreshTimer: NodeJS.Timeout | undefined;
  service.lifecycle.onShutdown('front-proxy settings refresh', () => clearInterval(refreshTimer));
  return {
    service,
    get url() {
      return service.url;
    },
    async start() {
      await refreshAuthentication();
      if (loadAuthentication && refreshMs > 0) {
        refreshTimer = setInterval(() => {
          refreshAuthentication().catch((err: unknown) => {
            service.logger.warn({ err }, 'reading the front proxy settings failed; keeping the ones in use');
          });
        }, refreshMs);
        // The service keeps the process alive, not this timer.
        refreshTimer.unref();
      }
      return service.start();
    },
    async stop() {
      await service.stop();
    },
    updateServingCertificate(serving) {
      certificate.update({ ...serving, ...(authentication ? { caPem: authentication.clientCaPem } : {}) });
    },
    updateAuthentication: setAuthentication,
    refreshAuthentication,
    async [Symbol.asyncDispose]() {
      await service.stop();
    },
  };
}
