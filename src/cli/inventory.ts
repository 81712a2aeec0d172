import { chmodSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { CliError, CliErrorCode } from './errors.ts';
import { runAction } from './run-action.ts';

interface InventoryOptions {
  config?: string;
  list?: boolean;
  host?: string;
  pretty?: boolean;
}

/** An AnsibleError the CLI gives its own status: a bad configuration exits 78, wrong arguments 2. */
async function cliErrorOf(err: unknown): Promise<unknown> {
  const { AnsibleError, AnsibleErrorCode } = await import('../ansible/index.ts');
  if (!(err instanceof AnsibleError)) return err;
  if (err.code === AnsibleErrorCode.config)
    return new CliError(CliErrorCode.invalidInput, err.message, { cause: err });
  if (err.code === AnsibleErrorCode.usage)
    return new CliError(CliErrorCode.usage, err.message, { cause: err });
  return err;
}

/**
 * `capstan inventory`: Ansible's script-inventory contract (`--list`, `--host <name>`) over the sources and
 * group rules of a configuration file, and `capstan inventory script` for the executable Ansible runs.
 */
export function command(): Command {
  const inventory = new Command('inventory')
    .description(
      'Ansible dynamic inventory: --list (or --host <name>) prints the script-inventory JSON of the sources and group rules in --config (see docs/ansible.md)',
    )
    .option('--config <file>', 'inventory configuration (YAML); default $CAPSTAN_INVENTORY_CONFIG')
    .option('--list', 'print the whole inventory, with _meta.hostvars')
    .option('--host <name>', "print one host's variables ({} for an unknown host)")
    .option('--pretty', 'indent the JSON')
    .action((opts: InventoryOptions) =>
      runAction('capstan inventory', async (ctx) => {
        if (Boolean(opts.list) === (opts.host !== undefined)) {
          throw new CliError(CliErrorCode.usage, 'give --list or --host <name> (one of them)');
        }
        const { inventoryOutput } = await import('../ansible/index.ts');
        try {
          const { output, hints } = await inventoryOutput({
            ...(opts.config !== undefined ? { configFile: opts.config } : {}),
            ...(opts.host !== undefined ? { host: opts.host } : {}),
            pretty: opts.pretty ?? false,
            signal: ctx.signal,
          });
          for (const hint of hints) process.stderr.write(`capstan inventory: ${hint}\n`);
          process.stdout.write(output);
        } catch (err) {
          throw await cliErrorOf(err);
        }
      }),
    );
  inventory
    .command('script')
    .description(
      'Write the executable Ansible runs as an inventory (ansible -i <file>): it runs the inventory of --config, which it checks first',
    )
    .option('-o, --output <file>', 'write it to this file (made executable) instead of stdout')
    .action((opts: { output?: string }, cmd: Command) =>
      runAction('capstan inventory script', async () => {
        const { config } = cmd.optsWithGlobals() as InventoryOptions;
        if (config === undefined) {
          throw new CliError(
            CliErrorCode.usage,
            'give --config <file>: the configuration the script will use',
          );
        }
        const { inventoryWrapperScript, loadInventoryConfig } = await import('../ansible/index.ts');
        const configFile = resolve(config);
        try {
          // A script Ansible would fail on later is better refused now.
          await loadInventoryConfig(configFile);
        } catch (err) {
          throw await cliErrorOf(err);
        }
        const text = inventoryWrapperScript({ configFile });
        if (opts.output === undefined) {
          process.stdout.write(text);
          return;
        }
        writeFileSync(opts.output, text, { mode: 0o755 });
        // The mode above applies only when the file is created.
        chmodSync(opts.output, 0o755);
        process.stderr.write(`capstan inventory script: wrote ${opts.output} (ansible -i ${opts.output})\n`);
      }),
    );
  return inventory;
}
