import { Command } from 'commander';
import { CliError, CliErrorCode } from './errors.ts';
import { runAction } from './run-action.ts';

/** Where the kube client comes from: `--kubeconfig`/`--context`, else KUBECONFIG or ~/.kube/config. */
export interface KubeconfigOptions {
  kubeconfig?: string;
  context?: string;
}

/** A whole number from the command line; anything else (`-1`, `2.5`, `x`) is a usage error (exit 2). */
export function replicaCount(option: string): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < 0) {
      throw new CliError(CliErrorCode.usage, `${option} must be a whole number from 0 up, got "${value}"`);
    }
    return n;
  };
}

/** A kube client for a command, from its kubeconfig options. */
export async function kubeClientFor(opts: KubeconfigOptions) {
  const { KubeClient } = await import('../kube/index.ts');
  return KubeClient.fromKubeconfig(
    {
      ...(opts.kubeconfig ? { path: opts.kubeconfig } : {}),
      ...(opts.context ? { context: opts.context } : {}),
    },
    { fieldManager: 'capstan-scale', userAgent: 'capstan-scale' },
  );
}

/** `capstan scale <kind>/<name> --replicas N`: kubectl scale, through the Scale subresource. */
export function command(): Command {
  return new Command('scale')
    .description(
      'Set the replicas of anything with a scale subresource (Deployment, StatefulSet, ReplicaSet, a CRD): capstan scale deployment/web --replicas 3',
    )
    .argument(
      '<target>',
      '<kind>/<name>, or a kind followed by the name (kind: deployment, deploy, deployments.apps, a CRD plural or short name)',
    )
    .argument('[name]', 'the name, when <target> is only the kind')
    .requiredOption('--replicas <n>', 'the new number of replicas', replicaCount('--replicas'))
    .option('-n, --namespace <ns>', "namespace (default: the kubeconfig context's, else default)")
    .option(
      '--current-replicas <n>',
      'scale only if the replicas are this now',
      replicaCount('--current-replicas'),
    )
    .option('--dry-run', 'validate on the server, change nothing')
    .option('--kubeconfig <path>', 'kubeconfig file (default: KUBECONFIG, else ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context')
    .option('-o, --output <format>', 'text (default) or json')
    .action(
      (
        target: string,
        name: string | undefined,
        opts: KubeconfigOptions & {
          replicas: number;
          namespace?: string;
          currentReplicas?: number;
          dryRun?: boolean;
          output?: string;
        },
      ) =>
        runAction('capstan scale', async ({ signal }) => {
          if (opts.output !== undefined && opts.output !== 'text' && opts.output !== 'json') {
            throw new CliError(CliErrorCode.usage, `--output: text or json, not ${opts.output}`);
          }
          let ref = target;
          if (name !== undefined) {
            if (target.includes('/')) {
              throw new CliError(
                CliErrorCode.usage,
                `give <kind>/<name> or <kind> <name>, not both: ${target} ${name}`,
              );
            }
            ref = `${target}/${name}`;
          }
          const { scaleResource, ScalingError, ScalingErrorCode } = await import('../scaling/index.ts');
          await using kube = await kubeClientFor(opts);
          try {
            const result = await scaleResource(kube, ref, opts.replicas, {
              signal,
              ...(opts.namespace ? { namespace: opts.namespace } : {}),
              ...(opts.currentReplicas !== undefined ? { currentReplicas: opts.currentReplicas } : {}),
              ...(opts.dryRun ? { dryRun: true } : {}),
            });
            if (opts.output === 'json') {
              process.stdout.write(`${JSON.stringify(result)}\n`);
            } else {
              const dry = opts.dryRun ? ' (server dry run)' : '';
              process.stdout.write(
                `${result.resource}/${result.name} scaled: ${result.previousReplicas} → ${result.specReplicas}${dry}\n`,
              );
            }
          } catch (err) {
            // A bad reference is the user's typing: a usage error (exit 2), like a bad option.
            if (err instanceof ScalingError && err.code === ScalingErrorCode.usage) {
              throw new CliError(CliErrorCode.usage, err.message, { cause: err });
            }
            throw err;
          }
        }),
    );
}
