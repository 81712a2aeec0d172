// The inventory as Ansible's script plugin reads it, and the hosts sources report. Grouping turns the one into
// the other (groups.ts); this file holds the shapes and the assembly.

/** A host as a source reports it, before grouping. Only `name` is required. */
export interface SourceHost {
  /** The inventory hostname (unique across sources; a second source reporting it merges into the first). */
  name: string;
  /** What the host is, for `kind` rules: `host` (static), `container` (Docker), `node` (Consul, Kubernetes), `pod`. */
  kind?: string;
  /** Host variables: `ansible_host`, `ansible_connection`, and what the source knows (`docker_image`...). */
  vars?: Record<string, unknown>;
  /** Key/value labels for `label`, `labels` and `labelRegex` rules: container labels, Consul node meta, Kubernetes labels. */
  labels?: Record<string, string>;
  /** Tags for `tag` and `tagRegex` rules: Consul service tags, a static host's tags. */
  tags?: readonly string[];
  /** Services the host runs, for `service` and `serviceRegex` rules: Consul services. */
  services?: readonly string[];
  /** Groups the source itself puts the host in (a static host's `groups`, a source's `group`). */
  groups?: readonly string[];
}

/** A host with every field filled in and the name of the source it came from. */
export interface InventoryHost {
  name: string;
  kind: string;
  /** Name of the source (its `name` in the configuration, else its type). */
  source: string;
  vars: Record<string, unknown>;
  labels: Record<string, string>;
  tags: readonly string[];
  services: readonly string[];
  groups: readonly string[];
}

/** One group of a script inventory: its hosts, its variables and its child groups. */
export interface ScriptGroup {
  hosts?: string[];
  vars?: Record<string, unknown>;
  children?: string[];
}

/**
 * What `--list` prints: every group by name, and `_meta.hostvars` with every host's variables, always
 * present (even empty), so Ansible never runs the script again with `--host` once per host.
 */
export type ScriptInventory = { _meta: { hostvars: Record<string, Record<string, unknown>> } } & {
  [group: string]: ScriptGroup | { hostvars: Record<string, Record<string, unknown>> };
};

/** An inventory with no host and no group, still valid for Ansible. */
export function emptyInventory(): ScriptInventory {
  return { _meta: { hostvars: {} } };
}

const NONE: readonly string[] = Object.freeze([]);

/**
 * `host` with every optional field filled in, tagged with `source`, and in `group` too when given. Its
 * objects are shared, not copied (a source hands over what it returns): 10,000 copies are garbage to collect
 * in a program that lives a quarter of a second.
 */
export function toInventoryHost(host: SourceHost, source: string, group?: string): InventoryHost {
  const groups = host.groups ?? NONE;
  return {
    name: host.name,
    kind: host.kind ?? 'host',
    source,
    vars: host.vars ?? {},
    labels: host.labels ?? {},
    tags: host.tags ?? NONE,
    services: host.services ?? NONE,
    groups: group === undefined || groups.includes(group) ? groups : [...groups, group],
  };
}

/**
 * Hosts with the same name merged into one, in the order first seen: variables and labels of a later
 * host win over an earlier one's, tags, services and groups are united. Two sources may well know the
 * same machine (a Consul node that is also in the static file).
 */
export function mergeHosts(hosts: readonly InventoryHost[]): InventoryHost[] {
  const byName = new Map<string, InventoryHost>();
  for (const host of hosts) {
    const seen = byName.get(host.name);
    if (!seen) {
      byName.set(host.name, host);
      continue;
    }
    byName.set(host.name, {
      name: host.name,
      kind: host.kind,
      source: `${seen.source},${host.source}`,
      vars: { ...seen.vars, ...host.vars },
      labels: { ...seen.labels, ...host.labels },
      tags: union(seen.tags, host.tags),
      services: union(seen.services, host.services),
      groups: union(seen.groups, host.groups),
    });
  }
  return [...byName.values()];
}

function union(a: readonly string[], b: readonly string[]): readonly string[] {
  return [...new Set([...a, ...b])];
}

/**
 * The variables `--host <name>` prints: the host's own (not its groups': Ansible adds those itself), or
 * `{}` for a host the inventory does not have, as the script contract wants.
 */
export function hostVarsOf(inventory: ScriptInventory, host: string): Record<string, unknown> {
  return Object.hasOwn(inventory._meta.hostvars, host) ? inventory._meta.hostvars[host]! : {};
}
