// External metrics read from the autoscaler's metric sources (capstan/scaling's MetricSource): the same
// RabbitMQ and Prometheus readers serve Capstan's own autoscaler and a standard HPA through the adapter.
import { ScalingError, ScalingErrorCode } from '../errors.ts';
import { type MetricSource, type RabbitMQQueueSourceOptions, rabbitmqQueueSource } from '../sources.ts';
import { defineExternalMetric, type ExternalMetric } from './adapter.ts';

/** Options of {@link sourceMetric}. */
export interface SourceMetricOptions {
  /**
   * Labels an HPA's `metric.selector` must fix with `=` (`matchLabels`), which pick the source: `['queue']`
   * for a queue per HPA. A request without them is a 400 naming them. Default none: one source.
   */
  labels?: readonly string[];
  /** The source for those label values; made on first use and kept (at most `maxSources`, oldest closed first). */
  source: (labels: Readonly<Record<string, string>>) => MetricSource;
  /** Bound on sources kept open. Default 100. */
  maxSources?: number;
}

/**
 * An external metric read from {@link MetricSource}s: one sample per request, labelled with the labels that
 * picked the source. A source failure (`CAP_ERR_SCALING_SOURCE`) is a 503 to the caller, never a 0: an HPA
 * then keeps its replicas.
 */
export function sourceMetric(name: string, options: SourceMetricOptions): ExternalMetric {
  const keys = options.labels ?? [];
  const maxSources = options.maxSources ?? 100;
  const sources = new Map<string, MetricSource>();
  const metric = defineExternalMetric(name, async ({ selector, signal }) => {
    const labels: Record<string, string> = {};
    const missing: string[] = [];
    for (const key of keys) {
      const value = selector.exactValue(key);
      if (value === undefined) missing.push(key);
      else labels[key] = value;
    }
    if (missing.length > 0) {
      throw new ScalingError(
        ScalingErrorCode.usage,
        `external metric "${name}" needs a selector fixing ${missing.map((k) => `${k}=<value>`).join(', ')} (matchLabels)`,
      );
    }
    const key = JSON.stringify(keys.map((k) => labels[k]));
    let source = sources.get(key);
    if (source) {
      // Most recently used last: the first entry is the one to close when full.
      sources.delete(key);
    } else {
      source = options.source(labels);
      if (sources.size >= maxSources) {
        const [oldestKey, oldest] = sources.entries().next().value as [string, MetricSource];
        sources.delete(oldestKey);
        void oldest.close().catch(() => {});
      }
    }
    sources.set(key, source);
    const value = await source.read({ signal });
    return [{ value, labels }];
  });
  return {
    ...metric,
    async close() {
      const open = [...sources.values()];
      sources.clear();
      await Promise.allSettled(open.map((s) => s.close()));
    },
  };
}

/**
 * RabbitMQ queue depth as an external metric: the HPA's selector names the queue (`matchLabels: { queue:
 * work }`), read with {@link rabbitmqQueueSource} (the management API, or AMQP). Default name `queue_depth`.
 */
export function rabbitmqQueueDepthMetric(
  options: Omit<RabbitMQQueueSourceOptions, 'queue'> & { name?: string; maxSources?: number },
): ExternalMetric {
  const { name = 'queue_depth', maxSources, ...sourceOptions } = options;
  return sourceMetric(name, {
    labels: ['queue'],
    source: ({ queue }) => rabbitmqQueueSource({ ...sourceOptions, queue: queue ?? '' }),
    ...(maxSources !== undefined ? { maxSources } : {}),
  });
}
