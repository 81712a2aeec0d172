// capstan/ansible: Ansible dynamic inventory. Sources (a static file, Docker, Consul, Kubernetes; your own
// through InventorySource) collected at once under timeouts, group rules from the configuration, and the
// script-inventory JSON Ansible reads (`capstan inventory --list`, or the wrapper `capstan inventory script`).

export {
  type ConsulSourceConfig,
  DEFAULT_SOURCE_TIMEOUT_MS,
  type DockerSourceConfig,
  INVENTORY_CONFIG_ENV,
  type InventoryConfig,
  type KubernetesSourceConfig,
  loadInventoryConfig,
  parseDurationMs,
  parseInventoryConfig,
  SOURCE_TYPES,
  type SourceConfig,
  type StaticSourceConfig,
} from './config.ts';
export { type ConsulSourceOptions, consulSource } from './consul-source.ts';
export { type DockerSourceOptions, dockerSource } from './docker-source.ts';
export { AnsibleError, AnsibleErrorCode } from './errors.ts';
export {
  type CompiledRule,
  compileRule,
  type GroupRuleSpec,
  groupHosts,
  type RuleProblem,
  sanitizeGroupName,
} from './groups.ts';
export {
  emptyInventory,
  hostVarsOf,
  type InventoryHost,
  mergeHosts,
  type ScriptGroup,
  type ScriptInventory,
  type SourceHost,
  toInventoryHost,
} from './inventory.ts';
export { type KubernetesSourceOptions, kubernetesSource } from './kubernetes-source.ts';
export {
  type BuildInventoryOptions,
  buildInventory,
  type InventoryFromFileOptions,
  type InventoryOutputOptions,
  inventoryFromConfigFile,
  inventoryOutput,
  openSource,
} from './run.ts';
export {
  type InventoryWrapperOptions,
  inventoryProgramPath,
  inventoryWrapperScript,
  shellQuote,
} from './script.ts';
export {
  type CollectOptions,
  collectHosts,
  type InventorySource,
  type TimedSource,
} from './source.ts';
export { parseHostsFile, staticSource } from './static-source.ts';
