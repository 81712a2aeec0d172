// From a configuration to the inventory: open each configured source (its module loaded only when
// configured, so a static inventory never loads Docker or Kubernetes code), collect, merge, group.
import type { InventoryConfig, SourceConfig } from './config.ts';
import { INVENTORY_CONFIG_ENV, loadInventoryConfig } from './config.ts';
import { groupHosts } from './groups.ts';
import { emptyInventory, hostVarsOf, mergeHosts, type ScriptInventory } from './inventory.ts';
import { collectHosts, type InventorySource, type TimedSource } from './source.ts';

/** Options of {@link buildInventory}. */
export interface BuildInventoryOptions {
  /** Aborts every source. */
  signal?: AbortSignal;
  /** Environment the sources read (`DOCKER_HOST`, `CONSUL_HTTP_ADDR`, `KUBECONFIG`). Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** More sources, beside the configured ones: a source of your own ({@link InventorySource}). */
  sources?: readonly TimedSource[];
}

/** The {@link InventorySource} a configured source describes; its module is imported here, on demand. */
export async function openSource(
  config: SourceConfig,
  env: NodeJS.ProcessEnv = process.env,
): Promise<InventorySource> {
  switch (config.type) {
    case 'static':
      return (await import('./static-source.ts')).staticSource(config);
    case 'docker':
      return (await import('./docker-source.ts')).dockerSource({ ...config, env });
    case 'consul':
      return (await import('./consul-source.ts')).consulSource({ ...config, env });
    case 'kubernetes':
      return (await import('./kubernetes-source.ts')).kubernetesSource({ ...config, env });
  }
}

/**
 * The script inventory of a checked configuration: every source collected at once under its timeout
 * (any failure rejects, naming the source), hosts merged by name, grouped by the rules.
 */
export async function buildInventory(
  config: Pick<InventoryConfig, 'sources' | 'rules'>,
  options: BuildInventoryOptions = {},
): Promise<ScriptInventory> {
  const env = options.env ?? process.env;
  const timed: TimedSource[] = await Promise.all(
    config.sources.map(async (s) => ({
      source: await openSource(s, env),
      timeoutMs: s.timeoutMs,
      ...(s.group ? { group: s.group } : {}),
    })),
  );
  timed.push(...(options.sources ?? []));
  const hosts = await collectHosts(timed, options.signal ? { signal: options.signal } : {});
  return groupHosts(mergeHosts(hosts), config.rules);
}

/** Options of {@link inventoryFromConfigFile}. */
export interface InventoryFromFileOptions extends BuildInventoryOptions {
  /** The configuration file; default `CAPSTAN_INVENTORY_CONFIG` from `env`; none: an empty inventory. */
  configFile?: string;
}

/**
 * What `capstan inventory --list` prints, and why it may look empty: with no configuration file, or one
 * with no source, the inventory is empty but valid (`_meta.hostvars` present) and `hints` says what to do.
 */
export async function inventoryFromConfigFile(
  options: InventoryFromFileOptions = {},
): Promise<{ inventory: ScriptInventory; hints: string[] }> {
  const env = options.env ?? process.env;
  const file = options.configFile ?? (env[INVENTORY_CONFIG_ENV] || undefined);
  if (file === undefined) {
    return {
      inventory: emptyInventory(),
      hints: [
        `no inventory configuration (--config <file> or ${INVENTORY_CONFIG_ENV}): the inventory is empty; see docs/ansible.md`,
      ],
    };
  }
  const config = await loadInventoryConfig(file);
  const hints =
    config.sources.length === 0 && !options.sources?.length
      ? [`${file} configures no source (sources:): the inventory has no host; see docs/ansible.md`]
      : [];
  return { inventory: await buildInventory(config, options), hints };
}

/** Options of {@link inventoryOutput}. */
export interface InventoryOutputOptions extends InventoryFromFileOptions {
  /** `--host <name>`: that host's variables instead of the whole inventory. */
  host?: string;
  /** Indented JSON, for people. */
  pretty?: boolean;
}

/**
 * The text the script contract wants on stdout: `--list` (the whole inventory) or `--host <name>` (one host's
 * variables, `{}` for an unknown host), one JSON document and a newline; plus hints for stderr.
 */
export async function inventoryOutput(
  options: InventoryOutputOptions = {},
): Promise<{ output: string; hints: string[] }> {
  const { inventory, hints } = await inventoryFromConfigFile(options);
  const value = options.host !== undefined ? hostVarsOf(inventory, options.host) : inventory;
  return { output: `${JSON.stringify(value, null, options.pretty ? 2 : undefined)}\n`, hints };
}
