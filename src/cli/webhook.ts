import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import type { Webhook } from '../webhook/index.ts';
import { CliError, CliErrorCode } from './errors.ts';
import { runAction } from './run-action.ts';
import { importUserModule, oneExport } from './user-module.ts';
import { type OutputOptions, writeObjects } from './write-objects.ts';

/** Import a webhook module and return its webhook (the one export made by defineWebhook, or the one named). */
async function webhookIn(modulePath: string, exportName?: string): Promise<Webhook> {
  const { exportedWebhooks } = await import('../webhook/index.ts');
  const mod = await importUserModule(modulePath);
  return oneExport(
    modulePath,
    exportedWebhooks(mod),
    exportName,
    'webhook',
    'export const webhook = defineWebhook({ ... })',
  );
}

/** `namespace/name` of a Service. */
function serviceRef(value: string): { namespace: string; name: string } {
  const parts = value.split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1]) {
    throw new CliError(CliErrorCode.usage, `--service: namespace/name, not ${value}`);
  }
  return { namespace: parts[0], name: parts[1] };
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new CliError(CliErrorCode.usage, `not a port: ${value}`);
  return n;
}

interface ManifestsOptions extends OutputOptions {
  service?: string;
  port?: number;
  url?: string;
  caBundle?: string;
  export?: string;
  image?: string;
  namespace?: string;
  replicas?: number;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  certificates?: 'capstan' | 'cert-manager';
  issuer?: string;
  logLevel?: string;
}

function replicas(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new CliError(CliErrorCode.usage, `not a replica count: ${value}`);
  return n;
}

function oneOf<const V extends readonly string[]>(flag: string, values: V) {
  return (value: string): V[number] => {
    if (!values.includes(value))
      throw new CliError(CliErrorCode.usage, `${flag}: one of ${values.join(', ')}, not ${value}`);
    return value as V[number];
  };
}

/** `Kind/name` of a cert-manager issuer. */
function issuerRef(value: string): { kind: 'Issuer' | 'ClusterIssuer'; name: string } {
  const [kind, name, ...rest] = value.split('/');
  if ((kind !== 'Issuer' && kind !== 'ClusterIssuer') || !name || rest.length > 0) {
    throw new CliError(CliErrorCode.usage, `--issuer: Issuer/<name> or ClusterIssuer/<name>, not ${value}`);
  }
  return { kind, name };
}

/** With `--image`: everything to run the webhook in the cluster (deploy manifests). */
async function deployObjects(
  definition: Webhook,
  opts: ManifestsOptions,
): Promise<Array<Record<string, unknown>>> {
  if (
    opts.service !== undefined ||
    opts.url !== undefined ||
    opts.caBundle !== undefined ||
    opts.port !== undefined
  ) {
    throw new CliError(
      CliErrorCode.usage,
      '--image deploys the webhook behind its own Service with certificates issued in the cluster: no --service, --port, --url or --ca-bundle',
    );
  }
  const { webhookDeployManifests, WebhookError, WebhookErrorCode } = await import('../webhook/index.ts');
  try {
    return webhookDeployManifests(definition, {
      image: opts.image!,
      ...(opts.namespace !== undefined && { namespace: opts.namespace }),
      ...(opts.replicas !== undefined && { replicas: opts.replicas }),
      ...(opts.imagePullPolicy !== undefined && { imagePullPolicy: opts.imagePullPolicy }),
      ...(opts.certificates !== undefined && { certificates: opts.certificates }),
      ...(opts.issuer !== undefined && { issuer: issuerRef(opts.issuer) }),
      ...(opts.logLevel !== undefined && { logLevel: opts.logLevel }),
    }) as Array<Record<string, unknown>>;
  } catch (err) {
    if (err instanceof WebhookError && err.code === WebhookErrorCode.usage) {
      throw new CliError(CliErrorCode.usage, err.message, { cause: err });
    }
    throw err;
  }
}

