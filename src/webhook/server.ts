// The webhook server: a runtime service over TLS (health, metrics, graceful shutdown included) with one
// route per served path. Bad input gets a 400 with the reason; anything a handler does is answered by
// `admit` under the failure policy; nothing a request carries can take the server down.
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  CertificateHolder,
  Counter,
  createService,
  Gauge,
  Histogram,
  type Lifecycle,
  type LifecycleOptions,
  type Logger,
  type MetricsRegistry,
  parseDuration,
  type RequestContext,
  type ServerLimits,
  type Service,
  type ServiceHandler,
  type ServingCertificate,
  type ShutdownReport,
} from '../runtime/index.ts';
import { type AdmissionResult, admit } from './admission.ts';
import type { HandlerSet, Webhook } from './definition.ts';
import { WebhookError, WebhookErrorCode } from './errors.ts';
import { admissionReviewReply, decodeAdmissionReview } from './review.ts';

/** The apiserver's own limit on a request body (3 MiB), which bounds any object it can send us. */
export const DEFAULT_MAX_BODY_BYTES = 3 * 1024 * 1024;
/** controller-runtime's default webhook port. */
export const DEFAULT_WEBHOOK_PORT = 9443;

/** Options of {@link createWebhookServer}. */
export interface WebhookServerOptions {
  /**
   * The serving certificate: a {@link CertificateHolder} to rotate it without a restart (`holder.update()`
   * reaches new connections; established ones finish on the old one), or a fixed pair.
   */
  certificate: CertificateHolder | ServingCertificate;
  /** Default 9443; 0 picks a free port. */
  port?: number;
  /** Listen address; default all interfaces. */
  host?: string;
  /** Default: the service's logger named after the webhook. */
  logger?: Logger;
  /** Registry for `/metrics`; default a new one with process metrics. */
  metrics?: MetricsRegistry;
  /** A shared lifecycle, or options for the server's own. */
  lifecycle?: Lifecycle | LifecycleOptions;
  /** Largest request body read, in bytes; default {@link DEFAULT_MAX_BODY_BYTES}. Larger ones get a 400 unread. */
  maxBodyBytes?: number;
  /** Header, request and idle timeouts and the connection cap (the runtime's defaults otherwise). */
  limits?: Partial<ServerLimits>;
}

/** A webhook served over TLS. */
export interface WebhookServer {
  readonly webhook: Webhook;
  /** The runtime service underneath: its logger, metrics, health and lifecycle. */
  readonly service: Service;
  /** The holder of the serving certificate; `certificate.update(next)` rotates it. */
  readonly certificate: CertificateHolder;
  /** The served paths, e.g. `/validate--v1-pod`. */
  readonly paths: readonly string[];
  /** `https://host:port` once listening. */
  readonly url: string;
  /** Listen, mark ready, and return the URL. */
  start(): Promise<string>;
  /** Drain in-flight reviews and stop (without exiting). */
  stop(reason?: string): Promise<ShutdownReport>;
  /** Drain and exit on SIGTERM/SIGINT. */
  handleSignals(): void;
  [Symbol.asyncDispose](): Promise<void>;
}

interface WebhookMetrics {
  requests: Counter<'webhook' | 'code'>;
  latency: Histogram<'webhook'>;
  inFlight: Gauge<'webhook'>;
  outcomes: Counter<'webhook' | 'outcome'>;
  failures: Counter<'webhook' | 'reason' | 'policy'>;
  badRequests: Counter<'webhook' | 'reason'>;
}

function webhookMetrics(registry: MetricsRegistry): WebhookMetrics {
  return {
    // The first three have controller-runtime's names and labels, so its dashboards work unchanged.
    requests: new Counter({
      name: 'controller_runtime_webhook_requests_total',
      help: 'Admission requests by webhook path and HTTP status.',
      labelNames: ['webhook', 'code'],
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'controller_runtime_webhook_latency_seconds',
      help: 'Seconds to answer an admission request, by webhook path.',
      labelNames: ['webhook'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'controller_runtime_webhook_requests_in_flight',
      help: 'Admission requests being answered, by webhook path.',
      labelNames: ['webhook'],
      registers: [registry],
    }),
    outcomes: new Counter({
      name: 'capstan_webhook_admissions_total',
      help: 'Answered admission reviews by outcome (allowed, patched, denied, failed-open, failed-closed).',
      labelNames: ['webhook', 'outcome'],
      registers: [registry],
    }),
    failures: new Counter({
      name: 'capstan_webhook_handler_failures_total',
      help: 'Handlers that threw or overran their deadline (reason handler|timeout), by failure policy.',
      labelNames: ['webhook', 'reason', 'policy'],
      registers: [registry],
    }),
    badRequests: new Counter({
      name: 'capstan_webhook_bad_requests_total',
      help: 'Requests refused with 400/405/415 before any handler ran, by reason.',
      labelNames: ['webhook', 'reason'],
      registers: [registry],
    }),
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown, close = false): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...(close && { connection: 'close' }),
  });
  res.end(text);
}

