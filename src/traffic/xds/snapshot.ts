// A snapshot is everything one node sees, encoded once: each kind's resources by name and a version per
// kind (SotW clients ACK kinds, delta clients resources). The cache maps a node key to its snapshot and
// wakes the streams of that key when it changes (go-control-plane's SnapshotCache, with a default snapshot
// for nodes that have none of their own).
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import type { Node } from './node.ts';
import {
  contentHash,
  type EncodedResource,
  encodeResource,
  RESOURCE_KINDS,
  type ResourceKind,
  type ResourceObject,
} from './resources.ts';

/** What {@link Snapshot.create} takes: the resources of each kind, and versions if you want your own. */
export interface SnapshotInput {
  listeners?: readonly ResourceObject[];
  routes?: readonly ResourceObject[];
  clusters?: readonly ResourceObject[];
  endpoints?: readonly ResourceObject[];
  /**
   * A version per kind. Default: a hash of the kind's content, so a snapshot that changes nothing of a kind
   * pushes nothing of it.
   */
  versions?: Partial<Record<ResourceKind, string>>;
}

const INPUT_KEY: Record<ResourceKind, keyof SnapshotInput> = {
  listener: 'listeners',
  route: 'routes',
  cluster: 'clusters',
  endpoint: 'endpoints',
};

/** An immutable set of resources with a version per kind. */
export class Snapshot {
  readonly #resources: Record<ResourceKind, ReadonlyMap<string, EncodedResource>>;
  readonly #versions: Record<ResourceKind, string>;

  private constructor(
    resources: Record<ResourceKind, ReadonlyMap<string, EncodedResource>>,
    versions: Record<ResourceKind, string>,
  ) {
    this.#resources = resources;
    this.#versions = versions;
  }

  /**
   * Encode every resource (a {@link TrafficError} `invalid` names one that does not fit its type or shares
   * its name with another) and version each kind.
   */
  static create(input: SnapshotInput): Snapshot {
    const resources = {} as Record<ResourceKind, Map<string, EncodedResource>>;
    const versions = {} as Record<ResourceKind, string>;
    for (const kind of RESOURCE_KINDS) {
      const map = new Map<string, EncodedResource>();
      for (const object of (input[INPUT_KEY[kind]] as readonly ResourceObject[] | undefined) ?? []) {
        const encoded = encodeResource(kind, object);
        if (map.has(encoded.name)) {
          throw new TrafficError(
            TrafficErrorCode.invalid,
            `${kind} ${JSON.stringify(encoded.name)} is listed twice in the snapshot`,
          );
        }
        map.set(encoded.name, encoded);
      }
      resources[kind] = map;
      versions[kind] =
        input.versions?.[kind] ??
        contentHash(
          [...map.values()]
            .map((r) => `${r.name}\u0000${r.version}`)
            .sort()
            .join('\n'),
        );
    }
    return new Snapshot(resources, versions);
  }

  /** The version of a kind's resources, as sent in SotW responses. */
  version(kind: ResourceKind): string {
    return this.#versions[kind];
  }

  /** The resources of a kind, by name. */
  resources(kind: ResourceKind): ReadonlyMap<string, EncodedResource> {
    return this.#resources[kind];
  }

  /** Every kind's version. */
  get versions(): Readonly<Record<ResourceKind, string>> {
    return { ...this.#versions };
  }

  /**
   * What a client would miss (go-control-plane's `Consistent`): a route configuration a listener names by
   * RDS, a cluster a route sends to, a load assignment of an EDS cluster. Empty when complete.
   */
  problems(): string[] {
    const problems: string[] = [];
    for (const l of this.#resources.listener.values()) {
      const hcm = (l.resource['api_listener'] as { api_listener?: Record<string, unknown> } | undefined)
        ?.api_listener;
      const rds = (hcm?.['rds'] as { route_config_name?: string } | undefined)?.route_config_name;
      if (rds !== undefined && !this.#resources.route.has(rds)) {
        problems.push(`listener ${l.name}: route configuration ${rds} is missing`);
      }
    }
    for (const r of this.#resources.route.values()) {
      for (const cluster of clustersOfRoute(r.resource)) {
        if (!this.#resources.cluster.has(cluster)) {
          problems.push(`route configuration ${r.name}: cluster ${cluster} is missing`);
        }
      }
    }
    for (const c of this.#resources.cluster.values()) {
      if (c.resource['type'] !== 'EDS') continue;
      const eds = c.resource['eds_cluster_config'] as { service_name?: string } | undefined;
      const name = eds?.service_name || c.name;
      if (!this.#resources.endpoint.has(name)) {
        problems.push(`cluster ${c.name}: load assignment ${name} is missing`);
      }
    }
    return problems;
  }
}

/** The clusters a RouteConfiguration sends to. */
function clustersOfRoute(route: ResourceObject): string[] {
  const out: string[] = [];
  const hosts = (route['virtual_hosts'] as Array<{ routes?: Array<Record<string, unknown>> }>) ?? [];
  for (const host of hosts) {
    for (const r of host.routes ?? []) {
      const action = r['route'] as
        | { cluster?: string; weighted_clusters?: { clusters?: Array<{ name?: string }> } }
        | undefined;
      if (action?.cluster) out.push(action.cluster);
      for (const w of action?.weighted_clusters?.clusters ?? []) if (w.name) out.push(w.name);
    }
  }
  return out;
}

/** How a node maps to its snapshot's key. Default: `node.id`. */
export type NodeHash = (node: Node) => string;

/** The default {@link NodeHash}: the node's id. */
export const nodeIdHash: NodeHash = (node) => node.id;

/**
 * Snapshots by node key, plus a default one for keys without their own. Streams `watch` their key and are
 * called on every change that concerns them.
 */
export class SnapshotCache {
  readonly nodeHash: NodeHash;
  readonly #snapshots = new Map<string, Snapshot>();
  #default: Snapshot | undefined;
  readonly #watchers = new Map<string, Set<() => void>>();
  /** Watchers to wake, in order; a watcher woken late reads the snapshot current then. */
  readonly #pending = new Set<() => void>();
  #scheduled = false;

