// capstan/traffic: traffic management. The load balancer (`lb/`): a reverse proxy on undici with health
// checks, outlier ejection and budgeted retries; service discovery (`discovery/`); the xDS control plane
// (`xds/`) for gRPC proxyless clients (and any client of the xDS protocol).
import type { UpService } from '../runtime/index.ts';
import { loadBalancerUpService } from './lb/up.ts';
import { controlPlaneUpService } from './xds/up.ts';

export {
  createDiscoveryDispatcher,
  DiscoveryDispatcher,
  type DiscoveryDispatcherOptions,
} from './discovery/client-balancer.ts';
export { type ConsulNotice, type ConsulSourceOptions, consulSource } from './discovery/consul.ts';
export {
  type DnsRecordType,
  type DnsSourceOptions,
  dnsSource,
} from './discovery/dns.ts';
export {
  type BackendMapping,
  clampWeight,
  type Endpoint,
  type EndpointHealth,
  type EndpointInput,
  endpointKey,
  normalizeEndpoints,
  routableEndpoints,
  sameEndpoints,
  toBackendEndpoints,
} from './discovery/endpoint.ts';
export { type FeedOptions, feedLoadBalancer } from './discovery/feed.ts';
export { GRPC_DISCOVERY_SCHEME, type GrpcDiscoveryOptions, registerGrpcDiscovery } from './discovery/grpc.ts';
export {
  type EndpointSliceSourceOptions,
  endpointSliceSource,
  endpointsOfSlice,
} from './discovery/kubernetes.ts';
export {
  DEFAULT_DISCOVERY_BACKOFF,
  type DiscoveryEvent,
  type DiscoverySource,
  discoveryError,
  type Following,
  followSource,
  type RoundsOptions,
  runRounds,
} from './discovery/source.ts';
export { parseEndpointsFile, type StaticFileOptions, staticFileSource } from './discovery/static-file.ts';
export { TrafficError, TrafficErrorCode } from './errors.ts';
export type { Backend, BackendEndpoint, BackendHealth } from './lb/backend.ts';
export { BackendSet, type BackendSetChange } from './lb/backend-set.ts';
export { type LbConfig, type LbFlags, type ListenAddress, parseLbConfig, parseListen } from './lb/config.ts';
export { type ForwardContext, forwardHeaders, responseHeaders, TrustedProxies } from './lb/headers.ts';
export { DEFAULT_HEALTH_CHECK, type HealthCheckOptions } from './lb/health-checks.ts';
export {
  createLoadBalancer,
  LoadBalancer,
  type LoadBalancerEvent,
  type LoadBalancerOptions,
  type LoadBalancerSettings,
} from './lb/load-balancer.ts';
export { DEFAULT_OUTLIER, type OutlierOptions } from './lb/outlier.ts';
export {
  createPicker,
  LB_POLICIES,
  type LbPolicy,
  type PickContext,
  type Picker,
  type PickerOptions,
} from './lb/pickers.ts';
export type { ProxyTimeouts, RetryOptions } from './lb/proxy.ts';
export { RetryBudget, type RetryBudgetOptions } from './lb/retry-budget.ts';
export { type RunLoadBalancerOptions, type RunningLoadBalancer, runLoadBalancer } from './lb/run.ts';
export { LB_CONFIG_ENV, loadBalancerUpService } from './lb/up.ts';
export {
  AdsServer,
  type AdsServerOptions,
  type NackDetail,
  type StreamKindStatus,
  type StreamStatus,
  type XdsEvent,
  type XdsMode,
} from './xds/ads.ts';
export { ControlPlane, type ControlPlaneOptions, createControlPlane } from './xds/control-plane.ts';
export {
  checkMesh,
  clusterName,
  type Mesh,
  type MeshRoute,
  type MeshService,
  type MeshVersion,
  meshProblems,
  meshSnapshot,
  type VersionWeights,
} from './xds/mesh.ts';
export {
  type DiscoveredVersion,
  type DiscoverySpec,
  type MeshConfig,
  type MeshFlags,
  parseEndpoint,
  parseMeshConfig,
} from './xds/mesh-config.ts';
export { type GrpcBootstrapOptions, grpcBootstrap, type Node } from './xds/node.ts';
export { envoyTypes } from './xds/protos.ts';
export {
  type AssignmentEndpoint,
  apiListener,
  type EncodedResource,
  edsCluster,
  loadAssignment,
  RESOURCE_KINDS,
  type ResourceKind,
  type ResourceObject,
  type RouteSpec,
  type RouteTarget,
  routeConfiguration,
  TYPE_URLS,
} from './xds/resources.ts';
export { type RunControlPlaneOptions, type RunningControlPlane, runControlPlane } from './xds/run.ts';
export { type NodeHash, nodeIdHash, Snapshot, SnapshotCache, type SnapshotInput } from './xds/snapshot.ts';
export { controlPlaneUpService, XDS_CONFIG_ENV } from './xds/up.ts';

/** What this area adds to `capstan up`. */
export const upServices: readonly UpService[] = [loadBalancerUpService, controlPlaneUpService];
