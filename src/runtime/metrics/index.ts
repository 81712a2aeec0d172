// Metrics for Capstan services: prom-client's API, a fast sliced exposition, collectors, guards.
export { collectDefaultMetrics, exponentialBuckets, linearBuckets } from 'prom-client';
export {
  type BoundCounter,
  type BoundGauge,
  type BoundHistogram,
  bindCounter,
  bindGauge,
  bindHistogram,
} from './bound.ts';
export type { Collector, CollectorStatus, MetricDesc, MetricType, Sample } from './collector.ts';
export { MetricsError, MetricsErrorCode } from './errors.ts';
export {
  contentTypeOf,
  type ExpositionFormat,
  escapeLabelValue,
  formatValue,
  negotiateFormat,
  OPENMETRICS_CONTENT_TYPE,
  TEXT_CONTENT_TYPE,
} from './format.ts';
export type { DropInfo, OnDrop } from './guard.ts';
export {
  type ExposingRegistry,
  type HttpMetricsOptions,
  type HttpRequestHook,
  httpServerMetrics,
  instrumentHttpServer,
  type MetricsHandlerOptions,
  metricsHandler,
} from './http.ts';
export { type CapstanMetricOptions, Counter, Gauge, Histogram, Summary } from './metric-types.ts';
export {
  DROPPED_SERIES_METRIC,
  type ExposeOptions,
  MetricsRegistry,
  type MetricsRegistryOptions,
} from './registry.ts';
