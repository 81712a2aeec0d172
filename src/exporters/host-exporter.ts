// A Prometheus exporter of this machine: host metrics from /proc and free space of chosen filesystems
// through background Collectors (a scrape never waits on /proc or statfs), a procfs health check and an
// optional PostgreSQL one. `examples/host-exporter.ts` runs it from the environment; `capstan up` on defaults.
import { statfs } from 'node:fs/promises';
import {
  type ConfigOf,
  createService,
  defineConfig,
  env,
  filesystemCollector,
  hostMetricsCollector,
  type Lifecycle,
  type Logger,
  listenFields,
  loadConfig,
  postgresCheck,
  type Service,
  type UpService,
} from '../runtime/index.ts';

/** The exporter's settings: `PORT`, `HOST`, `EXPORTER_*` and an optional `DATABASE_URL`. */
export const hostExporterConfig = defineConfig({
  name: 'host-exporter',
  prefix: 'EXPORTER_',
  fields: {
    ...listenFields,
    procPath: env.string().default('/proc').describe('Mount point of procfs'),
    mounts: env.list(env.string()).default('/').describe('Filesystems whose free space is exported'),
    interval: env.duration().default('5s').describe('How often sources are read'),
    databaseUrl: env
      .url({ protocols: ['postgres', 'postgresql'] })
      .optional()
      .secret()
      .env('DATABASE_URL')
      .describe('Optional PostgreSQL to watch (non-critical health check)'),
  },
});

/** Settings of the host exporter, as loaded from {@link hostExporterConfig}. */
export type HostExporterConfig = ConfigOf<typeof hostExporterConfig>;

/** Options of {@link createHostExporter} besides its settings. */
export interface HostExporterOptions {
  /** A shared lifecycle (several services stopping together, as in `capstan up`). */
  lifecycle?: Lifecycle;
  /** Default: `createLogger({ name: 'host-exporter' })` at level info. */
  logger?: Logger;
}

/** Create the host exporter service on `config`; `start()` it to listen. */
export function createHostExporter(config: HostExporterConfig, options: HostExporterOptions = {}): Service {
  const service = createService({
    name: 'host-exporter',
    port: config.port,
    ...(config.host !== undefined ? { host: config.host } : {}),
    ...(options.lifecycle ? { lifecycle: options.lifecycle } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  service.metrics.registerCollector(
    hostMetricsCollector({ procPath: config.procPath, intervalMs: config.interval }),
  );
  service.metrics.registerCollector(
    filesystemCollector({ mounts: config.mounts, intervalMs: config.interval }),
  );
  service.health.register({
    name: 'procfs',
    check: async () => {
      await statfs(config.procPath);
    },
    intervalMs: config.interval,
  });
  if (config.databaseUrl) {
    // Non-critical: the exporter still serves host metrics while the database is down (degraded).
    service.health.register({ name: 'postgres', check: postgresCheck(config.databaseUrl), critical: false });
  }
  return service;
}

/** The host exporter in `capstan up`: embedded defaults (mount `/`, 5 s), a free port on `--host`. */
export const hostExporterUpService: UpService = {
  name: 'host-exporter',
  description:
    'Prometheus exporter of this machine (examples/host-exporter.ts): /proc load, CPU, memory, network, ' +
    'filesystem space, health checks',
  async start({ host, lifecycle, logger }) {
    // Embedded defaults, not the environment: `up` must not pick up an EXPORTER_* meant for another program.
    const defaults = loadConfig(hostExporterConfig, {});
    const service = createHostExporter(
      { ...defaults, host, port: 0 },
      { lifecycle, logger: logger.child({ component: 'host-exporter' }) },
    );
    const url = await service.start();
    return { urls: { metrics: `${url}/metrics`, readyz: `${url}/readyz?verbose`, livez: `${url}/livez` } };
  },
};
