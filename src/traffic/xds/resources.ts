// The four xDS resource types the control plane serves, and builders for the shapes gRPC proxyless clients
// accept (what @grpc/grpc-js-xds validates): a Listener whose `api_listener` is an HttpConnectionManager
// with the Router filter and RDS over ADS (or an inline route configuration), a RouteConfiguration with
// one virtual host, EDS Clusters, and ClusterLoadAssignments of IP addresses in one locality.
import { createHash } from 'node:crypto';
import { TrafficError, TrafficErrorCode } from '../errors.ts';
import { messageType } from './protos.ts';

/** The resource types, by a short name used in metrics, events and the snapshot. */
export type ResourceKind = 'listener' | 'route' | 'cluster' | 'endpoint';

/** Every kind, in the order a client needs them (LDS → RDS → CDS → EDS). */
export const RESOURCE_KINDS: readonly ResourceKind[] = ['listener', 'route', 'cluster', 'endpoint'];

/** The Envoy message of each kind. */
const MESSAGE: Record<ResourceKind, string> = {
  listener: 'envoy.config.listener.v3.Listener',
  route: 'envoy.config.route.v3.RouteConfiguration',
  cluster: 'envoy.config.cluster.v3.Cluster',
  endpoint: 'envoy.config.endpoint.v3.ClusterLoadAssignment',
};

/** The type URL of each kind, as in `DiscoveryRequest.type_url`. */
export const TYPE_URLS: Readonly<Record<ResourceKind, string>> = Object.freeze({
  listener: `type.googleapis.com/${MESSAGE.listener}`,
  route: `type.googleapis.com/${MESSAGE.route}`,
  cluster: `type.googleapis.com/${MESSAGE.cluster}`,
  endpoint: `type.googleapis.com/${MESSAGE.endpoint}`,
});

const KIND_OF_URL = new Map<string, ResourceKind>(
  RESOURCE_KINDS.map((kind) => [TYPE_URLS[kind], kind] as const),
);

/** The kind of a type URL, or undefined when the control plane does not serve it. */
export function kindOfTypeUrl(typeUrl: string): ResourceKind | undefined {
  return KIND_OF_URL.get(typeUrl);
}

/** A resource as plain data: the Envoy message in proto field names, Anys as `{ '@type': url, ... }`. */
export type ResourceObject = Record<string, unknown>;

/** A resource encoded once, when its snapshot is made, and sent as is on every stream. */
export interface EncodedResource {
  readonly kind: ResourceKind;
  readonly name: string;
  /** A hash of the encoded bytes: equal content, equal version (what delta xDS compares). */
  readonly version: string;
  /** The resource as given. */
  readonly resource: ResourceObject;
  /** `google.protobuf.Any` of the resource, ready for a response. */
  readonly any: { readonly type_url: string; readonly value: Buffer };
}

/** The name of a resource: `name`, or `cluster_name` for a ClusterLoadAssignment. */
export function resourceName(kind: ResourceKind, resource: ResourceObject): string {
  const name = kind === 'endpoint' ? resource['cluster_name'] : resource['name'];
  if (typeof name !== 'string' || name === '') {
    throw new TrafficError(
      TrafficErrorCode.invalid,
      `a ${MESSAGE[kind]} needs a ${kind === 'endpoint' ? 'cluster_name' : 'name'}`,
    );
  }
  return name;
}

/** A short content hash (base64url of SHA-256, 16 characters). */
export function contentHash(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('base64url').slice(0, 16);
}

/** Encode a resource; throws {@link TrafficErrorCode.invalid} naming it when it does not fit its message type. */
export function encodeResource(kind: ResourceKind, resource: ResourceObject): EncodedResource {
  const name = resourceName(kind, resource);
  let value: Buffer;
  try {
    value = messageType(MESSAGE[kind]).serialize(resource);
  } catch (err) {
    throw new TrafficError(
      TrafficErrorCode.invalid,
      `${kind} ${JSON.stringify(name)} is not a valid ${MESSAGE[kind]}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return { kind, name, version: contentHash(value), resource, any: { type_url: TYPE_URLS[kind], value } };
}

const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

/**
 * A Listener for gRPC clients dialling `xds:///<name>`: an API listener (no socket) whose
 * HttpConnectionManager takes its routes by RDS over the ADS stream (`route` a name), or inline (`route` a
 * RouteConfiguration object).
 */
export function apiListener(name: string, route: string | ResourceObject): ResourceObject {
  const routes =
    typeof route === 'string'
      ? { rds: { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: route } }
      : { route_config: route };
  return {
    name,
    api_listener: {
      api_listener: {
        '@type': HCM,
        ...routes,
        http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
      },
    },
  };
}

/** Where a route sends requests: one cluster, or clusters by weight (weights may be 0; their sum may not). */
export type RouteTarget =
  | { cluster: string }
  | { weights: ReadonlyArray<{ cluster: string; weight: number }> };

/** One route of a virtual host: a match (a path prefix, optionally headers) and its target. */
export interface RouteSpec {
  /** Path prefix; default '' (every request). gRPC paths are `/<package>.<Service>/<Method>`. */
  prefix?: string;
  /** Exact values of request headers (gRPC metadata) that must all match. */
  headers?: Readonly<Record<string, string>>;
  target: RouteTarget;
}

/** A RouteConfiguration with one virtual host matching every domain, its routes in order (first match wins). */
export function routeConfiguration(name: string, routes: readonly RouteSpec[]): ResourceObject {
  return {
    name,
    virtual_hosts: [
      {
        name,
        domains: ['*'],
        routes: routes.map((r) => ({
          match: {
            prefix: r.prefix ?? '',
            ...(r.headers && Object.keys(r.headers).length > 0
              ? {
                  headers: Object.entries(r.headers).map(([header, exact]) => ({
                    name: header,
                    string_match: { exact },
                  })),
                }
              : {}),
          },
          route:
            'cluster' in r.target
              ? { cluster: r.target.cluster }
              : {
                  weighted_clusters: {
                    clusters: r.target.weights.map((w) => ({ name: w.cluster, weight: { value: w.weight } })),
                  },
                },
        })),
      },
    ],
  };
}

/** A Cluster whose endpoints come by EDS over the ADS stream, balanced round robin. */
export function edsCluster(name: string): ResourceObject {
  return {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: name },
    lb_policy: 'ROUND_ROBIN',
    connect_timeout: { seconds: '5' },
  };
}

/** One endpoint of a load assignment: an IP address (gRPC clients take no host names here) and port. */
export interface AssignmentEndpoint {
  address: string;
  port: number;
  /** 1.. ; default 1. */
  weight?: number;
}

/**
 * A ClusterLoadAssignment: every endpoint healthy, in one locality. The locality carries a weight, without
 * which gRPC clients silently drop it.
 */
export function loadAssignment(
  clusterName: string,
  endpoints: readonly AssignmentEndpoint[],
): ResourceObject {
  return {
    cluster_name: clusterName,
    endpoints:
      endpoints.length === 0
        ? []
        : [
            {
              locality: {},
              load_balancing_weight: { value: 1 },
              lb_endpoints: endpoints.map((e) => ({
                endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
                health_status: 'HEALTHY',
                load_balancing_weight: { value: e.weight ?? 1 },
              })),
            },
          ],
  };
}
