// The mesh as data: services with versions (each a set of endpoints) and routes splitting traffic between
// versions by weight. `meshResources` turns it into the xDS resources gRPC clients of `xds:///<service>`
// need: a Listener and a RouteConfiguration per service, a Cluster and a ClusterLoadAssignment per version.
import { isIP } from 'node:net';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import {
  type AssignmentEndpoint,
  apiListener,
  edsCluster,
  loadAssignment,
  type RouteSpec,
  routeConfiguration,
} from './resources.ts';
import { Snapshot } from './snapshot.ts';

/** Weights of a service's versions, e.g. `{ v1: 90, v2: 10 }`; a version left out gets 0. */
export type VersionWeights = Readonly<Record<string, number>>;

/** One route of a service: what it matches (nothing: every request) and how it splits between versions. */
export interface MeshRoute {
  /** Path prefix (gRPC: `/<package>.<Service>/`); default every path. */
  readonly prefix?: string;
  /** Metadata (headers) whose exact values must all match. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly weights: VersionWeights;
}

/** One version of a service: where it runs. */
export interface MeshVersion {
  readonly endpoints: readonly AssignmentEndpoint[];
}

/** A service: its versions and routes; clients dial `xds:///<name>` (or one of `hostnames`). */
export interface MeshService {
  /** By version name (`v1`, `canary`). The first is where traffic goes when no route says otherwise. */
  readonly versions: Readonly<Record<string, MeshVersion>>;
  /**
   * In order, the first match wins. Default: one route sending everything to the first version. A route
   * without a match should come last; `setWeights` changes the last route.
   */
  readonly routes?: readonly MeshRoute[];
  /** `rds` (default): routes in a RouteConfiguration of their own; `inline`: inside the Listener. */
  readonly routeConfig?: 'rds' | 'inline';
  /** Listener names clients dial (`xds:///<hostname>`); default the service's name. */
  readonly hostnames?: readonly string[];
}

/** The whole mesh. */
export interface Mesh {
  readonly services: Readonly<Record<string, MeshService>>;
}

/** The cluster (and load assignment) name of a version: `<service>/<version>`. */
export function clusterName(service: string, version: string): string {
  return `${service}/${version}`;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const HOSTNAME = /^[A-Za-z0-9._:-]{1,253}$/;
/** Envoy's limit on the sum of weights of a route's clusters. */
const MAX_WEIGHT_SUM = 4_294_967_295;

/** Every problem of a mesh, each with where it is (`services.api.routes[1].weights.v3`); empty when fine. */
export function meshProblems(mesh: Mesh): string[] {
  const problems: string[] = [];
  const hostnames = new Map<string, string>();
  for (const [name, service] of Object.entries(mesh.services)) {
    const at = `services.${name}`;
    if (!NAME.test(name)) problems.push(`${at}: a service name is letters, digits, '.', '_' and '-'`);
    const versions = Object.keys(service.versions);
    if (versions.length === 0) problems.push(`${at}.versions: at least one version`);
    for (const version of versions) {
      if (!NAME.test(version)) {
        problems.push(`${at}.versions.${version}: a version name is letters, digits, '.', '_' and '-'`);
      }
      service.versions[version]!.endpoints.forEach((e, i) => {
        const where = `${at}.versions.${version}.endpoints[${i}]`;
        if (isIP(e.address) === 0) {
          problems.push(
            `${where}: ${JSON.stringify(e.address)} is not an IP address (gRPC clients need one)`,
          );
        }
        if (!Number.isInteger(e.port) || e.port < 1 || e.port > 65_535) {
          problems.push(`${where}.port: expected 1..65535, got ${e.port}`);
        }
        if (e.weight !== undefined && (!Number.isInteger(e.weight) || e.weight < 1 || e.weight > 1_000_000)) {
          problems.push(`${where}.weight: expected a whole number 1..1000000, got ${e.weight}`);
        }
      });
    }
    (service.routes ?? []).forEach((route, i) => {
      problems.push(...weightProblems(`${at}.routes[${i}].weights`, route.weights, versions));
      if (route.prefix !== undefined && route.prefix !== '' && !route.prefix.startsWith('/')) {
        problems.push(`${at}.routes[${i}].prefix: must start with /`);
      }
    });
    for (const host of service.hostnames ?? [name]) {
      if (!HOSTNAME.test(host)) problems.push(`${at}.hostnames: ${JSON.stringify(host)} is not a host name`);
      const other = hostnames.get(host);
      if (other !== undefined) problems.push(`${at}.hostnames: ${host} is also a host name of ${other}`);
      hostnames.set(host, name);
    }
  }
  return problems;
}

/** Problems of one set of weights against a service's versions. */
export function weightProblems(at: string, weights: VersionWeights, versions: readonly string[]): string[] {
  const problems: string[] = [];
  let sum = 0;
  for (const [version, weight] of Object.entries(weights)) {
    if (!versions.includes(version)) {
      problems.push(`${at}.${version}: no such version (${versions.join(', ') || 'none'})`);
    }
    if (!Number.isInteger(weight) || weight < 0) {
      problems.push(`${at}.${version}: expected a whole number >= 0, got ${weight}`);
    } else sum += weight;
  }
  if (sum === 0 && problems.length === 0) problems.push(`${at}: the weights add up to 0`);
  if (sum > MAX_WEIGHT_SUM) problems.push(`${at}: the weights add up to more than ${MAX_WEIGHT_SUM}`);
  return problems;
}

/** Throw a {@link TrafficErrorCode.config} error listing every problem of `mesh`, if any. */
export function checkMesh(mesh: Mesh, where = 'mesh'): void {
  const problems = meshProblems(mesh);
  if (problems.length > 0) throw meshConfigError(where, problems);
}

/** The error of a mesh with problems. */
export function meshConfigError(where: string, problems: readonly string[]): TrafficError {
  const head = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
  return new TrafficError(
    TrafficErrorCode.config,
    `invalid mesh configuration (${where}): ${head}\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    { problems },
  );
}

/** A service's routes as route specs: every version listed in each weighted route (weight 0 included). */
function routeSpecs(name: string, service: MeshService): RouteSpec[] {
  const versions = Object.keys(service.versions);
  const routes = service.routes?.length ? service.routes : [{ weights: { [versions[0]!]: 1 } }];
  return routes.map((route) => {
    // Every version stays in the route, at 0 when not named: clients keep its cluster and connections, so
    // a later change of weights is one RouteConfiguration and takes effect at once.
    const weights = versions.map((v) => ({ cluster: clusterName(name, v), weight: route.weights[v] ?? 0 }));
    return {
      ...(route.prefix !== undefined ? { prefix: route.prefix } : {}),
      ...(route.headers !== undefined ? { headers: route.headers } : {}),
      target: versions.length === 1 ? { cluster: weights[0]!.cluster } : { weights },
    };
  });
}

/** The snapshot serving `mesh` (checked first: a {@link TrafficErrorCode.config} error lists its problems). */
export function meshSnapshot(mesh: Mesh): Snapshot {
  checkMesh(mesh);
  const listeners = [];
  const routes = [];
  const clusters = [];
  const endpoints = [];
  for (const [name, service] of Object.entries(mesh.services)) {
    const route = routeConfiguration(name, routeSpecs(name, service));
    for (const host of service.hostnames ?? [name]) {
      listeners.push(apiListener(host, service.routeConfig === 'inline' ? route : name));
    }
    if (service.routeConfig !== 'inline') routes.push(route);
    for (const [version, v] of Object.entries(service.versions)) {
      clusters.push(edsCluster(clusterName(name, version)));
      endpoints.push(loadAssignment(clusterName(name, version), v.endpoints));
    }
  }
  return Snapshot.create({ listeners, routes, clusters, endpoints });
}

/** `mesh` with the weights of `service`'s last route replaced (the route without a match, by convention). */
export function withWeights(mesh: Mesh, service: string, weights: VersionWeights): Mesh {
  const s = mesh.services[service];
  if (!s) {
    throw new TrafficError(TrafficErrorCode.invalid, `no service ${JSON.stringify(service)} in the mesh`);
  }
  const problems = weightProblems(`${service} weights`, weights, Object.keys(s.versions));
  if (problems.length > 0) throw meshConfigError('setWeights', problems);
  const routes = s.routes?.length ? [...s.routes] : [{ weights }];
  routes[routes.length - 1] = { ...routes[routes.length - 1]!, weights: { ...weights } };
  return { services: { ...mesh.services, [service]: { ...s, routes } } };
}

/** `mesh` with the endpoints of one version replaced. */
export function withEndpoints(
  mesh: Mesh,
  service: string,
  version: string,
  endpoints: readonly AssignmentEndpoint[],
): Mesh {
  const s = mesh.services[service];
  if (!s?.versions[version]) {
    throw new TrafficError(
      TrafficErrorCode.invalid,
      `no version ${JSON.stringify(version)} of service ${JSON.stringify(service)} in the mesh`,
    );
  }
  const versions = { ...s.versions, [version]: { endpoints: endpoints.map((e) => ({ ...e })) } };
  return { services: { ...mesh.services, [service]: { ...s, versions } } };
}