/** `capstan webhook`: admission webhooks written with capstan/webhook. */
export function command(): Command {
  const webhook = new Command('webhook').description('Admission webhooks: configurations for the apiserver');
  webhook
    .command('manifests')
    .description(
      "Print the ValidatingWebhookConfiguration and MutatingWebhookConfiguration of a webhook module's handlers",
    )
    .argument('<module>', '.ts or .js module exporting a webhook made by defineWebhook')
    .option('--service <namespace/name>', 'the apiserver calls the webhook through this Service')
    .option('--port <port>', "the Service's port (default 443)", port)
    .option('--url <url>', 'or calls it at this https:// base URL (a webhook outside the cluster)')
    .option(
      '--ca-bundle <file>',
      'PEM file of the CA that signed the serving certificate (written as caBundle)',
    )
    .option('-o, --output <dir>', 'one YAML file per object in this folder (created if missing)')
    .option('--export <name>', 'the webhook export, when the module has several')
    .option(
      '--image <image>',
      'instead: everything to run it in the cluster (RBAC, Secret, Service, Deployment running runWebhook, configurations)',
    )
    .option('--namespace <namespace>', 'with --image: where it runs (default <name>-system)')
    .option('--replicas <n>', 'with --image: pods (default 2)', replicas)
    .option(
      '--image-pull-policy <policy>',
      'with --image: Always, IfNotPresent (default) or Never',
      oneOf('--image-pull-policy', ['Always', 'IfNotPresent', 'Never'] as const),
    )
    .option(
      '--certificates <source>',
      'with --image: capstan (default: issued and rotated by the webhook) or cert-manager',
      oneOf('--certificates', ['capstan', 'cert-manager'] as const),
    )
    .option(
      '--issuer <Kind/name>',
      'with --certificates cert-manager: the issuer (default a self-signed Issuer)',
    )
    .option('--log-level <level>', 'with --image: LOG_LEVEL of the webhook')
    .action((modulePath: string, opts: ManifestsOptions) =>
      runAction('capstan webhook manifests', async () => {
        const { webhookConfigurations, WebhookError, WebhookErrorCode } = await import('../webhook/index.ts');
        if (opts.image !== undefined) {
          await writeObjects(await deployObjects(await webhookIn(modulePath, opts.export), opts), opts);
          return;
        }
        const deployOnly = [
          opts.namespace,
          opts.replicas,
          opts.imagePullPolicy,
          opts.certificates,
          opts.issuer,
          opts.logLevel,
        ];
        if (deployOnly.some((o) => o !== undefined)) {
          throw new CliError(
            CliErrorCode.usage,
            '--namespace, --replicas, --image-pull-policy, --certificates, --issuer and --log-level go with --image',
          );
        }
        if ((opts.service === undefined) === (opts.url === undefined)) {
          throw new CliError(
            CliErrorCode.usage,
            'give one of --service <namespace/name> and --url <https://...>',
          );
        }
        if (opts.port !== undefined && opts.service === undefined) {
          throw new CliError(CliErrorCode.usage, '--port goes with --service');
        }
        let caBundle: string | undefined;
        if (opts.caBundle !== undefined) {
          try {
            caBundle = readFileSync(opts.caBundle, 'utf8');
          } catch (err) {
            throw new CliError(
              CliErrorCode.usage,
              `--ca-bundle: cannot read ${opts.caBundle}: ${(err as Error).message}`,
              {
                cause: err,
              },
            );
          }
        }
        const definition = await webhookIn(modulePath, opts.export);
        let configurations: ReturnType<typeof webhookConfigurations>;
        try {
          configurations = webhookConfigurations(definition, {
            ...(opts.service !== undefined && {
              service: { ...serviceRef(opts.service), ...(opts.port !== undefined && { port: opts.port }) },
            }),
            ...(opts.url !== undefined && { url: opts.url }),
            ...(caBundle !== undefined && { caBundle }),
          });
        } catch (err) {
          if (err instanceof WebhookError && err.code === WebhookErrorCode.usage) {
            throw new CliError(CliErrorCode.usage, err.message, { cause: err });
          }
          throw err;
        }
        const objects = [configurations.validating, configurations.mutating].filter((o) => o !== undefined);
        await writeObjects(objects as Array<Record<string, unknown>>, opts);
      }),
    );
  return webhook;
}
