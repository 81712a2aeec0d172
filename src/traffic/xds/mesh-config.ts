// `mesh.yaml`, what `capstan xds serve --config` reads: where to listen, and the mesh (services, versions
// with static endpoints or a discovery source, routes splitting traffic by weight). Checked as a whole, so
// one report lists every problem with where it is (`services.api.routes[0].weights.v3`).
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { type ListenAddress, parseListen } from '../lb/config.ts';
import { type Mesh, type MeshRoute, type MeshService, meshConfigError, meshProblems } from './mesh.ts';
import type { AssignmentEndpoint } from './resources.ts';

/** Where a version's endpoints come from when they are not listed: one of the discovery sources. */
export type DiscoverySpec =
  | { file: string }
  | { dns: { name: string; type?: 'A' | 'AAAA' | 'A+AAAA' | 'SRV'; port?: number; servers?: string[] } }
  | {
      consul: {
        service: string;
        url?: string;
        tags?: string[];
        datacenter?: string;
        onlyPassing?: boolean;
      };
    }
  | {
      /** The EndpointSlices of a Service; the client from `kubeconfig` (and `context`), else KUBECONFIG or in-cluster. */
      kubernetes: {
        service: string;
        namespace?: string;
        port?: string | number;
        kubeconfig?: string;
        context?: string;
      };
    };

/** A version whose endpoints a discovery source provides. */
export interface DiscoveredVersion {
  readonly service: string;
  readonly version: string;
  readonly discovery: DiscoverySpec;
  /** Identity of the source: the same key after a reload keeps the running source. */
  readonly key: string;
}

/** Everything `capstan xds serve` needs, checked. */
export interface MeshConfig {
  /** The xDS (gRPC) address. */
  readonly listen: ListenAddress;
  /** Health and metrics; default a free port on `listen`'s host. */
  readonly admin?: ListenAddress;
  /** The mesh, with discovered versions' endpoints empty (filled by their sources). */
  readonly mesh: Mesh;
  readonly discovered: readonly DiscoveredVersion[];
}

/** Flags of `capstan xds serve`; each, when given, wins over the file. */
export interface MeshFlags {
  listen?: string;
  admin?: string;
}

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, "letters, digits, '.', '_' and '-'");
const endpointSchema = z.union([
  z.string(),
  // Ranges are checked with the mesh (meshProblems), so they are reported along with every other problem.
  z.strictObject({ address: z.string(), port: z.number(), weight: z.number().optional() }),
]);
const discoverySchema = z.union([
  z.strictObject({ file: z.string().min(1) }),
  z.strictObject({
    dns: z.strictObject({
      name: z.string().min(1),
      type: z.enum(['A', 'AAAA', 'A+AAAA', 'SRV']).optional(),
      port: z.number().int().min(1).max(65_535).optional(),
      servers: z.array(z.string()).optional(),
    }),
  }),
  z.strictObject({
    consul: z.strictObject({
      service: z.string().min(1),
      url: z.string().url().optional(),
      tags: z.array(z.string()).optional(),
      datacenter: z.string().optional(),
      onlyPassing: z.boolean().optional(),
    }),
  }),
  z.strictObject({
    kubernetes: z.strictObject({
      service: z.string().min(1),
      namespace: z.string().min(1).optional(),
      port: z.union([z.string().min(1), z.number().int().min(1).max(65_535)]).optional(),
      kubeconfig: z.string().min(1).optional(),
      context: z.string().min(1).optional(),
    }),
  }),
]);
const weightsSchema = z.record(z.string(), z.number());
const routeSchema = z.strictObject({
  match: z
    .strictObject({
      prefix: z.string().optional(),
      headers: z.record(z.string(), z.string()).optional(),
    })
    .optional(),
  weights: weightsSchema,
});
const serviceSchema = z.strictObject({
  versions: z.record(
    name,
    z.strictObject({ endpoints: z.array(endpointSchema).optional(), discovery: discoverySchema.optional() }),
  ),
  weights: weightsSchema.optional(),
  routes: z.array(routeSchema).min(1).optional(),
  routeConfig: z.enum(['rds', 'inline']).optional(),
  hostnames: z.array(z.string()).min(1).optional(),
});
const fileSchema = z.strictObject({
  listen: z.string().optional(),
  admin: z.string().optional(),
  services: z.record(name, serviceSchema),
});

function pathText(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `${out ? '.' : ''}${String(p)}`;
  return out || '(file)';
}

/** `ip:port` or `[v6]:port` to an endpoint; undefined when it is not one. */
export function parseEndpoint(text: string): AssignmentEndpoint | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const address = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (isIP(address) === 0 || port < 1 || port > 65_535) return undefined;
  return { address, port };
}

/** The default xDS address: go-control-plane's examples and Istio's pilot serve on 18000 and 15010; ours 18000. */
const DEFAULT_LISTEN = '127.0.0.1:18000';

/**
 * Check a mesh file: `text` is its content (YAML or JSON), `flags` win over it, relative discovery files are
 * resolved against `file`'s folder. Throws a {@link TrafficError} `config` listing every problem.
 */
