// Resource types of the built-in kinds operators use most, typed with @kubernetes/client-node's models
// as they travel on the wire (timestamps are strings, see Wire). Any other kind: write a ResourceType, or
// ask discovery (KubeClient.resourceTypeFor).
import type {
  CoreV1Event,
  EventsV1Event,
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1ConfigMap,
  V1CronJob,
  V1CustomResourceDefinition,
  V1DaemonSet,
  V1Deployment,
  V1EndpointSlice,
  V1Endpoints,
  V1Ingress,
  V1Job,
  V1Lease,
  V1MutatingWebhookConfiguration,
  V1Namespace,
  V1NetworkPolicy,
  V1Node,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Pod,
  V1PodDisruptionBudget,
  V1ReplicaSet,
  V1Role,
  V1RoleBinding,
  V1Secret,
  V1Service,
  V1ServiceAccount,
  V1StatefulSet,
  V1ValidatingWebhookConfiguration,
  V2HorizontalPodAutoscaler,
} from '@kubernetes/client-node';
import type { Wire } from './objects.ts';
import type { ResourceType } from './resource-type.ts';

/** A `v1` Pod (namespaced). */
export type Pod = Wire<V1Pod>;
/** The resource type of {@link Pod}. */
export const Pod: ResourceType<Pod> = {
  group: '',
  version: 'v1',
  kind: 'Pod',
  plural: 'pods',
  namespaced: true,
};

/** A `v1` Service (namespaced). */
export type Service = Wire<V1Service>;
/** The resource type of {@link Service}. */
export const Service: ResourceType<Service> = {
  group: '',
  version: 'v1',
  kind: 'Service',
  plural: 'services',
  namespaced: true,
};

/** A `v1` ConfigMap (namespaced). */
export type ConfigMap = Wire<V1ConfigMap>;
/** The resource type of {@link ConfigMap}. */
export const ConfigMap: ResourceType<ConfigMap> = {
  group: '',
  version: 'v1',
  kind: 'ConfigMap',
  plural: 'configmaps',
  namespaced: true,
};

/** A `v1` Secret (namespaced). */
export type Secret = Wire<V1Secret>;
/** The resource type of {@link Secret}. */
export const Secret: ResourceType<Secret> = {
  group: '',
  version: 'v1',
  kind: 'Secret',
  plural: 'secrets',
  namespaced: true,
};

/** A `v1` ServiceAccount (namespaced). */
export type ServiceAccount = Wire<V1ServiceAccount>;
/** The resource type of {@link ServiceAccount}. */
export const ServiceAccount: ResourceType<ServiceAccount> = {
  group: '',
  version: 'v1',
  kind: 'ServiceAccount',
  plural: 'serviceaccounts',
  namespaced: true,
};

/** A `v1` PersistentVolumeClaim (namespaced). */
export type PersistentVolumeClaim = Wire<V1PersistentVolumeClaim>;
/** The resource type of {@link PersistentVolumeClaim}. */
export const PersistentVolumeClaim: ResourceType<PersistentVolumeClaim> = {
  group: '',
  version: 'v1',
  kind: 'PersistentVolumeClaim',
  plural: 'persistentvolumeclaims',
  namespaced: true,
};

/** A `v1` Endpoints (namespaced). */
export type Endpoints = Wire<V1Endpoints>;
/** The resource type of {@link Endpoints}. */
export const Endpoints: ResourceType<Endpoints> = {
  group: '',
  version: 'v1',
  kind: 'Endpoints',
  plural: 'endpoints',
  namespaced: true,
};

/** The core `v1` Event (what `kubectl describe` shows); {@link Event} is the newer `events.k8s.io/v1` one. */
export type CoreEvent = Wire<CoreV1Event>;
/** The resource type of {@link CoreEvent}. */
export const CoreEvent: ResourceType<CoreEvent> = {
  group: '',
  version: 'v1',
  kind: 'Event',
  plural: 'events',
  namespaced: true,
};

/** A `v1` Namespace (cluster-scoped). */
export type Namespace = Wire<V1Namespace>;
/** The resource type of {@link Namespace}. */
export const Namespace: ResourceType<Namespace> = {
  group: '',
  version: 'v1',
  kind: 'Namespace',
  plural: 'namespaces',
  namespaced: false,
};

/** A `v1` Node (cluster-scoped). */
export type Node = Wire<V1Node>;
/** The resource type of {@link Node}. */
export const Node: ResourceType<Node> = {
  group: '',
  version: 'v1',
  kind: 'Node',
  plural: 'nodes',
  namespaced: false,
};

