// HTTP side of metrics: the /metrics handler (negotiation, gzip, streaming) and server instrumentation.
import { once } from 'node:events';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createGzip } from 'node:zlib';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import {
  type BoundCounter,
  type BoundGauge,
  type BoundHistogram,
  bindCounter,
  bindGauge,
  bindHistogram,
} from './bound.ts';
import { MetricsError, MetricsErrorCode } from './errors.ts';
import { contentTypeOf, type ExpositionFormat, negotiateFormat } from './format.ts';

/** What the handler needs from a registry (a {@link MetricsRegistry}). */
export interface ExposingRegistry {
  expose(options: { format?: ExpositionFormat; signal?: AbortSignal }): AsyncIterable<Uint8Array>;
}

/** Options of {@link metricsHandler}. */
export interface MetricsHandlerOptions {
  /** Compress with gzip when the client sends `Accept-Encoding: gzip` (default true). */
  gzip?: boolean;
  /** Disable OpenMetrics negotiation and always answer text 0.0.4 (default false). */
  textOnly?: boolean;
}

/** A Node `(req, res)` handler serving the registry's exposition on whatever path it is mounted. */
export function metricsHandler(
  registry: ExposingRegistry,
  options: MetricsHandlerOptions = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => serveMetrics(registry, req, res, options);
}

/** Serve one scrape. Streams chunks as they are serialized; a client that hangs up stops the work. */
export function serveMetrics(
  registry: ExposingRegistry,
  req: IncomingMessage,
  res: ServerResponse,
  options: MetricsHandlerOptions = {},
): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
    res.end('method not allowed\n');
    return;
  }
  const format = options.textOnly ? 'text' : negotiateFormat(req.headers.accept);
  const gzip = options.gzip !== false && acceptsGzip(req.headers['accept-encoding']);
  const headers: Record<string, string> = {
    'content-type': contentTypeOf(format),
    vary: 'Accept, Accept-Encoding',
  };
  if (gzip) headers['content-encoding'] = 'gzip';
  // setHeader rather than writeHead(status, headers): hooks and frameworks can read them back.
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  if (req.method === 'HEAD') {
    res.writeHead(200);
    res.end();
    return;
  }
  const abort = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) abort.abort();
  };
  res.once('close', onClose);
  void (async () => {
    let started = false;
    let sink: NodeJS.WritableStream & { destroy?: () => void } = res;
    try {
      const iterator = registry.expose({ format, signal: abort.signal })[Symbol.asyncIterator]();
      // Pull the first chunk before sending headers, so a failing collect can still become a 500.
      let next = await iterator.next();
      res.writeHead(200);
      started = true;
      if (gzip) {
        const z = createGzip();
        z.pipe(res);
        sink = z;
      }
      while (!next.done) {
        if (!sink.write(next.value)) await once(sink, 'drain', { signal: abort.signal });
        next = await iterator.next();
      }
      sink.end();
    } catch (err) {
      if (sink !== res) sink.destroy?.();
      if (abort.signal.aborted) return;
      if (!started) {
        res.removeHeader('content-encoding');
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`metrics exposition failed: ${err instanceof Error ? err.message : String(err)}\n`);
      } else {
        // Half a body would parse as a valid but truncated exposition; reset instead.
        res.destroy(
          err instanceof Error
            ? err
            : new MetricsError(MetricsErrorCode.collect, String(err), { cause: err }),
        );
      }
    } finally {
      res.off('close', onClose);
    }
  })();
}

function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  return header.split(',').some((part) => {
    const [coding, ...params] = part.trim().toLowerCase().split(';');
    if (coding !== 'gzip' && coding !== '*') return false;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return q === undefined || Number.parseFloat(q.slice(2)) > 0;
  });
}

/** Options of {@link httpServerMetrics} and {@link instrumentHttpServer}. */
export interface HttpMetricsOptions {
  /** Name prefix (default `http_server`). */
  prefix?: string;
  /** Duration histogram buckets in seconds. */
  buckets?: number[];
  /** Requests whose path is listed here are not recorded (default `['/metrics']`). */
  ignorePaths?: readonly string[];
}

/** Records one request; returned by {@link httpServerMetrics}. */
export type HttpRequestHook = (req: IncomingMessage, res: ServerResponse) => void;

const KNOWN_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
  'CONNECT',
  'TRACE',
]);

interface HttpMetricSet {
  requests: Counter<'method' | 'code'>;
  duration: Histogram<'method' | 'code'>;
  inFlight: Gauge;
  /** `inFlight`, bound. */
  inFlightSeries: BoundGauge;
  /** Bound series per `method code`, shared by every hook writing this set. */
  series: Map<string, { requests: BoundCounter; duration: BoundHistogram }>;
  /** Where a response carries its pending record for this set. */
  key: symbol;
  /** The one 'close' listener of this set, shared by every response. */
  onClose: (this: ServerResponse) => void;
}

/** The metric sets made per registry and prefix, so hooks sharing metrics share their bound series too. */
const metricSets = new WeakMap<Registry, Map<string, HttpMetricSet>>();

/** What one request's 'close' listener needs; a class, so a request costs no closure. */
class RequestRecord {
  readonly method: string;
  readonly start: number;