export function parseMeshConfig(
  text: string,
  options: { file?: string; flags?: MeshFlags } = {},
): MeshConfig {
  const where = options.file ?? 'mesh';
  let doc: unknown;
  try {
    doc = parseYaml(text) ?? {};
  } catch (err) {
    throw meshConfigError(where, [`not YAML: ${(err as Error).message.split('\n')[0]}`]);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw meshConfigError(where, ['the file must be a mapping']);
  }
  const raw: Record<string, unknown> = { ...(doc as Record<string, unknown>) };
  if (options.flags?.listen !== undefined) raw['listen'] = options.flags.listen;
  if (options.flags?.admin !== undefined) raw['admin'] = options.flags.admin;
  const parsed = fileSchema.safeParse(raw);
  const problems = parsed.success ? [] : parsed.error.issues.map((i) => `${pathText(i.path)}: ${i.message}`);
  const listenText = typeof raw['listen'] === 'string' ? raw['listen'] : DEFAULT_LISTEN;
  const listen = parseListen(listenText);
  if (!listen)
    problems.push(`listen: expected host:port, [v6]:port or :port, got ${JSON.stringify(listenText)}`);
  const admin = typeof raw['admin'] === 'string' ? parseListen(raw['admin']) : undefined;
  if (typeof raw['admin'] === 'string' && !admin) {
    problems.push(`admin: expected host:port, got ${JSON.stringify(raw['admin'])}`);
  }
  if (!parsed.success) throw meshConfigError(where, problems);

  const base = options.file ? dirname(resolve(options.file)) : process.cwd();
  const services: Record<string, MeshService> = {};
  const discovered: DiscoveredVersion[] = [];
  for (const [service, s] of Object.entries(parsed.data.services)) {
    const at = `services.${service}`;
    const versions: Record<string, { endpoints: AssignmentEndpoint[] }> = {};
    for (const [version, v] of Object.entries(s.versions)) {
      const vAt = `${at}.versions.${version}`;
      if (v.endpoints !== undefined && v.discovery !== undefined) {
        problems.push(`${vAt}: endpoints or discovery, not both`);
      }
      if (v.endpoints === undefined && v.discovery === undefined) {
        problems.push(`${vAt}: endpoints (a list) or discovery (file, dns or consul) is required`);
      }
      const endpoints: AssignmentEndpoint[] = [];
      (v.endpoints ?? []).forEach((e, i) => {
        if (typeof e === 'string') {
          // Taken apart loosely: the mesh check then says what is wrong (a host name, a port) at this index.
          const loose = /^\[?([^\]]*?)\]?:(\d+)$/.exec(e.trim());
          const endpoint =
            parseEndpoint(e) ?? (loose ? { address: loose[1]!, port: Number(loose[2]) } : undefined);
          if (endpoint) endpoints.push(endpoint);
          else {
            problems.push(`${vAt}.endpoints[${i}]: expected ip:port or [v6]:port, got ${JSON.stringify(e)}`);
            endpoints.push({ address: '0.0.0.0', port: 1 }); // keeps the indexes of the next ones
          }
        } else endpoints.push({ ...e });
      });
      versions[version] = { endpoints };
      if (v.discovery) {
        const d = v.discovery as DiscoverySpec;
        const discovery: DiscoverySpec =
          'file' in d
            ? { file: resolve(base, d.file) }
            : 'kubernetes' in d && d.kubernetes.kubeconfig !== undefined
              ? { kubernetes: { ...d.kubernetes, kubeconfig: resolve(base, d.kubernetes.kubeconfig) } }
              : d;
        discovered.push({
          service,
          version,
          discovery,
          key: `${service}/${version} ${JSON.stringify(discovery)}`,
        });
      }
    }
    if (s.weights !== undefined && s.routes !== undefined)
      problems.push(`${at}: weights or routes, not both`);
    const routes: MeshRoute[] | undefined = s.routes
      ? s.routes.map((r) => ({
          ...(r.match?.prefix !== undefined ? { prefix: r.match.prefix } : {}),
          ...(r.match?.headers !== undefined ? { headers: r.match.headers } : {}),
          weights: r.weights,
        }))
      : s.weights
        ? [{ weights: s.weights }]
        : undefined;
    services[service] = {
      versions,
      ...(routes ? { routes } : {}),
      ...(s.routeConfig ? { routeConfig: s.routeConfig } : {}),
      ...(s.hostnames ? { hostnames: s.hostnames } : {}),
    };
  }
  const mesh: Mesh = { services };
  // Weights given as the `weights:` shorthand are reported where the file has them.
  const shorthand = Object.entries(parsed.data.services).filter(
    ([, s]) => s.weights !== undefined && !s.routes,
  );
  problems.push(
    ...meshProblems(mesh).map((p) => {
      for (const [service] of shorthand) {
        const from = `services.${service}.routes[0].weights`;
        if (p.startsWith(from)) return `services.${service}.weights${p.slice(from.length)}`;
      }
      return p;
    }),
  );
  if (problems.length > 0) throw meshConfigError(where, problems);
  return { listen: listen!, ...(admin ? { admin } : {}), mesh, discovered };
}
