import { Command } from 'commander';

/** One service `capstan up` runs. Later areas add theirs to {@link upServices}. */
export interface UpService {
  name: string;
  description: string;
  start(ctx: UpContext): Promise<Record<string, string>>;
}

/** What each service gets from `capstan up`. */
export interface UpContext {
  host: string;
  lifecycle: import('../runtime/index.ts').Lifecycle;
  logger: import('../runtime/index.ts').Logger;
}

/** Every service `capstan up` starts, in order. */
export const upServices: UpService[] = [
  {
    name: 'host-exporter',
    description:
      'Prometheus exporter of this machine (examples/host-exporter.ts): /proc load, CPU, memory, network, ' +
      'filesystem space, health checks',
    async start({ host, lifecycle, logger }) {
      const { createService, filesystemCollector, hostMetricsCollector } = await import(
        '../runtime/index.ts'
      );
      const { statfs } = await import('node:fs/promises');
      const service = createService({
        name: 'host-exporter',
        host,
        port: 0,
        lifecycle,
        logger: logger.child({ component: 'host-exporter' }),
      });
      service.metrics.registerCollector(hostMetricsCollector());
      service.metrics.registerCollector(filesystemCollector({ mounts: ['/'] }));
      service.health.register({
        name: 'procfs',
        check: async () => {
          await statfs('/proc');
        },
        intervalMs: 5000,
      });
      const url = await service.start();
      return { metrics: `${url}/metrics`, readyz: `${url}/readyz?verbose`, livez: `${url}/livez` };
    },
  },
];

/** `capstan up`: start every Capstan service on this machine on embedded defaults. */
export function command(): Command {
  return new Command('up')
    .description('Start every Capstan service on this machine on embedded defaults; Ctrl-C stops them')
    .option('--host <address>', 'listen address', '127.0.0.1')
    .option('--only <names>', 'comma-separated subset of services')
    .action(async (opts: { host: string; only?: string }) => {
      const { createLogger, flushLogs, Lifecycle, loadConfig, logConfig } = await import(
        '../runtime/index.ts'
      );
      // The edge: LOG_LEVEL/LOG_FORMAT are read here, once; services get values (PORT is not read at all).
      const logger = createLogger({ name: 'capstan-up', ...loadConfig(logConfig) });
      // No load balancer in front of a local run: no propagation delay before closing listeners.
      const lifecycle = new Lifecycle({
        drainDelayMs: 0,
        log: (level, msg, fields) => logger[level](fields ?? {}, msg),
      });
      lifecycle.onShutdown('flush logs', () => flushLogs());
      const wanted = opts.only?.split(',').map((s) => s.trim());
      const unknown = wanted?.filter((w) => !upServices.some((s) => s.name === w)) ?? [];
      if (unknown.length > 0) {
        process.stderr.write(
          `capstan up: unknown service(s): ${unknown.join(', ')}; known: ${upServices.map((s) => s.name).join(', ')}\n`,
        );
        process.exit(2);
      }
      const chosen = upServices.filter((s) => !wanted || wanted.includes(s.name));
      lifecycle.handleSignals();
      const lines: string[] = [];
      for (const service of chosen) {
        try {
          const urls = await service.start({ host: opts.host, lifecycle, logger });
          lines.push(`  ${service.name} — ${service.description}`);
          for (const [label, url] of Object.entries(urls)) lines.push(`    ${label.padEnd(8)} ${url}`);
        } catch (err) {
          logger.error({ err, service: service.name }, 'service failed to start');
          const report = await lifecycle.shutdown(`${service.name} failed to start`);
          process.exit(report.exitCode || 1);
        }
      }
      process.stdout.write(
        `capstan up: ${chosen.length} service(s) running\n${lines.join('\n')}\nCtrl-C stops them.\n`,
      );
    });
}
