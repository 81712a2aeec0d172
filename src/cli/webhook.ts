import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import type { Webhook } from '../webhook/index.ts';
import { CliError, CliErrorCode } from './errors.ts';
import { runAction } from './run-action.ts';
import { importUserModule } from './user-module.ts';
import { type OutputOptions, writeObjects } from './write-objects.ts';

/** Import a webhook module and return its webhook (the one export made by defineWebhook, or the one named). */
async function webhookIn(modulePath: string, exportName?: string): Promise<Webhook> {
  const { exportedWebhooks } = await import('../webhook/index.ts');
  const mod = await importUserModule(modulePath);
  let found = exportedWebhooks(mod);
  if (exportName !== undefined) found = found.filter(([name]) => name === exportName);
  if (found.length === 1) return found[0]![1];
  if (found.length === 0) {
    throw new CliError(
      CliErrorCode.usage,
      exportName === undefined
        ? `${modulePath} exports no webhook (export const webhook = defineWebhook({ ... }))`
        : `${modulePath} exports no webhook named ${exportName}`,
    );
  }
  throw new CliError(
    CliErrorCode.usage,
    `${modulePath} exports ${found.length} webhooks (${found.map(([n]) => n).join(', ')}): pick one with --export`,
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
    .action((modulePath: string, opts: ManifestsOptions) =>
      runAction('capstan webhook manifests', async () => {
        const { webhookConfigurations, WebhookError, WebhookErrorCode } = await import('../webhook/index.ts');
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
