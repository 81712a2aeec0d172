// The autoscalers as a service on the shared runtime: one HTTP server with /metrics (the
// capstan_autoscaler_* series), health, and /status (every autoscaler's conditions and last decision),
// each autoscaler a lifecycle job that stops on SIGTERM.
import type { Clock, KubeClient } from '../kube/index.ts';
import { createService, type Lifecycle, type Logger, type Service } from '../runtime/index.ts';
import { Autoscaler, type AutoscalerSpec } from './autoscaler.ts';
import { type AutoscalerConfigEntry, sourceFor } from './config.ts';

/** Options of {@link createAutoscalerService}. */
export interface AutoscalerServiceOptions {
  kube: KubeClient;
  /** Default 8080; 0 for a free port. */
  port?: number;
  host?: string;
  logger?: Logger;
  lifecycle?: Lifecycle;
  clock?: Clock;
}

/** A service running autoscalers; `start()` listens and starts their loops. */
export interface AutoscalerService {
  readonly service: Service;
  readonly autoscalers: readonly Autoscaler[];
  /** Listen, then start every autoscaler's loop; returns the URL. */
  start(): Promise<string>;
}

/**
 * A service running `autoscalers` (specs, or entries of an autoscaler file): `/metrics`, `/livez`,
 * `/readyz`, and `GET /status` with each autoscaler's {@link Autoscaler.status}. Each metric source is a
 * non-critical health check (a source that is down degrades `/healthz` but never fails readiness: restarting
 * the autoscaler would not bring the source back).
 */
export function createAutoscalerService(
  autoscalers: ReadonlyArray<AutoscalerSpec | AutoscalerConfigEntry>,
  options: AutoscalerServiceOptions,
): AutoscalerService {
  const service = createService({
    name: 'capstan-autoscaler',
    port: options.port ?? 8080,
    ...(options.host !== undefined ? { host: options.host } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.lifecycle ? { lifecycle: options.lifecycle } : {}),
    routes: {
      '/status': (_req, res) => {
        const body = JSON.stringify({ autoscalers: scalers.map((a) => a.status()) });
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
        res.end(body);
      },
    },
  });
  const scalers = autoscalers.map((a) => {
    const spec: AutoscalerSpec =
      'source' in a && 'spec' in a ? { ...a.spec, metric: { ...a.spec.metric, source: sourceFor(a) } } : a;
    return new Autoscaler(spec, {
      kube: options.kube,
      metrics: service.metrics,
      logger: service.logger,
      ...(options.clock ? { clock: options.clock } : {}),
    });
  });
  for (const scaler of scalers) {
    service.health.register({
      name: `source-${scaler.name}`,
      critical: false,
      intervalMs: Math.max(1000, scaler.pollingIntervalMs),
      check: async () => {
        const active = scaler.status().conditions.find((c) => c.type === 'ScalingActive');
        if (active?.reason === 'FailedGetExternalMetric') throw new Error(active.message);
      },
    });
    service.lifecycle.onShutdown(`close source of ${scaler.name}`, () => scaler.close());
  }
  return {
    service,
    autoscalers: scalers,
    async start() {
      const url = await service.start();
      for (const scaler of scalers)
        service.lifecycle.addJob(`autoscaler ${scaler.name}`, (signal) => scaler.run(signal));
      return url;
    },
  };
}
