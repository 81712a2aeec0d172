import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import type { CustomResource } from '../kube/index.ts';
import { CliError, CliErrorCode } from './errors.ts';
import { runAction } from './run-action.ts';
import { importUserModule } from './user-module.ts';

/** Import each module and return the custom resources it exports (all, or the one named), by export name. */
async function resourcesIn(modulePaths: string[], exportName?: string): Promise<CustomResource[]> {
  const { exportedCustomResources } = await import('../kube/index.ts');
  const out: CustomResource[] = [];
  for (const modulePath of modulePaths) {
    const mod = await importUserModule(modulePath);
    let found = exportedCustomResources(mod);
    if (exportName !== undefined) found = found.filter(([name]) => name === exportName);
    if (found.length === 0) {
      throw new CliError(
        CliErrorCode.usage,
        exportName === undefined
          ? `${modulePath} exports no custom resource (made by defineCustomResource or customResource(...).storedAs)`
          : `${modulePath} exports no custom resource named ${exportName}`,
      );
    }
    out.push(...found.map(([, resource]) => resource));
  }
  return out;
}

function readOptional(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** `capstan crd`: CustomResourceDefinitions from custom resources defined in TypeScript. */
export function command(): Command {
  const crd = new Command('crd').description('CustomResourceDefinitions from TypeScript definitions');
  crd
    .command('generate')
    .description(
      'Write one CRD YAML per custom resource a module exports (to stdout without -o); exit 78 listing every problem if one cannot be generated',
    )
    .argument('<modules...>', '.ts or .js modules exporting resources made by defineCustomResource')
    .option('-o, --output <dir>', 'write <group>_<plural>.yaml files into this folder (created if missing)')
    .option('--export <name>', 'only this export')
    .option('--check', 'write nothing: exit 1 listing each file in -o that is missing or differs (for CI)')
    .action((modulePaths: string[], opts: { output?: string; export?: string; check?: boolean }) =>
      runAction('capstan crd generate', async () => {
        const { crdManifests, KubeError, KubeErrorCode } = await import('../kube/index.ts');
        const { stringify } = await import('yaml');
        const resources = await resourcesIn(modulePaths, opts.export);
        let manifests: ReturnType<typeof crdManifests>;
        try {
          manifests = crdManifests(resources);
        } catch (err) {
          // A definition that cannot become a CRD is bad input, reported whole (every problem), as config is.
          if (err instanceof KubeError && err.code === KubeErrorCode.crd) {
            throw new CliError(CliErrorCode.invalidInput, err.message, { cause: err });
          }
          throw err;
        }
        const documents = manifests.map((m) => ({ manifest: m, text: stringify(m, { lineWidth: 0 }) }));
        if (opts.output === undefined) {
          if (opts.check) throw new CliError(CliErrorCode.usage, '--check needs -o <dir> to compare with');
          process.stdout.write(documents.map((d) => d.text).join('---\n'));
          return;
        }
        // controller-gen's naming, so a kustomization written for kubebuilder output fits as is.
        const files = documents.map((d) => ({
          ...d,
          file: join(opts.output!, `${d.manifest.spec.group}_${d.manifest.spec.names.plural}.yaml`),
        }));
        if (opts.check) {
          // The `make manifests && git diff --exit-code` of kubebuilder projects, without touching the tree.
          const stale = files.filter(({ file, text }) => readOptional(file) !== text);
          if (stale.length > 0) {
            const lines = stale.map(
              ({ file }) => `  - ${file} (${readOptional(file) === undefined ? 'missing' : 'differs'})`,
            );
            throw new CliError(
              CliErrorCode.failed,
              `${stale.length} CRD file${stale.length === 1 ? ' is' : 's are'} out of date; run capstan crd generate again:\n${lines.join('\n')}`,
            );
          }
          process.stdout.write(`up to date: ${files.length} CRD file${files.length === 1 ? '' : 's'}\n`);
          return;
        }
        mkdirSync(opts.output, { recursive: true });
        for (const { file, text } of files) {
          writeFileSync(file, text);
          process.stdout.write(`wrote ${file}\n`);
        }
      }),
    );
  return crd;
}
