// capstan/kube: Kubernetes client, watches that survive, caches, controllers and CRDs from TypeScript types.

export { KubeError, KubeErrorCode } from './errors.ts';
export { apiVersionOf, type ResourceType } from './resource-type.ts';
