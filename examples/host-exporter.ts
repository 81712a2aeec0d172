// A Prometheus exporter for this machine, built on capstan/runtime: host metrics from /proc and free space
// of chosen filesystems through background Collectors (a scrape never waits on /proc or statfs), health
// checks, JSON logs and graceful shutdown. `capstan up` runs this same service on its defaults.
//
//   PORT=9100 EXPORTER_MOUNTS=/,/tmp node examples/host-exporter.ts
//   curl localhost:9100/metrics   curl localhost:9100/readyz?verbose
//
// `capstan config doc examples/host-exporter.ts` lists every variable it reads.
import { statfs } from 'node:fs/promises';
import {
  createLogger,
  createService,
  defineConfig,
  env,
  filesystemCollector,
  hostMetricsCollector,
  listenFields,
  loadConfigOrExit,
  logConfig,
  postgresCheck,
} from 'capstan/runtime';

export const exporterConfig = defineConfig({
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

/** Start the exporter; returns the running service. The environment is read here, once, and passed down. */
export async function startHostExporter(envVars: Record<string, string | undefined> = process.env) {
  const config = loadConfigOrExit(exporterConfig, envVars);
  const service = createService({
    name: 'host-exporter',
    port: config.port,
    host: config.host,
    logger: createLogger({ name: 'host-exporter', ...loadConfigOrExit(logConfig, envVars) }),
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
  await service.start();
  return service;
}

if (import.meta.main) {
  const service = await startHostExporter();
  service.handleSignals();
}
