// Consul's catalog as inventory hosts: one host per node, with the services it runs, their tags and meta.
// Read over the runtime's HTTP transport (the catalog API: nodes, services, then each service's instances);
// no blocking queries, an inventory is one snapshot.
import { readFile } from 'node:fs/promises';
import { createHttpTransport, httpJson } from '../runtime/index.ts';
import type { ConsulSourceConfig } from './config.ts';
import type { SourceHost } from './inventory.ts';
import type { CollectOptions, InventorySource } from './source.ts';

/** Options of {@link consulSource}. */
export type ConsulSourceOptions = Pick<
  ConsulSourceConfig,
  'name' | 'url' | 'datacenter' | 'token' | 'tokenFile' | 'nodeMeta'
> & {
  /** Where `CONSUL_HTTP_ADDR` and `CONSUL_HTTP_TOKEN` are read. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
};

interface CatalogNode {
  Node: string;
  Address: string;
  Datacenter?: string;
  Meta?: Record<string, string> | null;
  TaggedAddresses?: Record<string, string> | null;
}

interface CatalogServiceInstance {
  Node: string;
  ServiceID: string;
  ServiceName: string;
  ServiceAddress?: string;
  ServicePort?: number;
  ServiceTags?: string[] | null;
  ServiceMeta?: Record<string, string> | null;
}

/** At most this many service queries at once: a catalog of hundreds of services must not open hundreds of connections. */
const SERVICE_QUERIES_AT_ONCE = 8;

/**
 * The nodes of a Consul catalog (only those with every `nodeMeta` pair, when given), one host each: named
 * after the node, `ansible_host` its address, `consul_node`, `consul_datacenter`, `consul_node_meta` and
 * `consul_services` (each instance: id, service, address, port, tags, meta). Node meta are its labels, the
 * services it runs its services, their tags its tags; kind `node`. `url` defaults to `CONSUL_HTTP_ADDR`,
 * then `http://127.0.0.1:8500`; the token to `tokenFile`, then `CONSUL_HTTP_TOKEN`.
 */
export function consulSource(options: ConsulSourceOptions): InventorySource {
  const env = options.env ?? process.env;
  const raw = options.url ?? (env['CONSUL_HTTP_ADDR'] || 'http://127.0.0.1:8500');
  // CONSUL_HTTP_ADDR may be a bare host:port, as the Consul CLI accepts it.
  const url = /^https?:\/\//.test(raw) ? raw : `http://${raw}`;
  return {
    name: options.name,
    description: `consul ${url}`,
    async collect({ signal }: CollectOptions): Promise<SourceHost[]> {
      const token = options.tokenFile
        ? (await readFile(options.tokenFile, 'utf8')).trim()
        : (options.token ?? env['CONSUL_HTTP_TOKEN']);
      const transport = createHttpTransport({ origin: url, retry: false });
      const headers: Record<string, string> = token ? { 'x-consul-token': token } : {};
      const get = <T>(path: string, params: URLSearchParams = new URLSearchParams()) => {
        if (options.datacenter) params.set('dc', options.datacenter);
        const query = params.toString();
        return httpJson<T>(transport, { path: query ? `${path}?${query}` : path, headers, signal });
      };
      try {
        const meta = new URLSearchParams();
        for (const [k, v] of Object.entries(options.nodeMeta ?? {})) meta.append('node-meta', `${k}:${v}`);
        const [nodes, services] = await Promise.all([
          get<CatalogNode[]>('/v1/catalog/nodes', meta),
          get<Record<string, string[]>>('/v1/catalog/services'),
        ]);
        const instances = new Map<string, CatalogServiceInstance[]>();
        const names = Object.keys(services ?? {});
        let next = 0;
        const worker = async () => {
          while (next < names.length) {
            const service = names[next++]!;
            const list = await get<CatalogServiceInstance[]>(
              `/v1/catalog/service/${encodeURIComponent(service)}`,
            );
            for (const i of list ?? []) {
              const onNode = instances.get(i.Node) ?? [];
              onNode.push(i);
              instances.set(i.Node, onNode);
            }
          }
        };
        await Promise.all(Array.from({ length: Math.min(SERVICE_QUERIES_AT_ONCE, names.length) }, worker));
        return (nodes ?? []).map((node) => {
          const running = (instances.get(node.Node) ?? []).sort((a, b) =>
            a.ServiceID.localeCompare(b.ServiceID),
          );
          const tags = new Set<string>();
          for (const i of running) for (const t of i.ServiceTags ?? []) tags.add(t);
          return {
            name: node.Node,
            kind: 'node',
            vars: {
              ansible_host: node.Address,
              consul_node: node.Node,
              consul_datacenter: node.Datacenter ?? options.datacenter ?? '',
              consul_node_meta: node.Meta ?? {},
              consul_services: running.map((i) => ({
                id: i.ServiceID,
                service: i.ServiceName,
                address: i.ServiceAddress || node.Address,
                port: i.ServicePort ?? 0,
                tags: i.ServiceTags ?? [],
                meta: i.ServiceMeta ?? {},
              })),
            },
            labels: node.Meta ?? {},
            tags: [...tags],
            services: [...new Set(running.map((i) => i.ServiceName))],
          };
        });
      } finally {
        await transport.destroy();
      }
    },
  };
}
