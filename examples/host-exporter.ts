// A Prometheus exporter for this machine, built on capstan/runtime and capstan/exporters: host metrics from
// /proc and free space of chosen filesystems through background Collectors (a scrape never waits on /proc or
// statfs), health checks, JSON logs and graceful shutdown. `capstan up` runs this same service on its
// defaults.
//
//   PORT=9100 EXPORTER_MOUNTS=/,/tmp node examples/host-exporter.ts
//   curl localhost:9100/metrics   curl localhost:9100/readyz?verbose
//
// `capstan config doc examples/host-exporter.ts` lists every variable it reads.
import { createHostExporter, hostExporterConfig } from 'capstan/exporters';
import { createLogger, loadConfigOrExit, logConfig } from 'capstan/runtime';

/** Every variable the exporter reads (PORT, HOST, EXPORTER_*, DATABASE_URL). */
export const exporterConfig = hostExporterConfig;

/** Start the exporter; returns the running service. The environment is read here, once, and passed down. */
export async function startHostExporter(envVars: Record<string, string | undefined> = process.env) {
  // A bad variable exits 78 listing every problem, before listening.
  const config = loadConfigOrExit(exporterConfig, envVars);
  const logger = createLogger({ name: 'host-exporter', ...loadConfigOrExit(logConfig, envVars) });
  const service = createHostExporter(config, { logger });
  await service.start();
  return service;
}

if (import.meta.main) {
  const service = await startHostExporter();
  service.handleSignals();
}