/** A `v1` PersistentVolume (cluster-scoped). */
export type PersistentVolume = Wire<V1PersistentVolume>;
/** The resource type of {@link PersistentVolume}. */
export const PersistentVolume: ResourceType<PersistentVolume> = {
  group: '',
  version: 'v1',
  kind: 'PersistentVolume',
  plural: 'persistentvolumes',
  namespaced: false,
};

/** A `apps/v1` Deployment (namespaced). */
export type Deployment = Wire<V1Deployment>;
/** The resource type of {@link Deployment}. */
export const Deployment: ResourceType<Deployment> = {
  group: 'apps',
  version: 'v1',
  kind: 'Deployment',
  plural: 'deployments',
  namespaced: true,
};

/** A `apps/v1` StatefulSet (namespaced). */
export type StatefulSet = Wire<V1StatefulSet>;
/** The resource type of {@link StatefulSet}. */
export const StatefulSet: ResourceType<StatefulSet> = {
  group: 'apps',
  version: 'v1',
  kind: 'StatefulSet',
  plural: 'statefulsets',
  namespaced: true,
};

/** A `apps/v1` DaemonSet (namespaced). */
export type DaemonSet = Wire<V1DaemonSet>;
/** The resource type of {@link DaemonSet}. */
export const DaemonSet: ResourceType<DaemonSet> = {
  group: 'apps',
  version: 'v1',
  kind: 'DaemonSet',
  plural: 'daemonsets',
  namespaced: true,
};

/** A `apps/v1` ReplicaSet (namespaced). */
export type ReplicaSet = Wire<V1ReplicaSet>;
/** The resource type of {@link ReplicaSet}. */
export const ReplicaSet: ResourceType<ReplicaSet> = {
  group: 'apps',
  version: 'v1',
  kind: 'ReplicaSet',
  plural: 'replicasets',
  namespaced: true,
};

/** A `batch/v1` Job (namespaced). */
export type Job = Wire<V1Job>;
/** The resource type of {@link Job}. */
export const Job: ResourceType<Job> = {
  group: 'batch',
  version: 'v1',
  kind: 'Job',
  plural: 'jobs',
  namespaced: true,
};

/** A `batch/v1` CronJob (namespaced). */
export type CronJob = Wire<V1CronJob>;
/** The resource type of {@link CronJob}. */
export const CronJob: ResourceType<CronJob> = {
  group: 'batch',
  version: 'v1',
  kind: 'CronJob',
  plural: 'cronjobs',
  namespaced: true,
};

/** A `coordination.k8s.io/v1` Lease: leader election and node heartbeats. */
export type Lease = Wire<V1Lease>;
/** The resource type of {@link Lease}. */
export const Lease: ResourceType<Lease> = {
  group: 'coordination.k8s.io',
  version: 'v1',
  kind: 'Lease',
  plural: 'leases',
  namespaced: true,
};

/** An `events.k8s.io/v1` Event: the form controllers should record (series, reporting controller). */
export type Event = Wire<EventsV1Event>;
/** The resource type of {@link Event}. */
export const Event: ResourceType<Event> = {
  group: 'events.k8s.io',
  version: 'v1',
  kind: 'Event',
  plural: 'events',
  namespaced: true,
};

/** A `discovery.k8s.io/v1` EndpointSlice (namespaced). */
export type EndpointSlice = Wire<V1EndpointSlice>;
/** The resource type of {@link EndpointSlice}. */
export const EndpointSlice: ResourceType<EndpointSlice> = {
  group: 'discovery.k8s.io',
  version: 'v1',
  kind: 'EndpointSlice',
  plural: 'endpointslices',
  namespaced: true,
};

/** A `networking.k8s.io/v1` Ingress (namespaced). */
export type Ingress = Wire<V1Ingress>;
/** The resource type of {@link Ingress}. */
export const Ingress: ResourceType<Ingress> = {
  group: 'networking.k8s.io',
  version: 'v1',
  kind: 'Ingress',
  plural: 'ingresses',
  namespaced: true,
};

/** A `networking.k8s.io/v1` NetworkPolicy (namespaced). */
export type NetworkPolicy = Wire<V1NetworkPolicy>;
/** The resource type of {@link NetworkPolicy}. */
export const NetworkPolicy: ResourceType<NetworkPolicy> = {
  group: 'networking.k8s.io',
  version: 'v1',
  kind: 'NetworkPolicy',
  plural: 'networkpolicies',
  namespaced: true,
};