/** A request refused before admission: status, a short reason label for metrics, the message. */
class Refusal {
  readonly status: number;
  readonly label: string;
  readonly reason: string;
  readonly problems: readonly string[];
  /** The body was not read to its end: the connection cannot carry another request. */
  readonly close: boolean;
  constructor(
    status: number,
    label: string,
    reason: string,
    problems: readonly string[] = [],
    close = false,
  ) {
    this.status = status;
    this.label = label;
    this.reason = reason;
    this.problems = problems;
    this.close = close;
  }
}

/** Read the body up to `limit` bytes; a larger one is refused without reading the rest. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | Refusal> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    return Promise.resolve(
      new Refusal(
        400,
        'too-large',
        `body of ${declared} bytes is over the limit of ${limit} bytes`,
        [],
        true,
      ),
    );
  }
  // Events, not `for await`: leaving that loop early destroys the socket before the 400 can be sent.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      done();
      req.pause();
      resolve(new Refusal(400, 'too-large', `body is over the limit of ${limit} bytes`, [], true));
    };
    const onEnd = () => {
      done();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      done();
      reject(err);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/** The handlers' time: the apiserver's `?timeout=` (or the configured one, if shorter) minus the margin. */
function deadlineFor(req: IncomingMessage, timeoutSeconds: number, marginMs: number): number {
  let budget = timeoutSeconds * 1000;
  const raw = new URL(req.url ?? '/', 'https://webhook').searchParams.get('timeout');
  const asked = raw === null ? undefined : parseDuration(raw);
  if (asked !== undefined && asked > 0) budget = Math.min(budget, asked);
  // Keep the margin to answer by the failure policy, but never leave the handlers less than half.
  return Math.max(budget - marginMs, budget / 2);
}

/**
 * Serve `webhook` over TLS on the runtime: one POST route per served path (see `Webhook.handlerSets`),
 * beside `/livez`, `/readyz`, `/healthz` and `/metrics`.
 *
 * ```ts
 * const server = createWebhookServer(webhook, { certificate: holder, port: 9443 });
 * await server.start();
 * server.handleSignals();
 * ```
 */
export function createWebhookServer(webhook: Webhook, options: WebhookServerOptions): WebhookServer {
  const sets = webhook.handlerSets();
  if (sets.length === 0) {
    throw new WebhookError(
      WebhookErrorCode.usage,
      `webhook ${webhook.options.name} has no handlers to serve`,
    );
  }
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 1) {
    throw new WebhookError(
      WebhookErrorCode.usage,
      `maxBodyBytes must be a positive integer, not ${maxBodyBytes}`,
    );
  }
  const certificate =
    options.certificate instanceof CertificateHolder
      ? options.certificate
      : new CertificateHolder(options.certificate);
  // Filled once the service's metrics registry exists; the service's fallback handler dispatches to it.
  const routes = new Map<string, ServiceHandler>();
  const service = createService({
    name: webhook.options.name,
    port: options.port ?? DEFAULT_WEBHOOK_PORT,
    ...(options.host !== undefined && { host: options.host }),
    ...(options.logger && { logger: options.logger }),
    ...(options.metrics && { metrics: options.metrics }),
    ...(options.lifecycle && { lifecycle: options.lifecycle }),
    ...(options.limits && { limits: options.limits }),
    tls: { certificate },
    handler: (req, res, ctx) => {
      const path = (req.url ?? '/').split('?')[0]!;
      const route = routes.get(path);
      if (route) return route(req, res, ctx);
      sendJson(res, 404, { error: 'not found', path, paths: [...routes.keys()] });
      return undefined;
    },
  });
  const metrics = webhookMetrics(service.metrics);
  for (const set of sets)
    routes.set(set.path, reviewRoute(webhook, set, maxBodyBytes, metrics, service.logger));

  return {
    webhook,
    service,
    certificate,
    paths: sets.map((s) => s.path),
    get url() {
      return service.url;
    },
    start: () => service.start(),
    stop: (reason) => service.stop(reason),
    handleSignals: () => service.handleSignals(),
    [Symbol.asyncDispose]: () => service[Symbol.asyncDispose](),
  };
}