  constructor(method: string) {
    this.method = method;
    this.start = performance.now();
  }
}

/**
 * 'close' comes once for every response, after 'finish' or instead of it: one listener per metric set,
 * shared by every response (the record rides on the response), rather than two closures per request.
 */
function onResponseClose(set: HttpMetricSet, res: ServerResponse): void {
  const r = res as ServerResponse & Record<symbol, RequestRecord | undefined>;
  const record = r[set.key];
  if (!record) return;
  r[set.key] = undefined;
  const { method } = record;
  set.inFlightSeries.dec();
  // A response closed before finishing (client hung up) has no real status: count it apart.
  const code = res.writableFinished
    ? (STATUS_CLASS[Math.floor(res.statusCode / 100)] ?? `${Math.floor(res.statusCode / 100)}xx`)
    : 'aborted';
  const key = `${method} ${code}`;
  let series = set.series.get(key);
  if (!series) {
    series = {
      requests: bindCounter(set.requests, { method, code }),
      duration: bindHistogram(set.duration, { method, code }),
    };
    set.series.set(key, series);
  }
  series.requests.inc();
  series.duration.observe((performance.now() - record.start) / 1000);
}

const STATUS_CLASS: Record<number, string> = { 1: '1xx', 2: '2xx', 3: '3xx', 4: '4xx', 5: '5xx' };

/**
 * A request hook for any Node HTTP server or framework: call it when a request arrives. It records
 * `<prefix>_requests_total{method,code}` (code is the status class: 2xx, 4xx...),
 * `<prefix>_request_duration_seconds{method,code}` and `<prefix>_requests_in_flight`. Methods outside
 * the standard set are recorded as `OTHER` so clients cannot blow up cardinality. Metrics are
 * created once per registry and prefix and shared by every server using them.
 */
export function httpServerMetrics(registry: Registry, options: HttpMetricsOptions = {}): HttpRequestHook {
  const set = httpMetricSet(registry, options);
  const ignore = new Set(options.ignorePaths ?? ['/metrics']);
  return (req, res) => {
    if (ignore.size > 0) {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      if (ignore.has(q === -1 ? url : url.slice(0, q))) return;
    }
    const r = res as ServerResponse & Record<symbol, RequestRecord | undefined>;
    // The same metrics hooked twice on one server count a request once.
    if (r[set.key]) return;
    const method = KNOWN_METHODS.has(req.method ?? '') ? req.method! : 'OTHER';
    set.inFlightSeries.inc();
    r[set.key] = new RequestRecord(method);
    res.on('close', set.onClose);
  };
}

/**
 * Instrument a Node HTTP server with {@link httpServerMetrics}. Returns a function that detaches
 * the hook again.
 */
export function instrumentHttpServer(
  server: Server,
  registry: Registry,
  options: HttpMetricsOptions = {},
): () => void {
  const hook = httpServerMetrics(registry, options);
  server.prependListener('request', hook);
  return () => {
    server.off('request', hook);
  };
}

function httpMetricSet(registry: Registry, options: HttpMetricsOptions): HttpMetricSet {
  const prefix = options.prefix ?? 'http_server';
  let sets = metricSets.get(registry);
  if (!sets) {
    sets = new Map();
    metricSets.set(registry, sets);
  }
  let set = sets.get(prefix);
  // Made here before, and still the registry's (not cleared or replaced since).
  if (set && registry.getSingleMetric(`${prefix}_requests_total`) === set.requests) return set;
  set = makeHttpMetricSet(registry, prefix, options);
  sets.set(prefix, set);
  return set;
}

function makeHttpMetricSet(registry: Registry, prefix: string, options: HttpMetricsOptions): HttpMetricSet {
  const metrics = httpMetrics(registry, prefix, options);
  const set = {
    ...metrics,
    inFlightSeries: bindGauge(metrics.inFlight, {}),
    series: new Map(),
    key: Symbol(`capstan.metrics.${prefix}`),
  };
  return Object.assign(set, {
    onClose(this: ServerResponse) {
      onResponseClose(set as HttpMetricSet, this);
    },
  });
}

function httpMetrics(
  registry: Registry,
  prefix: string,
  options: HttpMetricsOptions,
): Pick<HttpMetricSet, 'requests' | 'duration' | 'inFlight'> {
  const names = {
    requests: `${prefix}_requests_total`,
    duration: `${prefix}_request_duration_seconds`,
    inFlight: `${prefix}_requests_in_flight`,
  };
  const existing = registry.getSingleMetric(names.requests);
  if (existing) {
    return {
      requests: existing as Counter<'method' | 'code'>,
      duration: registry.getSingleMetric(names.duration) as Histogram<'method' | 'code'>,
      inFlight: registry.getSingleMetric(names.inFlight) as Gauge,
    };
  }
  return {
    requests: new Counter({
      name: names.requests,
      help: 'HTTP requests handled, by method and status class.',
      labelNames: ['method', 'code'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: names.duration,
      help: 'HTTP request duration in seconds, by method and status class.',
      labelNames: ['method', 'code'],
      buckets: options.buckets ?? [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: names.inFlight,
      help: 'HTTP requests being handled right now.',
      registers: [registry],
    }),
  };
}