/** A `policy/v1` PodDisruptionBudget (namespaced). */
export type PodDisruptionBudget = Wire<V1PodDisruptionBudget>;
/** The resource type of {@link PodDisruptionBudget}. */
export const PodDisruptionBudget: ResourceType<PodDisruptionBudget> = {
  group: 'policy',
  version: 'v1',
  kind: 'PodDisruptionBudget',
  plural: 'poddisruptionbudgets',
  namespaced: true,
};

/** A `autoscaling/v2` HorizontalPodAutoscaler (namespaced). */
export type HorizontalPodAutoscaler = Wire<V2HorizontalPodAutoscaler>;
/** The resource type of {@link HorizontalPodAutoscaler}. */
export const HorizontalPodAutoscaler: ResourceType<HorizontalPodAutoscaler> = {
  group: 'autoscaling',
  version: 'v2',
  kind: 'HorizontalPodAutoscaler',
  plural: 'horizontalpodautoscalers',
  namespaced: true,
};

/** A `rbac.authorization.k8s.io/v1` Role (namespaced). */
export type Role = Wire<V1Role>;
/** The resource type of {@link Role}. */
export const Role: ResourceType<Role> = {
  group: 'rbac.authorization.k8s.io',
  version: 'v1',
  kind: 'Role',
  plural: 'roles',
  namespaced: true,
};

/** A `rbac.authorization.k8s.io/v1` RoleBinding (namespaced). */
export type RoleBinding = Wire<V1RoleBinding>;
/** The resource type of {@link RoleBinding}. */
export const RoleBinding: ResourceType<RoleBinding> = {
  group: 'rbac.authorization.k8s.io',
  version: 'v1',
  kind: 'RoleBinding',
  plural: 'rolebindings',
  namespaced: true,
};

/** A `rbac.authorization.k8s.io/v1` ClusterRole (cluster-scoped). */
export type ClusterRole = Wire<V1ClusterRole>;
/** The resource type of {@link ClusterRole}. */
export const ClusterRole: ResourceType<ClusterRole> = {
  group: 'rbac.authorization.k8s.io',
  version: 'v1',
  kind: 'ClusterRole',
  plural: 'clusterroles',
  namespaced: false,
};

/** A `rbac.authorization.k8s.io/v1` ClusterRoleBinding (cluster-scoped). */
export type ClusterRoleBinding = Wire<V1ClusterRoleBinding>;
/** The resource type of {@link ClusterRoleBinding}. */
export const ClusterRoleBinding: ResourceType<ClusterRoleBinding> = {
  group: 'rbac.authorization.k8s.io',
  version: 'v1',
  kind: 'ClusterRoleBinding',
  plural: 'clusterrolebindings',
  namespaced: false,
};

/** A `apiextensions.k8s.io/v1` CustomResourceDefinition (cluster-scoped). */
export type CustomResourceDefinition = Wire<V1CustomResourceDefinition>;
/** The resource type of {@link CustomResourceDefinition}. */
export const CustomResourceDefinition: ResourceType<CustomResourceDefinition> = {
  group: 'apiextensions.k8s.io',
  version: 'v1',
  kind: 'CustomResourceDefinition',
  plural: 'customresourcedefinitions',
  namespaced: false,
};

/** A `admissionregistration.k8s.io/v1` MutatingWebhookConfiguration (cluster-scoped). */
export type MutatingWebhookConfiguration = Wire<V1MutatingWebhookConfiguration>;
/** The resource type of {@link MutatingWebhookConfiguration}. */
export const MutatingWebhookConfiguration: ResourceType<MutatingWebhookConfiguration> = {
  group: 'admissionregistration.k8s.io',
  version: 'v1',
  kind: 'MutatingWebhookConfiguration',
  plural: 'mutatingwebhookconfigurations',
  namespaced: false,
};

/** A `admissionregistration.k8s.io/v1` ValidatingWebhookConfiguration (cluster-scoped). */
export type ValidatingWebhookConfiguration = Wire<V1ValidatingWebhookConfiguration>;
/** The resource type of {@link ValidatingWebhookConfiguration}. */
export const ValidatingWebhookConfiguration: ResourceType<ValidatingWebhookConfiguration> = {
  group: 'admissionregistration.k8s.io',
  version: 'v1',
  kind: 'ValidatingWebhookConfiguration',
  plural: 'validatingwebhookconfigurations',
  namespaced: false,
};
