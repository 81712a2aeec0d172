// Where an autoscaler's number comes from. Each source answers one finite number ≥ 0 or fails with
// `CAP_ERR_SCALING_SOURCE`; it never turns "I could not tell" into 0, so a broken source cannot scale a
// workload down by accident (the autoscaler holds its last decision instead).
import { createHttpTransport, type HttpTransport, httpJson, maskUrlCredentials } from '../runtime/index.ts';
import { ScalingError, ScalingErrorCode } from './errors.ts';

/** A metric an autoscaler reads once per evaluation. */
export interface MetricSource {
  /** For logs, conditions and the `source` label: no credentials in it. */
  readonly description: string;
  /** The metric now: a finite number ≥ 0, or a `CAP_ERR_SCALING_SOURCE` error. */
  read(options?: { signal?: AbortSignal }): Promise<number>;
  /** Release connections. */
  close(): Promise<void>;
}

function sourceError(what: string, message: string, cause?: unknown): ScalingError {
  return new ScalingError(
    ScalingErrorCode.source,
    `${what}: ${message}`,
    cause === undefined ? {} : { cause },
  );
}

function describeCause(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A number a source may hand on: finite and not negative. */
function checkedNumber(what: string, value: unknown): number {
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) {
    throw sourceError(what, `not a finite number ≥ 0: ${JSON.stringify(value)}`);
  }
  return n;
}

/** Options of {@link rabbitmqQueueSource}. */
export interface RabbitMQQueueSourceOptions {
  /** The queue whose depth is read. */
  queue: string;
  /** Virtual host. Default `/`. */
  vhost?: string;
  /**
   * The management plugin's HTTP API (`http://user:pass@host:15672`, or credentials in `user`/`password`):
   * reads `messages` (ready + unacknowledged) as KEDA's `http` protocol does. Its statistics refresh every
   * `collect_statistics_interval` (5 s by default), so it lags the broker by up to that much.
   */
  managementUrl?: string;
  /**
   * AMQP (`amqp://user:pass@host:5672/vhost`), when the management plugin is not there: a passive queue
   * declare's `messageCount` (ready messages only: what KEDA's `amqp` protocol reads), exact at once.
   */
  amqpUrl?: string;
  user?: string;
  password?: string;
  /** Count only ready messages with the management API too (KEDA's `excludeUnacknowledged`). */
  excludeUnacknowledged?: boolean;
  /** Limit on one read (ms). Default 5000. */
  timeoutMs?: number;
}

interface QueueStats {
  messages?: number;
  messages_ready?: number;
  messages_unacknowledged?: number;
}

/**
 * RabbitMQ queue depth, through the management HTTP API when `managementUrl` is given, else AMQP (a passive
 * declare on a fresh connection per read, so a broker restart costs one failed read, not a stuck channel).
 * A missing queue, a refused login, a broker that is down: each read fails, none answers 0.
 */
export function rabbitmqQueueSource(options: RabbitMQQueueSourceOptions): MetricSource {
  const { queue } = options;
  const vhost = options.vhost ?? '/';
  const timeoutMs = options.timeoutMs ?? 5000;
  if (!queue) throw new ScalingError(ScalingErrorCode.config, 'rabbitmq source: queue is required');
  if (!options.managementUrl && !options.amqpUrl) {
    throw new ScalingError(ScalingErrorCode.config, 'rabbitmq source: give managementUrl or amqpUrl');
  }
  if (options.managementUrl) {
    const url = new URL(options.managementUrl);
    const user = options.user ?? decodeURIComponent(url.username);
    const password = options.password ?? decodeURIComponent(url.password);
    const authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    const base = url.pathname.replace(/\/+$/, '');
    const origin = url.origin;
    const description = `rabbitmq queue ${vhost}${vhost.endsWith('/') ? '' : '/'}${queue} (${origin})`;
    // Reads are polled: a failed one is reported and the next poll is the retry.
    const http: HttpTransport = createHttpTransport({ origin, retry: false });
    return {
      description,
      async read(readOptions = {}) {
        let stats: QueueStats;
        try {
          stats = await httpJson<QueueStats>(http, {
            path: `${base}/api/queues/${encodeURIComponent(vhost)}/${encodeURIComponent(queue)}`,
            headers: { authorization },
            timeouts: { deadlineMs: timeoutMs },
            ...(readOptions.signal ? { signal: readOptions.signal } : {}),
          });
        } catch (err) {
          if (readOptions.signal?.aborted) throw err;
          throw sourceError(description, describeCause(err), err);
        }
        // Absent until the first statistics tick after the queue is declared: unknown, not zero.
        const value = options.excludeUnacknowledged ? stats?.messages_ready : stats?.messages;
        if (value === undefined)
          throw sourceError(description, 'the management API has no statistics for it yet');
        return checkedNumber(description, value);
      },
      close: () => http.close(),
    };
  }
  const amqpUrl = options.amqpUrl!;
  const description = `rabbitmq queue ${queue} (${maskUrlCredentials(amqpUrl)})`;
  return {
    description,
    async read(readOptions = {}) {
      let amqp: typeof import('amqplib');
      try {
        amqp = await import('amqplib');
      } catch (err) {
        throw new ScalingError(
          ScalingErrorCode.config,
          'the rabbitmq amqp source needs the amqplib package (npm install amqplib), or use managementUrl',
          { cause: err },
        );
      }
      let connection: Awaited<ReturnType<typeof amqp.connect>> | undefined;
      const timeout = AbortSignal.timeout(timeoutMs);
      const signal = readOptions.signal ? AbortSignal.any([readOptions.signal, timeout]) : timeout;
      try {
        const work = (async () => {
          connection = await amqp.connect(amqpUrl, { timeout: timeoutMs });
          // A passive declare of a missing queue closes the channel with 404; that must not kill the process.
          connection.on('error', () => {});
          const channel = await connection.createChannel();
          channel.on('error', () => {});
          const ok = await channel.checkQueue(queue);
          return ok.messageCount;
        })();
        const aborted = new Promise<never>((_, reject) => {
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        });
        work.catch(() => {});
        return checkedNumber(description, await Promise.race([work, aborted]));
      } catch (err) {
        if (readOptions.signal?.aborted) throw err;
        if (err instanceof ScalingError) throw err;
        throw sourceError(description, describeCause(err), err);
      } finally {
        const c = connection;
        if (c) await c.close().catch(() => {});
      }
    },
    close: async () => {},
  };
}

