import { Command } from 'commander';
import { CliError, CliErrorCode } from './errors.ts';
import { runAction } from './run-action.ts';

/** Resolves once `signal` is aborted. */
function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

interface LbOptions {
  listen?: string;
  backend?: string[];
  config?: string;
  policy?: string;
  hashHeader?: string;
  admin?: string;
  healthPath?: string;
  watch: boolean;
}

/**
 * `capstan lb`: a load-balancing reverse proxy with health checks, outlier ejection and retries on by
 * default; SIGHUP or a change of `--config` reloads backends and policy without dropping connections.
 */
export function command(): Command {
  return new Command('lb')
    .description(
      'Load-balancing reverse proxy: health checks, outlier ejection and budgeted retries on by default; SIGHUP or a change of --config reloads it (see docs/traffic.md)',
    )
    .option('--listen <host:port>', 'address to serve on, e.g. 127.0.0.1:8080')
    .option('--backend <url>', 'a backend, http(s)://host:port (repeat the flag for more)', collect)
    .option('--config <file>', 'YAML (or JSON) configuration; flags win over it; watched for changes')
    .option('--policy <name>', 'round-robin (default), least-request, weighted or consistent-hash')
    .option('--hash-header <name>', 'header whose value the consistent-hash policy hashes')
    .option('--admin <host:port>', 'serve /metrics and the health endpoints here instead of on --listen')
    .option('--health-path <path>', 'path of the active health check (default /)')
    .option('--no-watch', 'do not watch --config for changes (SIGHUP still reloads it)')
    .action((opts: LbOptions) =>
      runAction('capstan lb', async (ctx) => {
        if (!opts.config && !opts.backend?.length) {
          throw new CliError(CliErrorCode.usage, 'give --backend (one or more) or --config');
        }
        const traffic = await import('../traffic/index.ts');
        const { createLogger, flushLogs, loadConfig, logConfig } = await import('../runtime/index.ts');
        // The edge: LOG_LEVEL/LOG_FORMAT are read here, once.
        const logger = createLogger({ name: 'capstan-lb', ...loadConfig(logConfig, process.env) });
        let running: Awaited<ReturnType<typeof traffic.runLoadBalancer>>;
        try {
          running = await traffic.runLoadBalancer({
            ...(opts.config !== undefined ? { configFile: opts.config } : {}),
            flags: {
              ...(opts.listen !== undefined ? { listen: opts.listen } : {}),
              ...(opts.backend !== undefined ? { backends: opts.backend } : {}),
              ...(opts.policy !== undefined ? { policy: opts.policy } : {}),
              ...(opts.hashHeader !== undefined ? { hashHeader: opts.hashHeader } : {}),
              ...(opts.admin !== undefined ? { admin: opts.admin } : {}),
              ...(opts.healthPath !== undefined ? { healthPath: opts.healthPath } : {}),
            },
            logger,
            watchFile: opts.watch,
          });
        } catch (err) {
          if (err instanceof traffic.TrafficError && err.code === traffic.TrafficErrorCode.config) {
            throw new CliError(CliErrorCode.invalidInput, err.message, { cause: err });
          }
          throw err;
        }
        const { lb } = running;
        lb.service.lifecycle.onShutdown('flush logs', () => flushLogs());
        process.stdout.write(
          `capstan lb: ${lb.url} → ${lb.backends.all.map((b) => b.id).join(', ')} (${lb.policy})` +
            `${lb.admin ? `; admin ${lb.admin.url}` : ''}\n`,
        );
        await aborted(ctx.signal);
        const report = await lb.service.stop(ctx.stoppedBy() ?? 'stopped');
        return report.exitCode;
      }),
    );
}