function reviewRoute(
  webhook: Webhook,
  set: HandlerSet,
  maxBodyBytes: number,
  metrics: WebhookMetrics,
  logger: Logger,
): ServiceHandler {
  const options = webhook.options;
  const path = set.path;
  return async (req: IncomingMessage, res: ServerResponse, ctx: RequestContext) => {
    const started = process.hrtime.bigint();
    const debug = logger.isLevelEnabled('debug');
    metrics.inFlight.inc({ webhook: path });
    let status = 200;
    // Not ctx.signal: that one also fires when the server starts stopping, and a review in flight must
    // finish during the drain, not be cut short.
    const clientGone = new AbortController();
    const onClose = () => {
      if (!res.writableFinished)
        clientGone.abort(new WebhookError(WebhookErrorCode.handler, 'client went away'));
    };
    res.once('close', onClose);
    try {
      const refusal = await preflight(req, maxBodyBytes);
      if (refusal instanceof Refusal) {
        status = refusal.status;
        metrics.badRequests.inc({ webhook: path, reason: refusal.label });
        ctx.log.warn({ webhook: path, status, reason: refusal.reason }, 'admission request refused');
        if (refusal.status === 405) res.setHeader('allow', 'POST');
        sendJson(
          res,
          refusal.status,
          {
            error: refusal.status === 400 ? 'bad request' : 'refused',
            reason: refusal.reason,
            ...(refusal.problems.length > 0 && { problems: refusal.problems }),
          },
          refusal.close,
        );
        // An unread body would be taken for the next request: end the connection once the answer is out.
        if (refusal.close) res.once('finish', () => req.socket.destroySoon());
        return;
      }
      const request = refusal;
      let child: Logger | undefined;
      const log = () => {
        child ??= ctx.log.child({
          webhook: path,
          uid: request.uid,
          operation: request.operation,
          kind: request.kind.kind,
          namespace: request.namespace,
          name: request.name,
        });
        return child;
      };
      const result: AdmissionResult = await admit(set, request, {
        options,
        log,
        deadlineMs: deadlineFor(req, options.timeoutSeconds, options.deadlineMarginMs),
        signal: clientGone.signal,
      });
      if (clientGone.signal.aborted) {
        status = 499;
        log().info('client went away before the answer');
        return;
      }
      metrics.outcomes.inc({ webhook: path, outcome: result.outcome });
      if (result.failure) {
        metrics.failures.inc({
          webhook: path,
          reason: result.failure.code === WebhookErrorCode.timeout ? 'timeout' : 'handler',
          policy: options.failurePolicy,
        });
        log().error(
          { err: result.failure, cause: result.failure.cause, failurePolicy: options.failurePolicy },
          'admission handler failed; answered by the failure policy',
        );
      } else if (result.outcome === 'denied') {
        log().info({ status: result.response.status }, 'admission denied');
      } else if (debug) {
        log().debug({ outcome: result.outcome, patchOps: result.patch?.length ?? 0 }, 'admission allowed');
      }
      if (!res.destroyed) sendJson(res, 200, admissionReviewReply(result.response));
    } finally {
      res.off('close', onClose);
      metrics.inFlight.dec({ webhook: path });
      metrics.requests.inc({ webhook: path, code: String(status) });
      metrics.latency.observe({ webhook: path }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  };
}

/** Method, content type, size and shape: a decoded request, or why not. */
async function preflight(req: IncomingMessage, maxBodyBytes: number) {
  if (req.method !== 'POST') {
    return new Refusal(405, 'method', `admission reviews are POSTed, not sent with ${req.method}`, [], true);
  }
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    return new Refusal(
      400,
      'content-type',
      `content-type must be application/json, not ${JSON.stringify(req.headers['content-type'] ?? '')}`,
      [],
      true,
    );
  }
  const body = await readBody(req, maxBodyBytes);
  if (body instanceof Refusal) return body;
  try {
    return decodeAdmissionReview(body);
  } catch (err) {
    if (err instanceof WebhookError) return new Refusal(400, 'decode', err.message, err.problems);
    throw err;
  }
}