/** Options of {@link prometheusQuerySource}. */
export interface PrometheusQuerySourceOptions {
  /** Prometheus (or a compatible API: Thanos, Mimir...) base URL, e.g. `http://prometheus:9090`. */
  url: string;
  /** PromQL that evaluates to one number: a scalar, or a vector of exactly one series. */
  query: string;
  /**
   * The value when the query returns no series. Default: none, the read fails (and the autoscaler holds);
   * set 0 when "no series" truly means nothing to do (KEDA's `ignoreNullValues`).
   */
  emptyValue?: number;
  /** `Authorization` header (`Bearer ...`), for a Prometheus behind a proxy. */
  authorization?: string;
  /** Limit on one query (ms). Default 5000. */
  timeoutMs?: number;
}

interface PromQueryAnswer {
  status: 'success' | 'error';
  error?: string;
  data?: {
    resultType: 'vector' | 'scalar' | 'matrix' | 'string';
    result: unknown;
  };
}

/** A Prometheus instant query (`/api/v1/query`) that must come to one number. */
export function prometheusQuerySource(options: PrometheusQuerySourceOptions): MetricSource {
  if (!options.query) throw new ScalingError(ScalingErrorCode.config, 'prometheus source: query is required');
  const url = new URL(options.url);
  const base = url.pathname.replace(/\/+$/, '');
  const description = `prometheus ${maskUrlCredentials(url.origin)} query ${options.query}`;
  const http = createHttpTransport({ origin: url.origin, retry: false });
  const timeoutMs = options.timeoutMs ?? 5000;
  return {
    description,
    async read(readOptions = {}) {
      let answer: PromQueryAnswer;
      try {
        answer = await httpJson<PromQueryAnswer>(http, {
          path: `${base}/api/v1/query`,
          query: { query: options.query, timeout: `${Math.max(1, Math.floor(timeoutMs / 1000))}s` },
          headers: options.authorization ? { authorization: options.authorization } : {},
          timeouts: { deadlineMs: timeoutMs },
          ...(readOptions.signal ? { signal: readOptions.signal } : {}),
        });
      } catch (err) {
        if (readOptions.signal?.aborted) throw err;
        throw sourceError(description, describeCause(err), err);
      }
      if (answer?.status !== 'success' || !answer.data) {
        throw sourceError(description, `query failed: ${answer?.error ?? 'no data'}`);
      }
      const { resultType, result } = answer.data;
      if (resultType === 'scalar') return checkedNumber(description, (result as [number, string])[1]);
      if (resultType !== 'vector') throw sourceError(description, `a ${resultType} result, not one number`);
      const samples = result as Array<{ metric: Record<string, string>; value: [number, string] }>;
      if (samples.length === 0) {
        if (options.emptyValue !== undefined) return options.emptyValue;
        throw sourceError(description, 'no series (set emptyValue if that means a value)');
      }
      if (samples.length > 1) {
        throw sourceError(
          description,
          `${samples.length} series, not one (aggregate them: sum(...), max(...))`,
        );
      }
      return checkedNumber(description, samples[0]!.value[1]);
    },
    close: () => http.close(),
  };
}
