// What registers the adapter with the apiserver's aggregation layer: the APIService (with the CA that
// signed the adapter's certificate), the Service it names (selecting the adapter's pods, or pointing at an
// address outside the cluster), and the RBAC every delegated-auth server needs.
import { setTimeout as sleep } from 'node:timers/promises';
import type { V1APIService } from '@kubernetes/client-node';
import {
  ClusterRoleBinding,
  EndpointSlice,
  type KubeClient,
  type ResourceType,
  RoleBinding,
  Service,
  ServiceAccount,
  type Wire,
} from '../../kube/index.ts';
import type { CertAuthority, CertPair } from '../../runtime/index.ts';
import { ScalingError, ScalingErrorCode } from '../errors.ts';
import { EXTERNAL_METRICS_GROUP, EXTERNAL_METRICS_VERSION } from './authorization.ts';

/** An `apiregistration.k8s.io/v1` APIService (cluster-scoped). */
export type APIService = Wire<V1APIService>;
/** The resource type of {@link APIService}. */
export const APIService: ResourceType<APIService> = {
  group: 'apiregistration.k8s.io',
  version: 'v1',
  kind: 'APIService',
  plural: 'apiservices',
  namespaced: false,
};

/** The APIService's name, fixed by the API: hence one External Metrics provider per cluster. */
export const EXTERNAL_METRICS_API_SERVICE = `${EXTERNAL_METRICS_VERSION}.${EXTERNAL_METRICS_GROUP}`;

/** Options of {@link externalMetricsApiManifests}. */
export interface ExternalMetricsApiOptions {
  /** Namespace of the adapter's Service and ServiceAccount. */
  namespace: string;
  /** The Service's name (the serving certificate is for `<name>.<namespace>.svc`). Default `capstan-external-metrics`. */
  serviceName?: string;
  /** The ServiceAccount the adapter runs as, bound to the delegated-auth roles. Default the Service's name. */
  serviceAccountName?: string;
  /** The CA that signed the serving certificate (PEM): the APIService's `caBundle`. */
  caPem: string;
  /** The port the adapter listens on. */
  port: number;
  /** In the cluster: labels of the adapter's pods, which the Service selects. */
  selector?: Readonly<Record<string, string>>;
  /**
   * Outside the cluster: the address the apiserver reaches the adapter at, an IPv4 address or a host name of
   * at least two labels (an EndpointSlice of the selector-less Service; a loopback address is written as an
   * FQDN-type address, since IPv4 ones may not be loopback). Needs an apiserver that routes to endpoints
   * (`--enable-aggregator-routing=true`) or a route to the Service's ClusterIP.
   */
  endpoint?: string;
}

/** One of the objects {@link externalMetricsApiManifests} makes. */
export type ExternalMetricsApiObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
} & Record<string, unknown>;

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** The serving certificate's names: what the aggregation layer checks (`<service>.<namespace>.svc`). */
export function externalMetricsServiceNames(
  namespace: string,
  serviceName = 'capstan-external-metrics',
): string[] {
  return [
    `${serviceName}.${namespace}.svc`,
    `${serviceName}.${namespace}.svc.cluster.local`,
    `${serviceName}.${namespace}`,
  ];
}

/** Issue the adapter's serving certificate from `ca` (whose certificate then goes in the APIService's `caBundle`). */
export function issueExternalMetricsServingCertificate(
  ca: CertAuthority,
  options: { namespace: string; serviceName?: string; days?: number },
): Promise<CertPair> {
  const dnsNames = externalMetricsServiceNames(options.namespace, options.serviceName);
  return ca.issue({
    commonName: dnsNames[0]!,
    dnsNames,
    usage: 'server',
    ...(options.days !== undefined ? { days: options.days } : {}),
  });
}

/**
 * The objects that register an adapter: a ServiceAccount, the Service (with `selector`, or an EndpointSlice
 * to `endpoint`), the APIService `v1beta1.external.metrics.k8s.io`, a ClusterRoleBinding to
 * `system:auth-delegator` (TokenReviews and SubjectAccessReviews) and a RoleBinding in kube-system to
 * `extension-apiserver-authentication-reader` (the front proxy's CA). The HPA controller may already read
 * external metrics (its bootstrap role allows it). Throws `CAP_ERR_SCALING_CONFIG` listing every problem.
 */
