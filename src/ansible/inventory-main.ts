// The inventory program Ansible runs (through the wrapper `capstan inventory script` writes): `--list` or
// `--host <name>`, with `--config <file>`. It is the `capstan inventory` command without the CLI around it:
// it imports the fast path of this area directly, never errors.ts or the index, because those load the
// runtime (about 0.2 s of CPU) and Ansible runs the inventory before every play. Errors are reported as the
// CLI reports them: `capstan inventory: <message> (<code>)` on stderr, exit 78 for a bad configuration, 2
// for wrong arguments, 1 for a failed source.
import { enableCompileCache } from 'node:module';
import { parseArgs } from 'node:util';
import { ansibleError } from './fail.ts';

// Node keeps the compiled code of what this program loads (zod and yaml are some 400 files) in a cache
// folder under the system's temp dir, so the next run skips compiling them. Before the import below.
enableCompileCache?.();
const { inventoryOutput } = await import('./run.ts');

/** Exit statuses, as the CLI's (src/cli/exit-code.ts): failed, usage, bad configuration. */
const EXIT = { failed: 1, usage: 2, config: 78 } as const;

async function run(argv: string[]): Promise<number> {
  let values: { config?: string; list?: boolean; host?: string; pretty?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        list: { type: 'boolean' },
        host: { type: 'string' },
        pretty: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw await ansibleError('usage', (err as Error).message);
  }
  if (Boolean(values.list) === (values.host !== undefined)) {
    throw await ansibleError('usage', 'give --list or --host <name> (one of them)');
  }
  const { output, hints } = await inventoryOutput({
    ...(values.config !== undefined ? { configFile: values.config } : {}),
    ...(values.host !== undefined ? { host: values.host } : {}),
    pretty: values.pretty ?? false,
  });
  for (const hint of hints) process.stderr.write(`capstan inventory: ${hint}\n`);
  process.stdout.write(output);
  return 0;
}

try {
  process.exitCode = await run(process.argv.slice(2));
} catch (err) {
  const { AnsibleError, AnsibleErrorCode } = await import('./errors.ts');
  if (err instanceof AnsibleError) {
    process.stderr.write(`capstan inventory: ${err.message} (${err.code})\n`);
    process.exitCode =
      err.code === AnsibleErrorCode.config
        ? EXIT.config
        : err.code === AnsibleErrorCode.usage
          ? EXIT.usage
          : EXIT.failed;
  } else {
    process.stderr.write(`capstan inventory: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = EXIT.failed;
  }
}
