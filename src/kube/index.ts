// capstan/kube: Kubernetes client, watches that survive, caches, controllers and CRDs from TypeScript types.

export { Action } from './action.ts';
export {
  ClusterRole,
  ClusterRoleBinding,
  ConfigMap,
  CoreEvent,
  CronJob,
  CustomResourceDefinition,
  DaemonSet,
  Deployment,
  EndpointSlice,
  Endpoints,
  Event,
  HorizontalPodAutoscaler,
  Ingress,
  Job,
  Lease,
  MutatingWebhookConfiguration,
  Namespace,
  NetworkPolicy,
  Node,
  PersistentVolume,
  PersistentVolumeClaim,
  Pod,
  PodDisruptionBudget,
  ReplicaSet,
  Role,
  RoleBinding,
  Secret,
  Service,
  ServiceAccount,
  StatefulSet,
  ValidatingWebhookConfiguration,
} from './builtin.ts';
export {
  type ApiResource,
  type ApiResourceList,
  KubeClient,
  type KubeClientOptions,
  type KubeHttpOptions,
  type KubeVersion,
} from './client.ts';
export { type Clock, type ClockTimer, ManualClock, systemClock } from './clock.ts';
export {
  type Condition,
  type ConditionInput,
  conditionTime,
  findCondition,
  isConditionTrue,
  removeCondition,
  setCondition,
} from './conditions.ts';
export {
  defaultKubeConfig,
  type InClusterConfigOptions,
  inClusterConfig,
  isInCluster,
  type KubeClientConfig,
  type LoadKubeconfigOptions,
  loadKubeconfig,
  SERVICE_ACCOUNT_DIR,
} from './config.ts';
export {
  Controller,
  ControllerBuilder,
  type ControllerDefinition,
  type ControllerOptions,
  type ControllerSpec,
  type ControllerTuning,
  type ControllerWatchOptions,
  controller,
  type Mapper,
  type WatchSpec,
} from './controller.ts';
export {
  type CustomObject,
  type CustomResource,
  CustomResourceBuilder,
  type CustomResourceData,
  type CustomResourceInput,
  type CustomResourceVersionData,
  type CustomResourceVersionInput,
  type CustomResourceVersionsInput,
  customResource,
  defineCustomResource,
  exportedCustomResources,
  isCustomResource,
  type ObjectOfVersion,
  type PrinterColumn,
  pluralOf,
  type ScaleSubresource,
} from './crd/define.ts';
export { type InstallCustomResourcesOptions, installCustomResources } from './crd/install.ts';
export {
  type CustomResourceDefinitionManifest,
  type CustomResourceDefinitionVersion,
  crdManifest,
  crdManifests,
  crdName,
  crdYaml,
} from './crd/manifest.ts';
export {
  atomicList,
  type CelRule,
  type ConversionResult,
  embeddedResource,
  immutable,
  intOrString,
  type KubeFieldOptions,
  knownFormats,
  kubeField,
  kubeFields,
  listMap,
  listSet,
  preserveUnknownFields,
  type StructuralSchema,
  statusConditions,
  withRules,
  zodToStructural,
} from './crd/schema.ts';
export { checkStructural } from './crd/structural.ts';
export { isTerminalError, KubeError, KubeErrorCode, TerminalError } from './errors.ts';
export { type EventInput, EventRecorder, type EventRecorderOptions } from './events.ts';
export { type FinalizerEvent, type FinalizerOptions, finalizer } from './finalizer.ts';
export { type LeaderElectionOptions, LeaderElector } from './leader-election.ts';
export { Manager, type ManagerOptions } from './manager.ts';
export {
  OPERATOR_PORT,
  type OperatorManifest,
  type OperatorManifestOptions,
  operatorManifests,
} from './manifests.ts';
export {
  isStatus,
  type KubeObject,
  type KubeStatus,
  type ObjectList,
  type ObjectMeta,
  type OwnerReference,
  objectKey,
  type PartialObjectMetadata,
  type WatchEvent,
  type Wire,
} from './objects.ts';
export {
  defineOperator,
  type ExtraRule,
  exportedOperators,
  isOperator,
  type Operator,
  type OperatorData,
  type OperatorInput,
  type PolicyRule,
} from './operator.ts';
export { controllerOf, groupOf, type HasMetadata, ownerReference } from './owner.ts';
export { type Predicate, predicates, type WatchChange } from './predicates.ts';
export { leaseNameOf, type OperatorRules, operatorRules, type RbacObject, rbacManifests } from './rbac.ts';
export {
  defaultErrorPolicy,
  type ErrorPolicy,
  type ReconcileContext,
  type ReconcileRequest,
  type Reconciler,
  requestKey,
  requestOf,
} from './reconcile.ts';
export { codeForStatus, type KubeApi, type KubeRequest, kubeErrorFromResponse } from './request.ts';
export {
  type ApplyOptions,
  type CallOptions,
  type DeleteOptions,
  type FullList,
  type ListOptions,
  type PatchOptions,
  type PatchType,
  ResourceClient,
  type Scale,
  type Selector,
  type SelectorOptions,
  selectorString,
  type WatchOptions,
  type WriteOptions,
} from './resource-client.ts';
export { apiVersionOf, type ResourceType } from './resource-type.ts';
export {
  operatorConfig,
  operatorShutdown,
  type RunningOperator,
  type RunOperatorOptions,
  runOperator,
  terminationGraceSeconds,
} from './run-operator.ts';
export { type ScaffoldFile, type ScaffoldOptions, scaffoldOperator } from './scaffold.ts';
export { type Indexer, labelIndexer, reflector, Store, type StoreOptions } from './store.ts';
export {
  isPermanentWatchError,
  stripManagedFields,
  type WatcherEvent,
  type WatcherNotice,
  type WatcherOptions,
  watcher,
} from './watcher.ts';
export {
  type QueueBackoffOptions,
  type RateLimit,
  TokenBucket,
  type WorkHandler,
  WorkQueue,
  type WorkQueueOptions,
  type WorkQueueStats,
} from './work-queue.ts';
export { type ProgramWorkloadOptions, programWorkload } from './workload.ts';