export function externalMetricsApiManifests(options: ExternalMetricsApiOptions): ExternalMetricsApiObject[] {
  const serviceName = options.serviceName ?? 'capstan-external-metrics';
  const account = options.serviceAccountName ?? serviceName;
  const { namespace, port } = options;
  const problems: string[] = [];
  if ((options.selector === undefined) === (options.endpoint === undefined)) {
    problems.push(
      'give exactly one of selector (the adapter runs in the cluster) and endpoint (it runs outside)',
    );
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) problems.push(`port must be 1-65535, got ${port}`);
  if (!options.caPem.includes('BEGIN CERTIFICATE')) problems.push('caPem is not a PEM certificate');
  const ip = options.endpoint?.match(IPV4);
  if (ip?.slice(1).some((o) => Number(o) > 255))
    problems.push(`endpoint ${options.endpoint} is not an IPv4 address`);
  if (problems.length > 0) {
    throw new ScalingError(
      ScalingErrorCode.config,
      `External Metrics API manifests: ${problems.join('; ')}`,
      { problems },
    );
  }
  const labels = { 'app.kubernetes.io/name': serviceName, 'app.kubernetes.io/managed-by': 'capstan' };
  const subject = { kind: 'ServiceAccount', name: account, namespace };
  const objects: ExternalMetricsApiObject[] = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: account, namespace, labels } },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: serviceName, namespace, labels },
      spec: {
        ports: [{ name: 'https', port: 443, targetPort: port, protocol: 'TCP' }],
        ...(options.selector ? { selector: { ...options.selector } } : {}),
      },
    },
  ];
  if (options.endpoint !== undefined) {
    objects.push({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: serviceName,
        namespace,
        labels: { ...labels, 'kubernetes.io/service-name': serviceName },
      },
      // An IPv4 endpoint may not be loopback; an FQDN one is only checked as a name (at least two labels),
      // and the apiserver dials it as is: the way to an adapter on the apiserver's own machine.
      addressType: ip && ip[1] !== '127' ? 'IPv4' : 'FQDN',
      endpoints: [{ addresses: [options.endpoint], conditions: { ready: true } }],
      ports: [{ name: 'https', port, protocol: 'TCP' }],
    });
  }
  objects.push(
    {
      apiVersion: 'apiregistration.k8s.io/v1',
      kind: 'APIService',
      metadata: { name: EXTERNAL_METRICS_API_SERVICE, labels },
      spec: {
        group: EXTERNAL_METRICS_GROUP,
        version: EXTERNAL_METRICS_VERSION,
        service: { name: serviceName, namespace, port: 443 },
        caBundle: Buffer.from(options.caPem).toString('base64'),
        groupPriorityMinimum: 100,
        versionPriority: 100,
      },
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: `${serviceName}:${namespace}:system:auth-delegator`, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
      subjects: [subject],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: `${serviceName}:${namespace}:auth-reader`, namespace: 'kube-system', labels },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'Role',
        name: 'extension-apiserver-authentication-reader',
      },
      subjects: [subject],
    },
  );
  return objects;
}

const TYPES: Record<string, ResourceType<unknown>> = {
  ServiceAccount,
  Service,
  EndpointSlice,
  APIService,
  ClusterRoleBinding,
  RoleBinding,
} as Record<string, ResourceType<unknown>>;

/** Server-side apply the objects of {@link externalMetricsApiManifests} (field manager `capstan`, forced). */
export async function applyExternalMetricsApi(
  kube: KubeClient,
  objects: readonly ExternalMetricsApiObject[],
  options: { fieldManager?: string; signal?: AbortSignal } = {},
): Promise<void> {
  for (const object of objects) {
    const type = TYPES[object.kind];
    if (!type)
      throw new ScalingError(
        ScalingErrorCode.config,
        `cannot apply a ${object.kind}: not an External Metrics API object`,
      );
    await kube.resource(type, object.metadata.namespace).apply(object, {
      fieldManager: options.fieldManager ?? 'capstan',
      force: true,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }
}

/**
 * Wait until the aggregation layer reports the APIService Available (it reached the adapter and got its
 * discovery) and proxies to it (the group version's discovery answers 200 through the apiserver). Fails with `CAP_ERR_SCALING_API_SERVICE` quoting the last condition (`FailedDiscoveryCheck:
 * ...`, `MissingEndpoints`, ...) after `timeoutMs` (default 60 s).
 */
export async function waitForExternalMetricsApi(
  kube: KubeClient,
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  const api = kube.resource(APIService);
  let last = 'not found';
  for (;;) {
    options.signal?.throwIfAborted();
    const current = await api.getOptional(
      EXTERNAL_METRICS_API_SERVICE,
      options.signal ? { signal: options.signal } : {},
    );
    const available = current?.status?.conditions?.find((c) => c.type === 'Available');
    if (available?.status === 'True') {
      // The proxy learns of the condition a moment after the status says so: until then it answers 503.
      const res = await kube.request({
        path: `/apis/${EXTERNAL_METRICS_GROUP}/${EXTERNAL_METRICS_VERSION}`,
        timeoutMs: 10_000,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      const text = await res.body.text();
      if (res.status === 200) return;
      last = `Available, but the apiserver answers ${res.status}: ${text.slice(0, 200)}`;
    } else if (current) {
      last = available
        ? `${available.status} ${available.reason ?? ''}: ${available.message ?? ''}`
        : 'no condition yet';
    }
    if (Date.now() > deadline) {
      throw new ScalingError(
        ScalingErrorCode.apiService,
        `APIService ${EXTERNAL_METRICS_API_SERVICE} not Available: ${last}`,
      );
    }
    await sleep(250, undefined, options.signal ? { signal: options.signal } : {});
  }
}
