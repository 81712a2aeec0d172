// The basic shape every Kubernetes object has, as zod schemas for strict decoding: what `capstan yaml
// validate --kube` checks without knowing the kind. `metadata` is strict (a misspelled `lables` or
// `namespce` is caught; kubectl would drop or reject it); the kind's own fields are left to a schema that
// knows the kind (`kubeObject({ spec })`, or a CRD's via `capstan yaml validate --crd`).
import { z } from 'zod';

/** `metadata.ownerReferences[]`. */
export const ownerReferenceSchema = z.object({
  apiVersion: z.string(),
  kind: z.string(),
  name: z.string(),
  uid: z.string(),
  controller: z.boolean().optional(),
  blockOwnerDeletion: z.boolean().optional(),
});

/** `metadata` as the apiserver accepts it (ObjectMeta); label and annotation values must be strings. */
export const objectMetaSchema = z.object({
  name: z.string().optional(),
  generateName: z.string().optional(),
  namespace: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: z.number().int().optional(),
  creationTimestamp: z.string().nullable().optional(),
  deletionTimestamp: z.string().nullable().optional(),
  deletionGracePeriodSeconds: z.number().int().optional(),
  finalizers: z.array(z.string()).optional(),
  ownerReferences: z.array(ownerReferenceSchema).optional(),
  managedFields: z.array(z.looseObject({})).optional(),
  selfLink: z.string().optional(),
});

/** Options of {@link kubeObject}. */
export interface KubeObjectSchemaOptions {
  /** Only this apiVersion (`apps/v1`); default any non-empty string. */
  readonly apiVersion?: string;
  /** Only this kind; default any non-empty string. */
  readonly kind?: string;
  /** The schema of `spec`; given, the object's top-level keys are strict too (apiVersion, kind, metadata, spec, status). */
  readonly spec?: z.ZodType;
  /** The schema of `status` (default: anything, when `spec` is given). */
  readonly status?: z.ZodType;
}

/**
 * A Kubernetes object schema: `apiVersion`, `kind`, strict `metadata`, and, when `spec` is given, strict
 * top-level keys with that spec (a custom resource's shape). Without `spec`, other top-level fields
 * (`spec`, `data`, `rules`...) are the kind's own and are not checked.
 */
export function kubeObject(options: KubeObjectSchemaOptions = {}): z.ZodType {
  const apiVersion = options.apiVersion === undefined ? z.string().min(1) : z.literal(options.apiVersion);
  const kind = options.kind === undefined ? z.string().min(1) : z.literal(options.kind);
  const base = { apiVersion, kind, metadata: objectMetaSchema };
  if (options.spec === undefined) return z.looseObject({ ...base, metadata: objectMetaSchema.optional() });
  return z.object({ ...base, spec: options.spec, status: (options.status ?? z.unknown()).optional() });
}

/** Any Kubernetes object's basic shape: {@link kubeObject} with no kind-specific part. */
export const kubeObjectSchema = kubeObject();
