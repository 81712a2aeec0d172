// A Prometheus exporter for this machine, built on capstan/runtime: host metrics from /proc, free space
// of chosen filesystems through a custom Collector, health checks, JSON logs and graceful shutdown.
//
//   PORT=9100 EXPORTER_MOUNTS=/,/tmp node examples/host-exporter.ts
//   curl localhost:9100/metrics   curl localhost:9100/readyz?verbose
//
// `capstan config doc examples/host-exporter.ts` lists every variable it reads.
import { statfs } from 'node:fs/promises';
import {
  type Collector,
  createService,
  defineConfig,
  env,
  hostMetricsCollector,
  listenFields,
  loadConfigOrExit,
  postgresCheck,
  type Sample,
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

/** A custom collector: free and total bytes of each mount point, read with statfs in the background. */
function filesystemCollector(mounts: readonly string[], intervalMs: number): Collector {
  return {
    name: 'filesystem',
    intervalMs,
    describe: () => [
      {
        name: 'node_filesystem_avail_bytes',
        help: 'Bytes available to non-root users.',
        type: 'gauge',
        labelNames: ['mountpoint'],
      },
      {
        name: 'node_filesystem_size_bytes',
        help: 'Filesystem size in bytes.',
        type: 'gauge',
        labelNames: ['mountpoint'],
      },
    ],
    async collect() {
      const samples: Sample[] = [];
      for (const mountpoint of mounts) {
        const s = await statfs(mountpoint);
        samples.push({
          name: 'node_filesystem_avail_bytes',
          labels: { mountpoint },
          value: s.bavail * s.bsize,
        });
        samples.push({
          name: 'node_filesystem_size_bytes',
          labels: { mountpoint },
          value: s.blocks * s.bsize,
        });
      }
      return samples;
    },
  };
}

/** Start the exporter; returns the running service. */
export async function startHostExporter(envVars: Record<string, string | undefined> = process.env) {
  const config = loadConfigOrExit(exporterConfig, envVars);
  const service = createService({
    name: 'host-exporter',
    port: config.port,
    host: config.host,
    env: envVars,
  });
  service.metrics.registerCollector(
    hostMetricsCollector({ procPath: config.procPath, intervalMs: config.interval }),
  );
  service.metrics.registerCollector(filesystemCollector(config.mounts, config.interval));
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
