import type { Collector, MetricDesc, Sample } from '../metrics/collector.ts';
import type { Health } from './health.ts';
import type { HealthPhase } from './types.ts';

/** Options of {@link healthCollector}. */
export interface HealthCollectorOptions {
  /** Metric name prefix (and collector name). Default `capstan_health`. */
  prefix?: string;
  /** How often the cached results are copied into metrics (ms). Default 5,000. */
  intervalMs?: number;
}

const PHASES: readonly HealthPhase[] = ['starting', 'serving', 'stopping'];

/**
 * Expose a {@link Health} registry's cached results as Prometheus metrics, for
 * `MetricsRegistry.registerCollector()`: alerting on a check that flaps, or on readiness, without
 * scraping probe bodies. Reading is cheap (no check runs); the series per check are
 * `<prefix>_check_ok`, `<prefix>_check_latency_seconds` and `<prefix>_check_consecutive_failures`,
 * plus `<prefix>_ready`, `<prefix>_live` and the state set `<prefix>_phase{phase}`.
 */
export function healthCollector(health: Health, options: HealthCollectorOptions = {}): Collector {
  const p = options.prefix ?? 'capstan_health';
  const descs: MetricDesc[] = [
    {
      name: `${p}_check_ok`,
      help: 'Whether the health check passed on its last run (0 when failing or pending).',
      type: 'gauge',
      labelNames: ['check', 'kind', 'critical'],
    },
    {
      name: `${p}_check_latency_seconds`,
      help: 'Duration of the last completed run of the health check.',
      type: 'gauge',
      unit: 'seconds',
      labelNames: ['check'],
    },
    {
      name: `${p}_check_consecutive_failures`,
      help: 'Failed runs of the health check since it last passed.',
      type: 'gauge',
      labelNames: ['check'],
    },
    { name: `${p}_ready`, help: 'Whether /readyz answers 200 (ok or degraded).', type: 'gauge' },
    { name: `${p}_live`, help: 'Whether /livez answers 200.', type: 'gauge' },
    {
      name: `${p}_phase`,
      help: 'Lifecycle phase of the health registry (1 for the current phase).',
      type: 'gauge',
      labelNames: ['phase'],
    },
  ];
  return {
    name: p,
    intervalMs: options.intervalMs ?? 5_000,
    describe: () => descs,
    collect: () => {
      const ready = health.status('readiness');
      const live = health.status('liveness');
      const samples: Sample[] = [];
      const seen = new Set<string>();
      for (const c of [...ready.checks, ...live.checks]) {
        if (seen.has(c.name)) continue;
        seen.add(c.name);
        samples.push({
          name: `${p}_check_ok`,
          labels: { check: c.name, kind: c.kind, critical: String(c.critical) },
          value: c.status === 'ok' ? 1 : 0,
        });
        if (c.latencyMs !== null) {
          samples.push({
            name: `${p}_check_latency_seconds`,
            labels: { check: c.name },
            value: c.latencyMs / 1000,
          });
        }
        samples.push({
          name: `${p}_check_consecutive_failures`,
          labels: { check: c.name },
          value: c.consecutiveFailures,
        });
      }
      samples.push({ name: `${p}_ready`, value: ready.httpStatus === 200 ? 1 : 0 });
      samples.push({ name: `${p}_live`, value: live.httpStatus === 200 ? 1 : 0 });
      for (const phase of PHASES) {
        samples.push({ name: `${p}_phase`, labels: { phase }, value: ready.phase === phase ? 1 : 0 });
      }
      return samples;
    },
  };
}
