import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { CliError, CliErrorCode } from './errors.ts';
import { runAction } from './run-action.ts';
import { type OutputOptions, writeObjects } from './write-objects.ts';

interface ManifestsOptions extends OutputOptions {
  namespace: string;
  caBundle: string;
  port: number;
  selector?: Record<string, string>;
  endpoint?: string;
  service?: string;
  serviceAccount?: string;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new CliError(CliErrorCode.usage, `not a port: ${value}`);
  return n;
}

/** `app=metrics,tier=x` as labels. */
function labels(value: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of value.split(',')) {
    const [key, val, ...rest] = pair.split('=');
    if (!key || val === undefined || rest.length > 0) {
      throw new CliError(CliErrorCode.usage, `--selector: key=value[,key=value...], not ${value}`);
    }
    out[key.trim()] = val.trim();
  }
  return out;
}

/** `capstan external-metrics`: register an External Metrics API adapter (capstan/scaling) with the apiserver. */
export function command(): Command {
  const cmd = new Command('external-metrics').description(
    'External Metrics API adapter: the APIService, Service and RBAC that register it',
  );
  cmd
    .command('manifests')
    .description(
      'Print the objects that register an adapter as external.metrics.k8s.io/v1beta1 (one per cluster): ServiceAccount, Service (and EndpointSlice), APIService, delegated-auth bindings',
    )
    .requiredOption('--namespace <namespace>', "the adapter's namespace")
    .requiredOption(
      '--ca-bundle <file>',
      'PEM file of the CA that signed the serving certificate (the caBundle)',
    )
    .requiredOption('--port <port>', 'the port the adapter listens on', port)
    .option('--selector <key=value,...>', "the adapter runs in the cluster: its pods' labels", labels)
    .option('--endpoint <address>', 'or it runs outside: the address the apiserver reaches it at')
    .option('--service <name>', "the Service's name (default capstan-external-metrics)")
    .option('--service-account <name>', 'the ServiceAccount the adapter runs as (default: the Service name)')
    .option('-o, --output <dir>', 'one YAML file per object in this folder (created if missing)')
    .action((opts: ManifestsOptions) =>
      runAction('capstan external-metrics manifests', async () => {
        const { externalMetricsApiManifests, ScalingError, ScalingErrorCode } = await import(
          '../scaling/index.ts'
        );
        let caPem: string;
        try {
          caPem = readFileSync(opts.caBundle, 'utf8');
        } catch (err) {
          throw new CliError(
            CliErrorCode.usage,
            `--ca-bundle: cannot read ${opts.caBundle}: ${(err as Error).message}`,
            {
              cause: err,
            },
          );
        }
        try {
          const objects = externalMetricsApiManifests({
            namespace: opts.namespace,
            caPem,
            port: opts.port,
            ...(opts.selector !== undefined && { selector: opts.selector }),
            ...(opts.endpoint !== undefined && { endpoint: opts.endpoint }),
            ...(opts.service !== undefined && { serviceName: opts.service }),
            ...(opts.serviceAccount !== undefined && { serviceAccountName: opts.serviceAccount }),
          });
          await writeObjects(objects, opts);
        } catch (err) {
          if (err instanceof ScalingError && err.code === ScalingErrorCode.config) {
            throw new CliError(CliErrorCode.usage, err.message, { cause: err });
          }
          throw err;
        }
      }),
    );
  return cmd;
}
