// The shapes every Kubernetes object and API answer share, as the apiserver sends them (plain JSON).

/**
 * A client-node model type as it travels on the wire. @kubernetes/client-node types timestamps as `Date`
 * because its serializer converts them; this client keeps the apiserver's JSON as is (no copy per object,
 * which matters for a cache of thousands), so timestamps stay RFC 3339 strings. `Wire<V1Pod>` is a pod as
 * `get` returns it.
 */
export type Wire<T> = T extends Date
  ? string
  : T extends ReadonlyArray<infer U>
    ? Array<Wire<U>>
    : T extends object
      ? { [K in keyof T]: Wire<T[K]> }
      : T;

/** The `metadata` of every object (the fields this client reads; the rest pass through untouched). */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  managedFields?: unknown[];
}

/** An owner reference (`metadata.ownerReferences[]`): garbage collection and "owns" watches follow these. */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** Any Kubernetes object: `apiVersion`, `kind`, `metadata`, and whatever its kind adds. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [field: string]: unknown;
}

/** An object reduced to its metadata (`PartialObjectMetadata`), what metadata-only reads and watches return. */
export interface PartialObjectMetadata {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

/** One page of a list: the items, and where the next page starts (`metadata.continue`). */
export interface ObjectList<T> {
  apiVersion?: string;
  kind?: string;
  metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  items: T[];
}

/** The apiserver's `Status`: what it answers with on errors, and on some deletes. */
export interface KubeStatus {
  apiVersion?: string;
  kind: 'Status';
  status?: 'Success' | 'Failure';
  message?: string;
  /** Machine-readable cause: `NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, `Expired`, `Gone`... */
  reason?: string;
  code?: number;
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    uid?: string;
    causes?: Array<{ reason?: string; message?: string; field?: string }>;
    retryAfterSeconds?: number;
  };
}

/** One event of a raw watch connection, as the apiserver sends it. */
export type WatchEvent<T> =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: T }
  /** Only `metadata.resourceVersion` is meaningful: how far the stream got, with nothing changed. */
  | { type: 'BOOKMARK'; object: PartialObjectMetadata }
  /** The watch failed (410 Gone when the resourceVersion is too old); the stream ends after it. */
  | { type: 'ERROR'; object: KubeStatus };

/** True when `value` is a `Status` object (a delete may answer with one instead of the object). */
export function isStatus(value: unknown): value is KubeStatus {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'Status';
}

/**
 * The cache key of an object: `namespace/name`, or `name` for cluster-scoped objects (client-go's
 * `MetaNamespaceKeyFunc`, so keys read the same as in Go operators).
 */
export function objectKey(object: { metadata?: { name?: string; namespace?: string } }): string {
  const { name = '', namespace } = object.metadata ?? {};
  return namespace ? `${namespace}/${name}` : name;
}
