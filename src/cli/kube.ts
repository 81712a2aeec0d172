import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Command } from 'commander';
import type { Operator } from '../kube/index.ts';
import { CliError, CliErrorCode } from './errors.ts';
import { runAction } from './run-action.ts';
import { importUserModule, oneExport } from './user-module.ts';
import { type OutputOptions, writeObjects } from './write-objects.ts';

/** Import an operator module and return its operator (the one export made by defineOperator, or the one named). */
async function operatorIn(modulePath: string, exportName?: string): Promise<Operator> {
  const { exportedOperators } = await import('../kube/index.ts');
  const mod = await importUserModule(modulePath);
  return oneExport(
    modulePath,
    exportedOperators(mod),
    exportName,
    'operator',
    'export const operator = defineOperator({ ... })',
  );
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new CliError(CliErrorCode.usage, `not a count: ${value}`);
  return n;
}

/** `capstan kube`: RBAC, manifests and a project scaffold for operators written with capstan/kube. */
export function command(): Command {
  const kube = new Command('kube').description(
    'Operators: least-privilege RBAC, deploy manifests, a new project',
  );
  kube
    .command('rbac')
    .description(
      "Print the ServiceAccount, roles and bindings an operator module's controllers need (derived from what they watch and own)",
    )
    .argument('<module>', '.ts or .js module exporting an operator made by defineOperator')
    .option('-o, --output <dir>', 'one YAML file per object in this folder (created if missing)')
    .option('--export <name>', 'the operator export, when the module has several')
    .action((modulePath: string, opts: OutputOptions & { export?: string }) =>
      runAction('capstan kube rbac', async () => {
        const { rbacManifests } = await import('../kube/index.ts');
        const operator = await operatorIn(modulePath, opts.export);
        await writeObjects(rbacManifests(operator) as Array<Record<string, unknown>>, opts);
      }),
    );
  kube
    .command('manifests')
    .description(
      'Print everything a cluster needs to run an operator: Namespace, CRDs, RBAC, Deployment, PodDisruptionBudget',
    )
    .argument('<module>', '.ts or .js module exporting an operator made by defineOperator')
    .requiredOption('--image <image>', "the operator's container image (its entrypoint calls runOperator)")
    .option('--replicas <n>', 'default 2 with leader election, else 1', positiveInt)
    .option('--image-pull-policy <policy>', 'Always, IfNotPresent (default) or Never')
    .option('--command <args...>', "override the image's entrypoint, e.g. --command node dist/main.js")
    .option('--log-level <level>', 'LOG_LEVEL of the operator')
    .option('--no-namespace', 'leave out the Namespace object')
    .option('-o, --output <dir>', 'one YAML file per object in this folder (created if missing)')
    .option('--export <name>', 'the operator export, when the module has several')
    .action(
      (
        modulePath: string,
        opts: OutputOptions & {
          image: string;
          replicas?: number;
          imagePullPolicy?: string;
          command?: string[];
          logLevel?: string;
          namespace: boolean;
          export?: string;
        },
      ) =>
        runAction('capstan kube manifests', async () => {
          const { operatorManifests, KubeError, KubeErrorCode } = await import('../kube/index.ts');
          const policy = opts.imagePullPolicy;
          if (policy !== undefined && !['Always', 'IfNotPresent', 'Never'].includes(policy)) {
            throw new CliError(
              CliErrorCode.usage,
              `--image-pull-policy: Always, IfNotPresent or Never, not ${policy}`,
            );
          }
          const operator = await operatorIn(modulePath, opts.export);
          let objects: ReturnType<typeof operatorManifests>;
          try {
            objects = operatorManifests(operator, {
              image: opts.image,
              namespace: opts.namespace,
              ...(opts.replicas !== undefined ? { replicas: opts.replicas } : {}),
              ...(policy !== undefined
                ? { imagePullPolicy: policy as 'Always' | 'IfNotPresent' | 'Never' }
                : {}),
              ...(opts.command ? { command: opts.command } : {}),
              ...(opts.logLevel ? { logLevel: opts.logLevel } : {}),
            });
          } catch (err) {
            if (err instanceof KubeError && err.code === KubeErrorCode.crd) {
              throw new CliError(CliErrorCode.invalidInput, err.message, { cause: err });
            }
            throw err;
          }
          await writeObjects(objects as Array<Record<string, unknown>>, opts);
        }),
    );
  const create = kube.command('new').description('Start a new project');
  create
    .command('operator')
    .description('Write a new operator project: a custom resource, a controller, a main, a test, a README')
    .argument('<name>', 'project and operator name, a lower-case DNS label (website-operator)')
    .option('-d, --dir <dir>', 'where to write it (default ./<name>); must be empty or missing')
    .option('--group <group>', 'API group of the custom resource', 'example.com')
    .option('--kind <kind>', 'kind of the custom resource', 'Widget')
    .action((name: string, opts: { dir?: string; group: string; kind: string }) =>
      runAction('capstan kube new operator', async () => {
        const { scaffoldOperator, KubeError } = await import('../kube/index.ts');
        const dir = resolve(opts.dir ?? name);
        if (existsSync(dir) && readdirSync(dir).length > 0) {
          throw new CliError(CliErrorCode.usage, `${dir} is not empty; pick another --dir`);
        }
        let files: ReturnType<typeof scaffoldOperator>;
        try {
          files = scaffoldOperator({ name, group: opts.group, kind: opts.kind });
        } catch (err) {
          if (err instanceof KubeError) throw new CliError(CliErrorCode.usage, err.message, { cause: err });
          throw err;
        }
        for (const file of files) {
          const path = join(dir, file.path);
          mkdirSync(dirname(path), { recursive: true });
          writeFileSync(path, file.text);
          process.stdout.write(`wrote ${path}\n`);
        }
        process.stdout.write(`\nnext: cd ${dir} && npm install && npm test\n`);
      }),
    );
  return kube;
}
