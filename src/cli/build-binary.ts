// `capstan build-binary`: a single executable of the Capstan CLI, or of a team's own tool.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { runAction } from './run-action.ts';

interface BuildBinaryFlags {
  entry?: string;
  name?: string;
  out: string;
}

export function command(): Command {
  return new Command('build-binary')
    .description(
      'Build a single executable that runs with no Node install and no node_modules: the capstan CLI, or your tool (--entry ops.ts --name ops-tool)',
    )
    .option('--entry <module>', "your tool's entry module (default: the capstan CLI)")
    .option('--name <name>', "the executable's name (default: capstan, or the entry's file name)")
    .option('-o, --out <dir>', 'where to write it', '.')
    .action((flags: BuildBinaryFlags) =>
      runAction('capstan build-binary', async ({ signal }) => {
        const { buildBinary } = await import('../automation/index.ts');
        const own = flags.entry === undefined;
        // The CLI's own entry: this very file's sibling, as source (a checkout) or built (the package).
        const main = fileURLToPath(
          new URL(`./main${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url),
        );
        const pkg = fileURLToPath(new URL('../../package.json', import.meta.url));
        const built = await buildBinary({
          entry: flags.entry ?? main,
          ...(flags.name !== undefined ? { name: flags.name } : own ? { name: 'capstan' } : {}),
          outDir: flags.out,
          signal,
          log: (line) => process.stderr.write(`capstan build-binary: ${line}\n`),
          ...(own && existsSync(pkg)
            ? { define: { CAPSTAN_VERSION: JSON.stringify(JSON.parse(readFileSync(pkg, 'utf8')).version) } }
            : {}),
        });
        process.stdout.write(`${built.path}\n`);
      }),
    );
}
