import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseEnv } from 'node:util';
import { Command, Option } from 'commander';
import type { ConfigDefinition, ConfigDocFormat } from '../runtime/index.ts';

/** Import `modulePath` and return its exported config definitions (all, or the one named). */
async function definitionsIn(
  cmd: Command,
  modulePath: string,
  exportName?: string,
): Promise<[string, ConfigDefinition][]> {
  const { isConfigDefinition } = await import('../runtime/index.ts');
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(resolve(modulePath)).href)) as Record<string, unknown>;
  } catch (err) {
    // A ConfigDefinitionError raised while the module defines its config lands here too.
    return cmd.error(
      `error: cannot import ${modulePath}: ${err instanceof Error ? err.message : String(err)}`,
      {
        exitCode: 2,
      },
    );
  }
  const found = Object.entries(mod).filter((e): e is [string, ConfigDefinition] => isConfigDefinition(e[1]));
  if (exportName !== undefined) {
    const hit = found.filter(([name]) => name === exportName);
    if (hit.length === 0) {
      cmd.error(`error: ${modulePath} exports no config definition named ${exportName}`, { exitCode: 2 });
    }
    return hit;
  }
  if (found.length === 0) cmd.error(`error: ${modulePath} exports no config definition`, { exitCode: 2 });
  return found;
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
    .action(async function (
      this: Command,
      modulePath: string,
      opts: { export?: string; format: ConfigDocFormat },
    ) {
      const { describeConfig, renderConfigRows } = await import('../runtime/index.ts');
      const defs = await definitionsIn(this, modulePath, opts.export);
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
    });
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
    .action(async function (this: Command, modulePath: string, opts: { export?: string; dotenv: string[] }) {
      const { checkConfig, EX_CONFIG } = await import('../runtime/index.ts');
      const vars: Record<string, string | undefined> = {};
      for (const file of opts.dotenv) {
        try {
          Object.assign(vars, parseEnv(readFileSync(file, 'utf8')));
        } catch (err) {
          this.error(`error: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, {
            exitCode: 2,
          });
        }
      }
      Object.assign(vars, process.env);
      const defs = await definitionsIn(this, modulePath, opts.export);
      const problems: string[] = [];
      let variables = 0;
      const seen = new Set<string>();
      for (const [, def] of defs) {
        for (const issue of checkConfig(def, vars).issues) {
          // Two definitions may share a variable (PORT): report it once.
          if (!seen.has(issue.message)) problems.push(issue.message);
          seen.add(issue.message);
        }
        variables += def.entries.length;
      }
      if (problems.length > 0) {
        process.stderr.write(
          `invalid configuration: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n` +
            problems.map((p) => `  - ${p}\n`).join(''),
        );
        process.exitCode = EX_CONFIG;
        return;
      }
      process.stdout.write(`ok: ${variables} variables in ${defs.length} definition(s)\n`);
    });
  return config;
}
