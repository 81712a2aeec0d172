// prom-client's metric classes with Capstan's extra options. They ARE prom-client metrics
// (`instanceof` holds, every method is prom-client's own), so existing instrumentation keeps working.
import {
  type CounterConfiguration,
  type GaugeConfiguration,
  type HistogramConfiguration,
  Counter as PromCounter,
  Gauge as PromGauge,
  Histogram as PromHistogram,
  Summary as PromSummary,
  type SummaryConfiguration,
} from 'prom-client';
import { validateUnit } from './collector.ts';
import type { OnDrop } from './guard.ts';

/** Options Capstan adds to every prom-client metric configuration. */
export interface CapstanMetricOptions {
  /**
   * Series (label set) limit of this metric; overrides the registry's `maxSeriesPerMetric`. Writes
   * that would create more series are dropped and counted in `capstan_metrics_dropped_series_total`.
   */
  maxSeries?: number;
  /** Called on this metric's first dropped series. */
  onDrop?: OnDrop;
  /** OpenMetrics unit (`seconds`, `bytes`, ...); must be the name's suffix. Exposed as `# UNIT`. */
  unit?: string;
}

function checkUnit(config: { name: string; unit?: string }, type: string): void {
  if (config.unit !== undefined) validateUnit(config.name, config.unit, type);
}

/** prom-client `Counter` plus {@link CapstanMetricOptions}. */
export class Counter<T extends string = string> extends PromCounter<T> {
  declare readonly maxSeries?: number;
  declare readonly unit?: string;
  constructor(config: CounterConfiguration<T> & CapstanMetricOptions) {
    checkUnit(config, 'counter');
    super(config);
  }
}

/** prom-client `Gauge` plus {@link CapstanMetricOptions}. */
export class Gauge<T extends string = string> extends PromGauge<T> {
  declare readonly maxSeries?: number;
  declare readonly unit?: string;
  constructor(config: GaugeConfiguration<T> & CapstanMetricOptions) {
    checkUnit(config, 'gauge');
    super(config);
  }
}

/** prom-client `Histogram` plus {@link CapstanMetricOptions}. */
export class Histogram<T extends string = string> extends PromHistogram<T> {
  declare readonly maxSeries?: number;
  declare readonly unit?: string;
  constructor(config: HistogramConfiguration<T> & CapstanMetricOptions) {
    checkUnit(config, 'histogram');
    super(config);
  }
}

/** prom-client `Summary` plus {@link CapstanMetricOptions}. */
export class Summary<T extends string = string> extends PromSummary<T> {
  declare readonly maxSeries?: number;
  declare readonly unit?: string;
  constructor(config: SummaryConfiguration<T> & CapstanMetricOptions) {
    checkUnit(config, 'summary');
    super(config);
  }
}
