// How Ansible runs the inventory: an executable it calls with `--list` (its script plugin). The wrapper
// `capstan inventory script` writes execs the inventory program below with the configuration file, so
// `ansible -i inventory.sh` works with nothing else installed on Ansible's side.
import { fileURLToPath } from 'node:url';

/**
 * The inventory program's file: `inventory-main.ts` when Capstan runs from source, the compiled `.js` from
 * dist. It takes `--config <file>` and `--list` | `--host <name>`, and loads neither the runtime nor any
 * source it is not configured with (see inventory-main.ts).
 */
export function inventoryProgramPath(): string {
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  return fileURLToPath(new URL(`./inventory-main.${ext}`, import.meta.url));
}

/** `value` quoted for sh: inside single quotes, each `'` as `'\''`. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** Options of {@link inventoryWrapperScript}. */
export interface InventoryWrapperOptions {
  /** The configuration file, absolute (the script may run from any folder). */
  configFile: string;
  /** The Node binary. Default the one running now (`process.execPath`). */
  node?: string;
  /** The inventory program. Default {@link inventoryProgramPath}. */
  program?: string;
}

/**
 * A `/bin/sh` script for `ansible -i`: it execs Node on the inventory program with `--config` and passes
 * Ansible's arguments (`--list`, `--host <name>`) through. Absolute paths: regenerate it after moving or
 * upgrading Capstan or Node.
 */
export function inventoryWrapperScript(options: InventoryWrapperOptions): string {
  const node = options.node ?? process.execPath;
  const program = options.program ?? inventoryProgramPath();
  return [
    '#!/bin/sh',
    '# Ansible dynamic inventory: Ansible runs this with --list (see docs/ansible.md).',
    '# Written by `capstan inventory script`; set ANSIBLE_INVENTORY_UNPARSED_FAILED=true so a failing',
    '# source fails the play instead of leaving its hosts out with a warning.',
    `exec ${shellQuote(node)} ${shellQuote(program)} --config ${shellQuote(options.configFile)} "$@"`,
    '',
  ].join('\n');
}