  constructor(options: { nodeHash?: NodeHash } = {}) {
    this.nodeHash = options.nodeHash ?? nodeIdHash;
  }

  /** The snapshot `key` is served: its own, else the default. */
  get(key: string): Snapshot | undefined {
    return this.#snapshots.get(key) ?? this.#default;
  }

  /** Keys with a snapshot of their own. */
  keys(): string[] {
    return [...this.#snapshots.keys()];
  }

  /**
   * Serve `snapshot` to the nodes of `key`; their streams respond with what changed, the first in this turn of
   * the event loop and the others in the next turns (see `watch`).
   */
  setSnapshot(key: string, snapshot: Snapshot): void {
    this.#snapshots.set(key, snapshot);
    this.#notify([key]);
  }

  /** Forget `key`'s own snapshot: it is served the default again. */
  clearSnapshot(key: string): void {
    if (this.#snapshots.delete(key)) this.#notify([key]);
  }

  /** The snapshot of every key without its own (undefined: such nodes wait). */
  get defaultSnapshot(): Snapshot | undefined {
    return this.#default;
  }

  /** Serve `snapshot` to every key without its own. */
  setDefaultSnapshot(snapshot: Snapshot | undefined): void {
    this.#default = snapshot;
    this.#notify([...this.#watchers.keys()].filter((key) => !this.#snapshots.has(key)));
  }

  /**
   * Call `onChange` whenever the snapshot served to `key` may have changed; returns the unsubscribe. After a
   * change the first watcher is called at once and the others over the next turns of the event loop (about
   * 1 ms of watchers per turn), each once however many changes came meanwhile, reading the snapshot current
   * then; an unsubscribed watcher is not called.
   */
  watch(key: string, onChange: () => void): () => void {
    let set = this.#watchers.get(key);
    if (!set) {
      set = new Set();
      this.#watchers.set(key, set);
    }
    set.add(onChange);
    return () => {
      set.delete(onChange);
      this.#pending.delete(onChange);
      if (set.size === 0 && this.#watchers.get(key) === set) this.#watchers.delete(key);
    };
  }

  /** Number of open watches (one per stream that sent its node): for tests and metrics. */
  get watchCount(): number {
    let n = 0;
    for (const set of this.#watchers.values()) n += set.size;
    return n;
  }

  #notify(keys: readonly string[]): void {
    for (const key of keys) for (const onChange of this.#watchers.get(key) ?? []) this.#pending.add(onChange);
    if (this.#scheduled || this.#pending.size === 0) return;
    // The first watcher answers in this turn; the others follow in slices of the event loop, so each
    // slice's responses reach their sockets (HTTP/2 flushes between turns) while the next is prepared,
    // rather than the first client waiting for every stream's response to be serialized.
    this.#wake(FIRST_SLICE_MS);
  }

  #wake(budgetMs: number): void {
    // Set while waking too: a watcher that sets a snapshot only adds to the pending set this loop drains.
    this.#scheduled = true;
    const end = performance.now() + budgetMs;
    for (const onChange of this.#pending) {
      this.#pending.delete(onChange);
      try {
        onChange();
      } catch (err) {
        // Not the caller's to catch any more (later turns): one watcher's failure must not stop the others.
        process.emitWarning(err instanceof Error ? err : String(err), 'SnapshotCacheWatcherWarning');
      }
      if (this.#pending.size > 0 && performance.now() >= end) {
        setImmediate(() => this.#wake(SLICE_MS));
        return;
      }
    }
    this.#scheduled = false;
  }
}

/** How long the turn that sets a snapshot spends waking watchers (at least one is woken). */
const FIRST_SLICE_MS = 0;
/** How long each later turn spends waking watchers. */
const SLICE_MS = 1;
