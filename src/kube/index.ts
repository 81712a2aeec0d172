// capstan/kube: Kubernetes client, watches that survive, caches, controllers and CRDs from TypeScript types.

export {
  type CustomObject,
  type CustomObjectMeta,
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
  intOrString,
  type KubeFieldOptions,
  knownFormats,
  kubeField,
  kubeFields,
  listMap,
  listSet,
  preserveUnknownFields,
  type StructuralSchema,
  withRules,
  zodToStructural,
} from './crd/schema.ts';
export { checkStructural } from './crd/structural.ts';
export { KubeError, KubeErrorCode } from './errors.ts';
export { apiVersionOf, type ResourceType } from './resource-type.ts';
