import { Command } from 'commander';
import { CliError, CliErrorCode } from './errors.ts';
import { runAction } from './run-action.ts';

/** Resolves once `signal` is aborted. */
function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

interface ServeOptions {
  config: string;
  listen?: string;
  admin?: string;
  watch: boolean;
}

/**
 * `capstan xds serve`: an xDS control plane (ADS, state of the world and delta) serving the mesh of
 * `--config` to gRPC proxyless clients; SIGHUP or a change of the file pushes a new snapshot.
 */
export function command(): Command {
  const xds = new Command('xds').description(
    'xDS control plane for gRPC proxyless clients (see docs/traffic.md)',
  );
  xds
    .command('serve')
    .description(
      'Serve the mesh of --config over ADS (state of the world and delta); SIGHUP or a change of the file pushes a new snapshot',
    )
    .requiredOption('--config <file>', 'mesh file (YAML or JSON): services, versions, endpoints, routes')
    .option('--listen <host:port>', 'xDS (gRPC) address; default the file’s listen, else 127.0.0.1:18000')
    .option(
      '--admin <host:port>',
      'health endpoints and /metrics; default the file’s admin, else a free port',
    )
    .option('--no-watch', 'do not watch --config for changes (SIGHUP still reloads it)')
    .action((opts: ServeOptions) =>
      runAction('capstan xds serve', async (ctx) => {
        const traffic = await import('../traffic/index.ts');
        const { createLogger, flushLogs, loadConfig, logConfig } = await import('../runtime/index.ts');
        // The edge: LOG_LEVEL/LOG_FORMAT are read here, once.
        const logger = createLogger({ name: 'capstan-xds', ...loadConfig(logConfig, process.env) });
        let running: Awaited<ReturnType<typeof traffic.runControlPlane>>;
        try {
          running = await traffic.runControlPlane({
            configFile: opts.config,
            flags: {
              ...(opts.listen !== undefined ? { listen: opts.listen } : {}),
              ...(opts.admin !== undefined ? { admin: opts.admin } : {}),
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
        const cp = running.controlPlane;
        cp.service.lifecycle.onShutdown('flush logs', () => flushLogs());
        const services = Object.keys(running.config.mesh.services);
        process.stdout.write(
          `capstan xds: ${cp.address} (admin ${cp.adminUrl}); services: ${services.join(', ')}\n`,
        );
        await aborted(ctx.signal);
        const report = await cp.service.stop(ctx.stoppedBy() ?? 'stopped');
        return report.exitCode;
      }),
    );
  return xds;
}
