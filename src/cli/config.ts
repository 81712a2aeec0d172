import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';
import { Command, Option } from 'commander';
import type { ConfigDefinition, ConfigDocFormat } from '../runtime/index.ts';
import { CliError, CliErrorCode } from './errors.ts';
import { runAction } from './run-action.ts';
import { importUserModule } from './user-module.ts';

/** Import `modulePath` and return its exported config definitions (all, or the one named). */
async function definitionsIn(modulePath: string, exportName?: string): Promise<[string, ConfigDefinition][]> {
  const { exportedConfigDefinitions } = await import('../runtime/index.ts');
  // A ConfigDefinitionError raised while the module defines its config is a usage error too.
  const mod = await importUserModule(modulePath);
  const found = exportedConfigDefinitions(mod);
  if (exportName !== undefined) {
    const hit = found.filter(([name]) => name === exportName);
    if (hit.length === 0) {
      throw new CliError(
        CliErrorCode.usage,
        `${modulePath} exports no config definition named ${exportName}`,
      );
    }
    return hit;
  }
  if (found.length === 0)
    throw new CliError(CliErrorCode.usage, `${modulePath} exports no config definition`);
  return found;
}

/** Variables from `.env` files, later files winning, then the real environment over them all. */
function environmentWith(dotenvFiles: readonly string[]): Record<string, string | undefined> {
  const vars: Record<string, string | undefined> = {};
  for (const file of dotenvFiles) {
    try {
      Object.assign(vars, parseEnv(readFileSync(file, 'utf8')));
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new CliError(CliErrorCode.usage, `cannot read ${file}: ${reason}`, { cause: err });
    }
  }
  return Object.assign(vars, process.env);
}

/** `capstan config`: document and check 12-factor configuration definitions. */
export function command(): Command {
  const config = new Command('config').description('Document and check environment configuration');
  config
    .command('doc')
    .description('Print every environment variable a module’s config definitions read')
    .argument('<module-path>', 'a .ts or .js module exporting definitions made by defineConfig')
    .option('--export <name>', 'only this export')
    .addOption(
      new Option('--format <format>', 'output format')
        .choices(['table', 'markdown', 'json'])
        .default('table'),
    )
    .action((modulePath: string, opts: { export?: string; format: ConfigDocFormat }) =>
      runAction('capstan config doc', async () => {
        const { describeConfig, renderConfigRows } = await import('../runtime/index.ts');
        const defs = await definitionsIn(modulePath, opts.export);
        if (opts.format === 'json') {
          const out = Object.fromEntries(defs.map(([name, def]) => [name, describeConfig(def)]));
          process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
          return;
        }
        const parts = defs.map(([name, def]) => {
          const title = opts.format === 'markdown' ? `### ${name}\n\n` : `${name}\n`;
          return title + renderConfigRows(describeConfig(def), opts.format);
        });
        process.stdout.write(parts.join('\n'));
      }),
    );
  config
    .command('check')
    .description(
      'Validate the current environment against a module’s config definitions (exit 78 if invalid)',
    )
    .argument('<module-path>', 'a .ts or .js module exporting definitions made by defineConfig')
    .option('--export <name>', 'only this export')
    .option(
      '--dotenv <path>',
      // Not --env-file: node itself scans its whole argv for --env-file, even after the script name.
      'also read variables from a .env file (repeatable; the environment wins, as with node --env-file)',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .action((modulePath: string, opts: { export?: string; dotenv: string[] }) =>
      runAction('capstan config check', async () => {
        const { checkConfigs, ConfigError } = await import('../runtime/index.ts');
        const vars = environmentWith(opts.dotenv);
        const defs = await definitionsIn(modulePath, opts.export);
        const { issues, variables } = checkConfigs(
          defs.map(([, def]) => def),
          vars,
        );
        // Reported as loadConfigOrExit reports it, exit 78: the same message a service would print.
        if (issues.length > 0) throw new ConfigError(issues);
        process.stdout.write(`ok: ${variables} variables in ${defs.length} definition(s)\n`);
      }),
    );
  return config;
}
