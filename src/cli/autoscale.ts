import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { CliError, CliErrorCode } from './errors.ts';
import { runAction } from './run-action.ts';
import { type KubeconfigOptions, kubeClientFor } from './scale.ts';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) {
    throw new CliError(CliErrorCode.usage, `--port must be from 0 to 65535, got "${value}"`);
  }
  return n;
}

/** Resolves once `signal` is aborted. */
function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/**
 * `capstan autoscale <file>`: run the autoscalers of a file (RabbitMQ queue depth, Prometheus queries) as a
 * service with /metrics, /status and health; `--once` evaluates each one once and exits.
 */
export function command(): Command {
  return new Command('autoscale')
    .description(
      'Scale Deployments, StatefulSets or CRDs on RabbitMQ queue depth or a Prometheus query with the HPA formula (see docs/scaling.md)',
    )
    .argument('<file>', 'YAML (or JSON) file with an `autoscalers:` list')
    .option(
      '--once',
      'evaluate each autoscaler once, print the decisions and exit (1 when one could not decide)',
    )
    .option('--port <port>', 'port of /metrics, /status and health (default 8080; 0 picks a free one)', port)
    .option('--host <host>', 'address to listen on (default: all)')
    .option('--kubeconfig <path>', 'kubeconfig file (default: KUBECONFIG, else ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context')
    .option('-o, --output <format>', 'with --once: text (default) or json')
    .action(
      (
        file: string,
        opts: KubeconfigOptions & { once?: boolean; port?: number; host?: string; output?: string },
      ) =>
        runAction('capstan autoscale', async (ctx) => {
          if (opts.output !== undefined && opts.output !== 'text' && opts.output !== 'json') {
            throw new CliError(CliErrorCode.usage, `--output: text or json, not ${opts.output}`);
          }
          let text: string;
          try {
            text = readFileSync(file, 'utf8');
          } catch (err) {
            throw new CliError(CliErrorCode.usage, `cannot read ${file}: ${(err as Error).message}`, {
              cause: err,
            });
          }
          const scaling = await import('../scaling/index.ts');
          let entries: ReturnType<typeof scaling.parseAutoscalerConfig>;
          try {
            // The edge: `...FromEnv` fields are read here, once.
            entries = scaling.parseAutoscalerConfig(text, process.env);
          } catch (err) {
            if (err instanceof scaling.ScalingError && err.code === scaling.ScalingErrorCode.config) {
              throw new CliError(CliErrorCode.invalidInput, `${file}: ${err.message}`, { cause: err });
            }
            throw err;
          }
          await using kube = await kubeClientFor(opts);
          const { createLogger, flushLogs, loadConfig, logConfig } = await import('../runtime/index.ts');

          if (opts.once) {
            let held = 0;
            const decisions = [];
            for (const entry of entries) {
              await using scaler = new scaling.Autoscaler(
                { ...entry.spec, metric: { ...entry.spec.metric, source: scaling.sourceFor(entry) } },
                { kube },
              );
              const d = await scaler.evaluate({ signal: ctx.signal });
              if (d.action === 'held') held++;
              decisions.push({ name: entry.spec.name, target: scaler.status().target, ...d });
            }
            for (const d of decisions) {
              process.stdout.write(
                opts.output === 'json'
                  ? `${JSON.stringify(d)}\n`
                  : `${d.name}: ${d.action} ${d.target} ${d.currentReplicas ?? '?'} → ${d.desiredReplicas ?? '?'} (metric ${d.metric ?? '?'}): ${d.message}\n`,
              );
            }
            return held > 0 ? 1 : 0;
          }

          const logger = createLogger({ name: 'capstan-autoscale', ...loadConfig(logConfig, process.env) });
          const app = scaling.createAutoscalerService(entries, {
            kube,
            logger,
            ...(opts.port !== undefined ? { port: opts.port } : {}),
            ...(opts.host !== undefined ? { host: opts.host } : {}),
          });
          app.service.lifecycle.onShutdown('flush logs', () => flushLogs());
          const url = await app.start();
          logger.info({ url, autoscalers: entries.map((e) => e.spec.name) }, 'autoscaling');
          await aborted(ctx.signal);
          const report = await app.service.stop(ctx.stoppedBy() ?? 'stopped');
          return report.exitCode;
        }),
    );
}
